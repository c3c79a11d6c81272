//! What the benchmarks share beyond the
//! test kit (`slotsync-testkit`, which gives them the throw-away database, the running
//! service, the emulator's control client and the OAuth flow): the benchmarks' settings,
//! waiting for the emulator to go quiet, latency percentiles, the environment's knobs and
//! the machine's description.
//!
//! Each benchmark is its own crate and uses part of this module, hence the `dead_code`
//! allowance.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::json;
use slotsync::config::Settings;
use slotsync_testkit::{callback_url, free_port, Google, RunningApp, TestDb, TestSettings, TestUser};

/// The service's settings as `slotsync serve` reads them (environment and defaults), with
/// the kit's secrets, `database_url`, a listener on `127.0.0.1:port` (0: any free port),
/// an inbound rate limit too high to matter (1 000 000 a minute per token, the most the
/// settings accept; the webhook is not limited), no `PUBLIC_BASE_URL`, and the scheduler
/// off (a cron tick must not land in a timed phase; the jobs are not what these benchmarks
/// measure).
pub fn settings(database_url: &str, port: u16) -> Settings {
    let mut settings = Settings::for_tests(database_url);
    settings.bind_addr = ([127, 0, 0, 1], port).into();
    settings.rate_limit_per_minute = 1_000_000;
    settings.public_base_url = None;
    settings
}

/// `settings` wired to the emulator at `google_base` (OAuth client and Calendar API); the
/// OAuth callback is `http://127.0.0.1:{port}/auth/google/callback`.
pub fn settings_with_google(google_base: &str, database_url: &str, port: u16) -> Settings {
    let mut settings = settings(database_url, port);
    settings.use_google(google_base, port);
    settings
}

/// The bench's database: a fresh PostgreSQL database (`slotsync_bench_…`) under the server
/// of `BENCH_DATABASE_URL` when it names one, SQLite in a temporary directory otherwise.
pub async fn bench_database() -> (String, TestDb) {
    TestDb::from_env(&["BENCH_DATABASE_URL"], "slotsync_bench").await
}

/// Waits until the emulator has answered no Calendar request for a second (connecting a
/// user requests a first pull, run after a debounce), at most 60 s.
pub async fn wait_quiet(google: &Google) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut quiet_since) = (u64::MAX, Instant::now());
    while Instant::now() < deadline {
        let calls = google.stats().await.calendar_calls();
        if calls != last {
            (last, quiet_since) = (calls, Instant::now());
        } else if quiet_since.elapsed() >= Duration::from_secs(1) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the emulator kept answering Calendar requests for 60 s after setup")
}

/// Adds `latency` (ms range) to every Calendar call, or clears the fault plan.
pub async fn set_latency(google: &Google, latency: Option<[u64; 2]>) {
    google.faults(latency.map(|range| json!({ "latency_ms": range }))).await;
}

/// A latency sample, sorted, in milliseconds.
pub struct Latencies(Vec<f64>);

impl Latencies {
    pub fn new(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Latencies(ms)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile (NaN for an empty sample).
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn p50(&self) -> f64 {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> f64 {
        self.percentile(99.0)
    }

    pub fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }
}

/// Milliseconds of a duration, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A positive integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let n: usize = v
                .trim()
                .parse()
                .with_context(|| format!("{name} must be a positive integer"))?;
            ensure!(n > 0, "{name} must be at least 1");
            Ok(n)
        }
        _ => Ok(default),
    }
}

/// `BENCH_GOOGLE_LATENCY_MS`: `100` or `50-150`.
pub fn env_latency() -> anyhow::Result<Option<[u64; 2]>> {
    const NAME: &str = "BENCH_GOOGLE_LATENCY_MS";
    let Ok(raw) = std::env::var(NAME) else {
        return Ok(None);
    };
    let raw = raw.trim();
    if raw.is_empty() || raw == "0" {
        return Ok(None);
    }
    let parse = |s: &str| -> anyhow::Result<u64> {
        s.trim()
            .parse()
            .with_context(|| format!("{NAME} must be `ms` or `min-max` in ms"))
    };
    let range = match raw.split_once('-') {
        Some((lo, hi)) => [parse(lo)?, parse(hi)?],
        None => [parse(raw)?; 2],
    };
    ensure!(range[0] <= range[1], "{NAME}: the range is reversed");
    Ok(Some(range))
}

/// CPU time (user + system) this process has used so far, all threads, from
/// `/proc/self/stat` (clock ticks of 10 ms, `CLK_TCK` = 100 on Linux).
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is the 3rd field;
    // utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The machine, for the report: CPUs, kernel, and the load average when the run ended.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cpus} CPUs, Linux {}, load average {}", kernel.trim(), load.join(" "))
}

/// A service on the bench's database against an in-process emulator, with one connected
/// user who makes every call of the bench.
pub struct OneUser {
    pub google: Google,
    pub service: RunningApp,
    pub user: TestUser,
    /// `"SQLite"` or `"PostgreSQL"`, for the results' heading.
    pub backend: &'static str,
    /// The database, dropped (and deleted) with it: keep it bound to a name.
    pub db: TestDb,
}

/// Starts [`OneUser`] for `email` and waits until the emulator is quiet. Its per-user
/// Google quota is out of the way (100 000 calls a minute): one user makes every call
/// here, and at the default 600 its pushes would spend most of a minute's quota and the
/// later calls would wait their turn; these benchmarks measure the path, not the quota.
pub async fn one_user(email: &str) -> anyhow::Result<OneUser> {
    let google = Google::start().await;
    let port = free_port();
    google.register_client(&[callback_url(port)]).await;
    let (database_url, db) = bench_database().await;
    let backend = if database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut settings = settings_with_google(&google.base_url(), &database_url, port);
    settings.google_user_calls_per_minute = 100_000;
    let service = RunningApp::start(settings).await;
    let user = service.connected_user(email).await;
    wait_quiet(&google).await?;
    Ok(OneUser {
        google,
        service,
        user,
        backend,
        db,
    })
}
