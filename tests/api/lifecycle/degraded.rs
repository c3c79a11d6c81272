//! Connections that cannot sync: a grant without the calendar scope, a calendar deleted in
//! Google. Nothing is failed for good and nothing is deleted; the user is told what to do.

use std::time::Duration;

use serde_json::json;

use super::{
    assert_each_slot_once, connect_as, connected_calendar, connected_with_slots, connection, create_slots, live_slots,
    reconnect, rename, settle, Consent,
};
use crate::helpers::{spawn_app_with_google, wait_until, ConnectedApp, TestUser};
use slotsync_testkit::{connection_status, sync_state, ConnectionStatus, SyncState};

const ADA: &str = "ada@example.com";
const CALENDAR_SCOPE: &str = "https://www.googleapis.com/auth/calendar";

#[tokio::test]
async fn a_grant_without_the_calendar_scope_waits_paused_until_a_full_grant() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(ADA).await;
    create_slots(&ctx, &user, "slot", 2).await;

    let (status, partial) = connect_as(
        &ctx,
        &user,
        "primary",
        Consent {
            scopes: Some(&["openid", "email"]),
            ..Consent::default()
        },
    )
    .await;
    assert_eq!(status, 200, "{partial}");
    assert_eq!(partial["outcome"], "missing_scopes", "{partial}");
    assert_eq!(connection_status(&partial), ConnectionStatus::MissingScopes);
    assert_eq!(partial["connected"], false);
    assert_eq!(partial["missing_scopes"], json!([CALENDAR_SCOPE]));
    assert!(
        partial["next_step"].as_str().unwrap().contains("authorize"),
        "{partial}"
    );

    // The slots wait, paused with the reason; nothing was tried at Google.
    let slots = live_slots(&ctx, &user).await;
    assert!(slots.iter().all(|s| sync_state(s) == SyncState::Paused), "{slots:?}");
    assert!(slots
        .iter()
        .all(|s| s["sync"]["last_error"].as_str().unwrap().contains("calendar access")));
    // A slot created now waits in the outbox for an active connection.
    create_slots(&ctx, &user, "later", 1).await;
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_total("events.insert"), 0, "{stats}");
    assert_eq!(stats.op_total("events.list"), 0, "{stats}");
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["connection"], "missing_scopes");
    assert!(
        status["connection_error"].as_str().unwrap().contains("calendar"),
        "{status}"
    );

    // The user connects again and leaves the calendar box ticked.
    let full = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(connection_status(&full), ConnectionStatus::Active, "{full}");
    settle(&ctx, &user).await;
    assert_eq!(live_slots(&ctx, &user).await.len(), 3);
    assert_each_slot_once(&ctx, &user, ADA).await;
}

/// Deletes the connected calendar in Google, as its owner; returns its id.
async fn delete_connected_calendar(ctx: &ConnectedApp, user: &TestUser) -> String {
    let calendar = connected_calendar(ctx, user).await;
    ctx.google
        .user_hub(ADA)
        .await
        .calendars()
        .delete(&calendar)
        .doit()
        .await
        .unwrap();
    calendar
}

#[tokio::test]
async fn the_dedicated_calendar_deleted_in_google_pauses_everything_and_a_reconnect_rehomes() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "dedicated", 3).await;
    // The user deletes the calendar in Google.
    let calendar = delete_connected_calendar(&ctx, &user).await;
    // The next pull finds it gone; so would the next push.
    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/sync/trigger?mode=full")
        .await;
    assert_eq!(resp.status(), 409, "the pull reports the failure: the user has to act");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "calendar_missing", "{body}");
    let c = connection(&ctx, &user).await;
    assert_eq!(connection_status(&c), ConnectionStatus::CalendarMissing, "{c}");
    assert!(
        c["next_step"].as_str().unwrap().contains("POST /auth/google/calendar"),
        "{c}"
    );
    let slots = live_slots(&ctx, &user).await;
    assert_eq!(slots.len(), 3, "nothing is deleted");
    assert!(slots.iter().all(|s| sync_state(s) == SyncState::Paused), "{slots:?}");
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["connection"], "calendar_missing");
    // A change made meanwhile waits too, and fails nothing.
    rename(&ctx, &user, &ids[0], "edited while missing").await;

    let again = reconnect(&ctx, &user, "dedicated", Consent::default()).await;
    assert_eq!(again["outcome"], "rehomed", "{again}");
    assert_ne!(again["calendar_id"], calendar.as_str(), "a new dedicated calendar");
    settle(&ctx, &user).await;
    let new_calendar = connected_calendar(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, &new_calendar).await;
    assert_eq!(super::live_events(&ctx, &new_calendar).await.len(), 3);
}

#[tokio::test]
async fn a_deleted_calendar_found_by_a_push_deletes_nothing_even_when_google_wins() {
    let ctx =
        crate::helpers::spawn_app_with_google_and(|s| s.conflict_policy = slotsync::domain::ConflictPolicy::GoogleWins)
            .await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "dedicated", 2).await;
    delete_connected_calendar(&ctx, &user).await;

    // An edit is pushed: the patch answers 404, which is the calendar, not the event.
    rename(&ctx, &user, &ids[0], "edited").await;
    wait_until(
        "the connection is calendar_missing",
        Duration::from_secs(10),
        || async { connection_status(&connection(&ctx, &user).await) == ConnectionStatus::CalendarMissing },
    )
    .await;
    assert_eq!(live_slots(&ctx, &user).await.len(), 2, "no slot deleted");
    assert_eq!(ctx.app.slot(&user, &ids[0]).await["title"], "edited");
    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    assert_eq!(conflicts, json!([]), "a missing calendar is not a deletion in Google");

    // Picking a calendar with the tokens held re-homes without a new consent.
    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/auth/google/calendar?calendar=primary")
        .await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    settle(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, ADA).await;
}

#[tokio::test]
async fn calendar_access_removed_later_pauses_the_slots_instead_of_failing_them() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "primary", 2).await;

    // Calendar access is removed in the Google account.
    ctx.google.narrow_tokens(ADA, &["openid", "email"]).await;
    rename(&ctx, &user, &ids[0], "edited").await;
    wait_until("the connection is missing_scopes", Duration::from_secs(10), || async {
        connection_status(&connection(&ctx, &user).await) == ConnectionStatus::MissingScopes
    })
    .await;
    let slots = live_slots(&ctx, &user).await;
    assert!(
        slots.iter().all(|s| sync_state(s) == SyncState::Paused),
        "never failed: {slots:?}"
    );
    let audit = ctx.app.get_json(&user, "/auth/audit").await;
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["kind"] == "missing_scopes"),
        "{audit}"
    );

    // A full grant resumes everything, the edit included.
    let again = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(again["outcome"], "continued", "{again}");
    settle(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, ADA).await;
    assert!(super::live_events(&ctx, ADA)
        .await
        .iter()
        .any(|e| e["summary"] == "edited"));
}
