//! The push engine end to end: slots reach the emulated Google Calendar through the
//! outbox, over real HTTP with google-calendar3, under faults, limits and conflicts.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use slotsync::domain::{EventId, SlotId};
use slotsync_testkit::Stats;

use crate::helpers::{
    event_id_of, slot_body, spawn_app_with_google, spawn_app_with_google_and, start_another_instance, wait_until,
    ConnectedApp,
};
use slotsync_testkit::{connection_status, sync_state, ConnectionStatus, SyncState};

const EMAIL: &str = "ada@example.com";

fn find<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("event {id} is not in the calendar: {events:?}"))
}

/// The sum of every event read or write the emulator answered (not listings, which are
/// the pull's), whatever the status.
fn event_calls(stats: &Stats) -> u64 {
    stats.calendar_calls() - stats.op_total("events.list")
}

#[tokio::test]
async fn created_updated_and_deleted_slots_reach_google_with_the_right_fields() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;

    // A timed slot in the first zone of the day, and an all-day one at a half-hour offset.
    let timed = ctx
        .app
        .create_slot(
            &user,
            &json!({"title": "Kiritimati standup", "description": "d", "location": "l",
                    "start": "2026-12-01T09:00:00+14:00", "end": "2026-12-01T09:30:00+14:00",
                    "timezone": "Pacific/Kiritimati"}),
        )
        .await;
    assert_eq!(sync_state(&timed), SyncState::Pending, "201 answers before the push");
    let all_day = ctx
        .app
        .create_slot(
            &user,
            &json!({"title": "St John's holiday", "all_day": true, "start_date": "2026-12-31",
                    "end_date": "2027-01-01", "timezone": "America/St_Johns"}),
        )
        .await;
    for slot in [&timed, &all_day] {
        ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    }
    let synced = ctx.app.slot(&user, timed["id"].as_str().unwrap()).await;
    assert_eq!(sync_state(&synced), SyncState::Synced);
    assert_eq!(synced["sync"]["google_event_id"], event_id_of(&timed));

    let events = ctx.google.events(EMAIL).await;
    assert_eq!(events.len(), 2);
    let e = find(&events, &event_id_of(&timed));
    assert_eq!(e["summary"], "Kiritimati standup");
    assert_eq!(e["description"], "d");
    assert_eq!(e["location"], "l");
    assert_eq!(e["start"]["timeZone"], "Pacific/Kiritimati");
    let start = chrono::DateTime::parse_from_rfc3339(e["start"]["dateTime"].as_str().unwrap()).unwrap();
    assert_eq!(start.to_utc().to_rfc3339(), "2026-11-30T19:00:00+00:00");
    let end = chrono::DateTime::parse_from_rfc3339(e["end"]["dateTime"].as_str().unwrap()).unwrap();
    assert_eq!(end.to_utc().to_rfc3339(), "2026-11-30T19:30:00+00:00");
    let private = &e["extendedProperties"]["private"];
    assert_eq!(private["slotsync_slot"], timed["id"]);
    assert!(private["slotsync_origin"].as_str().is_some_and(|o| !o.is_empty()));
    assert_eq!(
        private["slotsync_fp"],
        ctx.app
            .slot_row(timed["id"].as_str().unwrap())
            .await
            .synced_fingerprint
            .unwrap()
            .as_str()
    );
    let d = find(&events, &event_id_of(&all_day));
    assert_eq!(d["start"]["date"], "2026-12-31");
    assert_eq!(d["end"]["date"], "2027-01-01", "the exclusive end date is kept as is");
    assert!(d["start"].get("dateTime").is_none(), "{d}");

    // An update: a patch of the same event, clearing the fields the slot no longer has.
    let resp = ctx
        .app
        .put_slot(
            &user,
            timed["id"].as_str().unwrap(),
            &json!({"title": "Moved", "start": "2026-12-02T07:00:00-03:30", "end": "2026-12-02T08:00:00-03:30",
                    "timezone": "America/St_Johns"}),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    ctx.app.wait_until_pushed(timed["id"].as_str().unwrap()).await;
    let events = ctx.google.events(EMAIL).await;
    let e = find(&events, &event_id_of(&timed));
    assert_eq!(e["summary"], "Moved");
    assert!(e.get("description").is_none(), "a removed description is cleared: {e}");
    assert!(e.get("location").is_none(), "{e}");
    assert_eq!(e["start"]["timeZone"], "America/St_Johns");
    let start = chrono::DateTime::parse_from_rfc3339(e["start"]["dateTime"].as_str().unwrap()).unwrap();
    assert_eq!(start.to_utc().to_rfc3339(), "2026-12-02T10:30:00+00:00");

    // A deletion.
    assert_eq!(
        ctx.app
            .delete_slot(&user, all_day["id"].as_str().unwrap())
            .await
            .status(),
        204
    );
    ctx.app.wait_until_pushed(all_day["id"].as_str().unwrap()).await;
    let events = ctx.google.events(EMAIL).await;
    assert_eq!(find(&events, &event_id_of(&all_day))["status"], "cancelled");

    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.insert", "200"), 2);
    assert_eq!(stats.op_count("events.patch", "200"), 1);
    assert_eq!(stats.op_count("events.delete", "204"), 1);
    assert_eq!(event_calls(&stats), 4, "one call per change: {stats}");
}

/// Creates a slot whose insert Google applies but whose answer is lost (503), and waits
/// until that happened. The fault stays on: the caller clears it.
async fn slot_with_a_lost_insert_answer(ctx: &ConnectedApp, user: &crate::helpers::TestUser, title: &str) -> Value {
    ctx.google
        .faults(json!({"ops": {"events.insert": {"lost_response": 1.0}}}))
        .await;
    let slot = ctx
        .app
        .create_slot(user, &slot_body(title, "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    wait_until(
        "the insert was applied and its answer lost",
        Duration::from_secs(10),
        || async { ctx.google.stats().await["faults"]["events.insert"]["lost_response"].as_u64() >= Some(1) },
    )
    .await;
    slot
}

#[tokio::test]
async fn a_lost_insert_response_still_yields_exactly_one_event() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = slot_with_a_lost_insert_answer(&ctx, &user, "once").await;
    ctx.google.faults(Value::Null).await;
    let row = ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;

    let events = ctx.google.events(EMAIL).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["id"], event_id_of(&slot));
    assert_eq!(row.google_etag.as_deref(), events[0]["etag"].as_str());
    let stats = ctx.google.stats().await;
    // The retried insert met its own event (409) and adopted it without writing again.
    assert!(stats.op_count("events.insert", "409") >= 1, "{stats}");
    assert_eq!(stats.op_count("events.patch", "200"), 0, "{stats}");
}

#[tokio::test]
async fn with_30_percent_of_calls_failing_200_slots_all_end_clean_without_duplicates() {
    let ctx = spawn_app_with_google_and(|s| s.user_breaker_cooldown_secs = 1).await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.google
        .faults(json!({"ops": {"*": {"429": 0.15, "503": 0.15}}}))
        .await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let minute = format!("2026-12-01T{:02}:{:02}:00Z", 8 + i / 60, i % 60);
        let slot = ctx
            .app
            .create_slot(&user, &slot_body(&format!("slot {i}"), &minute, "2026-12-01T23:00:00Z"))
            .await;
        ids.push(slot["id"].as_str().unwrap().to_owned());
    }
    wait_until("every slot is clean", Duration::from_secs(90), || async {
        let status = ctx.app.sync_status(&user).await;
        status["outbox"]["synced"] == 200
    })
    .await;
    ctx.google.faults(Value::Null).await;

    let stats = ctx.google.stats().await;
    assert!(
        stats.op_count("events.insert", "429") + stats.op_count("events.insert", "503") > 20,
        "faults were injected: {stats}"
    );
    let events = ctx.google.events(EMAIL).await;
    assert_eq!(events.len(), 200, "no duplicate and none missing");
    let expected: HashSet<String> = ids
        .iter()
        .map(|id| {
            EventId::from_slot(SlotId(uuid::Uuid::parse_str(id).unwrap()))
                .as_str()
                .to_owned()
        })
        .collect();
    let got: HashSet<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, expected);
    for id in &ids {
        let row = ctx.app.slot_row(id).await;
        assert_eq!(row.push_state, slotsync::domain::PushState::Clean);
        assert_eq!(row.synced_version, Some(row.version));
    }
}

#[tokio::test]
async fn the_per_user_limit_holds_and_other_users_are_not_held_up() {
    // 60 calls per minute: a burst of 6, then one call every 60/54 s.
    let ctx = spawn_app_with_google_and(|s| s.google_user_calls_per_minute = 60).await;
    let slow = ctx.app.connected_user("slow@example.com").await;
    let other = ctx.app.connected_user("other@example.com").await;
    let started = Instant::now();
    for i in 0..20 {
        ctx.app
            .create_slot(
                &slow,
                &slot_body(&format!("s{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            )
            .await;
    }
    let mut others = Vec::new();
    for i in 0..3 {
        let slot = ctx
            .app
            .create_slot(
                &other,
                &slot_body(&format!("o{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            )
            .await;
        others.push(slot["id"].as_str().unwrap().to_owned());
    }
    // Another user's slots are not queued behind the throttled user's.
    for id in &others {
        ctx.app.wait_until_pushed(id).await;
    }

    let interval = 60.0 / 54.0;
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(5) {
        let events = ctx.google.events("slow@example.com").await;
        let t = started.elapsed().as_secs_f64();
        // Counted from before the first call, so this bound is generous, never tight.
        let allowed = 6 + (t / interval).floor() as usize + 1;
        assert!(
            events.len() <= allowed,
            "{} calls after {t:.2}s, limit {allowed}",
            events.len()
        );
        last = events.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last >= 8, "the limit lets calls through as time passes ({last})");
    assert!(last < 20, "the limit held the 20 pushes back ({last})");
}

#[tokio::test]
async fn two_instances_on_one_database_never_insert_the_same_slot_twice() {
    let ctx = spawn_app_with_google().await;
    let second = start_another_instance(&ctx.app, |_| {}).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        // Alternate the instance that accepts the write: both workers are woken.
        let app = if i % 2 == 0 { &ctx.app } else { &second };
        let slot = app
            .create_slot(
                &user,
                &slot_body(&format!("s{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            )
            .await;
        ids.push(slot["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        ctx.app.wait_until_pushed(id).await;
    }
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.insert", "200"), 100, "{stats}");
    assert_eq!(
        stats.op_count("events.insert", "409"),
        0,
        "no slot was inserted twice: {stats}"
    );
    assert_eq!(ctx.google.events(EMAIL).await.len(), 100);
}

#[tokio::test]
async fn a_revoked_grant_sets_needs_reauth_and_stops_calls_for_that_user() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let first = ctx
        .app
        .create_slot(
            &user,
            &slot_body("before", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    ctx.app.wait_until_pushed(first["id"].as_str().unwrap()).await;

    ctx.google.revoke_tokens(EMAIL).await;
    let second = ctx
        .app
        .create_slot(
            &user,
            &slot_body("after", "2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z"),
        )
        .await;
    let second_id = second["id"].as_str().unwrap();
    wait_until("the slot is paused", Duration::from_secs(10), || async {
        sync_state(&ctx.app.slot(&user, second_id).await) == SyncState::Paused
    })
    .await;
    let connection = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(
        connection_status(&connection),
        ConnectionStatus::NeedsReauth,
        "{connection}"
    );
    let slot = ctx.app.slot(&user, second_id).await;
    assert!(
        slot["sync"]["last_error"].as_str().unwrap().contains("reconnect"),
        "{slot}"
    );

    // Nothing more reaches Google for this user: new changes wait, and draining the
    // outbox finds nothing to push.
    let calls_before = ctx.google.stats().await;
    ctx.app
        .create_slot(
            &user,
            &slot_body("later", "2026-12-01T13:00:00Z", "2026-12-01T14:00:00Z"),
        )
        .await;
    let report = ctx.app.state.pusher.drain().await.unwrap();
    assert_eq!(report.pushed + report.retrying + report.failed, 0, "{report:?}");
    let calls_after = ctx.google.stats().await;
    assert_eq!(event_calls(&calls_before), event_calls(&calls_after));
    assert_eq!(
        calls_before.op_count("oauth.token.refresh_token", "400"),
        calls_after.op_count("oauth.token.refresh_token", "400"),
        "no further refresh attempts"
    );
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["connection"], "needs_reauth");
    assert_eq!(status["outbox"]["paused"], 1, "{status}");
    assert_eq!(status["outbox"]["pending"], 1, "{status}");
}

/// Edits the slot's event "in Google" as the calendar's owner.
async fn edit_in_google(ctx: &ConnectedApp, event_id: &str, title: &str) {
    let hub = ctx.google.user_hub(EMAIL).await;
    let patch = google_calendar3::api::Event {
        summary: Some(title.into()),
        ..Default::default()
    };
    hub.events().patch(patch, "primary", event_id).doit().await.unwrap();
}

/// A pushed slot edited first in Google, then here: the push meets a 412. Returns the
/// slot once its local edit has been settled.
async fn edited_on_both_sides(ctx: &ConnectedApp) -> (crate::helpers::TestUser, Value) {
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx
        .app
        .create_slot(
            &user,
            &slot_body("original", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    edit_in_google(ctx, &event_id_of(&slot), "edited in Google").await;
    let body = slot_body("edited here", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    assert_eq!(ctx.app.put_slot(&user, id, &body, None).await.status(), 200);
    ctx.app.wait_until_pushed(id).await;
    (user, slot)
}

#[tokio::test]
async fn a_412_resolves_by_latest_wins_and_the_conflict_is_logged() {
    let ctx = spawn_app_with_google().await;
    // The local edit comes later, so it wins.
    let (user, slot) = edited_on_both_sides(&ctx).await;
    let id = slot["id"].as_str().unwrap();
    let events = ctx.google.events(EMAIL).await;
    assert_eq!(find(&events, &event_id_of(&slot))["summary"], "edited here");
    assert_eq!(ctx.app.slot(&user, id).await["title"], "edited here");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.patch", "412"), 1, "{stats}");

    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["slot_id"], slot["id"]);
    assert_eq!(conflicts[0]["winner"], "app", "{conflicts:?}");
    assert_eq!(conflicts[0]["policy"], "latest_wins");
    assert_eq!(conflicts[0]["kind"], "both_changed");
}

#[tokio::test]
async fn under_google_wins_a_412_gives_the_slot_googles_version() {
    let ctx = spawn_app_with_google_and(|s| s.conflict_policy = slotsync::domain::ConflictPolicy::GoogleWins).await;
    let (user, slot) = edited_on_both_sides(&ctx).await;
    let id = slot["id"].as_str().unwrap();
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["title"], "edited in Google");
    assert_eq!(now["version"], 3, "Google's version is a new version of the slot");
    let events = ctx.google.events(EMAIL).await;
    assert_eq!(find(&events, &event_id_of(&slot))["summary"], "edited in Google");
    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    assert_eq!(conflicts[0]["winner"], "google", "{conflicts}");
}

#[tokio::test]
async fn a_fatal_error_fails_the_slot_with_its_message_and_push_all_retries_it() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.google.faults(json!({"ops": {"events.insert": {"400": 1.0}}})).await;
    let slot = ctx
        .app
        .create_slot(&user, &slot_body("bad", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    let id = slot["id"].as_str().unwrap();
    wait_until("the slot failed", Duration::from_secs(10), || async {
        sync_state(&ctx.app.slot(&user, id).await) == SyncState::Failed
    })
    .await;
    let failed = ctx.app.slot(&user, id).await;
    assert!(
        failed["sync"]["last_error"].as_str().unwrap().contains("400"),
        "{failed}"
    );
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["outbox"]["failed"], 1, "{status}");
    assert!(
        status["last_push_error"].is_null(),
        "a fatal error is not an outage: {status}"
    );

    ctx.google.faults(Value::Null).await;
    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/push-all").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["queued"], 1);
    ctx.app.wait_until_pushed(id).await;
    assert_eq!(ctx.google.events(EMAIL).await.len(), 1);
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["outbox"]["synced"], 1, "{status}");
    assert_eq!(status["outbox"]["failed"], 0, "{status}");
}

#[tokio::test]
async fn push_all_without_a_google_connection_is_a_409() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(EMAIL).await;
    let resp = ctx.app.user_send(&user, reqwest::Method::POST, "/sync/push-all").await;
    crate::helpers::assert_error(resp, 409, "not_connected").await;
    let status = ctx.app.sync_status(&user).await;
    assert!(status["connection"].is_null(), "{status}");
}

/// Creates `n` slots titled `s0`, `s1`, … and returns their ids.
async fn create_slots(ctx: &ConnectedApp, user: &crate::helpers::TestUser, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = slot_body(&format!("s{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
        let slot = ctx.app.create_slot(user, &body).await;
        ids.push(slot["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn slots_left_dirty_by_a_stopped_instance_are_pushed_when_the_next_one_starts() {
    let mut ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.google.faults(json!({"ops": {"events.insert": {"503": 1.0}}})).await;
    let ids = create_slots(&ctx, &user, 3).await;
    wait_until("every slot has failed once", Duration::from_secs(10), || async {
        let mut all = true;
        for id in &ids {
            all &= ctx.app.slot_row(id).await.push_attempts >= 1;
        }
        all
    })
    .await;
    ctx.app.stop().await;
    ctx.google.faults(Value::Null).await;
    assert_eq!(ctx.google.events(EMAIL).await.len(), 0);

    let next = start_another_instance(&ctx.app, |_| {}).await;
    for id in &ids {
        next.wait_until_pushed(id).await;
    }
    assert_eq!(ctx.google.events(EMAIL).await.len(), 3);
}

#[tokio::test]
async fn repeated_failures_open_the_users_breaker_which_stops_calls_until_its_cool_down() {
    let ctx = spawn_app_with_google_and(|s| {
        s.user_breaker_failures = 3;
        s.user_breaker_cooldown_secs = 2;
    })
    .await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.google.faults(json!({"ops": {"events.insert": {"503": 1.0}}})).await;
    let ids = create_slots(&ctx, &user, 5).await;
    wait_until("the breaker opens", Duration::from_secs(10), || async {
        ctx.app.sync_status(&user).await["breaker"]["open"] == true
    })
    .await;
    let status = ctx.app.sync_status(&user).await;
    assert!(
        status["last_push_error"]["message"].as_str().unwrap().contains("503"),
        "{status}"
    );
    // Pushes claimed before it opened may still be finishing: let them.
    wait_until("no push in flight", Duration::from_secs(10), || async {
        let mut idle = true;
        for id in &ids {
            let lease = ctx.app.slot_row(id).await.push_lease_until;
            idle &= lease.is_none_or(|until| until < chrono::Utc::now());
        }
        idle
    })
    .await;
    // While it is open, draining the outbox makes no call for this user.
    let before = ctx.google.stats().await.op_count("events.insert", "503");
    let report = ctx.app.state.pusher.drain().await.unwrap();
    assert_eq!(
        report,
        Default::default(),
        "nothing is claimed while the breaker is open"
    );
    assert_eq!(ctx.google.stats().await.op_count("events.insert", "503"), before);

    // Google recovers; after the cool-down every slot goes through.
    ctx.google.faults(Value::Null).await;
    for id in &ids {
        ctx.app.wait_until_pushed(id).await;
    }
    assert_eq!(ctx.google.events(EMAIL).await.len(), 5);
    let trips = slotsync::store::audit::list(
        &ctx.app.state.db,
        slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap()),
        &[slotsync::domain::AuditKind::BreakerTripped],
        10,
    )
    .await
    .unwrap();
    assert!(!trips.is_empty(), "the trip is logged");
}

#[tokio::test]
async fn an_event_renamed_in_google_after_a_lost_insert_answer_goes_through_the_policy() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = slot_with_a_lost_insert_answer(&ctx, &user, "ours").await;
    // Someone renames the event before slotsync learns it exists.
    edit_in_google(&ctx, &event_id_of(&slot), "renamed in Google").await;
    ctx.google.faults(Value::Null).await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;

    // The rename is later than the slot's creation: latest_wins keeps it, and says so.
    assert_eq!(ctx.app.slot(&user, id).await["title"], "renamed in Google");
    let events = ctx.google.events(EMAIL).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["summary"], "renamed in Google");
    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    assert_eq!(conflicts[0]["winner"], "google", "{conflicts}");
}

/// Creates a slot, waits until Google holds it, and deletes its event in Google (the app
/// does not pull, so it learns of the deletion only when it pushes next).
async fn slot_deleted_in_google(ctx: &ConnectedApp, user: &crate::helpers::TestUser) -> Value {
    let slot = ctx
        .app
        .create_slot(user, &slot_body("v1", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    let hub = ctx.google.user_hub(EMAIL).await;
    hub.events()
        .delete("primary", &event_id_of(&slot))
        .doit()
        .await
        .unwrap();
    slot
}

fn live(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["status"] != "cancelled").collect()
}

#[tokio::test]
async fn an_event_deleted_in_google_under_a_local_edit_is_created_again() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = slot_deleted_in_google(&ctx, &user).await;
    let id = slot["id"].as_str().unwrap();
    let body = slot_body("v2", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    assert_eq!(ctx.app.put_slot(&user, id, &body, None).await.status(), 200);
    let row = ctx.app.wait_until_pushed(id).await;

    let events = ctx.google.events(EMAIL).await;
    let live = live(&events);
    assert_eq!(live.len(), 1, "{events:?}");
    assert_eq!(live[0]["summary"], "v2");
    assert_ne!(live[0]["id"], event_id_of(&slot), "a deleted id is never reused");
    assert_eq!(
        row.google_event_id.as_deref(),
        live[0]["id"].as_str(),
        "the link follows"
    );
    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    assert_eq!(conflicts[0]["kind"], "deleted_in_google", "{conflicts}");
    assert_eq!(conflicts[0]["winner"], "app", "{conflicts}");
}

#[tokio::test]
async fn a_lost_answer_to_a_re_creation_then_another_edit_still_leaves_one_event() {
    // The retry of the lost re-creation comes late, so the next edit is pushed first.
    let ctx = spawn_app_with_google_and(|s| s.push_retry_base_ms = 20_000).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = slot_deleted_in_google(&ctx, &user).await;
    let id = slot["id"].as_str().unwrap();
    ctx.google
        .faults(json!({"ops": {"events.insert": {"lost_response": 1.0}}}))
        .await;
    let v2 = slot_body("v2", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    assert_eq!(ctx.app.put_slot(&user, id, &v2, None).await.status(), 200);
    wait_until(
        "the re-creation was applied and its answer lost",
        Duration::from_secs(10),
        || async { ctx.google.stats().await["faults"]["events.insert"]["lost_response"].as_u64() >= Some(1) },
    )
    .await;
    ctx.google.faults(Value::Null).await;
    let v3 = slot_body("v3", "2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z");
    assert_eq!(ctx.app.put_slot(&user, id, &v3, None).await.status(), 200);
    let row = ctx.app.wait_until_pushed(id).await;

    let events = ctx.google.events(EMAIL).await;
    let live = live(&events);
    assert_eq!(live.len(), 1, "one slot, one live event: {events:?}");
    assert_eq!(live[0]["summary"], "v3");
    assert_eq!(row.google_event_id.as_deref(), live[0]["id"].as_str());
}
