//! The convergence property: whatever interleaving of app-side and Google-side changes,
//! under emulator faults (error rates on every operation, lost responses, dropped /
//! duplicated / late notifications, notifications batched as Google batches them,
//! invalidated sync tokens, expired access tokens),
//! once the faults stop and the jobs run to a fixed point:
//! - the slots and each Google calendar agree field by field, with no duplicate event;
//! - every change the API acknowledged is there, unless a later Google change superseded it;
//! - no slot is left pending, and none failed or paused without a reason shown;
//! - every series shows the same occurrences (titles, cancellations) in the app's
//!   `/occurrences` and in Google's `instances`, and no instance became a slot.
//!
//! CI runs `CONVERGENCE_CASES` cases (default 6); set it higher to search longer. A failing
//! case is shrunk and printed by proptest as a minimal list of operations.

use std::collections::HashMap;
use std::time::Duration;

use google_calendar3::api::{Event, EventDateTime, EventExtendedProperties};
use proptest::prelude::*;
use serde_json::{json, Value};
use slotsync::domain::UserId;
use slotsync::store::slots::SlotRow;
use slotsync::sync::pull::PullMode;
use slotsync::sync::SyncError;

use crate::helpers::{spawn_app_with_channels_and, ConnectedApp, TestUser};

const USERS: [&str; 2] = ["ada@example.com", "bob@example.com"];

/// One step of a case.
#[derive(Debug, Clone)]
enum Op {
    /// The app creates a slot for a user.
    Create { user: usize, title: u8, hour: u8 },
    /// The app replaces a known slot's title and time.
    Update { slot: usize, title: u8, hour: u8 },
    /// The app deletes a known slot.
    Delete { slot: usize },
    /// Someone edits an event in Google.
    GoogleEdit {
        user: usize,
        event: usize,
        title: u8,
        hour: u8,
    },
    /// Someone deletes an event in Google.
    GoogleDelete { user: usize, event: usize },
    /// Someone creates an event in Google.
    GoogleCreate { user: usize, title: u8, hour: u8 },
    /// Google invalidates every sync token.
    InvalidateSyncTokens,
    /// Every access token expires.
    ExpireAccessTokens,
    /// A pull is requested (as the fallback job would).
    RequestPull { user: usize },
    /// The app creates a daily series of five occurrences.
    CreateSeries { user: usize, title: u8, hour: u8 },
    /// The app retitles (or cancels) one occurrence of a known slot.
    AppOccurrence {
        slot: usize,
        occ: u8,
        title: u8,
        cancel: bool,
    },
    /// Someone retitles (or cancels) one instance of a series in Google.
    GoogleInstance {
        user: usize,
        event: usize,
        occ: u8,
        title: u8,
        cancel: bool,
    },
}

/// How many occurrences a series of [`Op::CreateSeries`] has.
const SERIES_LEN: u8 = 5;

/// The faults active while the operations run.
#[derive(Debug, Clone)]
struct Faults {
    error_rate: f64,
    lost_rate: f64,
    drop_rate: f64,
    duplicate_rate: f64,
    delay_ms: u64,
    /// Google folds a calendar's changes within this window into one notification, as
    /// real Google does (0: one notification per change).
    batch_ms: u64,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..20u8, 0..12u8).prop_map(|(user, title, hour)| Op::Create { user, title, hour }),
        3 => (0..50usize, 0..20u8, 0..12u8).prop_map(|(slot, title, hour)| Op::Update { slot, title, hour }),
        1 => (0..50usize).prop_map(|slot| Op::Delete { slot }),
        3 => (0..2usize, 0..50usize, 0..20u8, 0..12u8)
            .prop_map(|(user, event, title, hour)| Op::GoogleEdit { user, event, title, hour }),
        1 => (0..2usize, 0..50usize).prop_map(|(user, event)| Op::GoogleDelete { user, event }),
        1 => (0..2usize, 0..20u8, 0..12u8).prop_map(|(user, title, hour)| Op::GoogleCreate { user, title, hour }),
        1 => Just(Op::InvalidateSyncTokens),
        1 => Just(Op::ExpireAccessTokens),
        2 => (0..2usize).prop_map(|user| Op::RequestPull { user }),
        2 => (0..2usize, 0..20u8, 0..12u8).prop_map(|(user, title, hour)| Op::CreateSeries { user, title, hour }),
        2 => (0..50usize, 0..SERIES_LEN, 0..20u8, any::<bool>())
            .prop_map(|(slot, occ, title, cancel)| Op::AppOccurrence { slot, occ, title, cancel }),
        2 => (0..2usize, 0..50usize, 0..SERIES_LEN, 0..20u8, any::<bool>())
            .prop_map(|(user, event, occ, title, cancel)| Op::GoogleInstance { user, event, occ, title, cancel }),
    ]
}

fn faults() -> impl Strategy<Value = Faults> {
    let batch_ms = prop_oneof![Just(0u64), 100..1_500u64];
    (0.0..0.3f64, 0.0..0.1f64, 0.0..0.6f64, 0.0..0.3f64, 0..800u64, batch_ms).prop_map(
        |(error_rate, lost_rate, drop_rate, duplicate_rate, delay_ms, batch_ms)| Faults {
            error_rate,
            lost_rate,
            drop_rate,
            duplicate_rate,
            delay_ms,
            batch_ms,
        },
    )
}

/// What a slot should hold: live with a title and start hour, or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Live { title: String, hour: u8 },
    Deleted,
}

fn title(n: u8) -> String {
    format!("t{n}")
}

fn start(hour: u8) -> chrono::DateTime<chrono::Utc> {
    format!("2026-12-01T{:02}:00:00Z", 8 + hour).parse().unwrap()
}

fn end(hour: u8) -> chrono::DateTime<chrono::Utc> {
    start(hour) + chrono::Duration::minutes(45)
}

/// The state of one run: who did what, in order.
#[derive(Default)]
struct Journal {
    seq: u64,
    /// Slot ids known to the app, in creation order.
    slots: Vec<String>,
    /// The last write the API acknowledged per slot: (sequence, expectation).
    app: HashMap<String, (u64, Expect)>,
    /// The last Google-side change per event id: (sequence, expectation).
    google: HashMap<String, (u64, Expect)>,
}

async fn run_case(ops: Vec<Op>, faults: Faults) -> Result<(), TestCaseError> {
    let ctx = spawn_app_with_channels_and(|s| {
        // The slot breaker is a designed stop, tested on its own; here changes must flow.
        s.slot_breaker_alternations = 1_000;
        s.user_breaker_cooldown_secs = 1;
    })
    .await;
    let mut users = Vec::new();
    for email in USERS {
        let user = ctx.app.create_user(email).await;
        ctx.app.connect_and_settle(&user).await;
        users.push(user);
    }
    ctx.google.faults(json!({
        "ops": {"*": {"503": faults.error_rate / 2.0, "429": faults.error_rate / 2.0, "lost_response": faults.lost_rate}},
        "notifications": {"drop_rate": faults.drop_rate, "duplicate_rate": faults.duplicate_rate,
                          "delay_ms": [0, faults.delay_ms], "batch_ms": faults.batch_ms}
    }))
    .await;

    let mut journal = Journal::default();
    for op in &ops {
        journal.seq += 1;
        apply(&ctx, &users, &mut journal, op).await;
    }

    ctx.google.faults(Value::Null).await;
    settle(&ctx, &users).await;
    check(&ctx, &users, &journal).await
}

async fn apply(ctx: &ConnectedApp, users: &[TestUser], j: &mut Journal, op: &Op) {
    let app = &ctx.app;
    match *op {
        Op::Create { user, title: t, hour } => {
            let body = json!({"title": title(t), "start": start(hour), "end": end(hour), "timezone": "UTC"});
            let resp = app.post_slot(&users[user], &body).await;
            if resp.status() == 201 {
                let slot: Value = resp.json().await.unwrap();
                let id = slot["id"].as_str().unwrap().to_owned();
                j.slots.push(id.clone());
                j.app.insert(id, (j.seq, Expect::Live { title: title(t), hour }));
            }
        }
        Op::Update { slot, title: t, hour } => {
            let Some((id, owner)) = known_slot(j, users, slot, app).await else {
                return;
            };
            let body = json!({"title": title(t), "start": start(hour), "end": end(hour), "timezone": "UTC"});
            if app.put_slot(&users[owner], &id, &body, None).await.status() == 200 {
                j.app.insert(id, (j.seq, Expect::Live { title: title(t), hour }));
            }
        }
        Op::Delete { slot } => {
            let Some((id, owner)) = known_slot(j, users, slot, app).await else {
                return;
            };
            if app.delete_slot(&users[owner], &id).await.status() == 204 {
                j.app.insert(id, (j.seq, Expect::Deleted));
            }
        }
        Op::GoogleEdit {
            user,
            event,
            title: t,
            hour,
        } => {
            let Some(id) = live_event(ctx, user, event).await else {
                return;
            };
            let patch = Event {
                summary: Some(title(t)),
                start: Some(at(start(hour))),
                end: Some(at(end(hour))),
                ..Default::default()
            };
            let done = google_retry(ctx, user, |hub| {
                let (patch, id) = (patch.clone(), id.clone());
                async move {
                    match hub.events().patch(patch, "primary", &id).doit().await {
                        Ok(_) => Ok(true),
                        Err(e) => gone_or_retry(e),
                    }
                }
            })
            .await;
            if done {
                j.google.insert(id, (j.seq, Expect::Live { title: title(t), hour }));
            }
        }
        Op::GoogleDelete { user, event } => {
            let Some(id) = live_event(ctx, user, event).await else {
                return;
            };
            let done = google_retry(ctx, user, |hub| {
                let id = id.clone();
                async move {
                    match hub.events().delete("primary", &id).doit().await {
                        Ok(_) => Ok(true),
                        // A lost answer: the deletion happened.
                        Err(google_calendar3::common::Error::BadRequest(b)) if b["error"]["code"] == 410 => Ok(true),
                        Err(e) => gone_or_retry(e),
                    }
                }
            })
            .await;
            if done {
                j.google.insert(id, (j.seq, Expect::Deleted));
            }
        }
        Op::GoogleCreate { user, title: t, hour } => {
            // A client-chosen id, so a retry after a lost answer cannot duplicate.
            // Hex digits are base32hex digits too.
            let id = format!("{:032x}", rand_u128());
            let event = Event {
                id: Some(id.clone()),
                summary: Some(title(t)),
                start: Some(at(start(hour))),
                end: Some(at(end(hour))),
                extended_properties: Some(EventExtendedProperties::default()),
                ..Default::default()
            };
            let done = google_retry(ctx, user, |hub| {
                let event = event.clone();
                async move {
                    match hub.events().insert(event, "primary").doit().await {
                        Ok(_) => Ok(true),
                        Err(google_calendar3::common::Error::BadRequest(b)) if b["error"]["code"] == 409 => Ok(true),
                        Err(e) => gone_or_retry(e),
                    }
                }
            })
            .await;
            if done {
                j.google.insert(id, (j.seq, Expect::Live { title: title(t), hour }));
            }
        }
        Op::InvalidateSyncTokens => {
            ctx.google.invalidate_sync_tokens().await;
        }
        Op::ExpireAccessTokens => {
            ctx.google.expire_access_tokens().await;
        }
        Op::RequestPull { user } => app.state.pulls.request(user_id(&users[user])),
        Op::CreateSeries { user, title: t, hour } => {
            let body = json!({"title": title(t), "start": start(hour), "end": end(hour), "timezone": "UTC",
                              "recurrence": [format!("RRULE:FREQ=DAILY;COUNT={SERIES_LEN}")]});
            let resp = app.post_slot(&users[user], &body).await;
            if resp.status() == 201 {
                let slot: Value = resp.json().await.unwrap();
                let id = slot["id"].as_str().unwrap().to_owned();
                j.slots.push(id.clone());
                j.app.insert(id, (j.seq, Expect::Live { title: title(t), hour }));
            }
        }
        Op::AppOccurrence {
            slot,
            occ,
            title: t,
            cancel,
        } => {
            let Some((id, owner)) = known_slot(j, users, slot, app).await else {
                return;
            };
            let row = app.slot_row(&id).await;
            if row.recurrence.is_none() || row.deleted_at.is_some() {
                return;
            }
            let original = row.start_at + chrono::Duration::days(i64::from(occ));
            let path = format!("/slots/{id}/occurrences/{}", original.format("%Y%m%dT%H%M%SZ"));
            let mut req = if cancel {
                app.client.delete(app.url(&path))
            } else {
                app.client.put(app.url(&path)).json(&json!({
                    "title": title(t), "start": original, "end": original + (row.end_at - row.start_at)
                }))
            };
            req = req.bearer_auth(&users[owner].token);
            let status = req.send().await.unwrap().status();
            assert!([200, 204, 404].contains(&status.as_u16()), "{status}");
        }
        Op::GoogleInstance {
            user,
            event,
            occ,
            title: t,
            cancel,
        } => {
            let Some(master) = live_series(ctx, user, event).await else {
                return;
            };
            let first: chrono::DateTime<chrono::Utc> = master["start"]["dateTime"].as_str().unwrap().parse().unwrap();
            let original = first + chrono::Duration::days(i64::from(occ));
            let instance = format!(
                "{}_{}",
                master["id"].as_str().unwrap(),
                original.format("%Y%m%dT%H%M%SZ")
            );
            google_retry(ctx, user, |hub| {
                let instance = instance.clone();
                async move {
                    let answer = if cancel {
                        hub.events().delete("primary", &instance).doit().await.map(|_| ())
                    } else {
                        let patch = Event {
                            summary: Some(title(t)),
                            ..Default::default()
                        };
                        hub.events().patch(patch, "primary", &instance).doit().await.map(|_| ())
                    };
                    match answer {
                        Ok(()) => Ok(true),
                        Err(google_calendar3::common::Error::BadRequest(b)) if b["error"]["code"] == 410 => Ok(true),
                        Err(e) => gone_or_retry(e),
                    }
                }
            })
            .await;
        }
    }
}

/// The `n`-th live series (modulo) of a user's calendar, as Google holds it now.
async fn live_series(ctx: &ConnectedApp, user: usize, n: usize) -> Option<Value> {
    let live: Vec<Value> = ctx
        .google
        .events(USERS[user])
        .await
        .into_iter()
        .filter(|e| e["status"] != "cancelled" && e["recurrence"].is_array() && e["recurringEventId"].is_null())
        .collect();
    if live.is_empty() {
        return None;
    }
    Some(live[n % live.len()].clone())
}

/// A series' confirmed occurrences, original start (UTC basic) → title, as the app shows
/// them and as Google's `instances` lists them.
async fn series_both_ways(
    ctx: &ConnectedApp,
    user: &TestUser,
    u: usize,
    slot: &SlotRow,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let page = ctx
        .app
        .get_json(user, &format!("/slots/{}/occurrences?limit=500", slot.id))
        .await;
    let app: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "confirmed")
        .map(|o| {
            let at = chrono::DateTime::parse_from_rfc3339(o["original_start"].as_str().unwrap()).unwrap();
            (
                at.to_utc().format("%Y%m%dT%H%M%SZ").to_string(),
                o["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let hub = ctx.google.user_hub(USERS[u]).await;
    let master = slot.google_event_id.clone().unwrap_or_default();
    let (_, list) = hub.events().instances("primary", &master).doit().await.unwrap();
    let google: Vec<(String, String)> = list
        .items
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let suffix =
                i.id.as_deref()
                    .unwrap_or_default()
                    .rsplit_once('_')
                    .map(|(_, s)| s.to_owned());
            (suffix.unwrap_or_default(), i.summary.clone().unwrap_or_default())
        })
        .collect();
    (app, google)
}

fn rand_u128() -> u128 {
    use rand::Rng;
    rand::thread_rng().gen()
}

fn at(t: chrono::DateTime<chrono::Utc>) -> EventDateTime {
    EventDateTime {
        date_time: Some(t),
        time_zone: Some("UTC".into()),
        ..Default::default()
    }
}

fn user_id(user: &TestUser) -> UserId {
    UserId(uuid::Uuid::parse_str(&user.id).unwrap())
}

/// The `n`-th slot the app created (modulo), if it still exists, with its owner's index.
async fn known_slot(
    j: &Journal,
    users: &[TestUser],
    n: usize,
    app: &crate::helpers::TestApp,
) -> Option<(String, usize)> {
    if j.slots.is_empty() {
        return None;
    }
    let id = j.slots[n % j.slots.len()].clone();
    let row = app.slot_row(&id).await;
    let owner = users.iter().position(|u| u.id == row.user_id.to_string())?;
    Some((id, owner))
}

/// The `n`-th live event (modulo) of a user's calendar, as Google holds it now.
async fn live_event(ctx: &ConnectedApp, user: usize, n: usize) -> Option<String> {
    let live: Vec<Value> = ctx
        .google
        .events(USERS[user])
        .await
        .into_iter()
        .filter(|e| e["status"] != "cancelled" && e["recurringEventId"].is_null())
        .collect();
    if live.is_empty() {
        return None;
    }
    live[n % live.len()]["id"].as_str().map(str::to_owned)
}

/// `Ok(false)`: the event is gone (nothing happened); `Err`: try again.
fn gone_or_retry(e: google_calendar3::common::Error) -> Result<bool, ()> {
    match &e {
        google_calendar3::common::Error::BadRequest(b) if b["error"]["code"] == 404 || b["error"]["code"] == 410 => {
            Ok(false)
        }
        _ => Err(()),
    }
}

/// Runs a Google-side call as `user` until Google answers it (faults apply to everyone).
async fn google_retry<F, Fut>(ctx: &ConnectedApp, user: usize, call: F) -> bool
where
    F: Fn(slotsync::google::hub::Hub) -> Fut,
    Fut: std::future::Future<Output = Result<bool, ()>>,
{
    for _ in 0..50 {
        let hub = ctx.google.user_hub(USERS[user]).await;
        if let Ok(done) = call(hub).await {
            return done;
        }
    }
    panic!("a Google-side call kept failing");
}

/// Runs the jobs until nothing changes: drain the outbox, pull every user, repeat.
async fn settle(ctx: &ConnectedApp, users: &[TestUser]) {
    let state = &ctx.app.state;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut quiet_rounds = 0;
    while quiet_rounds < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no fixed point within 60 s");
        let mut changed = 0u64;
        // Retries wait for their time; make them due now (as `POST /sync/push-all` does).
        for user in users {
            let resp = ctx.app.user_send(user, reqwest::Method::POST, "/sync/push-all").await;
            assert_eq!(resp.status(), 200);
        }
        let pushed = state.pusher.drain().await.unwrap();
        changed += pushed.pushed + pushed.google_kept + pushed.retrying;
        for user in users {
            let id = user_id(user);
            loop {
                match state.pulls.puller().pull(id, PullMode::Incremental).await {
                    Ok(r) => {
                        changed += u64::from(r.applied + r.deleted + r.imported + r.conflicts);
                        break;
                    }
                    Err(SyncError::PullRunning) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(e) => panic!("pull failed with faults off: {e}"),
                }
            }
        }
        // The background worker may hold slots it claimed: quiet only once nothing waits.
        let waiting = slotsync::store::outbox::depth_all(&state.db, chrono::Utc::now())
            .await
            .unwrap()
            .dirty;
        quiet_rounds = if changed == 0 && waiting == 0 {
            quiet_rounds + 1
        } else {
            0
        };
        if waiting > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn all_rows(ctx: &ConnectedApp) -> Vec<SlotRow> {
    use sea_orm::EntityTrait;
    slotsync::store::entities::slots::Entity::find()
        .all(&ctx.app.state.db)
        .await
        .unwrap()
}

fn expect_of(row: &SlotRow) -> Expect {
    if row.deleted_at.is_some() {
        return Expect::Deleted;
    }
    let hour = u8::try_from((row.start_at - start(0)).num_hours()).unwrap_or(u8::MAX);
    Expect::Live {
        title: row.title.clone(),
        hour,
    }
}

async fn check(ctx: &ConnectedApp, users: &[TestUser], j: &Journal) -> Result<(), TestCaseError> {
    let rows = all_rows(ctx).await;
    for row in &rows {
        prop_assert!(
            row.push_state == slotsync::domain::PushState::Clean || row.last_push_error.is_some(),
            "slot {} left {} without a reason: {:?}",
            row.id,
            row.push_state,
            row
        );
        prop_assert_eq!(
            row.push_state,
            slotsync::domain::PushState::Clean,
            "slot {} not in sync: {:?}",
            row.id,
            row.last_push_error
        );
    }
    for (u, user) in users.iter().enumerate() {
        let live_events: Vec<Value> = ctx
            .google
            .events(USERS[u])
            .await
            .into_iter()
            .filter(|e| e["status"] != "cancelled" && e["recurringEventId"].is_null())
            .collect();
        let live_slots: Vec<&SlotRow> = rows
            .iter()
            .filter(|r| r.user_id.to_string() == user.id && r.deleted_at.is_none())
            .collect();
        prop_assert_eq!(
            live_events.len(),
            live_slots.len(),
            "user {}: {} live events for {} live slots",
            USERS[u],
            live_events.len(),
            live_slots.len()
        );
        for slot in &live_slots {
            let event_id = slot.google_event_id.as_deref().unwrap_or_default();
            let matching: Vec<&Value> = live_events.iter().filter(|e| e["id"] == event_id).collect();
            prop_assert_eq!(matching.len(), 1, "slot {} has {} live events", slot.id, matching.len());
            let e = matching[0];
            prop_assert_eq!(
                e["summary"].as_str(),
                Some(slot.title.as_str()),
                "title of slot {}",
                slot.id
            );
            let e_start: chrono::DateTime<chrono::Utc> = e["start"]["dateTime"].as_str().unwrap().parse().unwrap();
            let e_end: chrono::DateTime<chrono::Utc> = e["end"]["dateTime"].as_str().unwrap().parse().unwrap();
            prop_assert_eq!(e_start, slot.start_at, "start of slot {}", slot.id);
            prop_assert_eq!(e_end, slot.end_at, "end of slot {}", slot.id);
            prop_assert_eq!(
                e["recurrence"].as_array().map(|r| r.len()).unwrap_or(0),
                slotsync::store::slots::recurrence(slot).len(),
                "rule of slot {}",
                slot.id
            );
            if slot.recurrence.is_some() {
                let (app_side, google_side) = series_both_ways(ctx, user, u, slot).await;
                prop_assert_eq!(app_side, google_side, "occurrences of series {}", slot.id);
            }
        }
    }
    // Acknowledged changes: the last one wins unless a later Google change touched the slot.
    for row in &rows {
        let id = row.id.to_string();
        let app = j.app.get(&id);
        let google = row
            .google_event_id
            .as_deref()
            .and_then(|e| j.google.get(e))
            .or_else(|| {
                // Our derived event id, if the slot was re-created under another one.
                let derived = slotsync::domain::EventId::from_slot(slotsync::domain::SlotId(row.id));
                j.google.get(derived.as_str())
            });
        let now = expect_of(row);
        match (app, google) {
            (Some((_, want)), None) => prop_assert_eq!(&now, want, "slot {}: acknowledged write lost", id),
            (Some((a, want)), Some((g, _))) if a > g => {
                prop_assert_eq!(&now, want, "slot {}: acknowledged write lost", id)
            }
            (Some((_, app_want)), Some((_, google_want))) => prop_assert!(
                now == *app_want || now == *google_want,
                "slot {id} is {now:?}: neither the app's {app_want:?} nor Google's {google_want:?}"
            ),
            (None, Some((_, google_want))) => {
                prop_assert_eq!(&now, google_want, "imported slot {} does not hold Google's change", id)
            }
            (None, None) => {}
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("CONVERGENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn slots_and_google_converge_under_faults(ops in proptest::collection::vec(op(), 5..30), faults in faults()) {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(run_case(ops, faults))?;
    }
}
