//! Notification ingest: N valid notifications posted to `POST /webhooks/google-calendar`
//! by C concurrent HTTP clients, against the same load on a bare `poem` route answering
//! 200 in the same process (the limit: HTTP, the client and the machine, nothing else).
//!
//! `cargo bench --bench webhook` prints markdown tables. Environment:
//! - `BENCH_NOTIFICATIONS`: notifications per target (default 20 000);
//! - `BENCH_CONCURRENCY`: requests in flight (default 32);
//! - `BENCH_ROUNDS`: the targets take turns this many times, N / rounds each time
//!   (default 4), so a change in the machine's load weighs on all of them alike;
//! - `BENCH_DATABASE_URL`: a PostgreSQL URL under which a fresh database is created and
//!   dropped afterwards; SQLite in a temporary directory otherwise;
//! - `RUST_LOG`: turns the service's logs on (off by default);
//! - the service's own variables (`PULL_DEBOUNCE_MS`, …) are honoured.
//!
//! Set-up (not timed): the Google emulator and the service in this process, one user
//! connected through the OAuth flow with `PUBLIC_BASE_URL` set to the service, so connecting
//! creates a live channel (the emulator's `sync` handshake is delivered to the webhook).
//! Then, with the same client and concurrency, after a warm-up, in turns:
//! 1. the bare route: N posts with the headers Google sends;
//! 2. the webhook, `exists`, every notification new: each client posts on a channel of its
//!    own (C channels of the user on the same calendar: the live one, and C − 1 stored
//!    through the store as a renewal would, with the same resource id) with increasing
//!    message numbers, so each one passes every check and requests a pull. (With C clients
//!    on one channel most would arrive after a higher number and be taken as late
//!    duplicates; Google sends one channel's messages one at a time.)
//! 3. the webhook, `exists` on the live channel repeating a number already seen (the
//!    duplicate path: every check, no pull request);
//! 4. the webhook with a wrong channel token (403 at the token check: the service's HTTP
//!    stack and the HMAC, nothing else), to show where time goes.
//!
//! The warm-up's notifications put every channel in the service's channel directory, so
//! the timed notifications make no query (an entry is read again after its 30 s TTL,
//! which a run does not reach). The query a directory miss makes is timed alone at the end.
//!
//! Each accepted change requests a coalesced pull, which runs in the background; the pulls
//! that ran are counted from the emulator's `events.list` requests. What the service made
//! of the notifications comes from its own metrics (`slotsync_notifications_total`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::Utc;
use common::{ms, Latencies};
use futures::StreamExt;
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::{handler, post, Route, Server};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use slotsync::domain::UserId;
use slotsync::emulator::{Emulator, EmulatorConfig};
use slotsync::state::AppState;
use slotsync_testkit::{free_port, Google, RunningApp as Service};
use uuid::Uuid;

/// Notifications sent to every target before timing (connections, caches, allocator).
const WARM_UP: usize = 1_000;

#[handler]
fn bare_ok() -> StatusCode {
    StatusCode::OK
}

/// A minimal `poem` server with one route answering 200, on a free port.
async fn start_bare() -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let app = Route::new().at(slotsync::sync::channels::WEBHOOK_PATH, post(bare_ok));
        let _ = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async {
                    let _ = stopped.await;
                },
                Some(Duration::from_secs(5)),
            )
            .await;
    });
    Ok((address, stop))
}

/// The headers of a notification on `channel`, as the emulator (and Google) sends them.
struct Channel {
    id: String,
    token: String,
    resource_id: String,
}

impl Channel {
    fn headers(&self, message_number: u64) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(8);
        let mut put = |name: &'static str, value: &str| {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("a header value"),
            );
        };
        put("x-goog-channel-id", &self.id);
        put("x-goog-channel-token", &self.token);
        put("x-goog-resource-id", &self.resource_id);
        put("x-goog-resource-state", "exists");
        put("x-goog-message-number", &message_number.to_string());
        put(
            "x-goog-resource-uri",
            "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
        );
        put("x-goog-channel-expiration", "Tue, 19 Nov 2030 01:13:52 GMT");
        put("user-agent", "APIs-Google");
        h
    }
}

/// What one target measured, over every round.
struct Phase {
    name: &'static str,
    requests: usize,
    wall: Duration,
    latencies_ms: Vec<f64>,
    /// Answers other than the one expected, and transport errors.
    failures: usize,
    first_failure: Option<String>,
    /// CPU time this process (clients and servers) used during the phase.
    cpu: Option<Duration>,
    /// Requests per second of each round.
    rounds: Vec<f64>,
}

impl Phase {
    fn new(name: &'static str) -> Self {
        Phase {
            name,
            requests: 0,
            wall: Duration::ZERO,
            latencies_ms: Vec::new(),
            failures: 0,
            first_failure: None,
            cpu: Some(Duration::ZERO),
            rounds: Vec::new(),
        }
    }

    /// Adds one round's measurements.
    fn absorb(&mut self, round: Phase) {
        self.rounds.push(round.per_second());
        self.requests += round.requests;
        self.wall += round.wall;
        self.latencies_ms.extend(round.latencies_ms);
        self.failures += round.failures;
        self.first_failure = self.first_failure.take().or(round.first_failure);
        self.cpu = self.cpu.zip(round.cpu).map(|(a, b)| a + b);
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn row(&self) -> String {
        let cpu = self.cpu.map_or("–".to_owned(), |c| {
            format!("{:.0}", c.as_secs_f64() * 1e6 / self.requests as f64)
        });
        let latencies = Latencies::new(self.latencies_ms.clone());
        let rounds: Vec<String> = self.rounds.iter().map(|r| format!("{r:.0}")).collect();
        format!(
            "| {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.1} | {cpu} | {} |",
            self.name,
            self.requests,
            self.per_second(),
            rounds.join(", "),
            latencies.p50(),
            latencies.p99(),
            latencies.max(),
            self.failures
        )
    }
}

/// The message numbers of a phase's notifications.
#[derive(Clone, Copy)]
enum Numbers {
    /// Notification `i` carries `from + i`.
    From(u64),
    /// Every notification carries this one.
    Always(u64),
}

impl Numbers {
    fn at(self, i: usize) -> u64 {
        match self {
            Numbers::From(from) => from + i as u64,
            Numbers::Always(n) => n,
        }
    }
}

/// Where a phase posts, on which channels, and the answer it expects.
struct Target {
    url: String,
    channels: Arc<Vec<Channel>>,
    expected: reqwest::StatusCode,
}

/// Posts `n` notifications to `target`, `concurrency` at a time; client `w` posts on
/// `target.channels[w % len]`, and notification `i` carries message number `numbers.at(i)`.
async fn fire(
    http: &reqwest::Client,
    concurrency: usize,
    name: &'static str,
    target: &Target,
    n: usize,
    numbers: Numbers,
) -> anyhow::Result<Phase> {
    let (url, channels, expected) = (&target.url, &target.channels, target.expected);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = common::process_cpu();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (http, url, channels, next) = (http.clone(), url.to_owned(), Arc::clone(channels), Arc::clone(&next));
        workers.spawn(async move {
            let channel = &channels[w % channels.len()];
            let mut latencies = Vec::with_capacity(n / concurrency + 1);
            let (mut failures, mut first_failure) = (0, None);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let request = http.post(&url).headers(channel.headers(numbers.at(i)));
                let sent = Instant::now();
                let answer = match request.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.bytes().await;
                        match body {
                            Ok(_) if status == expected => Ok(()),
                            Ok(b) => Err(format!("{status}: {}", String::from_utf8_lossy(&b))),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                latencies.push(ms(sent.elapsed()));
                if let Err(e) = answer {
                    failures += 1;
                    first_failure.get_or_insert(e);
                }
            }
            (latencies, failures, first_failure)
        });
    }
    let (mut latencies, mut failures, mut first_failure) = (Vec::with_capacity(n), 0, None);
    while let Some(done) = workers.join_next().await {
        let (l, f, first) = done?;
        latencies.extend(l);
        failures += f;
        first_failure = first_failure.or(first);
    }
    let wall = started.elapsed();
    let cpu = common::process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Phase {
        name,
        requests: n,
        wall,
        cpu,
        latencies_ms: latencies,
        failures,
        first_failure,
        rounds: Vec::new(),
    })
}

/// The sum of the samples of the Prometheus counter `name` whose labels include `labels`.
fn counter(state: &AppState, name: &str, labels: &[&str]) -> u64 {
    slotsync::observe::render(&state.metrics)
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The service's own counts of what it made of the notifications it accepted.
#[derive(Clone, Copy, Default)]
struct Accepted {
    pull_requested: u64,
    duplicate: u64,
    rejected: u64,
    pulls_ok: u64,
}

impl Accepted {
    fn now(state: &AppState) -> Self {
        const N: &str = "slotsync_notifications_total";
        Accepted {
            pull_requested: counter(state, N, &["result=\"accepted\"", "reason=\"pull_requested\""]),
            duplicate: counter(state, N, &["result=\"accepted\"", "reason=\"duplicate\""]),
            rejected: counter(state, N, &["result=\"rejected\""]),
            pulls_ok: counter(state, "slotsync_pulls_total", &["result=\"ok\""]),
        }
    }

    fn plus(self, other: Accepted) -> Accepted {
        Accepted {
            pull_requested: self.pull_requested + other.pull_requested,
            duplicate: self.duplicate + other.duplicate,
            rejected: self.rejected + other.rejected,
            pulls_ok: self.pulls_ok + other.pulls_ok,
        }
    }

    fn since(self, before: Accepted) -> Accepted {
        Accepted {
            pull_requested: self.pull_requested - before.pull_requested,
            duplicate: self.duplicate - before.duplicate,
            rejected: self.rejected - before.rejected,
            pulls_ok: self.pulls_ok - before.pulls_ok,
        }
    }
}

/// Waits until no pull of `user` is waiting or running (at most 30 s).
async fn pulls_settled(state: &AppState, user: UserId) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while state.pulls.in_flight(user) {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("pulls of the bench user were still running after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(started.elapsed())
}

struct Results {
    bare: Phase,
    exists: Phase,
    duplicate: Phase,
    refused: Phase,
    exists_counts: Accepted,
    duplicate_counts: Accepted,
    /// `events.list` requests during the `exists` phase and until its pulls settled.
    exists_lists: u64,
    duplicate_lists: u64,
    /// How long the last pull ran on after the last `exists` answer.
    settle: Duration,
    /// `store::channels::find` (a directory miss's query) alone: reads, wall time, CPU time.
    channel_reads: (usize, Duration, Option<Duration>),
    database: &'static str,
}

async fn run(n: usize, concurrency: usize, rounds: usize) -> anyhow::Result<Results> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let google = Emulator::start(EmulatorConfig::for_tests()).await?;
    let control = Google::at(&google.base_url());
    let port = free_port();
    control.register_client(&[slotsync_testkit::callback_url(port)]).await;
    let (database_url, db) = common::bench_database().await;
    let database = db.describe();
    let mut settings = common::settings_with_google(&google.base_url(), &database_url, port);
    settings.public_base_url = Some(format!("http://127.0.0.1:{port}"));
    let mut service = Service::start(settings).await;

    let result = async {
        let user = service.connected_user("webhook-bench@example.com").await.user_id();
        let live = slotsync::store::channels::live(&service.state.db, user).await?;
        let row = live
            .iter()
            .find(|c| c.resource_id.is_some())
            .context("connecting created a live channel")?;
        let channel_of = |id: Uuid| Channel {
            id: id.to_string(),
            token: service.state.keys.channel_token(&id.to_string()),
            resource_id: row.resource_id.clone().unwrap_or_default(),
        };
        // One channel per client for the `exists` phase: the live one, and more on the same
        // calendar, stored as the channel lifecycle stores a renewal's (pending, then
        // watched with Google's resource id and expiry).
        let mut many = vec![channel_of(row.id)];
        for _ in 1..concurrency {
            let id = Uuid::new_v4();
            let store = &service.state.db;
            slotsync::store::channels::insert_pending(store, id, user, row.expires_at, Utc::now()).await?;
            slotsync::store::channels::set_watched(store, id, &many[0].resource_id, row.expires_at).await?;
            many.push(channel_of(id));
        }
        let many = Arc::new(many);
        let one = Arc::new(vec![channel_of(row.id)]);
        let webhook = format!("{}{}", service.address, slotsync::sync::channels::WEBHOOK_PATH);
        let (bare_address, stop_bare) = start_bare().await?;
        let bare_url = format!("{bare_address}{}", slotsync::sync::channels::WEBHOOK_PATH);

        // Message numbers: above the handshake's (1), increasing over the whole run.
        let base = 1_000u64;
        let number_at = move |offset: usize| Numbers::From(base + offset as u64);
        const OK: reqwest::StatusCode = reqwest::StatusCode::OK;
        let target = |url: &str, channels: &Arc<Vec<Channel>>, expected| Target {
            url: url.to_owned(),
            channels: Arc::clone(channels),
            expected,
        };
        let bare_target = target(&bare_url, &one, OK);
        let exists_target = target(&webhook, &many, OK);
        let duplicate_target = target(&webhook, &one, OK);
        // Where the time goes: the same stack refusing a wrong token before any query.
        let forged = Arc::new(vec![Channel {
            token: service.state.keys.channel_token("another channel"),
            ..channel_of(row.id)
        }]);
        let refused_target = target(&webhook, &forged, reqwest::StatusCode::FORBIDDEN);

        let load = |name, target, n, numbers| fire(&http, concurrency, name, target, n, numbers);
        load("warm-up", &bare_target, WARM_UP, number_at(0)).await?;
        let warm = load("warm-up", &exists_target, WARM_UP, number_at(0)).await?;
        if warm.failures > 0 {
            bail!("the webhook refused notifications: {:?}", warm.first_failure);
        }
        pulls_settled(&service.state, user).await?;

        // The targets take turns, `rounds` times, so a change in the machine's load during the
        // run weighs on all of them alike.
        let per_round = n / rounds;
        let mut bare = Phase::new("bare `poem` route (200)");
        let mut exists = Phase::new("webhook, `exists`, new (pull requested)");
        let mut duplicate = Phase::new("webhook, `exists`, number already seen (duplicate)");
        let mut refused = Phase::new("webhook, wrong token (403 before any query)");
        let (mut exists_counts, mut duplicate_counts) = (Accepted::default(), Accepted::default());
        let (mut exists_lists, mut duplicate_lists, mut settle) = (0, 0, Duration::ZERO);
        let mut offset = WARM_UP;
        for _ in 0..rounds {
            bare.absorb(load(bare.name, &bare_target, per_round, number_at(offset)).await?);

            control.clear_stats().await;
            let before = Accepted::now(&service.state);
            exists.absorb(load(exists.name, &exists_target, per_round, number_at(offset)).await?);
            settle = settle.max(pulls_settled(&service.state, user).await?);
            exists_counts = exists_counts.plus(Accepted::now(&service.state).since(before));
            exists_lists += control.stats().await.op_total("events.list");
            offset += per_round;

            control.clear_stats().await;
            let before = Accepted::now(&service.state);
            // The handshake's number: below the mark of the live channel.
            duplicate.absorb(load(duplicate.name, &duplicate_target, per_round, Numbers::Always(1)).await?);
            pulls_settled(&service.state, user).await?;
            duplicate_counts = duplicate_counts.plus(Accepted::now(&service.state).since(before));
            duplicate_lists += control.stats().await.op_total("events.list");

            let round = load(refused.name, &refused_target, per_round, Numbers::Always(2)).await?;
            refused.absorb(round);
        }
        // The query of a directory miss, alone, at the same concurrency.
        let cpu_before = common::process_cpu();
        let started = Instant::now();
        let reads: Vec<_> = futures::stream::iter(0..n)
            .map(|_| slotsync::store::channels::find(&service.state.db, row.id))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let read_wall = started.elapsed();
        let read_cpu = common::process_cpu().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        ensure!(reads.iter().all(|r| matches!(r, Ok(Some(_)))), "a channel read failed");
        let channel_reads = (n, read_wall, read_cpu);
        let _ = stop_bare.send(());
        Ok(Results {
            bare,
            exists,
            duplicate,
            refused,
            exists_counts,
            duplicate_counts,
            exists_lists,
            duplicate_lists,
            settle,
            channel_reads,
            database,
        })
    }
    .await;
    service.stop().await;
    db.remove().await;
    google.shutdown().await;
    result
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there is one benchmark, so arguments are ignored.
    slotsync_testkit::init_logs();
    let n = common::env_usize("BENCH_NOTIFICATIONS", 20_000)?;
    let concurrency = common::env_usize("BENCH_CONCURRENCY", 32)?;
    let rounds = common::env_usize("BENCH_ROUNDS", 4)?.min(n);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let r = runtime.block_on(run(n, concurrency, rounds))?;
    report(n / rounds * rounds, concurrency, rounds, &r);
    Ok(())
}

fn report(n: usize, concurrency: usize, rounds: usize, r: &Results) {
    println!();
    println!(
        "webhook benchmark: {n} notifications per target in {rounds} rounds, {concurrency} in flight, one user, {}, {}",
        r.database,
        common::machine()
    );
    println!();
    println!(
        "| target | requests | req/s | req/s by round | p50 (ms) | p99 (ms) | max (ms) | CPU µs / request | \
         unexpected answers |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for phase in [&r.bare, &r.exists, &r.duplicate, &r.refused] {
        println!("{}", phase.row());
    }
    println!();
    for (phase, label) in [(&r.exists, "`exists`"), (&r.duplicate, "duplicates")] {
        let ratio = phase.per_second() / r.bare.per_second();
        println!(
            "ratio webhook ({label}) / bare: {ratio:.2} (target ≥ 0.80: {})",
            if ratio >= 0.8 { "met" } else { "not met" }
        );
    }
    println!();
    let c = r.exists_counts;
    println!(
        "`exists` phase ({concurrency} channels): the service requested a pull for {} notifications and took {} \
         as late or repeated ({} rejected); {} pulls ran (`events.list` requests: {}), the last one finished {:.0} ms after the \
         last answer.",
        c.pull_requested,
        c.duplicate,
        c.rejected,
        c.pulls_ok,
        r.exists_lists,
        ms(r.settle)
    );
    let d = r.duplicate_counts;
    println!(
        "duplicate phase: {} taken as duplicates, {} requested a pull, {} rejected; `events.list` requests: {}.",
        d.duplicate, d.pull_requested, d.rejected, r.duplicate_lists
    );
    println!(
        "CPU µs / request: CPU time of this whole process (HTTP clients, the service or the bare server, the \
         emulator, background pulls) during the phase, per request."
    );
    let cpu = |p: &Phase| p.cpu.map(|c| c.as_secs_f64() * 1e6 / p.requests as f64);
    if let Some(bare) = cpu(&r.bare) {
        let above: Vec<String> = [
            (&r.exists, "`exists`"),
            (&r.duplicate, "duplicates"),
            (&r.refused, "wrong token"),
        ]
        .into_iter()
        .filter_map(|(p, label)| Some(format!("{label} {:+.1}", cpu(p)? - bare)))
        .collect();
        println!("CPU µs / request above the bare route: {}.", above.join(", "));
    }
    let (reads, wall, cpu) = r.channel_reads;
    println!(
        "the query a channel-directory miss makes, alone (`store::channels::find`, the channel's row by primary \
         key; the timed notifications made none), {reads} times {concurrency} at a time: {:.0} reads/s, {} CPU µs \
         per read.",
        reads as f64 / wall.as_secs_f64(),
        cpu.map_or("–".to_owned(), |c| format!(
            "{:.0}",
            c.as_secs_f64() * 1e6 / reads as f64
        ))
    );
    for phase in [&r.bare, &r.exists, &r.duplicate, &r.refused] {
        if let Some(e) = &phase.first_failure {
            println!("first failure of {}: {e}", phase.name);
        }
    }
}
