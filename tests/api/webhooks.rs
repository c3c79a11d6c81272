//! The webhook `POST /webhooks/google-calendar`: genuine notifications are accepted;
//! forged, unknown, stopped or expired ones are refused with a 4xx and cost no Google call.

use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use slotsync::domain::UserId;
use slotsync::store::channels::ChannelRow;
use slotsync::store::entities::channels;

use crate::helpers::{assert_error, spawn_app_with_channels_and, wait_until, ConnectedApp, TestUser};

const HEADERS: [&str; 5] = [
    "X-Goog-Channel-ID",
    "X-Goog-Channel-Token",
    "X-Goog-Resource-ID",
    "X-Goog-Resource-State",
    "X-Goog-Message-Number",
];

/// An app with channels on, a connected user, and the user's channel once its `sync`
/// handshake was delivered and no pull of the user is pending.
async fn connected_with_channel() -> (ConnectedApp, TestUser, ChannelRow) {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.create_user("ada@example.com").await;
    ctx.app.connect(&user).await;
    ctx.wait_for_notifications(1).await;
    wait_until_no_pull(&ctx, &user).await;
    let channel = ctx.app.live_channels(&user).await.remove(0);
    (ctx, user, channel)
}

fn user_id(user: &TestUser) -> UserId {
    UserId(uuid::Uuid::parse_str(&user.id).unwrap())
}

/// Whether a pull of `user` was requested and has not finished (requests are registered
/// before the webhook answers, so this is exact right after a notification).
fn pull_pending(ctx: &ConnectedApp, user: &TestUser) -> bool {
    ctx.app.state.pulls.in_flight(user_id(user))
}

async fn wait_until_no_pull(ctx: &ConnectedApp, user: &TestUser) {
    wait_until("no pull is pending", Duration::from_secs(30), || async {
        !pull_pending(ctx, user)
    })
    .await;
}

/// The headers Google would send for `channel`.
fn genuine(ctx: &ConnectedApp, channel: &ChannelRow, state: &str, number: u64) -> Vec<(&'static str, String)> {
    let id = channel.id.to_string();
    vec![
        ("X-Goog-Channel-ID", id.clone()),
        ("X-Goog-Channel-Token", ctx.app.state.keys.channel_token(&id)),
        ("X-Goog-Resource-ID", channel.resource_id.clone().unwrap_or_default()),
        ("X-Goog-Resource-State", state.to_owned()),
        ("X-Goog-Message-Number", number.to_string()),
        ("X-Goog-Channel-Expiration", "Tue, 19 Nov 2030 01:13:52 GMT".to_owned()),
        (
            "X-Goog-Resource-URI",
            "https://www.googleapis.com/calendar/v3/calendars/primary/events".to_owned(),
        ),
    ]
}

fn with(mut headers: Vec<(&'static str, String)>, name: &str, value: &str) -> Vec<(&'static str, String)> {
    for (n, v) in &mut headers {
        if *n == name {
            *v = value.to_owned();
        }
    }
    headers
}

fn without(headers: &[(&'static str, String)], name: &str) -> Vec<(&'static str, String)> {
    headers.iter().filter(|(n, _)| *n != name).cloned().collect()
}

#[tokio::test]
async fn forged_and_stale_notifications_are_refused_without_a_pull_or_any_google_call() {
    let (ctx, user, channel) = connected_with_channel().await;
    let before = ctx.google.stats().await["requests"].clone();
    let good = genuine(&ctx, &channel, "exists", 50);
    let refused = |resp: reqwest::Response| {
        assert!(!pull_pending(&ctx, &user), "a refused notification requested a pull");
        resp
    };

    for name in HEADERS {
        let resp = refused(ctx.app.notify(&without(&good, name)).await);
        let body = assert_error(resp, 400, "invalid_parameter").await;
        assert_eq!(body["field"], name, "{body}");
        let resp = refused(ctx.app.notify(&with(good.clone(), name, "")).await);
        assert_eq!(resp.status(), 400, "an empty {name}");
    }
    let resp = refused(
        ctx.app
            .notify(&with(good.clone(), "X-Goog-Resource-State", "changed"))
            .await,
    );
    let body = assert_error(resp, 400, "invalid_parameter").await;
    assert_eq!(body["field"], "X-Goog-Resource-State");
    let resp = refused(ctx.app.notify(&with(good.clone(), "X-Goog-Message-Number", "-1")).await);
    let body = assert_error(resp, 400, "invalid_parameter").await;
    assert_eq!(body["field"], "X-Goog-Message-Number");

    // Wrong tokens: another channel's, garbage, and the right one for a different id.
    let other_token = ctx.app.state.keys.channel_token(&uuid::Uuid::new_v4().to_string());
    for token in [other_token.as_str(), "forged", "!!!"] {
        let resp = refused(ctx.app.notify(&with(good.clone(), "X-Goog-Channel-Token", token)).await);
        let body = assert_error(resp, 403, "invalid_channel_token").await;
        assert_eq!(body["field"], "X-Goog-Channel-Token");
    }

    // Unknown channels: not a UUID, or a UUID we never created (even with its own token).
    let resp = refused(
        ctx.app
            .notify(&with(good.clone(), "X-Goog-Channel-ID", "not-a-uuid"))
            .await,
    );
    assert_error(resp, 404, "not_found").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let forged = with(good.clone(), "X-Goog-Channel-ID", &unknown);
    let forged = with(
        forged,
        "X-Goog-Channel-Token",
        &ctx.app.state.keys.channel_token(&unknown),
    );
    assert_error(refused(ctx.app.notify(&forged).await), 404, "not_found").await;

    // The right channel and token, but another calendar.
    let resp = refused(
        ctx.app
            .notify(&with(good.clone(), "X-Goog-Resource-ID", "someone-elses"))
            .await,
    );
    let body = assert_error(resp, 400, "resource_mismatch").await;
    assert_eq!(body["field"], "X-Goog-Resource-ID");

    // Expired, then stopped, straight in the database, as another instance would: this one
    // reads the row again once its entry is forgotten (or older than its TTL).
    channels::Entity::update_many()
        .col_expr(
            channels::Column::ExpiresAt,
            Expr::value(Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(channels::Column::Id.eq(channel.id))
        .exec(&ctx.app.state.db)
        .await
        .unwrap();
    ctx.app.state.channel_directory.forget(channel.id);
    assert_error(refused(ctx.app.notify(&good).await), 410, "channel_expired").await;
    slotsync::store::channels::mark_stopped(&ctx.app.state.db, channel.id, None, Utc::now())
        .await
        .unwrap();
    ctx.app.state.channel_directory.forget(channel.id);
    assert_error(refused(ctx.app.notify(&good).await), 410, "channel_stopped").await;

    let after = ctx.google.stats().await["requests"].clone();
    assert_eq!(before, after, "no Google call was caused");
}

#[tokio::test]
async fn a_change_notification_requests_a_pull_and_redeliveries_and_late_ones_do_not() {
    let (ctx, user, channel) = connected_with_channel().await;
    let lists_before = ctx.google.stats().await.op_count("events.list", "200");

    let resp = ctx.app.notify(&genuine(&ctx, &channel, "exists", 7)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "", "no body");
    assert!(pull_pending(&ctx, &user), "`exists` requests a pull");
    wait_until("the pull ran", Duration::from_secs(30), || async {
        ctx.google.stats().await.op_count("events.list", "200") > lists_before
    })
    .await;
    wait_until_no_pull(&ctx, &user).await;

    // A redelivery, a late (lower-numbered) message and a repeated handshake: 200, no pull.
    for (state, number) in [("exists", 7), ("not_exists", 5), ("sync", 1)] {
        let resp = ctx.app.notify(&genuine(&ctx, &channel, state, number)).await;
        assert_eq!(resp.status(), 200, "{state} #{number}");
        assert!(!pull_pending(&ctx, &user), "{state} #{number} requested a pull");
    }
    // Numbers need not be consecutive; `not_exists` is a change too.
    let resp = ctx.app.notify(&genuine(&ctx, &channel, "not_exists", 12)).await;
    assert_eq!(resp.status(), 200);
    assert!(pull_pending(&ctx, &user), "`not_exists` requests a pull");
}

#[tokio::test]
async fn a_notification_sent_before_google_answered_the_watch_is_accepted() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.create_user("ada@example.com").await;
    ctx.app.connect(&user).await;
    // A channel being created: stored, but Google's answer (its resource id) not in yet.
    let id = uuid::Uuid::new_v4();
    let pending = slotsync::store::channels::insert_pending(
        &ctx.app.state.db,
        id,
        slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap()),
        Utc::now() + chrono::Duration::days(7),
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(pending.resource_id.is_none());
    let headers = with(
        genuine(&ctx, &pending, "sync", 1),
        "X-Goog-Resource-ID",
        "whatever-google-chose",
    );
    assert_eq!(ctx.app.notify(&headers).await.status(), 200);
}

#[tokio::test]
async fn the_webhook_needs_no_bearer_token_and_answers_errors_in_our_body() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let resp = ctx.app.notify(&[]).await;
    let body: Value = assert_error(resp, 400, "invalid_parameter").await;
    assert_eq!(body["field"], "X-Goog-Channel-ID");
}

/// Sends a change on `channel` that this app accepts, so its directory knows the channel
/// (the next notifications are answered without reading its row).
async fn accepted_and_remembered(ctx: &ConnectedApp, user: &TestUser, channel: &ChannelRow, number: u64) {
    let resp = ctx.app.notify(&genuine(ctx, channel, "exists", number)).await;
    assert_eq!(resp.status(), 200);
    let known = ctx.app.state.channel_directory.get(channel.id).expect("remembered");
    assert!(!known.stopped && known.resource_id == channel.resource_id, "{known:?}");
    wait_until_no_pull(ctx, user).await;
}

#[tokio::test]
async fn a_channel_stopped_with_delete_sync_is_refused_right_after_though_it_was_remembered() {
    let (ctx, user, channel) = connected_with_channel().await;
    accepted_and_remembered(&ctx, &user, &channel, 10).await;

    let resp = ctx.app.user_send(&user, reqwest::Method::DELETE, "/sync").await;
    assert_eq!(resp.status(), 200);
    let stopped: Value = resp.json().await.unwrap();
    assert_eq!(stopped["channels_stopped"], 1, "{stopped}");

    let resp = ctx.app.notify(&genuine(&ctx, &channel, "exists", 11)).await;
    assert_error(resp, 410, "channel_stopped").await;
    assert!(!pull_pending(&ctx, &user), "a stopped channel requested a pull");
}

#[tokio::test]
async fn channels_replaced_by_a_re_creation_or_a_renewal_are_refused_right_after_and_the_new_one_is_accepted() {
    let (ctx, user, first) = connected_with_channel().await;
    accepted_and_remembered(&ctx, &user, &first, 10).await;

    // Re-created by the user: the remembered channel is stopped, the new one found.
    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/channel").await;
    assert_eq!(resp.status(), 200);
    let second = ctx.app.live_channels(&user).await.remove(0);
    assert_ne!(second.id, first.id);
    let resp = ctx.app.notify(&genuine(&ctx, &first, "exists", 11)).await;
    assert_error(resp, 410, "channel_stopped").await;
    assert!(!pull_pending(&ctx, &user), "a stopped channel requested a pull");
    accepted_and_remembered(&ctx, &user, &second, 10).await;

    // Renewed: the same, through the renewal job's code.
    channels::Entity::update_many()
        .col_expr(
            channels::Column::ExpiresAt,
            Expr::value(Utc::now() + chrono::Duration::seconds(60)),
        )
        .filter(channels::Column::Id.eq(second.id))
        .exec(&ctx.app.state.db)
        .await
        .unwrap();
    let report = slotsync::sync::channels::renew_expiring(&ctx.app.state.sync)
        .await
        .unwrap();
    assert_eq!(report.renewed, 1, "{report:?}");
    let third = ctx.app.live_channels(&user).await.remove(0);
    assert_ne!(third.id, second.id);
    let resp = ctx.app.notify(&genuine(&ctx, &second, "exists", 11)).await;
    assert_error(resp, 410, "channel_stopped").await;
    assert!(!pull_pending(&ctx, &user), "a stopped channel requested a pull");
    accepted_and_remembered(&ctx, &user, &third, 10).await;
}

#[tokio::test]
async fn an_unknown_channel_is_not_remembered_so_one_stored_by_another_instance_is_found() {
    let (ctx, user, channel) = connected_with_channel().await;
    // Another instance creating a channel: Google's handshake may reach this one first.
    let id = uuid::Uuid::new_v4();
    let row = ChannelRow {
        id,
        resource_id: Some("resource-of-the-new-channel".to_owned()),
        ..channel.clone()
    };
    let handshake = genuine(&ctx, &row, "sync", 1);
    assert_error(ctx.app.notify(&handshake).await, 404, "not_found").await;
    assert!(ctx.app.state.channel_directory.get(id).is_none());

    // Stored straight in the shared database, as the other instance does.
    let stored = slotsync::store::channels::insert_pending(
        &ctx.app.state.db,
        id,
        slotsync::domain::UserId(channel.user_id),
        Utc::now() + chrono::Duration::days(7),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(ctx.app.notify(&handshake).await.status(), 200, "found at once");
    assert_eq!(ctx.app.notify(&genuine(&ctx, &row, "exists", 2)).await.status(), 200);
    assert!(pull_pending(&ctx, &user));
}
