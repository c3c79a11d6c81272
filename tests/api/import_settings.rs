//! Per-user sync settings and selective import (issue 17): Google's special event types
//! and other people's meetings are skipped or imported read-only as the caller's settings
//! say; read-only slots refuse changes without a Google call; a meeting the caller
//! organises is deleted only with an explicit `notify_attendees`; a filter change unlinks
//! earlier imports and leaves their events in Google.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app_with_google, wait_until, ConnectedApp, TestUser};

const EMAIL: &str = "ada@example.com";

fn timed(summary: &str, day: u32, hour: u32) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": format!("2026-12-{day:02}T{hour:02}:00:00Z")},
        "end": {"dateTime": format!("2026-12-{day:02}T{:02}:00:00Z", hour + 1)},
    })
}

fn typed(summary: &str, event_type: &str, day: u32, properties: Option<(&str, Value)>) -> Value {
    let mut event = timed(summary, day, 9);
    event["eventType"] = json!(event_type);
    if let Some((name, value)) = properties {
        event[name] = value;
    }
    event
}

/// A calendar holding every event type, a meeting the user was invited to and one they
/// organise (as Google, Contacts and Gmail would have made them).
async fn seed_calendar(ctx: &ConnectedApp) {
    let g = &ctx.google;
    g.seed_event(EMAIL, &timed("Dentist", 2, 8)).await;
    g.seed_event(
        EMAIL,
        &json!({"summary": "Ann's birthday", "eventType": "birthday",
            "start": {"date": "2026-12-04"}, "end": {"date": "2026-12-05"},
            "recurrence": ["RRULE:FREQ=YEARLY"], "visibility": "private", "transparency": "transparent",
            "birthdayProperties": {"type": "birthday", "contact": "people/c12345"}}),
    )
    .await;
    g.seed_event(EMAIL, &typed("Flight to Lisbon", "fromGmail", 5, None))
        .await;
    g.seed_event(
        EMAIL,
        &typed(
            "Away",
            "outOfOffice",
            6,
            Some((
                "outOfOfficeProperties",
                json!({"autoDeclineMode": "declineNone", "declineMessage": "Away"}),
            )),
        ),
    )
    .await;
    let mut focus = typed(
        "Focus",
        "focusTime",
        7,
        Some(("focusTimeProperties", json!({"chatStatus": "doNotDisturb"}))),
    );
    focus["start"] = json!({"dateTime": "2026-12-07T09:00:00Z", "timeZone": "UTC"});
    focus["end"] = json!({"dateTime": "2026-12-07T10:00:00Z", "timeZone": "UTC"});
    focus["recurrence"] = json!(["RRULE:FREQ=WEEKLY;COUNT=4"]);
    g.seed_event(EMAIL, &focus).await;
    g.seed_event(
        EMAIL,
        &typed(
            "Home",
            "workingLocation",
            8,
            Some((
                "workingLocationProperties",
                json!({"type": "homeOffice", "homeOffice": {}}),
            )),
        ),
    )
    .await;
    g.create_meeting("org@example.com", &[EMAIL], &timed("Their sync", 9, 14))
        .await;
    g.create_meeting(
        EMAIL,
        &["bob@example.com", "carol@example.com"],
        &timed("My review", 10, 15),
    )
    .await;
}

/// The caller's live slots by title.
async fn slots_by_title(ctx: &ConnectedApp, user: &TestUser) -> HashMap<String, Value> {
    ctx.app
        .api()
        .slots(user, "")
        .await
        .into_iter()
        .map(|s| (s["title"].as_str().unwrap().to_owned(), s))
        .collect()
}

fn titles(slots: &HashMap<String, Value>) -> Vec<&str> {
    let mut t: Vec<&str> = slots.keys().map(String::as_str).collect();
    t.sort_unstable();
    t
}

async fn patch_settings(ctx: &ConnectedApp, user: &TestUser, body: &Value) -> reqwest::Response {
    ctx.app
        .client
        .patch(ctx.app.url("/sync/settings"))
        .bearer_auth(&user.token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn send(
    ctx: &ConnectedApp,
    user: &TestUser,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = ctx
        .app
        .client
        .request(method, ctx.app.url(path))
        .bearer_auth(&user.token);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

/// Google writes of events the emulator counted.
fn event_writes(stats: &slotsync_testkit::google::Stats) -> u64 {
    ["events.insert", "events.patch", "events.update", "events.delete"]
        .iter()
        .map(|op| stats.op_total(op))
        .sum()
}

#[tokio::test]
async fn under_the_default_settings_special_types_and_invitations_are_skipped_or_read_only() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    seed_calendar(&ctx).await;
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["filtered"], 2, "birthday and working location: {report}");

    let slots = slots_by_title(&ctx, &user).await;
    assert_eq!(
        titles(&slots),
        [
            "Away",
            "Dentist",
            "Flight to Lisbon",
            "Focus",
            "My review",
            "Their sync"
        ]
    );
    let reason = |t: &str| slots[t]["read_only_reason"].clone();
    assert_eq!(reason("Away"), "event_type:outOfOffice");
    assert_eq!(reason("Focus"), "event_type:focusTime");
    assert_eq!(reason("Flight to Lisbon"), "event_type:fromGmail");
    assert_eq!(reason("Their sync"), "not_organizer");
    assert_eq!(reason("Dentist"), Value::Null);
    assert_eq!(reason("My review"), Value::Null);
    for t in ["Away", "Focus", "Flight to Lisbon", "Their sync"] {
        assert_eq!(slots[t]["read_only"], true, "{t}");
    }
    for t in ["Dentist", "My review"] {
        assert_eq!(slots[t]["read_only"], false, "{t}");
    }
    assert_eq!(slots["Away"]["event_type"], "outOfOffice");
    assert_eq!(slots["Dentist"]["event_type"], Value::Null);
    assert_eq!(slots["My review"]["attendee_count"], 3, "the organizer and two guests");
    assert_eq!(slots["Their sync"]["attendee_count"], Value::Null);
    assert_eq!(slots["Dentist"]["attendee_count"], Value::Null);
}

#[tokio::test]
async fn custom_settings_import_skip_and_open_up_types_as_chosen() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(EMAIL).await;
    let resp = patch_settings(
        &ctx,
        &user,
        &json!({"event_types": {"birthday": "import", "focusTime": "skip", "outOfOffice": "import"},
                "skip_private": false, "skip_declined": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    ctx.app.connect_and_settle(&user).await;
    seed_calendar(&ctx).await;
    ctx.app.pull(&user, "full").await;

    let slots = slots_by_title(&ctx, &user).await;
    assert_eq!(
        titles(&slots),
        [
            "Ann's birthday",
            "Away",
            "Dentist",
            "Flight to Lisbon",
            "My review",
            "Their sync"
        ]
    );
    assert_eq!(slots["Ann's birthday"]["read_only"], false);
    assert_eq!(slots["Ann's birthday"]["event_type"], "birthday");
    assert_eq!(
        slots["Away"]["read_only"], false,
        "outOfOffice=import: an ordinary slot"
    );
    assert_eq!(slots["Flight to Lisbon"]["read_only_reason"], "event_type:fromGmail");
    assert_eq!(slots["Their sync"]["read_only_reason"], "not_organizer");

    // Private events skipped too: the birthday (private) leaves at the next full sync.
    let resp = patch_settings(&ctx, &user, &json!({"skip_private": true})).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["full_sync_requested"], true, "{body}");
    ctx.app.pull(&user, "full").await;
    assert!(!slots_by_title(&ctx, &user).await.contains_key("Ann's birthday"));
}

#[tokio::test]
async fn a_read_only_slot_refuses_changes_with_409_and_nothing_reaches_google() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    seed_calendar(&ctx).await;
    ctx.app.pull(&user, "full").await;
    let slots = slots_by_title(&ctx, &user).await;
    let away = slots["Away"]["id"].as_str().unwrap().to_owned();
    let theirs = slots["Their sync"]["id"].as_str().unwrap().to_owned();
    let focus = slots["Focus"]["id"].as_str().unwrap().to_owned();
    let before = ctx.app.slot_row(&away).await;
    ctx.google.clear_stats().await;

    let body = json!({"title": "Back", "start": "2026-12-06T09:00:00Z", "end": "2026-12-06T10:00:00Z",
                      "timezone": "UTC"});
    let refused = assert_error(ctx.app.put_slot(&user, &away, &body, None).await, 409, "read_only").await;
    assert_eq!(refused["reason"], "event_type:outOfOffice", "{refused}");
    let refused = assert_error(ctx.app.delete_slot(&user, &away).await, 409, "read_only").await;
    assert_eq!(refused["reason"], "event_type:outOfOffice");
    let refused = assert_error(ctx.app.delete_slot(&user, &theirs).await, 409, "read_only").await;
    assert_eq!(refused["reason"], "not_organizer");
    let refused = assert_error(
        send(
            &ctx,
            &user,
            reqwest::Method::DELETE,
            &format!("/slots/{theirs}?notify_attendees=true"),
            None,
        )
        .await,
        409,
        "read_only",
    )
    .await;
    assert_eq!(refused["reason"], "not_organizer");
    // The occurrence routes of a read-only series.
    let occurrence = format!("/slots/{focus}/occurrences/2026-12-14T09:00:00Z");
    let moved = json!({"title": "Focus", "start": "2026-12-14T11:00:00Z", "end": "2026-12-14T12:00:00Z"});
    let refused = assert_error(
        send(&ctx, &user, reqwest::Method::PUT, &occurrence, Some(&moved)).await,
        409,
        "read_only",
    )
    .await;
    assert_eq!(refused["reason"], "event_type:focusTime");
    assert_error(
        send(&ctx, &user, reqwest::Method::DELETE, &occurrence, None).await,
        409,
        "read_only",
    )
    .await;

    // Nothing written here, nothing queued: the outbox has nothing to push.
    let after = ctx.app.slot_row(&away).await;
    assert_eq!(after.version, before.version);
    assert_eq!(after.push_state, slotsync::domain::PushState::Clean);
    assert!(after.deleted_at.is_none());
    ctx.app.run_job("retry_pushes").await;
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["outbox"]["pending"], 0, "{status}");
    let stats = ctx.google.stats().await;
    assert_eq!(event_writes(&stats), 0, "no Google write attempted: {stats:?}");

    // Google's own changes still come in.
    let hub = ctx.google.user_hub(EMAIL).await;
    let event_id = slots["Away"]["sync"]["google_event_id"].as_str().unwrap().to_owned();
    let patch = google_calendar3::api::Event {
        summary: Some("Away (extended)".into()),
        ..Default::default()
    };
    hub.events().patch(patch, "primary", &event_id).doit().await.unwrap();
    ctx.app.pull(&user, "incremental").await;
    let now = ctx.app.slot(&user, &away).await;
    assert_eq!(now["title"], "Away (extended)");
    assert_eq!(now["read_only_reason"], "event_type:outOfOffice");
}

#[tokio::test]
async fn deleting_a_meeting_the_user_organises_needs_notify_attendees_and_sends_it_to_google() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    seed_calendar(&ctx).await;
    ctx.app.pull(&user, "full").await;
    let slots = slots_by_title(&ctx, &user).await;
    let review = slots["My review"]["id"].as_str().unwrap().to_owned();
    let event_id = slots["My review"]["sync"]["google_event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = assert_error(ctx.app.delete_slot(&user, &review).await, 400, "invalid_field").await;
    assert_eq!(refused["field"], "notify_attendees", "{refused}");
    assert_eq!(ctx.app.get(&user, &format!("/slots/{review}")).await.status(), 200);

    let resp = send(
        &ctx,
        &user,
        reqwest::Method::DELETE,
        &format!("/slots/{review}?notify_attendees=true"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    wait_until(
        "the meeting's deletion reaches Google",
        Duration::from_secs(30),
        || async {
            ctx.google
                .sent_updates()
                .await
                .iter()
                .any(|u| u["event_id"] == event_id.as_str() && u["op"].as_str().is_some_and(|op| op.contains("delete")))
        },
    )
    .await;
    let updates = ctx.google.sent_updates().await;
    let deletion = updates
        .iter()
        .find(|u| u["event_id"] == event_id.as_str() && u["op"].as_str().is_some_and(|op| op.contains("delete")))
        .unwrap();
    assert_eq!(deletion["send_updates"], "all", "{deletion}");
    assert_eq!(deletion["given"], true, "{deletion}");
    let organizer_copy = ctx
        .google
        .events(EMAIL)
        .await
        .into_iter()
        .find(|e| e["id"] == event_id.as_str());
    assert!(
        organizer_copy.is_none_or(|e| e["status"] == "cancelled"),
        "deleted in Google"
    );

    // An ordinary imported slot is deleted with no parameter, as before.
    let dentist = slots["Dentist"]["id"].as_str().unwrap();
    assert_eq!(ctx.app.delete_slot(&user, dentist).await.status(), 204);
}

#[tokio::test]
async fn settings_show_the_defaults_and_a_bad_patch_changes_nothing() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(EMAIL).await;
    let initial = ctx.app.get_json(&user, "/sync/settings").await;
    assert_eq!(initial["import"], true);
    assert_eq!(initial["skip_free"], false);
    assert_eq!(initial["skip_private"], false);
    assert_eq!(initial["skip_declined"], true);
    assert_eq!(initial["conflict_policy"], "latest_wins");
    assert_eq!(initial["full_sync_window_days"], 30);
    assert_eq!(
        initial["event_types"],
        json!({"birthday": "skip", "focusTime": "read_only", "fromGmail": "read_only",
               "outOfOffice": "read_only", "workingLocation": "skip"})
    );
    assert_eq!(initial["from_defaults"].as_array().unwrap().len(), 11, "{initial}");

    for (body, field) in [
        (json!({"import": null}), "import"),
        (json!({"skip_free": "yes"}), "skip_free"),
        (
            json!({"conflict_policy": "mine_wins", "import": false}),
            "conflict_policy",
        ),
        (json!({"full_sync_window_days": 0}), "full_sync_window_days"),
        (json!({"event_types": {"birthday": "maybe"}}), "event_types.birthday"),
        (json!({"event_types": {"party": "skip"}}), "event_types.party"),
        (json!({"event_types": null}), "event_types"),
        (json!({"colour": "blue"}), "colour"),
    ] {
        let refused = assert_error(patch_settings(&ctx, &user, &body).await, 400, "invalid_field").await;
        assert_eq!(refused["field"], field, "{body}: {refused}");
    }
    assert_eq!(
        ctx.app.get_json(&user, "/sync/settings").await,
        initial,
        "nothing changed"
    );

    let resp = patch_settings(&ctx, &user, &json!({"conflict_policy": "app_wins"})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["conflict_policy"], "app_wins");
    assert_eq!(body["full_sync_requested"], false);
    assert!(!body["from_defaults"]
        .as_array()
        .unwrap()
        .contains(&json!("conflict_policy")));

    let body: Value = patch_settings(
        &ctx,
        &user,
        &json!({"skip_free": true, "event_types": {"birthday": "import"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["full_sync_requested"], true);
    assert!(body["note"].as_str().unwrap().contains("full sync"), "{body}");
    assert_eq!(body["event_types"]["birthday"], "import");
    assert_eq!(body["conflict_policy"], "app_wins", "earlier choices kept");
    let body: Value = patch_settings(&ctx, &user, &json!({"event_types": {"birthday": "default"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["event_types"]["birthday"], "skip",
        "back to the deployment's default"
    );
    assert!(body["from_defaults"]
        .as_array()
        .unwrap()
        .contains(&json!("event_types.birthday")));
}

#[tokio::test]
async fn a_filter_change_unlinks_an_earlier_import_and_google_keeps_the_event() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let mut lunch = timed("Lunch, maybe", 3, 12);
    lunch["transparency"] = json!("transparent");
    let lunch = ctx.google.seed_event(EMAIL, &lunch).await;
    ctx.google.seed_event(EMAIL, &timed("Standup", 3, 9)).await;
    ctx.app.pull(&user, "full").await;
    let slots = slots_by_title(&ctx, &user).await;
    assert_eq!(titles(&slots), ["Lunch, maybe", "Standup"]);
    let id = slots["Lunch, maybe"]["id"].as_str().unwrap().to_owned();
    ctx.google.clear_stats().await;

    let resp = patch_settings(&ctx, &user, &json!({"skip_free": true})).await;
    assert_eq!(resp.status(), 200);
    wait_until("the free event's slot leaves", Duration::from_secs(30), || async {
        ctx.app.get(&user, &format!("/slots/{id}")).await.status() == 404
    })
    .await;
    assert_eq!(titles(&slots_by_title(&ctx, &user).await), ["Standup"]);
    let row = ctx.app.slot_row(&id).await;
    assert!(row.deleted_at.is_some());
    assert_eq!(row.google_event_id, None, "unlinked");
    assert_eq!(row.push_state, slotsync::domain::PushState::Clean);

    let events = ctx.google.events(EMAIL).await;
    let held = events.iter().find(|e| e["id"] == lunch["id"]).expect("Google keeps it");
    assert_ne!(held["status"], "cancelled");
    let stats = ctx.google.stats().await;
    assert_eq!(event_writes(&stats), 0, "nothing written to Google: {stats:?}");

    let feed = ctx.app.get_json(&user, "/changes?limit=500").await;
    let entry = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slot_id"] == id.as_str() && c["type"] == "slot.deleted")
        .unwrap_or_else(|| panic!("the unlink is in the feed: {feed}"));
    assert_eq!(entry["detail"]["reason"], "import_filter", "{entry}");
}

#[tokio::test]
async fn the_users_own_conflict_policy_decides_a_push_conflict() {
    // The deployment's default is latest_wins (the local edit, later, would win).
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let resp = patch_settings(&ctx, &user, &json!({"conflict_policy": "google_wins"})).await;
    assert_eq!(resp.status(), 200);
    let body = crate::helpers::slot_body("original", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    let slot = ctx.app.create_slot(&user, &body).await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    let hub = ctx.google.user_hub(EMAIL).await;
    let patch = google_calendar3::api::Event {
        summary: Some("edited in Google".into()),
        ..Default::default()
    };
    hub.events()
        .patch(patch, "primary", &crate::helpers::event_id_of(&slot))
        .doit()
        .await
        .unwrap();
    let mine = crate::helpers::slot_body("edited here", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    assert_eq!(ctx.app.put_slot(&user, id, &mine, None).await.status(), 200);
    ctx.app.wait_until_pushed(id).await;

    assert_eq!(ctx.app.slot(&user, id).await["title"], "edited in Google");
    let conflicts = ctx.app.get_json(&user, "/sync/conflicts").await;
    assert_eq!(conflicts[0]["policy"], "google_wins", "{conflicts}");
    assert_eq!(conflicts[0]["winner"], "google", "{conflicts}");
}
