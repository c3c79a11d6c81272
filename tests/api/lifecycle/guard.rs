//! No deletion on absence alone: a missing event is confirmed before its slot is deleted,
//! and a mass deletion in Google is held for the user to apply or discard.

use serde_json::Value;

use super::{assert_each_slot_once, connected_with_slots, live_events, live_slots, settle, tag};
use crate::helpers::{spawn_app_with_google, ConnectedApp, TestUser};

const ADA: &str = "ada@example.com";

/// A connected user with `n` slots in sync; all their events deleted in Google.
async fn mass_deleted_in_google(ctx: &ConnectedApp, n: usize) -> (TestUser, Vec<String>) {
    let (user, ids) = connected_with_slots(ctx, ADA, "primary", n).await;
    let hub = ctx.google.user_hub(ADA).await;
    for event in live_events(ctx, ADA).await {
        hub.events()
            .delete("primary", event["id"].as_str().unwrap())
            .doit()
            .await
            .unwrap();
    }
    (user, ids)
}

async fn held(ctx: &ConnectedApp, user: &TestUser) -> Vec<Value> {
    ctx.app
        .get_json(user, "/sync/held-deletions")
        .await
        .as_array()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn a_mass_deletion_in_google_is_held_and_applied_when_the_user_says_so() {
    let ctx = spawn_app_with_google().await;
    let (user, _) = mass_deleted_in_google(&ctx, 12).await;

    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["held"], 12, "{report}");
    assert_eq!(report["deleted"], 0, "{report}");
    assert_eq!(live_slots(&ctx, &user).await.len(), 12, "nothing deleted yet");
    assert_eq!(ctx.app.sync_status(&user).await["held_deletions"], 12);
    assert_eq!(held(&ctx, &user).await.len(), 12);
    // Pulling again (even in full) holds them still, and deletes nothing.
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["deleted"], 0, "{report}");
    assert_eq!(held(&ctx, &user).await.len(), 12);

    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/sync/held-deletions/apply")
        .await;
    assert_eq!(resp.status(), 200);
    let done: Value = resp.json().await.unwrap();
    assert_eq!(done["slots"], 12, "{done}");
    assert!(live_slots(&ctx, &user).await.is_empty());
    assert!(held(&ctx, &user).await.is_empty());
    assert_eq!(ctx.app.sync_status(&user).await["held_deletions"], 0);
    assert!(live_events(&ctx, ADA).await.is_empty(), "nothing was written back");
}

#[tokio::test]
async fn a_held_mass_deletion_the_user_discards_puts_every_slot_back_in_google_once() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = mass_deleted_in_google(&ctx, 12).await;
    assert_eq!(ctx.app.pull(&user, "incremental").await["held"], 12);

    // Only some, then the rest.
    let some = format!("/sync/held-deletions/discard?slot_id={}&slot_id={}", ids[0], ids[1]);
    let done: Value = ctx
        .app
        .user_send(&user, reqwest::Method::POST, &some)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["slots"], 2, "{done}");
    assert_eq!(held(&ctx, &user).await.len(), 10);
    let done: Value = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/sync/held-deletions/discard")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["slots"], 10, "{done}");

    settle(&ctx, &user).await;
    assert_eq!(live_slots(&ctx, &user).await.len(), 12);
    assert_each_slot_once(&ctx, &user, ADA).await;
    ctx.app.pull(&user, "full").await;
    settle(&ctx, &user).await;
    assert_eq!(
        live_slots(&ctx, &user).await.len(),
        12,
        "a full sync afterwards deletes nothing"
    );
    let audit = ctx.app.get_json(&user, "/auth/audit").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "deletions_discarded"));
}

#[tokio::test]
async fn a_few_deletions_in_google_are_applied_at_once() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "primary", 12).await;
    let hub = ctx.google.user_hub(ADA).await;
    for event in live_events(&ctx, ADA)
        .await
        .iter()
        .filter(|e| tag(e) == Some(ids[0].as_str()))
    {
        hub.events()
            .delete("primary", event["id"].as_str().unwrap())
            .doit()
            .await
            .unwrap();
    }
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(report["held"], 0, "{report}");
    assert_eq!(live_slots(&ctx, &user).await.len(), 11);
}

#[tokio::test]
async fn an_event_missing_from_a_full_listing_but_still_in_google_keeps_its_slot() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "primary", 1).await;
    // Moved in Google to long before the full sync's window: a full listing omits it.
    let event = live_events(&ctx, ADA).await.remove(0);
    let hub = ctx.google.user_hub(ADA).await;
    let moved = google_calendar3::api::Event {
        start: Some(google_calendar3::api::EventDateTime {
            date_time: Some("2025-01-10T09:00:00Z".parse().unwrap()),
            ..Default::default()
        }),
        end: Some(google_calendar3::api::EventDateTime {
            date_time: Some("2025-01-10T10:00:00Z".parse().unwrap()),
            ..Default::default()
        }),
        ..Default::default()
    };
    hub.events()
        .patch(moved, "primary", event["id"].as_str().unwrap())
        .doit()
        .await
        .unwrap();
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["deleted"], 0, "{report}");
    let slot = ctx.app.slot(&user, &ids[0]).await;
    assert_eq!(slot["deleted"], false, "{slot}");
    assert_eq!(
        slot["start"], "2025-01-10T09:00:00+00:00",
        "the move is applied: {slot}"
    );
}
