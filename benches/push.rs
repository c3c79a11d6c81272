//! Push throughput: N slots (default 1 000) over U users (default 100) created through the
//! API and pushed to the Google emulator by the push worker, against a bare google-calendar3
//! client inserting the same events straight into the emulator at the same concurrency.
//!
//! `cargo bench --bench push` prints markdown tables. Environment:
//! - `BENCH_SLOTS`, `BENCH_USERS`: the workload (defaults 1000 and 100);
//! - `BENCH_GOOGLE_LATENCY_MS`: latency the emulator adds to every Calendar call, `100` or
//!   a uniform range `50-150` (default none: the emulator answers in about a millisecond);
//! - `BENCH_DATABASE_URL`: a PostgreSQL URL (`postgres://…`) under which a fresh database is
//!   created and dropped afterwards; SQLite in a temporary directory (`TMPDIR`) otherwise;
//! - `RUST_LOG`: turns the service's logs on (off by default);
//! - the service's own variables (`PUSH_CONCURRENCY`, …) are honoured, as by `slotsync serve`.
//!
//! The bare client, and the clients driving the API, keep as many requests in flight as the
//! push worker (`PUSH_CONCURRENCY`, default 32).
//!
//! Phases, all in one process on a multi-threaded runtime, against one emulator:
//! 1. slotsync end to end: the service with its push worker (the job scheduler off, see
//!    [`settings`]); N `POST /slots` from the first request until every slot is `clean`
//!    (Google holds its version);
//! 2. the bare client: N `events.insert` for other emulator users;
//! 3. diagnostics on the same database and users: N `POST /slots` with no worker running
//!    (the API alone), then the worker started on that full outbox (the push alone).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use google_calendar3::api::{Event, EventDateTime, EventExtendedProperties};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use slotsync::domain::{EventId, PushState, SlotId};
use slotsync::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use slotsync::google::hub::{http_client, hub_with};
use slotsync::google::GoogleEndpoints;
use slotsync::store::entities::slots;
use uuid::Uuid;

mod common;

use common::{env_latency, env_usize, Latencies};
use slotsync_testkit::{free_port, Google, RunningApp as Service, Stats};

const TIMEZONE: &str = "Europe/Paris";
/// How often the database is polled for the number of clean slots.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// Give up when the outbox has not drained after this long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The workload.
#[derive(Debug, Clone, Copy)]
struct Workload {
    slots: usize,
    users: usize,
    concurrency: usize,
    /// Latency the emulator adds to every Calendar call (uniform range, ms).
    google_latency_ms: Option<[u64; 2]>,
}

impl Workload {
    /// Slot `k` belongs to user `k % users`: each user's slots are spread over the run.
    fn owner(&self, k: usize) -> usize {
        k % self.users
    }
}

/// The content of slot (and bare event) number `k`: 30 minutes, one hour apart.
fn content(k: usize) -> (String, DateTime<Utc>, DateTime<Utc>) {
    let base: DateTime<Utc> = "2031-03-03T08:00:00Z".parse().expect("a valid instant");
    let start = base + chrono::Duration::hours(k as i64);
    (format!("Bench slot {k}"), start, start + chrono::Duration::minutes(30))
}

fn slot_body(k: usize) -> Value {
    let (title, start, end) = content(k);
    json!({ "title": title, "start": start.to_rfc3339(), "end": end.to_rfc3339(), "timezone": TIMEZONE })
}

fn millis(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Google requests counted by the emulator: the total of the `events.*` ones, and a
/// `op status: n` line for every operation.
fn google_calls(stats: &Stats) -> (u64, Vec<String>) {
    let detail = stats
        .requests
        .iter()
        .flat_map(|(op, statuses)| statuses.iter().map(move |(status, n)| format!("{op} {status}: {n}")))
        .collect();
    (stats.calendar_calls(), detail)
}

/// What one timed phase measured.
struct Measured {
    slots: usize,
    wall: Duration,
    latencies_ms: Latencies,
    /// `events.*` requests the emulator answered during the phase (`None`: not counted).
    google_calls: Option<u64>,
    notes: Vec<String>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.slots as f64 / self.wall.as_secs_f64()
    }

    fn row(&self, name: &str, latency: &str) -> String {
        let calls = self
            .google_calls
            .map_or("–".to_owned(), |c| format!("{:.2}", c as f64 / self.slots as f64));
        format!(
            "| {name} | {:.0} | {calls} | {:.1} | {:.1} | {latency} |",
            self.per_second(),
            self.latencies_ms.p50(),
            self.latencies_ms.p99(),
        )
    }
}

/// A slot created through the API.
struct Created {
    id: Uuid,
    /// When its 201 arrived.
    answered_at: DateTime<Utc>,
    /// How long its `POST /slots` took.
    post_ms: f64,
}

/// `POST /slots` for slots `0..n` (slot `k` by user `k % users`), `concurrency` at a
/// time.
async fn create_slots(
    service: &Service,
    http: &reqwest::Client,
    work: Workload,
    tokens: &[String],
) -> anyhow::Result<Vec<Created>> {
    stream::iter(0..work.slots)
        .map(|k| {
            let req = http
                .post(format!("{}/slots", service.address))
                .bearer_auth(&tokens[work.owner(k)])
                .json(&slot_body(k));
            async move {
                let sent = Instant::now();
                let resp = req.send().await?;
                let (answered_at, took) = (Utc::now(), sent.elapsed());
                ensure!(resp.status() == 201, "POST /slots answered {}", resp.status());
                let body: Value = resp.json().await?;
                let id = body["id"].as_str().context("the slot's id")?.parse()?;
                Ok(Created {
                    id,
                    answered_at,
                    post_ms: took.as_secs_f64() * 1e3,
                })
            }
        })
        .buffer_unordered(work.concurrency)
        .collect::<Vec<anyhow::Result<_>>>()
        .await
        .into_iter()
        .collect()
}

/// Polls until at least `target` slots are clean; returns how long that took.
async fn wait_clean(service: &Service, target: u64, since: Instant) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let clean = slots::Entity::find()
            .filter(slots::Column::PushState.eq(PushState::Clean))
            .count(&service.state.db)
            .await?;
        if clean >= target {
            return Ok(since.elapsed());
        }
        if Instant::now() > deadline {
            let rows = slots::Entity::find()
                .filter(slots::Column::PushState.ne(PushState::Clean))
                .all(&service.state.db)
                .await?;
            for row in rows.iter().take(5) {
                eprintln!(
                    "not clean: {} state={} attempts={} error={:?}",
                    row.id, row.push_state, row.push_attempts, row.last_push_error
                );
            }
            bail!("{} slots were still not clean after {DRAIN_TIMEOUT:?}", rows.len());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The stored rows of `ids`: when each became synced, and anything unusual about them.
async fn synced_rows(
    service: &Service,
    ids: impl Iterator<Item = Uuid>,
) -> anyhow::Result<(HashMap<Uuid, DateTime<Utc>>, String)> {
    let rows: HashMap<Uuid, slots::Model> = slots::Entity::find()
        .all(&service.state.db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut at = HashMap::new();
    let (mut odd_version, mut retried, mut unsynced) = (0, 0, 0);
    for id in ids {
        let row = rows.get(&id).context("a created slot is in the database")?;
        odd_version += usize::from(row.version != 1 || row.synced_version != Some(1));
        retried += usize::from(row.push_attempts != 0 || row.last_push_error.is_some());
        match row.last_synced_at {
            Some(t) if row.push_state == PushState::Clean => {
                at.insert(id, t);
            }
            _ => unsynced += 1,
        }
    }
    // A stall of the worker shows as a long gap between two slots becoming clean.
    let mut times: Vec<DateTime<Utc>> = at.values().copied().collect();
    times.sort();
    let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    let stalled = if gap >= chrono::Duration::seconds(5) {
        " — a STALL (RUST_LOG=warn shows why)"
    } else {
        ""
    };
    let oddities = format!(
        "slots not at version 1 / synced_version 1: {odd_version}; with a retry or error recorded: {retried}; not clean: {unsynced}; longest time with no slot becoming clean: {:.0} ms{stalled}",
        millis(gap)
    );
    Ok((at, oddities))
}

/// Phases 1 and 3: slotsync end to end, then the API and the push worker each alone.
async fn bench_slotsync(
    work: Workload,
    google: &EmulatorHandle,
    database_url: &str,
    http: &reqwest::Client,
) -> anyhow::Result<(Measured, Measured, Measured)> {
    let control = Google::at(&google.base_url());
    // The OAuth callback must be registered before the service starts: pick its port first.
    let port = free_port();
    control.register_client(&[slotsync_testkit::callback_url(port)]).await;
    let settings = common::settings_with_google(&google.base_url(), database_url, port);
    let mut service = Service::start(settings.clone()).await;

    // Setup, not timed: users, their Google connections and the first pull each connection
    // starts.
    let tokens: Vec<String> = stream::iter(0..work.users)
        .map(|u| {
            let service = &service;
            async move {
                let user = service.connected_user(&format!("bench-user-{u}@example.com")).await;
                user.token
            }
        })
        .buffered(8)
        .collect()
        .await;
    common::wait_quiet(&control).await?;
    common::set_latency(&control, work.google_latency_ms).await;
    control.clear_stats().await;

    // Phase 1, timed: from the first POST until the last slot is clean.
    let started_at = Utc::now();
    let started = Instant::now();
    let created = create_slots(&service, http, work, &tokens).await?;
    let api_done = started.elapsed();
    let polled = wait_clean(&service, work.slots as u64, started).await?;
    let (synced, oddities) = synced_rows(&service, created.iter().map(|c| c.id)).await?;
    let mut latencies = Vec::with_capacity(created.len());
    let mut last_clean = started_at;
    for c in &created {
        let clean_at = synced[&c.id];
        last_clean = last_clean.max(clean_at);
        latencies.push(millis(clean_at - c.answered_at));
    }
    let wall = (last_clean - started_at).to_std().unwrap_or(polled);
    let (calls, detail) = google_calls(&control.stats().await);
    service.stop().await;
    let end_to_end = Measured {
        slots: work.slots,
        wall,
        latencies_ms: Latencies::new(latencies),
        google_calls: Some(calls),
        notes: vec![
            format!(
                "the {} POST /slots were all answered after {:.0} ms; the last slot was clean (its `last_synced_at`) after {:.0} ms (the {} ms poll saw it at {:.0} ms)",
                work.slots,
                api_done.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3,
                POLL_EVERY.as_millis(),
                polled.as_secs_f64() * 1e3
            ),
            format!("emulator requests: {}", detail.join(", ")),
            oddities,
        ],
    };

    // Phase 3: same database and users; the API with no worker running, then the worker
    // alone on the outbox that left.
    let mut service = Service::start_api_only(settings).await;
    let started = Instant::now();
    let created = create_slots(&service, http, work, &tokens).await?;
    let api_wall = started.elapsed();
    let api_only = Measured {
        slots: work.slots,
        wall: api_wall,
        latencies_ms: Latencies::new(created.iter().map(|c| c.post_ms).collect()),
        google_calls: None,
        notes: Vec::new(),
    };
    control.clear_stats().await;
    let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
    let worker_started_at = Utc::now();
    let worker_started = Instant::now();
    let worker = tokio::spawn(Arc::clone(&service.state.pusher).run(service.state.push_waker.clone(), worker_stop));
    let polled = wait_clean(&service, 2 * work.slots as u64, worker_started).await?;
    let (synced, oddities) = synced_rows(&service, created.iter().map(|c| c.id)).await?;
    let last_clean = synced.values().copied().max().unwrap_or(worker_started_at);
    let latencies = synced.values().map(|t| millis(*t - worker_started_at)).collect();
    let (calls, detail) = google_calls(&control.stats().await);
    let _ = stop_worker.send(true);
    worker.await?;
    service.stop().await;
    let push_only = Measured {
        slots: work.slots,
        wall: (last_clean - worker_started_at).to_std().unwrap_or(polled),
        latencies_ms: Latencies::new(latencies),
        google_calls: Some(calls),
        notes: vec![format!("emulator requests: {}", detail.join(", ")), oddities],
    };
    Ok((end_to_end, api_only, push_only))
}

/// Phase 2: the same events inserted straight into the emulator by google-calendar3 hubs
/// (one per user, over one shared connection pool, as the service's gateway does).
async fn bench_bare(work: Workload, google: &EmulatorHandle) -> anyhow::Result<Measured> {
    let control = Google::at(&google.base_url());
    let endpoints = GoogleEndpoints::emulator(&google.base_url());
    let client = http_client();
    let mut hubs = Vec::with_capacity(work.users);
    for u in 0..work.users {
        let token = control.user_token(&format!("bare-user-{u}@example.com")).await;
        hubs.push(Arc::new(hub_with(client.clone(), &endpoints, token)));
    }
    common::set_latency(&control, work.google_latency_ms).await;
    control.clear_stats().await;

    let started = Instant::now();
    let latencies: Vec<f64> = stream::iter(0..work.slots)
        .map(|k| {
            let hub = Arc::clone(&hubs[work.owner(k)]);
            let (title, start, end) = content(k);
            let slot = SlotId::new();
            let at = |t: DateTime<Utc>| EventDateTime {
                date_time: Some(t),
                time_zone: Some(TIMEZONE.to_owned()),
                ..Default::default()
            };
            // The shape the service writes: derived id, times with their zone, and the
            // three private properties (the fingerprint is a stand-in of the same size).
            let event = Event {
                id: Some(EventId::from_slot(slot).as_str().to_owned()),
                summary: Some(title),
                start: Some(at(start)),
                end: Some(at(end)),
                status: Some("confirmed".to_owned()),
                extended_properties: Some(EventExtendedProperties {
                    private: Some(
                        [
                            ("slotsync_slot".to_owned(), slot.to_string()),
                            ("slotsync_origin".to_owned(), "bench-bare-client".to_owned()),
                            ("slotsync_fp".to_owned(), "0".repeat(64)),
                        ]
                        .into(),
                    ),
                    shared: None,
                }),
                ..Default::default()
            };
            async move {
                let sent = Instant::now();
                hub.events().insert(event, "primary").doit().await?;
                Ok(sent.elapsed().as_secs_f64() * 1e3)
            }
        })
        .buffer_unordered(work.concurrency)
        .collect::<Vec<anyhow::Result<f64>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let wall = started.elapsed();
    let (calls, detail) = google_calls(&control.stats().await);
    Ok(Measured {
        slots: work.slots,
        wall,
        latencies_ms: Latencies::new(latencies),
        google_calls: Some(calls),
        notes: vec![format!("emulator requests: {}", detail.join(", "))],
    })
}

struct Results {
    end_to_end: Measured,
    bare: Measured,
    api_only: Measured,
    push_only: Measured,
}

async fn run(work: Workload, database_url: &str) -> anyhow::Result<Results> {
    let http = reqwest::Client::new();
    let google = Emulator::start(EmulatorConfig::for_tests()).await?;
    let (end_to_end, api_only, push_only) = bench_slotsync(work, &google, database_url, &http).await?;
    let bare = bench_bare(work, &google).await?;
    google.shutdown().await;
    Ok(Results {
        end_to_end,
        bare,
        api_only,
        push_only,
    })
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and perhaps a filter): there is one benchmark, so
    // arguments are ignored.
    slotsync_testkit::init_logs();
    let concurrency = common::settings("sqlite::memory:", 0).push_concurrency.max(1);
    let work = Workload {
        slots: env_usize("BENCH_SLOTS", 1000)?,
        users: env_usize("BENCH_USERS", 100)?,
        concurrency,
        google_latency_ms: env_latency()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (database_url, db) = common::bench_database().await;
        let database = db.describe();
        let result = run(work, &database_url).await;
        db.remove().await;
        report(work, database, &result?);
        Ok(())
    })
}

fn report(work: Workload, database: &str, r: &Results) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let latency = match work.google_latency_ms {
        None => "none added".to_owned(),
        Some([lo, hi]) if lo == hi => format!("+{lo} ms per call"),
        Some([lo, hi]) => format!("+{lo}–{hi} ms per call"),
    };
    println!();
    println!(
        "push benchmark: {} slots over {} users, {} in flight, {database}, emulator latency {latency}, {cpus} CPUs",
        work.slots, work.users, work.concurrency
    );
    println!();
    println!("| client | slots/s | Google calls per slot | p50 (ms) | p99 (ms) | latency measured |");
    println!("|---|---:|---:|---:|---:|---|");
    println!(
        "{}",
        r.end_to_end.row("slotsync (API → push worker)", "API 201 → `clean`")
    );
    println!("{}", r.bare.row("bare google-calendar3 client", "one `events.insert`"));
    let ratio = r.end_to_end.per_second() / r.bare.per_second();
    println!();
    println!(
        "ratio slotsync / bare: {ratio:.2} (target ≥ 0.50: {})",
        if ratio >= 0.5 { "met" } else { "not met" }
    );
    println!();
    println!("Where the time goes (same database and users, each part alone):");
    println!();
    println!("| part | slots/s | Google calls per slot | p50 (ms) | p99 (ms) | latency measured |");
    println!("|---|---:|---:|---:|---:|---|");
    println!(
        "{}",
        r.api_only
            .row("API alone (`POST /slots`, worker off)", "one `POST /slots`")
    );
    println!(
        "{}",
        r.push_only
            .row("push worker alone (outbox pre-filled)", "worker start → `clean`")
    );
    println!();
    for (name, m) in [
        ("slotsync end to end", &r.end_to_end),
        ("bare client", &r.bare),
        ("push worker alone", &r.push_only),
    ] {
        println!("{name}: wall {:.0} ms", m.wall.as_secs_f64() * 1e3);
        for note in &m.notes {
            println!("  - {note}");
        }
    }
}
