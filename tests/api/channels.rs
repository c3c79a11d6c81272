//! The notification-channel lifecycle against the emulator: a channel per connection,
//! renewal (new channel first, then the old one stopped; once, however many instances
//! run it), re-creation on demand, and stopping on disconnect.

use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use slotsync::store::entities::channels;
use slotsync::sync::channels::{renew_expiring, RenewReport};

use crate::helpers::{
    assert_error, spawn_app_with_channels_and, spawn_app_with_google, start_another_instance, wait_until, ConnectedApp,
    TestApp, TestUser, ADMIN_TOKEN,
};

async fn channels_app() -> ConnectedApp {
    spawn_app_with_channels_and(|_| {}).await
}

async fn connected(ctx: &ConnectedApp, email: &str) -> TestUser {
    let user = ctx.app.create_user(email).await;
    ctx.app.connect(&user).await;
    user
}

fn google_channel(channels: &[Value], id: uuid::Uuid) -> &Value {
    channels
        .iter()
        .find(|c| c["id"] == id.to_string())
        .unwrap_or_else(|| panic!("channel {id} is unknown to the emulator: {channels:?}"))
}

/// Makes every live channel of the app expire within a minute (inside the renewal window).
async fn make_channels_expire_soon(app: &TestApp) {
    channels::Entity::update_many()
        .col_expr(
            channels::Column::ExpiresAt,
            Expr::value(Utc::now() + chrono::Duration::seconds(60)),
        )
        .filter(channels::Column::StoppedAt.is_null())
        .exec(&app.state.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn connecting_creates_a_channel_whose_first_notification_is_accepted() {
    let ctx = channels_app().await;
    let user = connected(&ctx, "ada@example.com").await;

    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.watch", "200"), 1, "{stats}");
    let rows = ctx.app.live_channels(&user).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let at_google = ctx.google.channels().await;
    let channel = google_channel(&at_google, row.id);
    assert_eq!(channel["live"], true);
    assert_eq!(channel["address"], ctx.app.url("/webhooks/google-calendar"));
    assert_eq!(channel["token"], ctx.app.state.keys.channel_token(&row.id.to_string()));
    assert_eq!(row.resource_id.as_deref(), channel["resource_id"].as_str());
    // `CHANNEL_TTL_SECS` (a week) less up to a fifth of it, so renewals spread.
    let week = Utc::now() + chrono::Duration::days(7);
    let shortest = week - chrono::Duration::days(7) / 5;
    assert!(
        row.expires_at > shortest - chrono::Duration::seconds(60)
            && row.expires_at < week + chrono::Duration::seconds(60),
        "{:?}",
        row.expires_at
    );

    // The `sync` handshake may leave before the watch is answered; it is still accepted.
    let n = ctx.wait_for_notifications(1).await;
    assert_eq!((n["sent"].as_u64(), n["attempts"].as_u64()), (Some(1), Some(1)), "{n}");
}

#[tokio::test]
async fn connecting_without_a_public_base_url_works_and_creates_no_channel() {
    let ctx = spawn_app_with_google().await;
    let user = connected(&ctx, "ada@example.com").await;

    assert_eq!(ctx.google.stats().await.op_count("events.watch", "200"), 0);
    assert!(ctx.google.channels().await.is_empty());
    assert!(ctx.app.live_channels(&user).await.is_empty());
    let audit: Value = ctx.app.get_json(&user, "/auth/audit").await;
    assert_eq!(audit[0]["kind"], "connect", "no failure is recorded: {audit}");

    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/channel").await;
    let body = assert_error(resp, 503, "channels_off").await;
    assert!(body["message"].as_str().unwrap().contains("PUBLIC_BASE_URL"), "{body}");
    let report = renew_expiring(&ctx.app.state.sync).await.unwrap();
    assert_eq!(
        report,
        RenewReport {
            off: true,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn a_channel_near_expiry_is_renewed_new_one_first_and_notifications_follow_it() {
    let ctx = channels_app().await;
    let user = connected(&ctx, "ada@example.com").await;
    let old = ctx.app.live_channels(&user).await.remove(0);
    // The first channel's `sync` handshake arrives first: one delivered after the renewal
    // stopped that channel would rightly be refused.
    ctx.wait_for_notifications(1).await;

    // Outside the renewal window nothing happens.
    assert_eq!(
        renew_expiring(&ctx.app.state.sync).await.unwrap(),
        RenewReport::default()
    );
    make_channels_expire_soon(&ctx.app).await;
    let report = renew_expiring(&ctx.app.state.sync).await.unwrap();
    assert_eq!(report.renewed, 1, "{report:?}");

    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.watch", "200"), 2, "{stats}");
    assert_eq!(stats.op_count("channels.stop", "204"), 1, "{stats}");
    let live = ctx.app.live_channels(&user).await;
    assert_eq!(live.len(), 1);
    let new = &live[0];
    assert_ne!(new.id, old.id);
    let old_now = channels::Entity::find_by_id(old.id)
        .one(&ctx.app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old_now.replaced_by, Some(new.id));
    assert!(
        new.created_at <= old_now.stopped_at.unwrap(),
        "the new channel exists before the old one stops"
    );
    let at_google = ctx.google.channels().await;
    assert_eq!(google_channel(&at_google, old.id)["live"], false);
    assert_eq!(google_channel(&at_google, new.id)["live"], true);

    // A change in Google right after the renewal is announced on the new channel.
    ctx.wait_for_notifications(2).await;
    let hub = ctx.google.user_hub("ada@example.com").await;
    let event = google_calendar3::api::Event {
        summary: Some("made in Google".into()),
        start: Some(google_calendar3::api::EventDateTime {
            date_time: Some("2026-12-01T10:00:00Z".parse().unwrap()),
            ..Default::default()
        }),
        end: Some(google_calendar3::api::EventDateTime {
            date_time: Some("2026-12-01T11:00:00Z".parse().unwrap()),
            ..Default::default()
        }),
        ..Default::default()
    };
    hub.events().insert(event, "primary").doit().await.unwrap();
    wait_until(
        "the change is announced on the new channel",
        Duration::from_secs(30),
        || async { google_channel(&ctx.google.channels().await, new.id)["message_number"].as_u64() >= Some(2) },
    )
    .await;
    ctx.wait_for_notifications(3).await;
    assert_eq!(
        google_channel(&ctx.google.channels().await, old.id)["message_number"],
        1,
        "nothing more went to the old channel"
    );

    // Renewed channels are not renewed again.
    assert_eq!(
        renew_expiring(&ctx.app.state.sync).await.unwrap(),
        RenewReport::default()
    );
}

#[tokio::test]
async fn two_instances_renewing_at_once_renew_each_channel_exactly_once() {
    let ctx = channels_app().await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(connected(&ctx, &format!("user{i}@example.com")).await);
    }
    let mut old = Vec::new();
    for user in &users {
        old.push(ctx.app.live_channels(user).await.remove(0).id);
    }
    make_channels_expire_soon(&ctx.app).await;
    let mut other = start_another_instance(&ctx.app, |_| {}).await;

    let (a, b) = tokio::join!(renew_expiring(&ctx.app.state.sync), renew_expiring(&other.state.sync));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.renewed + b.renewed, 4, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed + a.retired + b.retired, 0, "{a:?} {b:?}");

    let stats = ctx.google.stats().await;
    assert_eq!(
        stats.op_count("events.watch", "200"),
        8,
        "one new channel per user: {stats}"
    );
    assert_eq!(stats.op_count("channels.stop", "204"), 4, "{stats}");
    assert_eq!(stats.op_count("channels.stop", "404"), 0, "{stats}");
    for (user, old) in users.iter().zip(&old) {
        let live = ctx.app.live_channels(user).await;
        assert_eq!(live.len(), 1, "{live:?}");
        assert_ne!(live[0].id, *old);
        let old_row = channels::Entity::find_by_id(*old)
            .one(&ctx.app.state.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old_row.replaced_by, Some(live[0].id));
    }
    other.stop().await;
}

#[tokio::test]
async fn a_channel_google_failed_to_create_at_connection_is_created_by_the_next_renewal() {
    let ctx = channels_app().await;
    ctx.google
        .faults(serde_json::json!({"ops": {"events.watch": {"503": 1.0}}}))
        .await;
    let user = connected(&ctx, "ada@example.com").await;
    assert!(
        ctx.app.live_channels(&user).await[0].expires_at <= Utc::now(),
        "left due for renewal"
    );
    let failed = slotsync::store::audit::list(
        &ctx.app.state.db,
        slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap()),
        &[slotsync::domain::AuditKind::ChannelFailed],
        10,
    )
    .await
    .unwrap();
    assert_eq!(failed.len(), 1);

    ctx.google.faults(Value::Null).await;
    let report = renew_expiring(&ctx.app.state.sync).await.unwrap();
    assert_eq!(report.renewed, 1, "{report:?}");
    let live = ctx.app.live_channels(&user).await;
    assert_eq!(live.len(), 1);
    assert!(live[0].resource_id.is_some() && live[0].expires_at > Utc::now());
    let at_google = ctx.google.channels().await;
    assert_eq!(
        at_google.iter().filter(|c| c["live"] == true).count(),
        1,
        "{at_google:?}"
    );
}

#[tokio::test]
async fn a_channel_can_be_recreated_by_its_user_or_an_admin() {
    let ctx = channels_app().await;
    let user = connected(&ctx, "ada@example.com").await;
    let first = ctx.app.live_channels(&user).await.remove(0);

    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/channel").await;
    assert_eq!(resp.status(), 200);
    let by_user: Value = resp.json().await.unwrap();
    assert_eq!(by_user["resource_id"].as_str(), first.resource_id.as_deref());
    assert!(by_user["expires_at"].as_str().is_some());
    let resp = ctx
        .app
        .admin_post(&format!("/webhooks/setup/{}", user.id), &Value::Null)
        .await;
    assert_eq!(resp.status(), 200);
    let by_admin: Value = resp.json().await.unwrap();

    let live = ctx.app.live_channels(&user).await;
    assert_eq!(live.len(), 1, "each re-creation stops the older channels");
    assert_eq!(live[0].id.to_string(), by_admin["id"].as_str().unwrap());
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.watch", "200"), 3, "{stats}");
    assert_eq!(stats.op_count("channels.stop", "204"), 2, "{stats}");
    let at_google = ctx.google.channels().await;
    assert_eq!(at_google.iter().filter(|c| c["live"] == true).count(), 1);

    // Refusals: unknown user, bad id, no admin token, no connection.
    let unknown = uuid::Uuid::new_v4();
    let resp = ctx
        .app
        .admin_post(&format!("/webhooks/setup/{unknown}"), &Value::Null)
        .await;
    assert_error(resp, 404, "not_found").await;
    let resp = ctx.app.admin_post("/webhooks/setup/nope", &Value::Null).await;
    assert_error(resp, 400, "invalid_field").await;
    let resp = ctx
        .app
        .client
        .post(ctx.app.url(&format!("/webhooks/setup/{}", user.id)))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let stranger = ctx.app.create_user("bob@example.com").await;
    let resp = ctx
        .app
        .user_send(&stranger, reqwest::Method::POST, "/sync/channel")
        .await;
    assert_error(resp, 409, "not_connected").await;
    let resp = ctx
        .app
        .client
        .post(ctx.app.url(&format!("/webhooks/setup/{}", stranger.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(resp, 409, "not_connected").await;
}

#[tokio::test]
async fn disconnect_stops_every_live_channel_of_the_user() {
    let ctx = channels_app().await;
    let user = connected(&ctx, "ada@example.com").await;
    let bystander = connected(&ctx, "bob@example.com").await;
    // A second live channel, as during a renewal overlap.
    let user_id = slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap());
    slotsync::sync::channels::create_channel(&ctx.app.state.sync, user_id)
        .await
        .unwrap();
    assert_eq!(ctx.app.live_channels(&user).await.len(), 2);

    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::DELETE, "/auth/google/connection")
        .await;
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["channels_stopped"], 2, "{summary}");
    assert_eq!(ctx.google.stats().await.op_count("channels.stop", "204"), 2);
    assert!(ctx.app.live_channels(&user).await.is_empty());
    let at_google = ctx.google.channels().await;
    let live: Vec<&Value> = at_google.iter().filter(|c| c["live"] == true).collect();
    let bystanders = ctx.app.live_channels(&bystander).await;
    assert_eq!(live.len(), 1, "only the other user's channel is left: {at_google:?}");
    assert_eq!(live[0]["id"], bystanders[0].id.to_string());
}
