//! Fleet: the periodic work of many connected users, on PostgreSQL, with Google's real
//! latency — how long a full fallback cycle takes on one instance and on two, what it
//! costs (Google calls, CPU, memory), and how an idle hour's token refreshes and channel
//! renewals are spread.
//!
//! `cargo bench --bench fleet` prints markdown tables. Environment:
//! - `BENCH_DATABASE_URL` (required): a PostgreSQL server; the bench makes a fresh
//!   database under it and drops it afterwards. Without it the bench says so and stops:
//!   the fleet's database is PostgreSQL (SQLite is for one instance).
//! - `BENCH_USERS`: connected users (default 10 000; 100 000 for the goal figures);
//! - `BENCH_GOOGLE_LATENCY_MS`: every Calendar call's latency (default 150, Google's);
//! - `BENCH_IDLE_MINUTES`: simulated minutes of the idle hour (default 60).
//!
//! The emulator runs in this process; the service instances are `slotsync serve` child
//! processes (the release binary), configured through the environment only, so their CPU
//! time and peak RSS (`VmHWM`) are theirs alone. The users are seeded in bulk (the
//! emulator's `POST /_emulator/users/bulk`, the service's rows written directly). The
//! project quota is set out of the way (`GOOGLE_CALLS_PER_MINUTE=1000000`), so the cycle
//! measures what the instances can do; what the default quota allows is computed from it.
//!
//! Phases:
//! 1. **cycle, 1 instance (first, full syncs)**: every user due at once; from then until
//!    each user's fallback pull is counted (`sync_states.fallback_pulls`). Warms up too.
//! 2. **cycle, 1 instance**: the same again (incremental pulls, the steady state).
//! 3. **cycle, 2 instances**: two fresh instances, every user due at once again.
//! 4. **idle hour** (one instance, scheduler off, the jobs run by the bench once per
//!    simulated minute): `FALLBACK_INTERVAL_SECS=900`, tokens expiring at random within the
//!    hour (as in steady state), one channel per user created within one hour (the worst
//!    case: a deploy), the hour simulated inside the span in which their renewals fall. A
//!    minute passes by moving every due time, token expiry and channel expiry one minute
//!    back in the database. Counts per minute: pulls, token refreshes, channel renewals.
//!    Before the hour, one renewal run catches up with the channels due earlier in the span.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, Statement};
use serde_json::Value;
use slotsync::store::entities::channels;
use slotsync_testkit::{
    callback_url, free_port, Google, ServiceClient, TestDb, ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, SECRET_KEY,
};

fn main() -> anyhow::Result<()> {
    slotsync_testkit::init_logs();
    let users = common::env_usize("BENCH_USERS", 10_000)? as u64;
    let latency = common::env_usize("BENCH_GOOGLE_LATENCY_MS", 150)? as u64;
    let idle_minutes = common::env_usize("BENCH_IDLE_MINUTES", 60)? as u64;
    let Some(admin_url) = slotsync_testkit::db::url_from_env(&["BENCH_DATABASE_URL"]) else {
        println!(
            "fleet: skipped — set BENCH_DATABASE_URL to a postgres:// server (the fleet's database is PostgreSQL)"
        );
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(&admin_url, users, latency, idle_minutes))
}

/// A `slotsync serve` child process, killed when dropped.
struct Instance {
    name: String,
    child: Child,
    api: ServiceClient,
    log: PathBuf,
}

impl Instance {
    async fn start(name: &str, dir: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_slotsync"));
        command.arg("serve").env_clear().current_dir(dir);
        for var in ["PATH", "RUST_LOG"] {
            if let Some(v) = std::env::var_os(var) {
                command.env(var, v);
            }
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let port = env
            .iter()
            .find(|(k, _)| k == "BIND_ADDR")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let api = ServiceClient::new(format!("http://{port}"), reqwest::Client::new());
        let mut instance = Self {
            name: name.to_owned(),
            child,
            api,
            log,
        };
        instance.wait_ready().await?;
        Ok(instance)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = self.api.http.get(self.api.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("{} exited ({status}): {log}", self.name);
            }
            if Instant::now() > deadline {
                bail!("{} was not ready within 120 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) the process has used.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let Some(end) = stat.rfind(')') else { return 0.0 };
        let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        (ticks(11) + ticks(12)) as f64 / clock_ticks()
    }

    /// Peak resident memory (`VmHWM`), MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .api
            .http
            .request(method, self.api.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }

    async fn run_job(&self, job: &str) -> anyhow::Result<Value> {
        Ok(self
            .admin(reqwest::Method::POST, &format!("/admin/jobs/{job}/run"))
            .await?["outcome"]
            .clone())
    }

    /// SIGTERM, then waits for the exit.
    async fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// The environment of an instance on `port`.
fn instance_env(database_url: &str, google: &str, port: u16, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", database_url.to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("SECRET_KEY", SECRET_KEY.to_owned()),
        ("GOOGLE_EMULATOR_URL", google.to_owned()),
        ("GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("OAUTH_REDIRECT_URI", callback_url(port)),
        ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
        ("GOOGLE_CALLS_PER_MINUTE", "1000000".to_owned()),
        // 20 pulls at once on a pool of 40 (the fallback takes at most half): two
        // instances' pools and the bench's stay within PostgreSQL's default 100
        // connections. The first run, with the defaults (32 pulls, 16 connections),
        // starved the pool (docs/benchmarks.md).
        ("DATABASE_MAX_CONNECTIONS", "40".to_owned()),
        ("FALLBACK_CONCURRENCY", "20".to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "1000000".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await?
        .context("a row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn execute(db: &DatabaseConnection, sql: &str) -> anyhow::Result<u64> {
    Ok(db
        .execute_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await?
        .rows_affected())
}

/// One full fallback cycle: every user due now, until each has one more pull counted.
struct Cycle {
    name: String,
    instances: usize,
    wall: Duration,
    calls_per_user: f64,
    twice: i64,
    missed: i64,
    cpu_per_1000: f64,
    rss: Vec<f64>,
}

async fn cycle(
    name: &str,
    db: &DatabaseConnection,
    google: &Google,
    instances: &[&Instance],
    users: u64,
) -> anyhow::Result<Cycle> {
    let round = scalar(db, "SELECT COALESCE(MIN(fallback_pulls), 0) FROM sync_states").await? + 1;
    let listed_before = google.stats().await.op_total("events.list");
    let cpu_before: Vec<f64> = instances.iter().map(|i| i.cpu()).collect();
    let started = Instant::now();
    slotsync::store::pull_schedule::make_all_due(db, Utc::now()).await?;
    let deadline = started + Duration::from_secs(3 * 3600);
    let left_sql = format!("SELECT COUNT(*) FROM sync_states WHERE fallback_pulls < {round}");
    loop {
        if scalar(db, &left_sql).await? == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = started.elapsed();
    // Pulls under way at the end (none should be) finish before the counts are taken.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = google.stats().await.op_total("events.list") - listed_before;
    let cpu: f64 = instances
        .iter()
        .zip(&cpu_before)
        .map(|(i, before)| i.cpu() - before)
        .sum();
    Ok(Cycle {
        name: name.to_owned(),
        instances: instances.len(),
        wall,
        calls_per_user: listed as f64 / users as f64,
        twice: scalar(
            db,
            &format!("SELECT COUNT(*) FROM sync_states WHERE fallback_pulls > {round}"),
        )
        .await?,
        missed: scalar(db, &left_sql).await?,
        cpu_per_1000: cpu / users as f64 * 1000.0,
        rss: instances.iter().map(|i| i.peak_rss_mib()).collect(),
    })
}

/// Seeds one channel per user, created within the last hour with the service's jittered
/// lifetime, then moves them so that now is `into_span` past the first renewal's due time.
async fn seed_channels(
    db: &DatabaseConnection,
    ttl: chrono::Duration,
    renew_before: chrono::Duration,
) -> anyhow::Result<()> {
    let users: Vec<uuid::Uuid> = slotsync::store::entities::google_connections::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.user_id)
        .collect();
    let now = Utc::now();
    // The earliest renewal of channels made in the last hour is due at about
    // now - 1 h + ttl·(1 - jitter) - renew_before; start the hour 2 hours after that.
    let first_due = now - chrono::Duration::hours(1) + ttl * 4 / 5 - renew_before;
    let shift = first_due + chrono::Duration::hours(2) - now;
    let mut rng = rand::thread_rng();
    for chunk in users.chunks(1000) {
        let rows: Vec<channels::ActiveModel> = chunk
            .iter()
            .map(|user| {
                let created = now - chrono::Duration::milliseconds(rng.gen_range(0..3_600_000));
                let lifetime = ttl
                    .to_std()
                    .unwrap()
                    .mul_f64(1.0 - rng.gen_range(0.0..slotsync::sync::channels::TTL_JITTER));
                channels::ActiveModel {
                    id: Set(uuid::Uuid::new_v4()),
                    user_id: Set(*user),
                    resource_id: Set(Some(format!("bench-{user}"))),
                    expires_at: Set(created + chrono::Duration::from_std(lifetime).unwrap() - shift),
                    created_at: Set(created - shift),
                    stopped_at: Set(None),
                    renew_lease_until: Set(None),
                    replaced_by: Set(None),
                }
            })
            .collect();
        channels::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// Counts of one simulated minute.
#[derive(Default, Clone, Copy)]
struct Minute {
    pulls: u64,
    refreshes: u64,
    renewals: u64,
}

fn spread(values: &[u64]) -> (f64, u64, f64) {
    let total: u64 = values.iter().sum();
    let mean = total as f64 / values.len().max(1) as f64;
    let max = values.iter().copied().max().unwrap_or(0);
    (mean, max, if mean > 0.0 { max as f64 / mean } else { 0.0 })
}

async fn run(admin_url: &str, users: u64, latency: u64, idle_minutes: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (database_url, test_db) = TestDb::postgres(admin_url, "slotsync_bench").await;
    let db = sea_orm::Database::connect(&database_url).await?;
    slotsync::store::migrate(&db).await?;
    let google = Google::start().await;
    let ports = [free_port(), free_port(), free_port()];
    google.register_client(&ports.map(callback_url)).await;
    let seeding = Instant::now();
    slotsync_testkit::fleet::seed_connections(&db, &google, "fleet", users).await;
    let seeded_in = seeding.elapsed();
    google
        .faults(serde_json::json!({ "latency_ms": [latency, latency] }))
        .await;
    let google_url = google.base_url();
    let busy = [
        ("SCHEDULE_FALLBACK_SYNC", "* * * * * *"),
        // After its pull a user is due again in an hour: a cycle is one pull each.
        ("FALLBACK_INTERVAL_SECS", "3600"),
    ];

    // 1-2. One instance.
    let a = Instance::start(
        "one-a",
        dir.path(),
        &instance_env(&database_url, &google_url, ports[0], &busy),
    )
    .await?;
    let first = cycle("1 instance, first cycle (full syncs)", &db, &google, &[&a], users).await?;
    let one = cycle("1 instance", &db, &google, &[&a], users).await?;
    a.stop().await;

    // 3. Two instances.
    let a = Instance::start(
        "two-a",
        dir.path(),
        &instance_env(&database_url, &google_url, ports[0], &busy),
    )
    .await?;
    let b = Instance::start(
        "two-b",
        dir.path(),
        &instance_env(&database_url, &google_url, ports[1], &busy),
    )
    .await?;
    // Both count each other before the cycle starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.admin(reqwest::Method::GET, "/admin/instances").await?["share_of"] != 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let two = cycle("2 instances", &db, &google, &[&a, &b], users).await?;
    a.stop().await;
    b.stop().await;

    // 4. The idle hour.
    execute(
        &db,
        "UPDATE sync_states SET next_pull_at = NULL, fallback_lease_until = NULL",
    )
    .await?;
    execute(
        &db,
        "UPDATE google_connections SET token_expires_at = now() + random() * interval '3600 seconds'",
    )
    .await?;
    let ttl = chrono::Duration::seconds(604_800);
    let renew_before = chrono::Duration::seconds(86_400);
    seed_channels(&db, ttl, renew_before).await?;
    let idle = Instance::start(
        "idle",
        dir.path(),
        &instance_env(&database_url, &google_url, ports[2], &[("SCHEDULER_ENABLED", "false")]),
    )
    .await?;
    // The renewals due before the simulated hour (its first two hours of the span) are a
    // backlog the every-minute schedule would not have let build up: one run clears it,
    // unmeasured, and the first run gives every connection its phase.
    let catch_up = idle.run_job("renew_channels").await?;
    idle.run_job("fallback_sync").await?;
    let mut minutes = Vec::new();
    let idle_cpu_before = idle.cpu();
    let idle_started = Instant::now();
    for _ in 0..idle_minutes {
        let step = Instant::now();
        let before = google.stats().await;
        idle.run_job("fallback_sync").await?;
        idle.run_job("refresh_tokens").await?;
        idle.run_job("renew_channels").await?;
        let after = google.stats().await;
        minutes.push(Minute {
            pulls: after.op_total("events.list") - before.op_total("events.list"),
            refreshes: after.op_count("oauth.token.refresh_token", "200")
                - before.op_count("oauth.token.refresh_token", "200"),
            renewals: after.op_count("events.watch", "200") - before.op_count("events.watch", "200"),
        });
        for sql in [
            "UPDATE sync_states SET next_pull_at = next_pull_at - interval '60 seconds' WHERE next_pull_at IS NOT NULL",
            "UPDATE google_connections SET token_expires_at = token_expires_at - interval '60 seconds'",
            "UPDATE channels SET expires_at = expires_at - interval '60 seconds'",
        ] {
            execute(&db, sql).await?;
        }
        // The vault keeps a decrypted token for 15 s: a simulated minute lasts long enough
        // that a user's next pull (15 simulated minutes later) reads the moved expiry.
        if let Some(rest) = Duration::from_millis(1_100).checked_sub(step.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let idle_wall = idle_started.elapsed();
    let idle_cpu = idle.cpu() - idle_cpu_before;
    // Idle between ticks: nothing due for 10 s.
    let quiet_cpu_before = idle.cpu();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let quiet_cpu = (idle.cpu() - quiet_cpu_before) / 10.0 * 100.0;
    let idle_rss = idle.peak_rss_mib();
    idle.stop().await;

    println!();
    println!(
        "fleet: {users} users seeded in {:.1} s; Google latency {latency} ms; PostgreSQL; {}",
        seeded_in.as_secs_f64(),
        common::machine()
    );
    println!();
    println!("| cycle | wall (s) | users/s | Google calls per user | pulled twice | missed | CPU s per 1 000 users | peak RSS per instance (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for c in [&first, &one, &two] {
        println!(
            "| {} | {:.1} | {:.0} | {:.2} | {} | {} | {:.2} | {} |",
            c.name,
            c.wall.as_secs_f64(),
            users as f64 / c.wall.as_secs_f64(),
            c.calls_per_user,
            c.twice,
            c.missed,
            c.cpu_per_1000,
            c.rss.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
        );
        let _ = c.instances;
    }
    println!();
    println!(
        "throughput two / one instance: {:.2}",
        one.wall.as_secs_f64() / two.wall.as_secs_f64()
    );
    println!(
        "at the default GOOGLE_CALLS_PER_MINUTE (10 000) a cycle of {users} users needs at least {:.1} min of quota",
        users as f64 * one.calls_per_user / 10_000.0
    );
    println!();
    let n = minutes.len().max(1) as f64;
    let column = |f: fn(&Minute) -> u64| minutes.iter().map(f).collect::<Vec<u64>>();
    println!(
        "idle hour ({} simulated minutes in {:.0} s, one instance, FALLBACK_INTERVAL_SECS=900; CPU {:.1} s; idle CPU between ticks {:.2} %; peak RSS {:.0} MiB):",
        minutes.len(),
        idle_wall.as_secs_f64(),
        idle_cpu,
        quiet_cpu,
        idle_rss
    );
    println!("(before it, one unmeasured renewal run caught up with the channels already due: {catch_up})");
    println!();
    println!("| work | per user in the hour | per minute: mean | max minute | max / mean |");
    println!("|---|---:|---:|---:|---:|");
    for (name, values) in [
        ("fallback pulls", column(|m| m.pulls)),
        ("token refreshes", column(|m| m.refreshes)),
        ("channel renewals", column(|m| m.renewals)),
    ] {
        let (mean, max, ratio) = spread(&values);
        let total: u64 = values.iter().sum();
        println!(
            "| {name} | {:.2} | {mean:.1} | {max} | {ratio:.2} |",
            total as f64 / users as f64 * 60.0 / n
        );
    }
    drop(db);
    test_db.remove().await;
    Ok(())
}
