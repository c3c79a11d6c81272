//! Two-way sync the way it runs in production: changes made in Google come back through
//! push notifications from the emulator to the webhook, then a coalesced pull.

use std::time::Duration;

use google_calendar3::api::{Event, EventDateTime};
use slotsync::domain::UserId;

use crate::helpers::{event_id_of, slot_body, spawn_app_with_channels_and, wait_until};
use slotsync_testkit::{sync_state, SyncState};

const EMAIL: &str = "ada@example.com";

#[tokio::test]
async fn edits_deletions_and_new_events_made_in_google_arrive_through_the_webhook() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx
        .app
        .create_slot(
            &user,
            &slot_body("mine", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap().to_owned();
    ctx.app.wait_until_pushed(&id).await;

    let hub = ctx.google.user_hub(EMAIL).await;
    let patch = Event {
        summary: Some("renamed in Google".into()),
        ..Default::default()
    };
    hub.events()
        .patch(patch, "primary", &event_id_of(&slot))
        .doit()
        .await
        .unwrap();
    wait_until("the rename reached the slot", Duration::from_secs(10), || async {
        ctx.app.slot(&user, &id).await["title"] == "renamed in Google"
    })
    .await;

    let at = |s: &str| EventDateTime {
        date_time: Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()),
        ..Default::default()
    };
    let created = Event {
        summary: Some("made in Google".into()),
        start: Some(at("2026-12-02T09:00:00Z")),
        end: Some(at("2026-12-02T10:00:00Z")),
        ..Default::default()
    };
    hub.events().insert(created, "primary").doit().await.unwrap();
    wait_until("the new event was imported", Duration::from_secs(10), || async {
        ctx.app.list_slot_ids(&user, "").await.len() == 2
    })
    .await;

    hub.events()
        .delete("primary", &event_id_of(&slot))
        .doit()
        .await
        .unwrap();
    wait_until("the deletion reached the slot", Duration::from_secs(10), || async {
        ctx.app.get(&user, &format!("/slots/{id}")).await.status() == 404
    })
    .await;
    let counters = ctx.wait_for_notifications(4).await;
    assert_eq!(counters["failed"], 0, "{counters}");
    // Nothing was written back to Google for any of it.
    let stats = ctx.google.stats().await;
    assert_eq!(
        stats.op_count("events.insert", "200"),
        2,
        "ours and Google's own: {stats}"
    );
    assert_eq!(stats.op_count("events.patch", "200"), 1, "{stats}");
    assert_eq!(stats.op_count("events.delete", "204"), 1, "{stats}");
}

#[tokio::test]
async fn our_own_push_echoes_through_the_webhook_and_causes_no_google_write() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let before = ctx.google.stats().await;
    let slot = ctx
        .app
        .create_slot(
            &user,
            &slot_body("echo", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    // The insert notifies us; the notification leads to a pull that must see an echo.
    let notified = before["notifications"]["sent"].as_u64().unwrap_or(0) + 1;
    ctx.wait_for_notifications(notified).await;
    let uid = UserId(uuid::Uuid::parse_str(&user.id).unwrap());
    let lists_before = before.op_count("events.list", "200");
    wait_until("the echo was pulled", Duration::from_secs(10), || async {
        ctx.google.stats().await.op_count("events.list", "200") > lists_before && !ctx.app.state.pulls.in_flight(uid)
    })
    .await;
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.insert", "200"), 1, "{stats}");
    assert_eq!(stats.op_count("events.patch", "200"), 0, "{stats}");
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["version"], 1, "{now}");
    assert_eq!(sync_state(&now), SyncState::Synced);
}

#[tokio::test]
async fn a_burst_of_200_notifications_costs_at_most_two_listings() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let channel = ctx.app.live_channels(&user).await.pop().expect("a channel");
    let token = ctx.app.state.keys.channel_token(&channel.id.to_string());
    let lists_before = ctx.google.stats().await.op_count("events.list", "200");
    let mut sends = Vec::new();
    for n in 0..200u64 {
        let headers = vec![
            ("X-Goog-Channel-ID", channel.id.to_string()),
            ("X-Goog-Channel-Token", token.clone()),
            ("X-Goog-Resource-ID", channel.resource_id.clone().unwrap()),
            ("X-Goog-Resource-State", "exists".to_owned()),
            ("X-Goog-Message-Number", (1_000 + n).to_string()),
        ];
        let app = &ctx.app;
        sends.push(async move { app.notify(&headers).await.status() });
    }
    for status in futures::future::join_all(sends).await {
        assert_eq!(status, 200);
    }
    let uid = UserId(uuid::Uuid::parse_str(&user.id).unwrap());
    wait_until("the coalesced pull finished", Duration::from_secs(10), || async {
        !ctx.app.state.pulls.in_flight(uid)
    })
    .await;
    let listings = ctx.google.stats().await.op_count("events.list", "200") - lists_before;
    assert!((1..=2).contains(&listings), "{listings} listings for 200 notifications");
}

#[tokio::test]
async fn edits_google_reports_late_in_one_batched_notification_all_reach_the_slots() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let mut ids = Vec::new();
    let mut events = Vec::new();
    for n in 0..3 {
        let start = format!("2026-12-0{}T09:00:00Z", n + 1);
        let end = format!("2026-12-0{}T10:00:00Z", n + 1);
        let slot = ctx
            .app
            .create_slot(&user, &slot_body(&format!("s{n}"), &start, &end))
            .await;
        let id = slot["id"].as_str().unwrap().to_owned();
        ctx.app.wait_until_pushed(&id).await;
        ids.push(id);
        events.push(event_id_of(&slot));
    }
    // Every notification so far (the handshake, our own pushes' echoes) is delivered and
    // its pull is done, so what follows is driven by the batched notification alone.
    let uid = UserId(uuid::Uuid::parse_str(&user.id).unwrap());
    let sent_before = ctx.wait_for_notifications(4).await["sent"].as_u64().unwrap();
    wait_until("no pull is pending", Duration::from_secs(10), || async {
        !ctx.app.state.pulls.in_flight(uid)
    })
    .await;
    ctx.google
        .faults(serde_json::json!({"notifications": {"batch_ms": 600, "delay_ms": 400}}))
        .await;

    let hub = ctx.google.user_hub(EMAIL).await;
    for (n, event) in events.iter().enumerate() {
        let patch = Event {
            summary: Some(format!("renamed {n} in Google")),
            ..Default::default()
        };
        hub.events().patch(patch, "primary", event).doit().await.unwrap();
    }
    wait_until("every rename reached its slot", Duration::from_secs(15), || async {
        let mut all = true;
        for (n, id) in ids.iter().enumerate() {
            all &= ctx.app.slot(&user, id).await["title"] == format!("renamed {n} in Google");
        }
        all
    })
    .await;
    let stats = ctx.google.stats().await;
    let notifications = &stats.json()["notifications"];
    assert_eq!(
        notifications["batched"], 2,
        "the three edits were folded into one notification: {notifications}"
    );
    assert_eq!(
        notifications["sent"].as_u64().unwrap() - sent_before,
        1,
        "one late notification carried all three edits: {notifications}"
    );
    for id in &ids {
        assert_eq!(sync_state(&ctx.app.slot(&user, id).await), SyncState::Synced);
    }
}
