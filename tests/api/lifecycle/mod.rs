//! The connection lifecycle, end to end: each test drives the service and the emulator
//! over HTTP through a state transition (reconnect, switch of account or calendar,
//! disconnect, revocation, partial grant, deleted calendar, mass deletion) and then checks
//! the slots *and* the Google side: every live slot exactly once in the connected calendar,
//! and the user's own events untouched.

mod degraded;
mod guard;
mod property;
mod reconnect;

use std::time::Duration;

use serde_json::{json, Value};

use slotsync_testkit::browser;

use crate::helpers::{slot_body, wait_until, ConnectedApp, TestUser};
use slotsync_testkit::{sync_state, SyncState};

/// Sets what the emulated consent screen does next (`{"decision": "approve"}` restores
/// "grant everything asked, as the hinted account").
pub async fn set_consent(ctx: &ConnectedApp, body: Value) {
    ctx.google.consent(body).await;
}

/// How the user answers the consent screen.
#[derive(Debug, Clone, Default)]
pub struct Consent<'a> {
    /// The Google account picked (default: the hinted one, the user's address).
    pub account: Option<&'a str>,
    /// The scopes left ticked (default: all asked).
    pub scopes: Option<&'a [&'a str]>,
}

/// Connects `user` through the browser flow with `?calendar=<calendar>` and the consent
/// answered as `consent` says; returns the callback's status and JSON body.
pub async fn connect_as(ctx: &ConnectedApp, user: &TestUser, calendar: &str, consent: Consent<'_>) -> (u16, Value) {
    let mut body = json!({ "decision": "approve" });
    if let Some(account) = consent.account {
        body["account"] = json!(account);
    }
    if let Some(scopes) = consent.scopes {
        body["scopes"] = json!(scopes);
    }
    set_consent(ctx, body).await;
    let url = ctx
        .app
        .api()
        .authorize_url(user, &format!("?calendar={calendar}"))
        .await;
    let resp = browser::follow(&browser::consent(&url).await).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    set_consent(ctx, json!({ "decision": "approve" })).await;
    (status, body)
}

/// Like [`connect_as`], asserting that the connection succeeded; returns its outcome body.
pub async fn reconnect(ctx: &ConnectedApp, user: &TestUser, calendar: &str, consent: Consent<'_>) -> Value {
    let (status, body) = connect_as(ctx, user, calendar, consent).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The user's connection (`GET /auth/google/connection`).
pub async fn connection(ctx: &ConnectedApp, user: &TestUser) -> Value {
    ctx.app.get_json(user, "/auth/google/connection").await
}

/// The emulator's id of the connected calendar (`primary` is the account's address).
pub async fn connected_calendar(ctx: &ConnectedApp, user: &TestUser) -> String {
    let c = connection(ctx, user).await;
    match c["calendar_id"].as_str().unwrap() {
        "primary" => c["google_email"].as_str().unwrap().to_owned(),
        id => id.to_owned(),
    }
}

/// Every event of a calendar, as Google holds it (cancelled ones too).
pub async fn all_events(ctx: &ConnectedApp, calendar: &str) -> Vec<Value> {
    ctx.google.events(calendar).await
}

/// The live (not cancelled) events of a calendar.
pub async fn live_events(ctx: &ConnectedApp, calendar: &str) -> Vec<Value> {
    all_events(ctx, calendar)
        .await
        .into_iter()
        .filter(|e| e["status"] != "cancelled")
        .collect()
}

/// The slot id an event was written for, if slotsync wrote it.
pub use slotsync_testkit::google::tagged_slot as tag;

/// The user's live slots.
pub async fn live_slots(ctx: &ConnectedApp, user: &TestUser) -> Vec<Value> {
    let page = ctx.app.get_json(user, "/slots?limit=200").await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until nothing moves: no pull waiting or running, nothing in the outbox (a
/// deleted slot's deletion included: it waits there for a retry after a fault), and every
/// live slot in sync.
pub async fn settle(ctx: &ConnectedApp, user: &TestUser) {
    let id = user.user_id();
    wait_until(
        "every slot is synced, no deletion waits and no pull runs",
        Duration::from_secs(30),
        || async {
            if ctx.app.state.pulls.in_flight(id) {
                return false;
            }
            if ctx.app.sync_status(user).await["outbox"]["pending"] != 0 {
                return false;
            }
            live_slots(ctx, user)
                .await
                .iter()
                .all(|s| sync_state(s) == SyncState::Synced)
        },
    )
    .await;
}

/// Asserts that every live slot of `user` is exactly once among the live events of
/// `calendar` (its linked event, or an event slotsync wrote for it), and that no live
/// event there was written for a slot that is not live.
pub async fn assert_each_slot_once(ctx: &ConnectedApp, user: &TestUser, calendar: &str) {
    let slots = live_slots(ctx, user).await;
    let events = live_events(ctx, calendar).await;
    for slot in &slots {
        let id = slot["id"].as_str().unwrap();
        let linked = slot["sync"]["google_event_id"].as_str();
        let matching: Vec<&Value> = events
            .iter()
            .filter(|e| tag(e) == Some(id) || e["id"].as_str() == linked)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "slot {id} ({}) should be exactly once in {calendar}: {matching:?}\nslot: {slot}",
            slot["title"]
        );
        assert_eq!(
            matching[0]["id"].as_str(),
            linked,
            "the slot is linked to its event: {slot}"
        );
        assert_eq!(matching[0]["summary"], slot["title"], "Google holds the slot's content");
    }
    let live_ids: Vec<&str> = slots.iter().filter_map(|s| s["id"].as_str()).collect();
    for e in &events {
        if let Some(t) = tag(e) {
            assert!(
                live_ids.contains(&t),
                "an event in {calendar} belongs to no live slot: {e}"
            );
        }
    }
}

/// A user of `email` connected (to `calendar`) with `n` slots in sync.
pub async fn connected_with_slots(
    ctx: &ConnectedApp,
    email: &str,
    calendar: &str,
    n: usize,
) -> (TestUser, Vec<String>) {
    let user = ctx.app.create_user(email).await;
    let first = reconnect(ctx, &user, calendar, Consent::default()).await;
    assert_eq!(first["outcome"], "first", "{first}");
    settle(ctx, &user).await;
    let ids = create_slots(ctx, &user, "slot", n).await;
    settle(ctx, &user).await;
    (user, ids)
}

/// Renames a live slot through the API (times and zone kept).
pub async fn rename(ctx: &ConnectedApp, user: &TestUser, id: &str, title: &str) {
    let slot = ctx.app.slot(user, id).await;
    let body = json!({ "title": title, "start": slot["start"], "end": slot["end"], "timezone": slot["timezone"] });
    let resp = ctx.app.put_slot(user, id, &body, None).await;
    assert_eq!(resp.status(), 200, "renaming {id}: {:?}", resp.text().await);
}

/// Creates `n` slots titled `<prefix> <i>` on consecutive days of December 2026.
pub async fn create_slots(ctx: &ConnectedApp, user: &TestUser, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let day = i + 1;
        let body = slot_body(
            &format!("{prefix} {i}"),
            &format!("2026-12-{day:02}T09:00:00Z"),
            &format!("2026-12-{day:02}T10:00:00Z"),
        );
        let slot = ctx.app.create_slot(user, &body).await;
        ids.push(slot["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Creates an event "in Google" as the calendar's owner `email` (in `calendar`) and
/// returns its id.
pub async fn own_event(ctx: &ConnectedApp, email: &str, calendar: &str, title: &str) -> String {
    use google_calendar3::api::{Event, EventDateTime};
    let hub = ctx.google.user_hub(email).await;
    let at = |h: u32| EventDateTime {
        date_time: Some(format!("2026-12-20T{h:02}:00:00Z").parse().unwrap()),
        time_zone: Some("UTC".into()),
        ..Default::default()
    };
    let event = Event {
        summary: Some(title.to_owned()),
        start: Some(at(14)),
        end: Some(at(15)),
        ..Default::default()
    };
    let (_, created) = hub.events().insert(event, calendar).doit().await.unwrap();
    created.id.unwrap()
}
