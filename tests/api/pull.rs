//! The pull end to end: changes made in Google (through google-calendar3 with the
//! calendar owner's own token) reach the slots; our own writes are echoes; conflicts,
//! invalidated sync tokens and ping-pong writers are handled.

use std::time::Duration;

use google_calendar3::api::{Event, EventDateTime};
use serde_json::{json, Value};
use slotsync::domain::UserId;

use crate::helpers::{
    event_id_of, slot_body, spawn_app_with_google, spawn_app_with_google_and, wait_until, ConnectedApp, TestUser,
};
use slotsync_testkit::{sync_state, SyncState};

const EMAIL: &str = "ada@example.com";

/// A slot created through the API and pushed; returns its JSON.
async fn pushed_slot(ctx: &ConnectedApp, user: &TestUser, title: &str) -> Value {
    let slot = ctx
        .app
        .create_slot(user, &slot_body(title, "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    slot
}

async fn rename_in_google(ctx: &ConnectedApp, event_id: &str, title: &str) {
    let hub = ctx.google.user_hub(EMAIL).await;
    let patch = Event {
        summary: Some(title.into()),
        ..Default::default()
    };
    hub.events().patch(patch, "primary", event_id).doit().await.unwrap();
}

async fn delete_in_google(ctx: &ConnectedApp, event_id: &str) {
    let hub = ctx.google.user_hub(EMAIL).await;
    hub.events().delete("primary", event_id).doit().await.unwrap();
}

#[tokio::test]
async fn an_edit_and_a_deletion_made_in_google_reach_the_slot_and_are_not_pushed_back() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "mine").await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.pull(&user, "incremental").await;

    rename_in_google(&ctx, &event_id_of(&slot), "renamed in Google").await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(report["mode"], "incremental");
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["title"], "renamed in Google");
    assert_eq!(now["version"], 2);
    assert_eq!(
        sync_state(&now),
        SyncState::Synced,
        "a change from Google is not pushed back"
    );
    let row = ctx.app.slot_row(id).await;
    assert_eq!(row.synced_version, Some(row.version));

    delete_in_google(&ctx, &event_id_of(&slot)).await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(ctx.app.get(&user, &format!("/slots/{id}")).await.status(), 404);

    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.insert", "200"), 1, "{stats}");
    assert_eq!(
        stats.op_count("events.patch", "200"),
        1,
        "only Google's own edit: {stats}"
    );
    assert_eq!(
        stats.op_count("events.delete", "204"),
        1,
        "only Google's own deletion: {stats}"
    );
}

#[tokio::test]
async fn an_event_created_in_google_becomes_an_imported_slot() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let hub = ctx.google.user_hub(EMAIL).await;
    let at = |s: &str| EventDateTime {
        date_time: Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()),
        time_zone: Some("America/St_Johns".into()),
        ..Default::default()
    };
    let event = Event {
        summary: Some("Dentist".into()),
        location: Some("Water St".into()),
        start: Some(at("2026-12-03T09:30:00-03:30")),
        end: Some(at("2026-12-03T10:30:00-03:30")),
        ..Default::default()
    };
    let (_, created) = hub.events().insert(event, "primary").doit().await.unwrap();
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["imported"], 1, "{report}");

    let page = ctx.app.get_json(&user, "/slots").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let imported = &items[0];
    assert_eq!(imported["title"], "Dentist");
    assert_eq!(imported["location"], "Water St");
    assert_eq!(imported["source"], "google");
    assert_eq!(imported["timezone"], "America/St_Johns");
    assert_eq!(imported["start"], "2026-12-03T09:30:00-03:30");
    assert_eq!(sync_state(imported), SyncState::Synced);
    assert_eq!(imported["sync"]["google_event_id"], created.id.unwrap().as_str());
    // Pulling again imports nothing more.
    let again = ctx.app.pull(&user, "full").await;
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(ctx.app.list_slot_ids(&user, "").await.len(), 1);
}

#[tokio::test]
async fn our_own_push_coming_back_is_an_echo_and_writes_nothing() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.app.pull(&user, "incremental").await;
    let slot = pushed_slot(&ctx, &user, "echo me").await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["echoes"], 1, "{report}");
    assert_eq!(report["applied"], 0, "{report}");
    let now = ctx.app.slot(&user, slot["id"].as_str().unwrap()).await;
    assert_eq!(now["version"], 1, "the slot's version is unchanged");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.insert", "200"), 1);
    assert_eq!(stats.op_count("events.patch", "200"), 0, "{stats}");
}

#[tokio::test]
async fn an_invalidated_sync_token_leads_to_a_full_sync_that_catches_a_deletion_made_meanwhile() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let keep = pushed_slot(&ctx, &user, "keep").await;
    let gone = pushed_slot(&ctx, &user, "gone").await;
    // Connecting ran the full sync; this pull sees our two pushes come back.
    let first = ctx.app.pull(&user, "incremental").await;
    assert_eq!(first["mode"], "incremental", "{first}");
    assert_eq!(first["echoes"], 2, "{first}");

    ctx.google.invalidate_sync_tokens().await;
    delete_in_google(&ctx, &event_id_of(&gone)).await;

    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["full_sync_required"], true, "{report}");
    assert_eq!(report["mode"], "full");
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(
        ctx.app.list_slot_ids(&user, "").await,
        vec![keep["id"].as_str().unwrap().to_owned()]
    );
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["pull"]["sync_token_present"], true, "{status}");
    assert!(
        status["recent_errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "full_resync"),
        "{status}"
    );
    // The next pull is incremental again.
    assert_eq!(ctx.app.pull(&user, "incremental").await["mode"], "incremental");
}

#[tokio::test]
async fn a_full_sync_deletes_linked_slots_whose_events_google_no_longer_lists() {
    use sea_orm::{ActiveModelTrait, Set};
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let purged = pushed_slot(&ctx, &user, "purged").await;
    // Google forgets deleted events after a while: a full listing then has no tombstone.
    // Simulate it by linking the slot to an event Google never had.
    let mut row: slotsync::store::entities::slots::ActiveModel =
        ctx.app.slot_row(purged["id"].as_str().unwrap()).await.into();
    row.google_event_id = Set(Some("purgedlongago0000".into()));
    row.last_synced_at = Set(Some(chrono::Utc::now() - chrono::Duration::minutes(1)));
    row.update(&ctx.app.state.db).await.unwrap();

    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["deleted"], 1, "{report}");
    assert!(ctx.app.list_slot_ids(&user, "").await.is_empty());
}

#[tokio::test]
async fn a_burst_of_pull_requests_costs_at_most_two_listings() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.app.pull(&user, "incremental").await;
    let before = ctx.google.stats().await.op_count("events.list", "200");
    let id = UserId(uuid::Uuid::parse_str(&user.id).unwrap());
    for _ in 0..200 {
        ctx.app.state.pulls.request(id);
    }
    wait_until("the coalesced pull finished", Duration::from_secs(10), || async {
        !ctx.app.state.pulls.in_flight(id)
    })
    .await;
    let listings = ctx.google.stats().await.op_count("events.list", "200") - before;
    assert!((1..=2).contains(&listings), "{listings} listings for 200 requests");
}

#[tokio::test]
async fn with_every_notification_dropped_the_fallback_job_converges() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "before").await;
    ctx.app.pull(&user, "incremental").await;
    ctx.google.faults(json!({"notifications": {"drop_rate": 1.0}})).await;
    rename_in_google(&ctx, &event_id_of(&slot), "after").await;

    // A new connection's first fallback pull is due at a random moment within the
    // interval: make it due now.
    slotsync::store::pull_schedule::make_all_due(&ctx.app.state.db, chrono::Utc::now())
        .await
        .unwrap();
    let outcome = ctx.app.run_job("fallback_sync").await;
    assert_eq!(outcome["pulled"], 1, "{outcome}");
    assert_eq!(outcome["changes_applied"], 1, "{outcome}");
    assert_eq!(
        ctx.app.slot(&user, slot["id"].as_str().unwrap()).await["title"],
        "after"
    );
}

#[tokio::test]
async fn when_both_sides_changed_the_policy_applies_and_the_conflict_is_listed() {
    // A long retry delay: once the held-back push fails, no retry is in flight while the
    // pull runs; push-all sends it afterwards.
    let ctx = spawn_app_with_google_and(|s| {
        s.push_retry_base_ms = 600_000;
        s.push_retry_max_secs = 600;
    })
    .await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "original").await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.pull(&user, "incremental").await;
    rename_in_google(&ctx, &event_id_of(&slot), "theirs").await;
    // Hold the local change back so the pull sees both sides changed.
    ctx.google.faults(json!({"ops": {"events.patch": {"503": 1.0}}})).await;
    let resp = ctx
        .app
        .put_slot(
            &user,
            id,
            &slot_body("mine", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    wait_until("the held-back push failed once", Duration::from_secs(10), || async {
        let row = ctx.app.slot_row(id).await;
        row.push_attempts >= 1 && row.push_lease_until.is_none()
    })
    .await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["conflicts"], 1, "{report}");

    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    let c = &conflicts[0];
    assert_eq!(c["slot_id"], slot["id"]);
    assert_eq!(c["winner"], "app", "the local change is later: {c}");
    assert_eq!(c["detail"]["detected_by"], "pull");

    // The local change then reaches Google without meeting the conflict again.
    ctx.google.faults(Value::Null).await;
    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/push-all").await;
    assert_eq!(resp.status(), 200);
    ctx.app.wait_until_pushed(id).await;
    let events = ctx.google.events(EMAIL).await;
    assert_eq!(events[0]["summary"], "mine");
    assert_eq!(ctx.google.stats().await.op_count("events.patch", "412"), 0);
    assert_eq!(
        ctx.app
            .get_json(&user, "/sync/conflicts")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_third_party_rewriting_every_write_trips_the_slot_breaker() {
    let ctx = spawn_app_with_google_and(|s| s.slot_breaker_alternations = 4).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "v0").await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.pull(&user, "incremental").await;
    let mut tripped_at = None;
    for round in 1..=6 {
        // The app writes, the third party answers by rewriting the event.
        let resp = ctx
            .app
            .put_slot(
                &user,
                id,
                &slot_body(&format!("app {round}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
                None,
            )
            .await;
        assert_eq!(resp.status(), 200);
        if sync_state(&ctx.app.slot(&user, id).await) == SyncState::Paused {
            tripped_at = Some(round);
            break;
        }
        ctx.app.wait_until_pushed(id).await;
        rename_in_google(&ctx, &event_id_of(&slot), &format!("third party {round}")).await;
        ctx.app.pull(&user, "incremental").await;
        if sync_state(&ctx.app.slot(&user, id).await) == SyncState::Paused {
            tripped_at = Some(round);
            break;
        }
    }
    assert_eq!(tripped_at, Some(4), "the breaker trips at its threshold");
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["breaker_paused_slots"], json!([id]), "{status}");
    assert!(
        status["recent_errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "breaker_tripped"),
        "{status}"
    );
    let paused = ctx.app.slot(&user, id).await;
    assert!(
        paused["sync"]["last_error"].as_str().unwrap().contains("breaker"),
        "{paused}"
    );

    // Resetting resumes it: the slot's current content is pushed.
    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/sync/breaker/reset")
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["slots_resumed"], 1);
    ctx.app.wait_until_pushed(id).await;
}

#[tokio::test]
async fn stopping_sync_pauses_pushes_and_resuming_catches_up() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let resp = ctx.app.user_send(&user, reqwest::Method::DELETE, "/sync").await;
    assert_eq!(resp.status(), 200);
    let slot = ctx
        .app
        .create_slot(
            &user,
            &slot_body("while stopped", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let report = ctx.app.state.pusher.drain().await.unwrap();
    assert_eq!(report.pushed, 0, "nothing is pushed while stopped");
    assert_eq!(ctx.app.sync_status(&user).await["connection"], "stopped");
    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/trigger").await;
    crate::helpers::assert_error(resp, 409, "not_connected").await;

    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/resume").await;
    assert_eq!(resp.status(), 200);
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    assert_eq!(ctx.google.events(EMAIL).await.len(), 1);
}

#[tokio::test]
async fn jobs_run_on_demand_and_unknown_jobs_are_named() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.app
        .create_slot(&user, &slot_body("s", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    let outcome = ctx.app.run_job("retry_pushes").await;
    assert!(outcome.get("pushed").is_some(), "{outcome}");
    let outcome = ctx.app.run_job("refresh_tokens").await;
    assert_eq!(outcome["failed"], 0, "{outcome}");
    let resp = ctx.app.admin_post("/admin/jobs/nope/run", &json!({})).await;
    let body = crate::helpers::assert_error(resp, 404, "not_found").await;
    assert!(body["message"].as_str().unwrap().contains("fallback_sync"), "{body}");
    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/admin/jobs/retry_pushes/run")
        .await;
    assert_eq!(resp.status(), 401, "jobs are for the admin");
}
