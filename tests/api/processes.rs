//! Issue 7, "Prove it": the real binary as child processes. One Google emulator
//! (`slotsync emulator`) and one or two services (`slotsync serve`), configured only through
//! the environment as an operator would, killed with SIGKILL, stopped with SIGTERM, run
//! side by side on one database. Each test has its own database: a temporary SQLite file,
//! or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set (CI runs both).
//!
//! Readiness is always polled (`GET /health/ready`, job reports, `/sync/status`) under a
//! deadline; sleeps only pace the load.

mod fleet;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use google_calendar3::api::Event;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::test_database;
use slotsync_testkit::{callback_url, sync_state, Stats, SyncState};
use support::{
    all_slots, cancelled, free_port, instant, open_db, seed, tagged_slot, Api, Google, Service, ServiceSpec, User,
};

const EMAIL: &str = "ada@example.com";

// ---------------------------------------------------------------------------------------
// 1. Crash safety
// ---------------------------------------------------------------------------------------

/// What a slot holds (or that it is deleted), as the API or Google shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Content {
    Live {
        title: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    Deleted,
}

/// One change of a slot: made through the API or in Google, when it was sent and when it
/// was answered (or found unanswered). `acked` changes certainly happened inside that
/// interval; unacknowledged ones (the process died under them) may or may not have.
#[derive(Clone, Debug)]
struct Change {
    content: Content,
    sent: Instant,
    done: Instant,
    acked: bool,
    in_google: bool,
}

/// Everything the load did, shared by the load tasks.
#[derive(Default)]
struct Ledger {
    changes: HashMap<String, Vec<Change>>,
    /// Slots whose creation was acknowledged and that nobody tried to delete: what the
    /// load updates and deletes.
    live: Vec<String>,
    /// Creations that got no answer: `Idempotency-Key`, body, when sent. Replayed at the
    /// end with the same key, as a careful client would, which tells their slot id.
    unanswered_creates: Vec<(String, Value, Instant)>,
    google_edits: HashMap<String, u32>,
    acked: u64,
    unanswered: u64,
    google_applied: u64,
    google_refused: u64,
}

impl Change {
    /// One line: who, whether acknowledged, when (ms since `t0`), what.
    fn describe(&self, t0: Instant) -> String {
        let ms = |t: Instant| t.duration_since(t0).as_millis();
        format!(
            "{} {} [{}..{} ms] {:?}",
            if self.in_google { "google" } else { "api" },
            if self.acked { "acked" } else { "unanswered" },
            ms(self.sent),
            ms(self.done),
            self.content
        )
    }
}

impl Ledger {
    fn record(&mut self, id: &str, change: Change) {
        if change.in_google {
            self.google_applied += 1;
        } else if change.acked {
            self.acked += 1;
        } else {
            self.unanswered += 1;
        }
        self.changes.entry(id.to_owned()).or_default().push(change);
    }
}

/// The contents a slot may end with. A local deletion is final (it beats any Google edit,
/// and the load never touches a slot again after trying to delete it): an acknowledged one
/// is the only outcome, an unanswered one a possible outcome. Otherwise any change not
/// certainly followed by an acknowledged one (`latest_wins` between the two sides;
/// unanswered changes may or may not have happened).
fn allowed_finals(changes: &[Change]) -> Vec<Content> {
    if changes.iter().any(|c| c.acked && c.content == Content::Deleted) {
        return vec![Content::Deleted];
    }
    changes
        .iter()
        .filter(|c| c.content == Content::Deleted || !changes.iter().any(|later| later.acked && later.sent > c.done))
        .map(|c| c.content.clone())
        .collect()
}

fn slot_content(slot: &Value) -> Content {
    if slot["deleted"] == true {
        return Content::Deleted;
    }
    Content::Live {
        title: slot["title"].as_str().unwrap().to_owned(),
        start: instant(&slot["start"]),
        end: instant(&slot["end"]),
    }
}

fn body_content(body: &Value) -> Content {
    slot_content(body)
}

/// A slot body with a random time in the coming weeks.
fn random_body(rng: &mut StdRng, title: String) -> Value {
    let now = Utc::now().timestamp() / 60 * 60;
    let start = now + rng.gen_range(1..24 * 20) * 3600;
    let end = start + rng.gen_range(1..=8) * 15 * 60;
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    json!({ "title": title, "start": at(start), "end": at(end), "timezone": "Europe/Paris" })
}

/// A client of the API: creates (with an `Idempotency-Key`), replaces and deletes slots
/// at random, and writes down what was acknowledged.
async fn api_load(api: Api, user: User, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>, seed: u64, no: u32) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let roll = rng.gen_range(0..100);
        let target = ledger.lock().live.choose(&mut rng).cloned();
        let answered = match target {
            Some(id) if (40..85).contains(&roll) => {
                let body = random_body(&mut rng, format!("u{no}-{n}"));
                let sent = Instant::now();
                let result = api
                    .send(Method::PUT, &format!("/slots/{id}"), &user.token, Some(&body), &[])
                    .await;
                let done = Instant::now();
                let status = result.as_ref().map(|r| r.status().as_u16()).ok();
                let mut ledger = ledger.lock();
                match status {
                    Some(200) => {
                        let change = Change {
                            content: body_content(&body),
                            sent,
                            done,
                            acked: true,
                            in_google: false,
                        };
                        ledger.record(&id, change);
                    }
                    // The other client deleted it meanwhile.
                    Some(404) if !ledger.live.contains(&id) => {}
                    Some(s) if s < 500 => panic!("PUT /slots/{id} answered {s}"),
                    _ => {
                        let change = Change {
                            content: body_content(&body),
                            sent,
                            done,
                            acked: false,
                            in_google: false,
                        };
                        ledger.record(&id, change);
                    }
                }
                status.is_some_and(|s| s < 500)
            }
            Some(id) if roll >= 85 => {
                ledger.lock().live.retain(|l| *l != id);
                let sent = Instant::now();
                let result = api
                    .send(Method::DELETE, &format!("/slots/{id}"), &user.token, None, &[])
                    .await;
                let done = Instant::now();
                let status = result.as_ref().map(|r| r.status().as_u16()).ok();
                if let Some(s) = status.filter(|s| *s != 204 && *s < 500) {
                    panic!("DELETE /slots/{id} answered {s}");
                }
                let change = Change {
                    content: Content::Deleted,
                    sent,
                    done,
                    acked: status == Some(204),
                    in_google: false,
                };
                ledger.lock().record(&id, change);
                status == Some(204)
            }
            _ => {
                let body = random_body(&mut rng, format!("c{no}-{n}"));
                let key = uuid::Uuid::new_v4().to_string();
                let sent = Instant::now();
                let result = api
                    .send(
                        Method::POST,
                        "/slots",
                        &user.token,
                        Some(&body),
                        &[("Idempotency-Key", &key)],
                    )
                    .await;
                let created = match result {
                    Ok(resp) if resp.status() == 201 => resp.json::<Value>().await.ok(),
                    Ok(resp) if resp.status().as_u16() < 500 => panic!("POST /slots answered {}", resp.status()),
                    _ => None,
                };
                let done = Instant::now();
                let mut ledger = ledger.lock();
                match created {
                    Some(slot) => {
                        let id = slot["id"].as_str().unwrap().to_owned();
                        let change = Change {
                            content: body_content(&body),
                            sent,
                            done,
                            acked: true,
                            in_google: false,
                        };
                        ledger.record(&id, change);
                        ledger.live.push(id);
                        true
                    }
                    None => {
                        ledger.unanswered += 1;
                        ledger.unanswered_creates.push((key, body, sent));
                        false
                    }
                }
            }
        };
        let pause = rng.gen_range(10..40) + if answered { 0 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// The user in Google Calendar: renames events slotsync wrote (each at most twice, so no
/// slot breaker can trip), through google-calendar3.
async fn google_load(google: Arc<Google>, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let hub = google.user_hub(EMAIL).await;
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(80..250))).await;
        let events = google.events(EMAIL).await;
        let picked = {
            let ledger = ledger.lock();
            let candidates: Vec<(String, String)> = events
                .iter()
                .filter(|e| !cancelled(e))
                .filter_map(|e| Some((tagged_slot(e)?.to_owned(), e["id"].as_str()?.to_owned())))
                .filter(|(slot, _)| ledger.google_edits.get(slot).copied().unwrap_or(0) < 2)
                .collect();
            candidates.choose(&mut rng).cloned()
        };
        let Some((slot, event_id)) = picked else { continue };
        n += 1;
        let patch = Event {
            summary: Some(format!("g-{n}")),
            ..Default::default()
        };
        let sent = Instant::now();
        let result = hub.events().patch(patch, "primary", &event_id).doit().await;
        let done = Instant::now();
        let mut ledger = ledger.lock();
        *ledger.google_edits.entry(slot.clone()).or_default() += 1;
        match result {
            Ok((_, event)) => {
                let time = |t: &Option<google_calendar3::api::EventDateTime>| {
                    t.as_ref().and_then(|t| t.date_time).expect("a timed event")
                };
                let change = Change {
                    content: Content::Live {
                        title: event.summary.clone().unwrap_or_default(),
                        start: time(&event.start),
                        end: time(&event.end),
                    },
                    sent,
                    done,
                    acked: true,
                    in_google: true,
                };
                ledger.record(&slot, change);
            }
            // Deleted by a push meanwhile (410): nothing changed.
            Err(_) => ledger.google_refused += 1,
        }
    }
}

/// What a killed process left behind.
#[derive(Default)]
struct AtKill {
    up_ms: u64,
    dirty: usize,
    leased: usize,
    pull_leased: usize,
    restart_ms: u128,
}

/// The claims of a process that dies run out after these (the defaults, 60 s and 120 s,
/// are for Google calls that may take long; the emulator answers within 40 ms here).
const PUSH_LEASE_SECS: i64 = 3;
const PULL_LEASE_SECS: i64 = 3;

/// Reads what the process started at `started_at` and just killed left behind: dirty
/// slots, and the push and pull claims it took (a claim ends a lease after it was taken,
/// so claims ending later than `started_at` + lease are this process's).
async fn left_behind(database_url: &str, started_at: DateTime<Utc>) -> AtKill {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use slotsync::store::entities::{slots, sync_states};
    let db = open_db(database_url).await;
    let dirty = slots::Entity::find()
        .filter(slots::Column::PushState.eq(slotsync::domain::PushState::Dirty))
        .all(&db)
        .await
        .unwrap();
    let mine = |lease: Option<DateTime<Utc>>, secs: i64| {
        lease.is_some_and(|l| l > started_at + chrono::Duration::seconds(secs))
    };
    let leased = dirty
        .iter()
        .filter(|s| mine(s.push_lease_until, PUSH_LEASE_SECS))
        .count();
    let pull_leased = sync_states::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .iter()
        .filter(|s| mine(s.pull_lease_until, PULL_LEASE_SECS))
        .count();
    db.close().await.ok();
    AtKill {
        dirty: dirty.len(),
        leased,
        pull_leased,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_nothing_and_duplicates_nothing() {
    const KILLS: usize = 12;
    let seed = seed(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let google = Arc::new(Google::start(dir.path()).await);
    let (database_url, _db) = test_database().await;
    let port = free_port();
    google.register_client(&[callback_url(port)]).await;
    let spec = ServiceSpec::new("crash", port, &database_url, &google.base_url()).with(&[
        ("SCHEDULE_RETRY_PUSHES", "*/1 * * * * *"),
        ("SCHEDULE_FALLBACK_SYNC", "*/2 * * * * *"),
        ("PUSH_LEASE_SECS", &PUSH_LEASE_SECS.to_string()),
        ("PULL_LEASE_SECS", &PULL_LEASE_SECS.to_string()),
    ]);
    let mut service = Service::start(spec, dir.path()).await;
    let api = service.api.clone();
    let user = api.create_user(EMAIL).await;
    api.connect_google(&user).await;
    api.wait_first_pull(&user, || true).await;
    // Google answers in 5–40 ms, so kills often land while pushes are in flight.
    google.faults(json!({"latency_ms": [5, 40]})).await;

    let t0 = Instant::now();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for no in 0..2u32 {
        load.push(tokio::spawn(api_load(
            api.clone(),
            user.clone(),
            Arc::clone(&ledger),
            Arc::clone(&stop),
            seed * 100 + u64::from(no),
            no,
        )));
    }
    load.push(tokio::spawn(google_load(
        Arc::clone(&google),
        Arc::clone(&ledger),
        Arc::clone(&stop),
        seed * 100 + 99,
    )));

    let mut kills = Vec::new();
    let mut started_at = Utc::now();
    for _ in 0..KILLS {
        let up_ms = rng.gen_range(100..=700);
        tokio::time::sleep(Duration::from_millis(up_ms)).await;
        service.kill();
        let mut at = left_behind(&database_url, started_at).await;
        at.up_ms = up_ms;
        started_at = Utc::now();
        at.restart_ms = service.restart().await.as_millis();
        kills.push(at);
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load task");
    }
    google.faults(Value::Null).await;

    // Creations that were never answered are retried with their key: each either replays
    // the first answer (it was committed before the kill) or creates the slot now.
    let unanswered_creates = std::mem::take(&mut ledger.lock().unanswered_creates);
    let mut replayed = 0;
    for (key, body, sent) in &unanswered_creates {
        let asked_at = Utc::now();
        let resp = api
            .send(
                Method::POST,
                "/slots",
                &user.token,
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "replaying a creation");
        let replay: Value = resp.json().await.unwrap();
        if instant(&replay["created_at"]) < asked_at {
            replayed += 1;
        }
        let change = Change {
            content: body_content(body),
            sent: *sent,
            done: Instant::now(),
            acked: true,
            in_google: false,
        };
        ledger.lock().record(replay["id"].as_str().unwrap(), change);
    }

    // Run everything to a fixed point: pushes, a full pull (which also reconciles), until
    // the outbox is empty and neither side changes any more.
    let converging = Instant::now();
    api.must(Method::POST, "/sync/push-all", &user.token, None).await;
    let mut previous = None;
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(
            converging.elapsed() < Duration::from_secs(45),
            "no fixed point after {rounds} rounds: {}",
            api.sync_status(&user).await
        );
        api.run_job("retry_pushes").await;
        let pulled = api
            .send(Method::POST, "/sync/trigger?mode=full", &user.token, None, &[])
            .await
            .unwrap();
        assert!(
            [200, 409].contains(&pulled.status().as_u16()),
            "full pull: {}",
            pulled.status()
        );
        let status = api.sync_status(&user).await;
        let outbox = &status["outbox"];
        let slots = all_slots(&api, &user).await;
        let events = google.events(EMAIL).await;
        let snapshot: Vec<Value> = slots
            .iter()
            .map(|s| json!([s["id"], s["version"], s["sync"]["state"]]))
            .chain(events.iter().map(|e| json!([e["id"], e["etag"]])))
            .collect();
        let settled = pulled.status() == 200
            && outbox["pending"] == 0
            && outbox["failed"] == 0
            && outbox["paused"] == 0
            && status["breaker_paused_slots"].as_array().is_some_and(|a| a.is_empty());
        if settled && previous.as_ref() == Some(&snapshot) {
            break;
        }
        previous = Some(snapshot);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged_in = converging.elapsed();

    // Every acknowledged change survived (unless a later change on the other side won).
    let ledger = std::mem::take(&mut *ledger.lock());
    let slots = all_slots(&api, &user).await;
    let conflicts = api.must(Method::GET, "/sync/conflicts", &user.token, None).await;
    let events = google.events(EMAIL).await;
    let explain = |id: &str, changes: &[Change]| {
        let history: Vec<String> = changes.iter().map(|c| c.describe(t0)).collect();
        let conflicts: Vec<&Value> = conflicts
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["slot_id"] == id)
            .collect();
        let events: Vec<&Value> = events.iter().filter(|e| tagged_slot(e) == Some(id)).collect();
        format!(
            "history:\n  {}\nconflicts: {conflicts:#?}\nevents: {events:#?}",
            history.join("\n  ")
        )
    };
    let by_id: BTreeMap<String, &Value> = slots
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s))
        .collect();
    let mut ambiguous = 0;
    for (id, changes) in &ledger.changes {
        let slot = by_id
            .get(id)
            .unwrap_or_else(|| panic!("slot {id} was acknowledged and is gone"));
        let actual = slot_content(slot);
        let allowed = allowed_finals(changes);
        if allowed.len() > 1 {
            ambiguous += 1;
        }
        assert!(
            allowed.contains(&actual),
            "slot {id} ends as {actual:?}, but its changes allow only {allowed:?}; {}",
            explain(id, changes)
        );
        assert_eq!(sync_state(slot), SyncState::Synced, "{slot}");
    }
    for id in by_id.keys() {
        assert!(
            ledger.changes.contains_key(id),
            "slot {id} was never created by the load"
        );
    }

    // Google holds exactly the live slots: one event each, same content, no duplicate.
    let mut per_slot: HashMap<&str, Vec<&Value>> = HashMap::new();
    for event in &events {
        let slot = tagged_slot(event).unwrap_or_else(|| panic!("an event without a slot: {event}"));
        per_slot.entry(slot).or_default().push(event);
    }
    for (id, slot) in &by_id {
        let written = per_slot.get(id.as_str()).cloned().unwrap_or_default();
        assert!(
            written.len() <= 1,
            "slot {id} has {} events: {written:#?}",
            written.len()
        );
        let live: Vec<&&Value> = written.iter().filter(|e| !cancelled(e)).collect();
        match slot_content(slot) {
            Content::Deleted => assert!(live.is_empty(), "deleted slot {id} still has {live:?}"),
            Content::Live { title, start, end } => {
                assert_eq!(live.len(), 1, "live slot {id} has events {written:?}");
                let event = live[0];
                assert_eq!(event["summary"], title.as_str(), "{event}");
                assert_eq!(instant(&event["start"]["dateTime"]), start, "{event}");
                assert_eq!(instant(&event["end"]["dateTime"]), end, "{event}");
            }
        }
    }
    for id in per_slot.keys() {
        assert!(by_id.contains_key(*id), "an event for unknown slot {id}");
    }

    let stats = google.stats().await;
    let conflicts = conflicts.as_array().map_or(0, Vec::len);
    let live_slots = by_id.values().filter(|s| s["deleted"] != true).count();
    eprintln!(
        "crash safety: {KILLS} kills; kills with pushes in flight: {}, with a pull in flight: {}; \
         restart to ready: {:?} ms; per kill: {:?}",
        kills.iter().filter(|k| k.leased > 0).count(),
        kills.iter().filter(|k| k.pull_leased > 0).count(),
        kills.iter().map(|k| k.restart_ms).collect::<Vec<_>>(),
        kills
            .iter()
            .map(|k| format!("up {} ms: {} pending, {} in flight", k.up_ms, k.dirty, k.leased))
            .collect::<Vec<_>>(),
    );
    eprintln!(
        "crash safety: API changes acknowledged {}, unanswered {} (creations among them {}, of which \
         committed before the kill {replayed}); Google renames applied {}, refused {}; slots {} (live \
         {live_slots}, with more than one possible outcome {ambiguous}); conflicts logged {conflicts}; converged in {converged_in:?} ({rounds} rounds); \
         events.insert 200={} 409={}, events.patch 200={} 412={}, events.delete 204={}, events.list 200={}; \
         notifications {}",
        ledger.acked,
        ledger.unanswered,
        unanswered_creates.len(),
        ledger.google_applied,
        ledger.google_refused,
        by_id.len(),
        stats.op_count("events.insert", "200"),
        stats.op_count("events.insert", "409"),
        stats.op_count("events.patch", "200"),
        stats.op_count("events.patch", "412"),
        stats.op_count("events.delete", "204"),
        stats.op_count("events.list", "200"),
        stats["notifications"],
    );
    assert!(
        kills.iter().any(|k| k.leased > 0),
        "no kill hit a push in flight; the test proved little"
    );
    assert!(ledger.acked > 50, "too little load: {}", ledger.acked);
}

// ---------------------------------------------------------------------------------------
// 2. Several instances
// ---------------------------------------------------------------------------------------

/// Counter deltas between two emulator snapshots.
fn delta(after: &Stats, before: &Stats, op: &str, status: &str) -> u64 {
    after.op_count(op, status) - before.op_count(op, status)
}

/// A timed slot body `n` hours from now.
fn nth_body(title: &str, n: i64) -> Value {
    let start = Utc::now().timestamp() / 3600 * 3600 + (n + 24) * 3600;
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    json!({ "title": title, "start": at(start), "end": at(start + 1800), "timezone": "UTC" })
}

/// Creates `count` slots named `prefix-j`: slot j for `users[j % users]` through
/// `instances[j % instances]`, eight requests at a time.
async fn create_across(instances: &[Api], users: &[User], prefix: &str, count: usize) {
    use futures::StreamExt;
    let requests = (0..count).map(|j| {
        let api = instances[j % instances.len()].clone();
        let user = users[j % users.len()].clone();
        let body = nth_body(&format!("{prefix}-{j}"), j as i64);
        async move { api.must(Method::POST, "/slots", &user.token, Some(&body)).await }
    });
    futures::stream::iter(requests)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

/// Waits until every slot of every user is at Google (`synced == expected` each).
async fn wait_synced(api: &Api, users: &[User], expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for user in users {
        loop {
            let status = api.sync_status(user).await;
            if status["outbox"]["synced"] == expected && status["outbox"]["pending"] == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never got all {expected} slots to Google: {status}",
                user.email
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until the emulator's counters stop moving (deliveries done, the pulls they asked
/// for done), so what a job does next can be counted alone.
async fn quiet(google: &Google) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = google.stats().await;
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_millis(1500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = google.stats().await;
        if now["requests"] != last["requests"] || now["notifications"] != last["notifications"] {
            still_since = Instant::now();
            last = now;
        }
        assert!(Instant::now() < deadline, "Google never became quiet: {last}");
    }
}

/// The sum of `key` over job outcomes.
fn total(outcomes: &[&Value], key: &str) -> u64 {
    outcomes.iter().map(|o| o[key].as_u64().unwrap_or(0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_the_work_without_doubling_it() {
    // Two processes on one database: a fresh PostgreSQL database when TEST_DATABASE_URL is
    // set (the deployment this is for), otherwise one SQLite file shared by both processes
    // (WAL mode and a 10 s busy timeout make that work; SQLite serialises the claims).
    let dir = tempfile::tempdir().unwrap();
    let google = Google::start(dir.path()).await;
    let (database_url, _db) = test_database().await;
    let ports = [free_port(), free_port()];
    google.register_client(&ports.map(callback_url)).await;
    // Jobs run only when the test asks, so every Google call can be counted. Channels are
    // made with a 10-minute ttl, so the renewal below (window: a day) finds them all due.
    let common = [
        ("SCHEDULER_ENABLED", "false"),
        ("CHANNEL_TTL_SECS", "600"),
        ("USER_BREAKER_FAILURES", "1000"),
    ];
    let mut a = Service::start(
        ServiceSpec::new("instance-a", ports[0], &database_url, &google.base_url()).with(&common),
        dir.path(),
    )
    .await;
    let mut b = Service::start(
        ServiceSpec::new("instance-b", ports[1], &database_url, &google.base_url()).with(&common),
        dir.path(),
    )
    .await;
    let instances = [a.api.clone(), b.api.clone()];

    // Three users, connected through alternating instances (each callback goes back to
    // the instance that started the flow; its channel notifies that instance).
    let mut users = Vec::new();
    for (i, email) in ["ann@example.com", "bob@example.com", "cyd@example.com"]
        .into_iter()
        .enumerate()
    {
        let api = &instances[i % 2];
        let user = api.create_user(email).await;
        api.connect_google(&user).await;
        users.push(user);
    }
    for user in &users {
        a.api.wait_first_pull(user, || true).await;
    }

    // ~100 slots created through both instances: each inserted into Google exactly once.
    let before = google.stats().await;
    create_across(&instances, &users, "s", 99).await;
    wait_synced(&a.api, &users, 33).await;
    let after = google.stats().await;
    let inserted = delta(&after, &before, "events.insert", "200");
    let duplicates = delta(&after, &before, "events.insert", "409");
    let patched = delta(&after, &before, "events.patch", "200");
    let pushed_by = [
        a.api.metric("slotsync_pushes_total{outcome=\"pushed\"}").await,
        b.api.metric("slotsync_pushes_total{outcome=\"pushed\"}").await,
    ];
    eprintln!(
        "two instances: 99 slots → events.insert 200={inserted} 409={duplicates}, events.patch 200={patched}; \
         pushed by A {} and B {}",
        pushed_by[0], pushed_by[1]
    );
    assert_eq!(inserted, 99, "{after}");
    assert_eq!(duplicates, 0, "a slot was pushed twice: {after}");
    assert_eq!(patched, 0, "an echo was written back: {after}");
    assert_eq!(pushed_by[0] + pushed_by[1], 99.0);

    // Both instances restart (SIGTERM, exit 0) with the default channel ttl (7 days), as
    // after a deploy: the channels made with 600 s are due, the new ones will not be.
    for service in [&mut a, &mut b] {
        service.terminate();
        let status = service.wait_exit(Duration::from_secs(20)).await;
        assert!(status.is_some_and(|s| s.success()), "{}: {status:?}", service.spec.name);
        service.reconfigure(&[("CHANNEL_TTL_SECS", "604800")]);
        service.restart().await;
    }
    // Every Google call takes 300 ms, so both runs overlap and race for every channel.
    google.faults(json!({"latency_ms": [300, 300]})).await;
    quiet(&google).await;
    let before = google.stats().await;
    let (ra, rb) = tokio::join!(a.api.run_job("renew_channels"), b.api.run_job("renew_channels"));
    let after = google.stats().await;
    let watched = delta(&after, &before, "events.watch", "200");
    let stopped = delta(&after, &before, "channels.stop", "204");
    eprintln!(
        "two instances: renew_channels on both at once → A {ra}, B {rb}; events.watch 200={watched} \
         (total {}), channels.stop 204={stopped}",
        after.op_count("events.watch", "200")
    );
    assert_eq!(total(&[&ra, &rb], "renewed"), 3, "A {ra}, B {rb}");
    assert_eq!(watched, 3, "{after}");
    assert_eq!(after.op_count("events.watch", "200"), 6, "2 × channels: {after}");
    assert_eq!(stopped, 3, "{after}");
    let live = google
        .channels()
        .await
        .into_iter()
        .filter(|c| c["live"] == true)
        .count();
    assert_eq!(live, 3, "one live channel per user");
    // Nothing is due any more: a second run on both does nothing.
    let (ra, rb) = tokio::join!(a.api.run_job("renew_channels"), b.api.run_job("renew_channels"));
    assert_eq!(total(&[&ra, &rb], "renewed"), 0, "A {ra}, B {rb}");

    // The fallback sync on both at once, every user due: each user is pulled once (the
    // instances claim disjoint batches), so Google is listed once per user, not twice.
    quiet(&google).await;
    let db = open_db(&database_url).await;
    slotsync::store::pull_schedule::make_all_due(&db, Utc::now())
        .await
        .unwrap();
    let before = google.stats().await;
    let (fa, fb) = tokio::join!(a.api.run_job("fallback_sync"), b.api.run_job("fallback_sync"));
    let after = google.stats().await;
    let listed = delta(&after, &before, "events.list", "200");
    eprintln!("two instances: fallback_sync on both at once → A {fa}, B {fb}; events.list 200={listed}");
    assert_eq!(listed, total(&[&fa, &fb], "pulled"), "a listing without a claimed pull");
    assert_eq!(listed, users.len() as u64, "one listing per user");
    assert_eq!(total(&[&fa, &fb], "failed"), 0, "A {fa}, B {fb}");

    // Retries: 30 slots whose inserts fail (503) until Google recovers, then both workers
    // and `retry_pushes` on both instances at once retry them: still one insert each.
    google.faults(json!({"ops": {"events.insert": {"503": 1.0}}})).await;
    let before = google.stats().await;
    create_across(&instances, &users, "r", 30).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while google.stats().await["faults"]["events.insert"]["503"]
        .as_u64()
        .unwrap_or(0)
        < before["faults"]["events.insert"]["503"].as_u64().unwrap_or(0) + 30
    {
        assert!(Instant::now() < deadline, "the inserts never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    google.faults(json!({"latency_ms": [200, 200]})).await;
    let (pa, pb) = tokio::join!(a.api.run_job("retry_pushes"), b.api.run_job("retry_pushes"));
    wait_synced(&a.api, &users, 43).await;
    let after = google.stats().await;
    let inserted = delta(&after, &before, "events.insert", "200");
    eprintln!(
        "two instances: 30 failed inserts retried by both workers and retry_pushes on both (A {pa}, B {pb}) \
         → events.insert 200={inserted} 409={}",
        delta(&after, &before, "events.insert", "409")
    );
    assert_eq!(inserted, 30, "{after}");
    assert_eq!(after.op_count("events.insert", "409"), 0, "{after}");

    // Google holds each slot exactly once.
    for user in &users {
        let slots = all_slots(&a.api, user).await;
        let events = google.events(&user.email).await;
        assert_eq!(slots.len(), 43);
        assert_eq!(events.len(), 43, "{}", user.email);
        for slot in &slots {
            let written = events.iter().filter(|e| tagged_slot(e) == slot["id"].as_str()).count();
            assert_eq!(written, 1, "slot {slot}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. Graceful shutdown
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_pushes_and_exits_zero() {
    use sea_orm::EntityTrait;
    use slotsync::store::entities::{slots, sync_states};
    const SLOTS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let google = Google::start(dir.path()).await;
    let (database_url, _db) = test_database().await;
    let port = free_port();
    google.register_client(&[callback_url(port)]).await;
    // Four pushes at a time, the scheduler on (its retry job runs every second), JSON logs
    // so the worker's last words can be read.
    let spec = ServiceSpec::new("graceful", port, &database_url, &google.base_url()).with(&[
        ("PUSH_CONCURRENCY", "4"),
        ("SCHEDULE_RETRY_PUSHES", "*/1 * * * * *"),
        ("LOG_FORMAT", "json"),
    ]);
    let mut service = Service::start(spec, dir.path()).await;
    let api = service.api.clone();
    let user = api.create_user(EMAIL).await;
    api.connect_google(&user).await;
    api.wait_first_pull(&user, || true).await;

    // Every Google call takes 300 ms: 40 slots take ~3 s to push, four at a time.
    google.faults(json!({"latency_ms": [300, 300]})).await;
    for n in 0..SLOTS {
        let body = nth_body(&format!("g-{n}"), n as i64);
        api.must(Method::POST, "/slots", &user.token, Some(&body)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.sync_status(&user).await["outbox"]["in_flight"] == 0 {
        assert!(Instant::now() < deadline, "no push ever started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the claimed pushes reach Google (they are answered 300 ms later).
    tokio::time::sleep(Duration::from_millis(100)).await;

    let address = format!("127.0.0.1:{port}");
    let signalled = Instant::now();
    service.terminate();
    // New connections are refused while the in-flight pushes finish.
    let refused_after = loop {
        if tokio::net::TcpStream::connect(&address).await.is_err() {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still accepting 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let alive_when_refusing = service.is_running();
    let status = service.wait_exit(Duration::from_secs(30)).await;
    let exited_after = signalled.elapsed();
    assert!(status.is_some_and(|s| s.success()), "exit status {status:?}");
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "a connection was accepted after exit"
    );
    let log = service.log();
    let in_flight_at_stop = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "push worker stopped")
        .map(|l| l["fields"]["in_flight"].clone());

    // What the stopped process left: no claim, and each slot either fully pushed (clean,
    // its event at Google with its fingerprint) or untouched (dirty, no event).
    let db = open_db(&database_url).await;
    let rows = slots::Entity::find().all(&db).await.unwrap();
    let pull_claims = sync_states::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .iter()
        .filter(|s| s.pull_lease_until.is_some())
        .count();
    db.close().await.ok();
    let events = google.events(EMAIL).await;
    let stats = google.stats().await;
    let mut clean = 0u64;
    let mut problems = Vec::new();
    for row in &rows {
        let event = events.iter().find(|e| tagged_slot(e) == Some(&row.id.to_string()));
        if row.push_lease_until.is_some() {
            problems.push(format!(
                "slot {} ({}) is still claimed until {:?}, its event at Google: {}",
                row.title,
                row.push_state,
                row.push_lease_until,
                event.is_some()
            ));
        }
        match row.push_state {
            slotsync::domain::PushState::Clean => {
                clean += 1;
                let fingerprint = event.and_then(|e| e["extendedProperties"]["private"]["slotsync_fp"].as_str());
                if row.synced_version != Some(row.version) || fingerprint != row.synced_fingerprint.as_deref() {
                    problems.push(format!("slot {} is clean but Google has {event:?}", row.title));
                }
            }
            slotsync::domain::PushState::Dirty if event.is_some() => problems.push(format!(
                "slot {} is pending but Google has its event: a push was cut half-way",
                row.title
            )),
            slotsync::domain::PushState::Dirty => {}
            other => problems.push(format!("slot {} is {other}", row.title)),
        }
    }
    if pull_claims > 0 {
        problems.push(format!(
            "{pull_claims} pull claim(s) left: a pull was cut, and pulls of that user are refused as busy \
             until PULL_LEASE_SECS pass"
        ));
    }
    let inserted = stats.op_count("events.insert", "200");
    if inserted != clean {
        problems.push(format!(
            "Google applied {inserted} inserts, {clean} slots are recorded as pushed"
        ));
    }
    eprintln!(
        "graceful shutdown: SIGTERM with {} pushes in flight (worker's count: {in_flight_at_stop:?}); new \
         connections refused after {refused_after:?} (process still running: {alive_when_refusing}); exit \
         {status:?} after {exited_after:?}; {clean} of {SLOTS} slots pushed, {} left pending; claims \
         left: {} push, {pull_claims} pull",
        in_flight_at_stop.as_ref().map_or("?".into(), Value::to_string),
        SLOTS - clean,
        rows.iter().filter(|r| r.push_lease_until.is_some()).count(),
    );
    assert!(
        problems.is_empty(),
        "the stopped process left work half-done:\n  {}",
        problems.join("\n  ")
    );
    assert!(clean > 0, "no push finished");

    // Started again, it pushes what was left, once each.
    google.faults(Value::Null).await;
    let restarted = Instant::now();
    service.restart().await;
    wait_synced(&api, std::slice::from_ref(&user), SLOTS).await;
    let stats = google.stats().await;
    eprintln!(
        "graceful shutdown: converged {:?} after the restart",
        restarted.elapsed()
    );
    assert_eq!(stats.op_count("events.insert", "200"), SLOTS, "{stats}");
    assert_eq!(stats.op_count("events.insert", "409"), 0, "{stats}");
    let events = google.events(EMAIL).await;
    assert_eq!(events.iter().filter(|e| !cancelled(e)).count() as u64, SLOTS);
}

// ---------------------------------------------------------------------------------------
// 4. Outbound webhooks: a process killed mid-delivery
// ---------------------------------------------------------------------------------------

/// A receiver that holds every request without answering (as a slow endpoint would) until
/// told to answer; it writes down each request's `webhook-id` and when it arrived.
#[derive(Clone, Default)]
struct SlowReceiver {
    answer: Arc<AtomicBool>,
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
}

#[poem::handler]
async fn slow_receive(
    headers: &poem::http::HeaderMap,
    poem::web::Data(rx): poem::web::Data<&SlowReceiver>,
) -> poem::http::StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    rx.arrivals.lock().push((id, Instant::now()));
    while !rx.answer.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    poem::http::StatusCode::NO_CONTENT
}

/// A delivery in flight when the process is killed (SIGKILL: no time to record anything) is
/// delivered again after the restart, with the same `webhook-id`, once the dead process's
/// lease on the endpoint runs out — and then recorded as delivered, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_in_flight_when_the_process_is_killed_is_delivered_again_after_the_restart() {
    use poem::EndpointExt;

    let dir = tempfile::tempdir().unwrap();
    let google = Google::start(dir.path()).await;
    let (database_url, _db) = test_database().await;
    let port = free_port();
    google.register_client(&[callback_url(port)]).await;
    let mut service = Service::start(
        ServiceSpec::new("service", port, &database_url, &google.base_url())
            .with(&[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")]),
        dir.path(),
    )
    .await;
    let api = service.api.clone();
    let user = api.create_user(EMAIL).await;

    let rx = SlowReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = slow_receive.data(rx.clone());
    tokio::spawn(async move {
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    let endpoint = api
        .must(
            Method::POST,
            "/webhook-endpoints",
            &user.token,
            Some(&json!({ "url": url })),
        )
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let now = Utc::now();
    let at = |h: i64| (now + chrono::Duration::hours(h)).to_rfc3339();
    api.must(
        Method::POST,
        "/slots",
        &user.token,
        Some(&json!({ "title": "in flight", "start": at(24), "end": at(25), "timezone": "UTC" })),
    )
    .await;

    // The delivery is in flight (the receiver holds it); the process dies under it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.arrivals.lock().is_empty() {
        assert!(Instant::now() < deadline, "the delivery never left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.kill();
    let killed = Instant::now();
    let first = rx.arrivals.lock()[0].0.clone();
    assert!(first.starts_with("msg_"), "a Standard Webhooks id: {first}");
    rx.answer.store(true, Ordering::SeqCst);

    service.restart().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let deliveries = loop {
        let deliveries = api
            .must(
                Method::GET,
                &format!("/webhook-endpoints/{endpoint_id}/deliveries"),
                &user.token,
                None,
            )
            .await;
        if deliveries[0]["state"] == "delivered" {
            break deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered again after the restart: {deliveries}; arrivals {:?}",
            rx.arrivals.lock().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let arrivals = rx.arrivals.lock().clone();
    eprintln!(
        "killed mid-delivery: delivered again {:?} after the kill ({} arrivals)",
        arrivals.last().unwrap().1.duration_since(killed),
        arrivals.len()
    );
    assert_eq!(arrivals.len(), 2, "once before the kill, once after: {arrivals:?}");
    assert!(
        arrivals.iter().all(|(id, _)| *id == first),
        "the same webhook-id on the retry: {arrivals:?}"
    );
    let items = deliveries.as_array().unwrap();
    assert_eq!(items.len(), 1, "one delivery row for one change: {deliveries}");
}
