//! API load (issue 7): C concurrent clients (default 200) doing slot CRUD for a fixed time,
//! on SQLite and, when a PostgreSQL server is named, on PostgreSQL.
//!
//! `cargo bench --bench load` prints markdown tables. Environment:
//! - `BENCH_CLIENTS` (default 200), `BENCH_USERS` (default 50): client `i` acts as user
//!   `i % users`, so the per-token inbound limit is spread (it is also set far above the
//!   load: `RATE_LIMIT_PER_MINUTE` = 100 000 000);
//! - `BENCH_DURATION_SECS` (default 20) timed, after `BENCH_WARMUP_SECS` (default 2) not
//!   timed;
//! - `BENCH_DATABASE_URL`, else `TEST_DATABASE_URL`: a PostgreSQL server under which a
//!   fresh database is created for each run and dropped afterwards (without either, only
//!   SQLite runs);
//! - `RUST_LOG`: turns the service's logs on (off by default).
//!
//! Each client repeats one cycle: `POST /slots` → `GET /slots/{id}` → `PUT /slots/{id}`
//! (with `If-Match`) → `GET /slots?limit=20` → `DELETE /slots/{id}` (with `If-Match`), so
//! the mix is 20 % of each. Any other status than the one expected, or a transport error,
//! is an error.
//!
//! Users are **not** connected to Google: this is a pure API load test. Every write still
//! goes through the outbox and wakes the push worker, which looks for due slots of
//! connected users and finds none. Each database runs twice on a fresh database: the
//! service as `slotsync serve` runs it (HTTP and the push worker), and its HTTP routes
//! alone (worker off), which shows what the worker's wake-ups cost the API.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::{ms, Latencies};
use futures::stream::{self, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use slotsync_testkit::{RunningApp as Service, ServiceClient, TestDb};

#[derive(Debug, Clone, Copy)]
struct Workload {
    clients: usize,
    users: usize,
    duration: Duration,
    warm_up: Duration,
}

/// The five operations of a cycle, in order.
const OPS: [&str; 5] = ["create", "get", "update", "list", "delete"];

/// What one client saw.
#[derive(Default)]
struct Seen {
    latencies: [Vec<f64>; 5],
    /// The second of the run in which each of `latencies` was measured.
    at: [Vec<u32>; 5],
    /// Requests answered in each second of the run.
    per_second: Vec<u64>,
    /// `(operation, status or "transport")` → count.
    errors: BTreeMap<(usize, String), u64>,
    first_error: Option<String>,
}

impl Seen {
    fn error(&mut self, op: usize, kind: String, detail: String) {
        *self.errors.entry((op, kind)).or_default() += 1;
        self.first_error.get_or_insert_with(|| format!("{}: {detail}", OPS[op]));
    }

    fn merge(&mut self, other: Seen) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies) {
            mine.extend(theirs);
        }
        for (mine, theirs) in self.at.iter_mut().zip(other.at) {
            mine.extend(theirs);
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(other.per_second) {
            *mine += theirs;
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

fn slot_body(client: usize, round: u64, title: &str) -> Value {
    let start = chrono::DateTime::parse_from_rfc3339("2031-01-06T08:00:00Z").expect("an instant")
        + chrono::Duration::minutes((client as i64 * 10_000 + round as i64 % 10_000) * 30);
    json!({
        "title": format!("{title} {client}/{round}"),
        "description": "load test",
        "start": start.to_rfc3339(),
        "end": (start + chrono::Duration::minutes(30)).to_rfc3339(),
        "timezone": "Europe/Paris",
    })
}

/// One client: cycles until `until`.
async fn client(
    http: reqwest::Client,
    address: Arc<str>,
    token: Arc<str>,
    index: usize,
    started: Instant,
    until: Instant,
) -> Seen {
    let mut seen = Seen::default();
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        // One request: (status expected, the answer's ETag, its JSON body).
        let mut call = async |op: usize,
                              method: Method,
                              path: String,
                              body: Option<Value>,
                              if_match: Option<&str>,
                              expected: StatusCode|
               -> Option<(Option<String>, Value)> {
            let mut req = http.request(method, format!("{address}{path}")).bearer_auth(&*token);
            if let Some(b) = &body {
                req = req.json(b);
            }
            if let Some(v) = if_match {
                req = req.header("If-Match", v);
            }
            let sent = Instant::now();
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    seen.latencies[op].push(ms(sent.elapsed()));
                    seen.at[op].push(started.elapsed().as_secs() as u32);
                    seen.error(op, "transport".into(), e.to_string());
                    return None;
                }
            };
            let status = resp.status();
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.bytes().await;
            seen.latencies[op].push(ms(sent.elapsed()));
            let second = started.elapsed().as_secs() as usize;
            seen.at[op].push(second as u32);
            if seen.per_second.len() <= second {
                seen.per_second.resize(second + 1, 0);
            }
            seen.per_second[second] += 1;
            match bytes {
                Ok(b) if status == expected => Some((etag, serde_json::from_slice(&b).unwrap_or(Value::Null))),
                Ok(b) => {
                    seen.error(
                        op,
                        status.as_u16().to_string(),
                        String::from_utf8_lossy(&b).into_owned(),
                    );
                    None
                }
                Err(e) => {
                    seen.error(op, "transport".into(), e.to_string());
                    None
                }
            }
        };
        let Some((etag, created)) = call(
            0,
            Method::POST,
            "/slots".into(),
            Some(slot_body(index, round, "Load")),
            None,
            StatusCode::CREATED,
        )
        .await
        else {
            continue;
        };
        let Some(id) = created["id"].as_str().map(str::to_owned) else {
            seen.error(0, "no id".into(), created.to_string());
            continue;
        };
        let path = format!("/slots/{id}");
        call(1, Method::GET, path.clone(), None, None, StatusCode::OK).await;
        let updated = call(
            2,
            Method::PUT,
            path.clone(),
            Some(slot_body(index, round, "Load, edited")),
            etag.as_deref(),
            StatusCode::OK,
        )
        .await;
        let etag = updated.and_then(|(e, _)| e).or(etag);
        call(3, Method::GET, "/slots?limit=20".into(), None, None, StatusCode::OK).await;
        call(4, Method::DELETE, path, None, etag.as_deref(), StatusCode::NO_CONTENT).await;
    }
    seen
}

/// `clients` clients until `for_how_long` has passed.
async fn drive(
    http: &reqwest::Client,
    address: &str,
    tokens: &[Arc<str>],
    clients: usize,
    for_how_long: Duration,
) -> anyhow::Result<(Seen, Duration)> {
    let address: Arc<str> = address.into();
    let started = Instant::now();
    let until = started + for_how_long;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        tasks.spawn(client(
            http.clone(),
            Arc::clone(&address),
            Arc::clone(&tokens[i % tokens.len()]),
            i,
            started,
            until,
        ));
    }
    let mut all = Seen::default();
    while let Some(seen) = tasks.join_next().await {
        all.merge(seen?);
    }
    Ok((all, started.elapsed()))
}

/// One timed run.
struct Run {
    name: String,
    wall: Duration,
    /// CPU time of this process (clients and service) during the timed part.
    cpu: Option<Duration>,
    seen: Seen,
    slots_left: u64,
}

impl Run {
    fn requests(&self) -> usize {
        self.seen.latencies.iter().map(Vec::len).sum()
    }

    fn errors(&self) -> u64 {
        self.seen.errors.values().sum()
    }
}

async fn one_run(work: Workload, postgres: Option<&str>, with_worker: bool) -> anyhow::Result<Run> {
    let (database_url, db) = match postgres {
        Some(url) => TestDb::postgres(url, "slotsync_bench").await,
        None => TestDb::sqlite(),
    };
    let name = format!(
        "{}, {}",
        db.describe(),
        if with_worker {
            "service (API + push worker)"
        } else {
            "API alone (worker off)"
        }
    );
    let result = async {
        let settings = common::settings(&database_url, 0);
        let mut service = if with_worker {
            Service::start(settings).await
        } else {
            Service::start_api_only(settings).await
        };
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(work.clients)
            .build()?;
        let api = ServiceClient::new(service.address.clone(), http.clone());
        let tokens: Vec<Arc<str>> = stream::iter(0..work.users)
            .map(|u| {
                let api = &api;
                async move { Arc::from(api.create_user(&format!("load-{u}@example.com")).await.token) }
            })
            .buffered(8)
            .collect()
            .await;
        drive(&http, &service.address, &tokens, work.clients, work.warm_up).await?;
        let cpu_before = common::process_cpu();
        let (seen, wall) = drive(&http, &service.address, &tokens, work.clients, work.duration).await?;
        let cpu = common::process_cpu().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        let slots_left = {
            use sea_orm::{EntityTrait, PaginatorTrait};
            slotsync::store::entities::slots::Entity::find()
                .count(&service.state.db)
                .await?
        };
        service.stop().await;
        anyhow::Ok(Run {
            name: name.clone(),
            wall,
            cpu,
            seen,
            slots_left,
        })
    }
    .await;
    db.remove().await;
    result.with_context(|| format!("the run on {name}"))
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there is one benchmark, so arguments are ignored.
    slotsync_testkit::init_logs();
    let work = Workload {
        clients: common::env_usize("BENCH_CLIENTS", 200)?,
        users: common::env_usize("BENCH_USERS", 50)?,
        duration: Duration::from_secs(common::env_usize("BENCH_DURATION_SECS", 20)? as u64),
        warm_up: Duration::from_secs(common::env_usize("BENCH_WARMUP_SECS", 2)? as u64),
    };
    let postgres = slotsync_testkit::db::url_from_env(&["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let runs = runtime.block_on(async {
        let mut databases = vec![None];
        databases.extend(postgres.as_deref().map(Some));
        let mut runs = Vec::new();
        for pg in databases {
            for with_worker in [true, false] {
                runs.push(one_run(work, pg, with_worker).await?);
            }
        }
        anyhow::Ok(runs)
    })?;
    report(work, postgres.is_some(), &runs);
    Ok(())
}

/// Requests per second in each quarter of the timed part (the tail after it is left out),
/// to show a slow-down as the tables grow.
fn quarters(per_second: &[u64], duration: Duration) -> String {
    let secs = duration.as_secs() as usize;
    let q = secs.div_ceil(4).max(1);
    (0..secs.div_ceil(q))
        .map(|k| {
            let len = q.min(secs - k * q);
            let sum: u64 = per_second.iter().skip(k * q).take(len).sum();
            format!("{:.0}", sum as f64 / len as f64)
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

fn report(work: Workload, postgres: bool, runs: &[Run]) {
    println!();
    println!(
        "load benchmark: {} clients over {} users (not connected to Google), {} s timed after {} s of warm-up, \
         slot CRUD cycles, {}",
        work.clients,
        work.users,
        work.duration.as_secs(),
        work.warm_up.as_secs(),
        common::machine()
    );
    if !postgres {
        println!("(PostgreSQL skipped: set BENCH_DATABASE_URL or TEST_DATABASE_URL to a postgres:// server)");
    }
    println!();
    println!(
        "| database, process | requests | req/s | p50 (ms) | p99 (ms) | max (ms) | errors | CPU µs / request | req/s by quarter |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for run in runs {
        let all = Latencies::new(run.seen.latencies.concat());
        let cpu = run.cpu.map_or("–".to_owned(), |c| {
            format!("{:.0}", c.as_secs_f64() * 1e6 / run.requests() as f64)
        });
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {} | {cpu} | {} |",
            run.name,
            run.requests(),
            run.requests() as f64 / run.wall.as_secs_f64(),
            all.p50(),
            all.p99(),
            all.max(),
            run.errors(),
            quarters(&run.seen.per_second, work.duration)
        );
    }
    println!();
    println!(
        "CPU µs / request: CPU time of this process (the {} HTTP clients and the service) per request; the \
         PostgreSQL server's own CPU is not in it.",
        work.clients
    );
    println!();
    println!("Per operation, p50 / p99 (ms):");
    println!();
    println!("| database, process | {} |", OPS.join(" | "));
    println!("|---|{}", "---:|".repeat(OPS.len()));
    for run in runs {
        let cells: Vec<String> = run
            .seen
            .latencies
            .iter()
            .map(|l| {
                let l = Latencies::new(l.clone());
                format!("{:.1} / {:.1}", l.p50(), l.p99())
            })
            .collect();
        println!("| {} | {} |", run.name, cells.join(" | "));
    }
    println!();
    println!("Per operation, p50 (ms) in each quarter of the timed part:");
    println!();
    println!("| database, process | {} |", OPS.join(" | "));
    println!("|---|{}", "---|".repeat(OPS.len()));
    for run in runs {
        let secs = work.duration.as_secs() as u32;
        let q = secs.div_ceil(4).max(1);
        let cells: Vec<String> = (0..OPS.len())
            .map(|op| {
                (0..secs.div_ceil(q))
                    .map(|k| {
                        let sample: Vec<f64> = run.seen.latencies[op]
                            .iter()
                            .zip(&run.seen.at[op])
                            .filter(|(_, at)| **at < secs && **at / q == k)
                            .map(|(l, _)| *l)
                            .collect();
                        format!("{:.0}", Latencies::new(sample).p50())
                    })
                    .collect::<Vec<_>>()
                    .join(" → ")
            })
            .collect();
        println!("| {} | {} |", run.name, cells.join(" | "));
    }
    println!();
    for run in runs {
        println!(
            "{}: wall {:.1} s, {} slot rows at the end (deleted ones are kept, soft-deleted)",
            run.name,
            run.wall.as_secs_f64(),
            run.slots_left
        );
        for ((op, kind), n) in &run.seen.errors {
            println!("  - {} {kind}: {n}", OPS[*op]);
        }
        if let Some(e) = &run.seen.first_error {
            let e: String = e.chars().take(300).collect();
            println!("  - first error: {e}");
        }
    }
}
