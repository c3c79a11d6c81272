//! Push fairness: a big user's backlog (default 10 000 slots) drains while a small user
//! creates slots, once per per-user cap (`PUSH_PER_USER_IN_FLIGHT`; default caps 4 and
//! 1 000, which approximates no cap).
//!
//! `cargo bench --bench fairness` prints a markdown table: the small user's latency from
//! its `201` to `clean`, the big user's drain rate meanwhile, and how many of the big
//! user's slots were claimed at once. Environment:
//! - `BENCH_CAPS`: the caps to compare, comma separated (default `4,1000`);
//! - `BENCH_BIG_SLOTS` (10 000), `BENCH_SMALL_SLOTS` (50), `BENCH_SMALL_EVERY_MS` (200):
//!   the backlog, and the small user's slots, one every so many ms;
//! - `BENCH_WARMUP_SECS` (2): how long the backlog drains before the small user starts;
//! - `BENCH_GOOGLE_LATENCY_MS`, `BENCH_DATABASE_URL`, `RUST_LOG`: as for `push`;
//! - the service's own variables are honoured, notably `GOOGLE_USER_CALLS_PER_MINUTE`
//!   (600: Google's per-user quota, which is what holds the big user back) and
//!   `GOOGLE_CALLS_PER_MINUTE`.
//!
//! Each cap runs on a fresh database and emulator: the two users are connected, the
//! backlog is created through the API with no worker running, then the service starts
//! with its worker and the backlog drains while the small user's slots arrive.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use slotsync::domain::{PushState, UserId};
use slotsync::emulator::{Emulator, EmulatorConfig};
use slotsync::store::entities::slots;
use slotsync::store::outbox;
use uuid::Uuid;

mod common;

use common::{env_latency, env_usize, Latencies};
use slotsync_testkit::{free_port, Google, RunningApp as Service};

/// Give up waiting for the small user's slots after this long.
const SMALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the big user's slots in flight are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
struct Workload {
    caps: Vec<usize>,
    big_slots: usize,
    small_slots: usize,
    small_every: Duration,
    warmup: Duration,
    google_latency_ms: Option<[u64; 2]>,
}

/// What one cap gave.
struct Measured {
    cap: usize,
    /// The small user's slots, 201 → `clean` (ms), of those that became clean.
    small: Latencies,
    small_not_clean: usize,
    /// From the small user's first request until its last slot was clean.
    window: Duration,
    /// The big user's slots that became clean within `window`, per second (until the
    /// backlog ran out, if it did).
    big_rate: f64,
    /// The big user's slots still dirty at the end of `window`.
    big_left: u64,
    /// Most of the big user's slots seen claimed at once.
    big_in_flight_max: u64,
    /// `events.*` calls the emulator answered while the service ran, per slot pushed.
    google_calls_per_slot: f64,
}

fn slot_body(title: &str, hour: i64) -> Value {
    let start = "2031-03-03T08:00:00Z".parse::<DateTime<Utc>>().expect("an instant") + chrono::Duration::hours(hour);
    json!({ "title": title, "start": start.to_rfc3339(),
            "end": (start + chrono::Duration::minutes(30)).to_rfc3339(), "timezone": "Europe/Paris" })
}

/// `POST /slots` as the holder of `token`; returns the slot's id and when its 201 arrived.
async fn post_slot(
    service: &Service,
    http: &reqwest::Client,
    token: &str,
    body: &Value,
) -> anyhow::Result<(Uuid, DateTime<Utc>)> {
    let resp = http
        .post(format!("{}/slots", service.address))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let answered_at = Utc::now();
    ensure!(resp.status() == 201, "POST /slots answered {}", resp.status());
    let body: Value = resp.json().await?;
    Ok((body["id"].as_str().context("the slot's id")?.parse()?, answered_at))
}

/// How many of `user`'s slots are clean.
async fn clean_count(service: &Service, user: Uuid) -> anyhow::Result<u64> {
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user))
        .filter(slots::Column::PushState.eq(PushState::Clean))
        .count(&service.state.db)
        .await?)
}

/// When each of `user`'s slots that became clean in `[from, to]` (and still is) did.
async fn clean_between(
    service: &Service,
    user: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<DateTime<Utc>>> {
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user))
        .filter(slots::Column::PushState.eq(PushState::Clean))
        .filter(slots::Column::LastSyncedAt.gte(from))
        .filter(slots::Column::LastSyncedAt.lte(to))
        .all(&service.state.db)
        .await?
        .into_iter()
        .filter_map(|r| r.last_synced_at)
        .collect())
}

/// Samples how many of `user`'s slots are leased until `stop` is set; returns the most.
fn sample_in_flight(service: &Service, user: Uuid, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let db = service.state.db.clone();
    let most = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            if let Ok(depth) = outbox::depth(&db, UserId(user), Utc::now()).await {
                most.fetch_max(depth.in_flight, Ordering::SeqCst);
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
        most.load(Ordering::SeqCst)
    })
}

/// One cap, on a fresh database and emulator.
async fn run_cap(work: &Workload, cap: usize, http: &reqwest::Client) -> anyhow::Result<Measured> {
    let google = Emulator::start(EmulatorConfig::for_tests()).await?;
    let control = Google::at(&google.base_url());
    let (database_url, db) = common::bench_database().await;
    let port = free_port();
    control.register_client(&[slotsync_testkit::callback_url(port)]).await;
    let mut settings = common::settings_with_google(&google.base_url(), &database_url, port);
    settings.push_per_user_in_flight = cap;

    // Setup, not timed: both users connected, the backlog created with no worker running.
    let mut service = Service::start(settings.clone()).await;
    let (big_user, small_user) = (
        service.connected_user("big@example.com").await,
        service.connected_user("small@example.com").await,
    );
    let (big, big_token) = (big_user.user_id().0, big_user.token);
    let (small, small_token) = (small_user.user_id().0, small_user.token);
    common::wait_quiet(&control).await?;
    service.stop().await;
    let mut api = Service::start_api_only(settings.clone()).await;
    let created: Vec<_> = stream::iter(0..work.big_slots)
        .map(|k| {
            let (api, token) = (&api, &big_token);
            async move { post_slot(api, http, token, &slot_body(&format!("big {k}"), k as i64)).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for c in created {
        c?;
    }
    api.stop().await;
    common::set_latency(&control, work.google_latency_ms).await;
    control.clear_stats().await;

    // The service with its worker: the backlog drains; after the warm-up the small user's
    // slots arrive one every `small_every`.
    settings.bind_addr = "127.0.0.1:0".parse()?;
    let mut service = Service::start(settings).await;
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample_in_flight(&service, big, Arc::clone(&stop_sampling));
    tokio::time::sleep(work.warmup).await;
    let window_start = Utc::now();
    let started = Instant::now();
    let mut small_slots = Vec::with_capacity(work.small_slots);
    let mut every = tokio::time::interval(work.small_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0..work.small_slots {
        every.tick().await;
        small_slots.push(
            post_slot(
                &service,
                http,
                &small_token,
                &slot_body(&format!("small {k}"), k as i64),
            )
            .await?,
        );
    }
    let deadline = Instant::now() + SMALL_TIMEOUT;
    while clean_count(&service, small).await? < work.small_slots as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let window = started.elapsed();
    let big_left = work.big_slots as u64 - clean_count(&service, big).await?;
    stop_sampling.store(true, Ordering::SeqCst);
    let big_in_flight_max = sampler.await?;

    let mut latencies = Vec::new();
    let mut last_clean = window_start;
    for (id, answered_at) in &small_slots {
        let row = slots::Entity::find_by_id(*id)
            .one(&service.state.db)
            .await?
            .context("a small slot is stored")?;
        if let (Some(at), PushState::Clean) = (row.last_synced_at, row.push_state) {
            latencies.push((at - *answered_at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
            last_clean = last_clean.max(at);
        }
    }
    let window_end = if latencies.len() == small_slots.len() {
        last_clean
    } else {
        Utc::now()
    };
    let big_clean = clean_between(&service, big, window_start, window_end).await?;
    let big_end = match big_clean.iter().max() {
        Some(last) if big_left == 0 => *last,
        _ => window_end,
    };
    let big_rate = big_clean.len() as f64 / (big_end - window_start).to_std().unwrap_or(window).as_secs_f64();
    let pushed = clean_count(&service, big).await? + latencies.len() as u64;
    let google_calls_per_slot = control.stats().await.calendar_calls() as f64 / pushed.max(1) as f64;
    service.stop().await;
    google.shutdown().await;
    db.remove().await;
    let small_not_clean = small_slots.len() - latencies.len();
    if latencies.is_empty() {
        bail!("none of the small user's slots was clean within {SMALL_TIMEOUT:?} (cap {cap})");
    }
    Ok(Measured {
        cap,
        small: Latencies::new(latencies),
        small_not_clean,
        window: (window_end - window_start).to_std().unwrap_or(window),
        big_rate,
        big_left,
        big_in_flight_max,
        google_calls_per_slot,
    })
}

fn workload() -> anyhow::Result<Workload> {
    let caps = match std::env::var("BENCH_CAPS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|c| {
                c.trim()
                    .parse::<usize>()
                    .context("BENCH_CAPS: comma-separated positive integers")
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        _ => vec![4, 1000],
    };
    ensure!(caps.iter().all(|c| *c > 0), "BENCH_CAPS: each cap must be at least 1");
    Ok(Workload {
        caps,
        big_slots: env_usize("BENCH_BIG_SLOTS", 10_000)?,
        small_slots: env_usize("BENCH_SMALL_SLOTS", 50)?,
        small_every: Duration::from_millis(env_usize("BENCH_SMALL_EVERY_MS", 200)? as u64),
        warmup: Duration::from_secs(env_usize("BENCH_WARMUP_SECS", 2)? as u64),
        google_latency_ms: env_latency()?,
    })
}

fn main() -> anyhow::Result<()> {
    slotsync_testkit::init_logs();
    let work = workload()?;
    let settings = common::settings("sqlite::memory:", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let http = reqwest::Client::new();
    let database = if slotsync_testkit::db::url_from_env(&["BENCH_DATABASE_URL"]).is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for cap in &work.caps {
            results.push(run_cap(&work, *cap, &http).await?);
        }
        anyhow::Ok(results)
    })?;
    let latency = match work.google_latency_ms {
        None => "none added".to_owned(),
        Some([lo, hi]) if lo == hi => format!("+{lo} ms per call"),
        Some([lo, hi]) => format!("+{lo}–{hi} ms per call"),
    };
    println!();
    println!(
        "fairness benchmark: big user's backlog {} slots; small user {} slots, one every {} ms after {} s; \
         {database}; {} pushes in flight; Google {}/min per user, {}/min in all; emulator latency {latency}; {}",
        work.big_slots,
        work.small_slots,
        work.small_every.as_millis(),
        work.warmup.as_secs(),
        settings.push_concurrency,
        settings.google_user_calls_per_minute,
        settings.google_calls_per_minute,
        common::machine()
    );
    println!();
    println!(
        "| per-user cap | small p50 201→clean (ms) | small p99 (ms) | small max (ms) | small not clean | \
         big drain (slots/s) | big slots claimed at once, max | big backlog left | Google calls per slot |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {:.1} | {} | {} | {:.2} |",
            m.cap,
            m.small.p50(),
            m.small.p99(),
            m.small.max(),
            m.small_not_clean,
            m.big_rate,
            m.big_in_flight_max,
            m.big_left,
            m.google_calls_per_slot,
        );
    }
    println!();
    println!(
        "big drain: the big user's slots that became clean between the small user's first request and its last \
         slot being clean ({}; or the backlog's end, if sooner), per second; big backlog left: still not clean then",
        results
            .iter()
            .map(|m| format!("cap {}: {:.1} s", m.cap, m.window.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
