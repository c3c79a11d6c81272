//! Changes: how fast the outbound webhooks deliver, how long a Google edit takes to reach
//! a receiver as a signed webhook, and how many feed reads the service answers.
//!
//! `cargo bench --bench changes` prints a markdown table. Environment:
//! - `BENCH_SLOTS`: slots created through the API for the delivery phase (default 500);
//! - `BENCH_EDITS`: edits made in Google, one after another (default 50);
//! - `BENCH_DATABASE_URL`: PostgreSQL (a fresh database, dropped afterwards); SQLite in a
//!   temporary directory otherwise.
//!
//! Everything runs in this process: the emulator, the service (as `slotsync serve` runs
//! it, scheduler off, `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`) and a receiver on a local port
//! that notes when each delivery arrives. Phases:
//! 1. **deliveries/s**: 16 clients create `BENCH_SLOTS` slots; from the first `POST` to the
//!    last `slot.created` webhook received. Lag: a slot's `201` to its webhook.
//! 2. **Google edit → webhook**: each edit is made in Google, then a pull is requested
//!    (`POST /sync/trigger`, what a push notification leads to; channels are off here);
//!    the time from the edit's call to the `slot.updated` webhook's arrival.
//! 3. **feed reads/s**: 16 clients read `GET /changes?limit=50` from the start, again and
//!    again, for 5 s.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;
use common::{ms, Latencies};
use futures::stream::{self, StreamExt};
use google_calendar3::api::Event;
use poem::listener::TcpListener;
use poem::{handler, web::Data, EndpointExt, Route, Server};
use serde_json::{json, Value};
use slotsync_testkit::free_port;

const EMAIL: &str = "changes-bench@example.com";
const CLIENTS: usize = 16;

/// When each delivery arrived, by the slot's title.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, Instant>>>);

#[handler]
fn receive(body: String, arrivals: Data<&Arrivals>) -> &'static str {
    let now = Instant::now();
    if let Ok(v) = serde_json::from_str::<Value>(&body) {
        if let Some(title) = v["data"]["slot"]["title"].as_str() {
            let key = format!("{}|{title}", v["type"].as_str().unwrap_or_default());
            arrivals.0 .0.lock().unwrap().entry(key).or_insert(now);
        }
    }
    "ok"
}

async fn wait_for(arrivals: &Arrivals, key: &str, timeout: Duration) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(at) = arrivals.0.lock().unwrap().get(key) {
            return Ok(*at);
        }
        ensure!(Instant::now() < deadline, "no webhook for {key} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn main() -> anyhow::Result<()> {
    slotsync_testkit::init_logs();
    let slots = common::env_usize("BENCH_SLOTS", 500)?;
    let edits = common::env_usize("BENCH_EDITS", 50)?;
    anyhow::ensure!(
        slots >= 50,
        "BENCH_SLOTS must be at least 50 (the feed is read in pages of 50)"
    );
    anyhow::ensure!(
        edits <= slots,
        "BENCH_EDITS must not exceed BENCH_SLOTS (each edit renames one slot)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(slots, edits))
}

async fn run(slots: usize, edits: usize) -> anyhow::Result<()> {
    let common::OneUser {
        google,
        service,
        user,
        backend,
        db: _db,
    } = common::one_user(EMAIL).await?;

    let arrivals = Arrivals::default();
    let hook_port = free_port();
    let app = Route::new().at("/hook", poem::post(receive)).data(arrivals.clone());
    tokio::spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{hook_port}"))).run(app));
    let http = reqwest::Client::new();
    let endpoint = json!({ "url": format!("http://127.0.0.1:{hook_port}/hook") });
    let resp = http
        .post(service.url("/webhook-endpoints"))
        .bearer_auth(&user.token)
        .json(&endpoint)
        .send()
        .await?;
    ensure!(resp.status() == 201, "creating the endpoint: {}", resp.status());

    // Phase 1: deliveries per second.
    let started = Instant::now();
    let answered: Vec<(String, Instant)> = stream::iter(0..slots)
        .map(|i| {
            let (http, service, token) = (&http, &service, &user.token);
            async move {
                let day = 1 + i % 28;
                let title = format!("s{i}");
                let body = json!({ "title": title, "start": format!("2026-12-{day:02}T09:00:00Z"),
                                   "end": format!("2026-12-{day:02}T10:00:00Z"), "timezone": "UTC" });
                let resp = http
                    .post(service.url("/slots"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await?;
                ensure!(resp.status() == 201, "POST /slots: {}", resp.status());
                Ok::<_, anyhow::Error>((title, Instant::now()))
            }
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut lags = Vec::new();
    let mut last = started;
    for (title, at) in &answered {
        let arrived = wait_for(&arrivals, &format!("slot.created|{title}"), Duration::from_secs(120)).await?;
        lags.push(ms(arrived.saturating_duration_since(*at)));
        last = last.max(arrived);
    }
    let delivery_wall = last - started;
    let lags = Latencies::new(lags);

    // Phase 2: a Google edit to its webhook.
    let hub = google.user_hub(EMAIL).await;
    let mut edit_ms = Vec::new();
    for i in 0..edits {
        let slot_title = format!("s{i}");
        // The webhook for a creation leaves before the push; with few slots the push may
        // still be under way.
        let deadline = Instant::now() + Duration::from_secs(60);
        let event_id = loop {
            let listed: Value = http
                .get(service.url("/slots?limit=500"))
                .bearer_auth(&user.token)
                .send()
                .await?
                .json()
                .await?;
            let slot = listed["items"]
                .as_array()
                .and_then(|items| items.iter().find(|s| s["title"] == slot_title.as_str()))
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("slot {slot_title} not listed"))?;
            if let Some(id) = slot["sync"]["google_event_id"].as_str() {
                break id.to_owned();
            }
            ensure!(Instant::now() < deadline, "slot {slot_title} not pushed within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let renamed = format!("edited {i}");
        let t0 = Instant::now();
        let patch = Event {
            summary: Some(renamed.clone()),
            ..Default::default()
        };
        hub.events().patch(patch, "primary", &event_id).doit().await?;
        let resp = http
            .post(service.url("/sync/trigger"))
            .bearer_auth(&user.token)
            .send()
            .await?;
        ensure!(
            resp.status().is_success() || resp.status() == 409,
            "trigger: {}",
            resp.status()
        );
        let arrived = wait_for(&arrivals, &format!("slot.updated|{renamed}"), Duration::from_secs(30)).await?;
        edit_ms.push(ms(arrived - t0));
    }
    let edit_lat = Latencies::new(edit_ms);

    // Phase 3: feed reads per second.
    let window = Duration::from_secs(5);
    let feed_started = Instant::now();
    let reads: usize = stream::iter(0..CLIENTS)
        .map(|_| {
            let (http, service, token) = (&http, &service, &user.token);
            async move {
                let mut n = 0usize;
                while feed_started.elapsed() < window {
                    let page: Value = http
                        .get(service.url("/changes?limit=50"))
                        .bearer_auth(token)
                        .send()
                        .await?
                        .json()
                        .await?;
                    ensure!(page["changes"].as_array().is_some_and(|c| c.len() == 50), "a full page");
                    n += 1;
                }
                Ok::<_, anyhow::Error>(n)
            }
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum::<Result<usize, _>>()?;
    let feed_secs = feed_started.elapsed().as_secs_f64();

    println!(
        "changes benchmark: {slots} slots by {CLIENTS} clients, {edits} Google edits, {backend}, {}",
        common::machine()
    );
    println!("| phase | count | per second | p50 (ms) | p99 (ms) | max (ms) | measured |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    println!(
        "| webhook deliveries (`slot.created`) | {slots} | {:.0} | {:.1} | {:.1} | {:.1} | first `POST /slots` → last webhook received; latency: `201` → its webhook |",
        slots as f64 / delivery_wall.as_secs_f64(),
        lags.p50(),
        lags.p99(),
        lags.max()
    );
    println!(
        "| Google edit → webhook (`slot.updated`) | {edits} | – | {:.1} | {:.1} | {:.1} | `events.patch` call → webhook received (pull requested by `POST /sync/trigger`) |",
        edit_lat.p50(),
        edit_lat.p99(),
        edit_lat.max()
    );
    println!(
        "| feed reads (`GET /changes?limit=50`) | {reads} | {:.0} | – | – | – | {CLIENTS} clients for {feed_secs:.1} s |",
        reads as f64 / feed_secs
    );
    Ok(())
}
