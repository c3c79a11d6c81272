//! Set-up shared by the benchmarks `push`, `fairness`, `webhook`, `pull` and `load`: the
//! service's settings, a throw-away database (SQLite or PostgreSQL), starting and stopping
//! the service, connecting a user through the real OAuth flow, the emulator's control API,
//! latency percentiles and the machine's description.
//!
//! Each benchmark is its own crate and uses part of this module, hence the `dead_code`
//! allowance.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use poem::listener::TcpAcceptor;
use poem::Server;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use slotsync::app::Application;
use slotsync::config::Settings;
use slotsync::emulator::EmulatorHandle;
use slotsync::state::AppState;
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
pub const SECRET_KEY: &str = "bench-secret-key-0123456789abcdefghijklmnop";
pub const CLIENT_ID: &str = "bench-client";
pub const CLIENT_SECRET: &str = "bench-secret";

#[derive(Parser)]
struct SettingsArgs {
    #[command(flatten)]
    settings: Settings,
}

/// The service's settings as `slotsync serve` reads them (environment and defaults), with
/// the bench's secrets, `database_url`, a listener on `127.0.0.1:port` (0: any free port),
/// an inbound rate limit too high to matter, and the scheduler off (a cron tick must not
/// land in a timed phase; the jobs are not what these benchmarks measure).
pub fn settings(database_url: &str, port: u16) -> anyhow::Result<Settings> {
    let mut settings = SettingsArgs::try_parse_from([
        "slotsync",
        "--database-url",
        database_url,
        "--bind-addr",
        &format!("127.0.0.1:{port}"),
        "--admin-token",
        ADMIN_TOKEN,
        "--secret-key",
        SECRET_KEY,
        "--rate-limit-per-minute",
        "100000000",
        "--scheduler-enabled",
        "false",
    ])
    .context("reading the service's settings from the environment")?
    .settings;
    settings.public_base_url = None;
    Ok(settings)
}

/// `settings` wired to the emulator at `google_base` (OAuth client and Calendar API); the
/// OAuth callback is `http://127.0.0.1:{port}/auth/google/callback`.
pub fn settings_with_google(google_base: &str, database_url: &str, port: u16) -> anyhow::Result<Settings> {
    let mut settings = settings(database_url, port)?;
    settings.google_client_id = Some(CLIENT_ID.into());
    settings.google_client_secret = Some(CLIENT_SECRET.into());
    settings.oauth_redirect_uri = Some(format!("http://127.0.0.1:{port}/auth/google/callback"));
    settings.google_emulator_url = Some(google_base.to_owned());
    Ok(settings)
}

/// A free local port (for a service whose OAuth callback must be registered before it
/// starts).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Registers the bench's OAuth client at the emulator, with the callback of a service that
/// will listen on `port`.
pub async fn register_oauth_client(http: &reqwest::Client, google: &EmulatorHandle, port: u16) -> anyhow::Result<()> {
    http.post(format!("{}/_emulator/clients", google.base_url()))
        .json(&json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "redirect_uris": [format!("http://127.0.0.1:{port}/auth/google/callback")]}))
        .send()
        .await?
        .error_for_status()
        .context("registering the OAuth client")?;
    Ok(())
}

/// Where the service's database lives, and how to remove it afterwards.
pub enum BenchDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl BenchDb {
    /// A SQLite file in a temporary directory (`TMPDIR`).
    pub fn sqlite() -> anyhow::Result<(String, BenchDb)> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("slotsync.db").display());
        Ok((url, BenchDb::Sqlite(dir)))
    }

    /// A fresh database created under the PostgreSQL server of `admin_url`.
    pub async fn postgres(admin_url: &str) -> anyhow::Result<(String, BenchDb)> {
        ensure!(
            admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://"),
            "not a PostgreSQL URL (postgres://…): {admin_url}"
        );
        let name = format!("slotsync_bench_{}", Uuid::new_v4().simple());
        let db = Database::connect(admin_url)
            .await
            .context("the PostgreSQL server answers")?;
        db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .context("creating the bench database")?;
        db.close().await?;
        let mut url = url::Url::parse(admin_url).context("the PostgreSQL URL parses")?;
        url.set_path(&format!("/{name}"));
        Ok((
            url.to_string(),
            BenchDb::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        ))
    }

    /// PostgreSQL when `BENCH_DATABASE_URL` names a server, SQLite otherwise.
    pub async fn from_env() -> anyhow::Result<(String, BenchDb)> {
        match postgres_from_env(&["BENCH_DATABASE_URL"]) {
            Some(url) => BenchDb::postgres(&url).await,
            None => BenchDb::sqlite(),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            BenchDb::Sqlite(_) => "SQLite",
            BenchDb::Postgres { .. } => "PostgreSQL",
        }
    }

    /// Drops the PostgreSQL database (the SQLite directory goes with `self`).
    pub async fn remove(self) {
        if let BenchDb::Postgres { admin_url, name } = self {
            let dropped = match Database::connect(&admin_url).await {
                Ok(db) => db
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = dropped {
                eprintln!("could not drop the bench database {name}: {e}");
            }
        }
    }
}

/// The first of `variables` that is set and not empty.
pub fn postgres_from_env(variables: &[&str]) -> Option<String> {
    variables
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
}

/// A running service.
pub struct Service {
    pub address: String,
    pub state: AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Service {
    /// The service as `slotsync serve` runs it: HTTP and the push worker (and the scheduler
    /// if the settings turn it on).
    pub async fn start(settings: Settings) -> anyhow::Result<Service> {
        let app = Application::build(settings).await?;
        let address = format!("http://{}", app.addr());
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Service {
            address,
            state,
            stop,
            running,
        })
    }

    /// The service's HTTP routes alone, without the push worker.
    pub async fn start_api_only(mut settings: Settings) -> anyhow::Result<Service> {
        settings.bind_addr = "127.0.0.1:0".parse()?;
        let state = Application::build(settings).await?.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}", listener.local_addr()?);
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let routes = slotsync::app::routes(state.clone());
        let running = tokio::spawn(async move {
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    routes,
                    async {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(10)),
                )
                .await
        });
        Ok(Service {
            address,
            state,
            stop,
            running,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.running.await??;
        Ok(())
    }

    /// Creates a user through the admin API; returns its id and API token.
    pub async fn create_user(&self, http: &reqwest::Client, email: &str) -> anyhow::Result<(Uuid, String)> {
        let created: Value = http
            .post(format!("{}/auth/users", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "email": email }))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("creating {email}"))?
            .json()
            .await?;
        let id = created["user"]["id"].as_str().context("a user id")?.parse()?;
        let token = created["api_token"].as_str().context("an api_token")?.to_owned();
        Ok((id, token))
    }

    /// Connects the Google account of the user holding `token` (its email at the emulator)
    /// through the browser flow: authorize, consent at the emulator, our callback.
    pub async fn connect_google(&self, http: &reqwest::Client, token: &str) -> anyhow::Result<()> {
        let authorize: Value = http
            .get(format!("{}/auth/google/authorize", self.address))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let consent = browser
            .get(authorize["url"].as_str().context("an authorize url")?)
            .send()
            .await?;
        ensure!(
            consent.status().is_redirection(),
            "consent answered {}",
            consent.status()
        );
        let callback = consent.headers()["location"].to_str()?.to_owned();
        let resp = browser.get(&callback).send().await?;
        ensure!(
            resp.status() == 200,
            "callback answered {}: {}",
            resp.status(),
            resp.text().await?
        );
        Ok(())
    }

    /// Creates a user, connects it, and waits (at most 30 s) until the first pull that
    /// connecting requests has run; returns its id and API token.
    pub async fn connected_user(&self, http: &reqwest::Client, email: &str) -> anyhow::Result<(Uuid, String)> {
        let (id, token) = self.create_user(http, email).await?;
        self.connect_google(http, &token).await?;
        let user = slotsync::domain::UserId(id);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status: Value = http
                .get(format!("{}/sync/status", self.address))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if !self.state.pulls.in_flight(user) && status["pull"]["sync_token_present"] == true {
                return Ok((id, token));
            }
            if Instant::now() > deadline {
                bail!("the first pull of {email} did not finish within 30 s: {status}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The emulator's control API.
pub struct Control<'a> {
    pub http: &'a reqwest::Client,
    pub base: String,
}

impl<'a> Control<'a> {
    pub fn new(http: &'a reqwest::Client, google: &EmulatorHandle) -> Self {
        Control {
            http,
            base: google.base_url(),
        }
    }

    pub async fn stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/_emulator/stats", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub async fn clear_stats(&self) -> anyhow::Result<()> {
        self.http
            .delete(format!("{}/_emulator/stats", self.base))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Waits until the emulator has answered no Calendar request for a second (connecting
    /// a user requests a first pull, run after a debounce), at most 60 s.
    pub async fn wait_quiet(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut quiet_since) = (u64::MAX, Instant::now());
        while Instant::now() < deadline {
            let calls = calendar_calls(&self.stats().await?);
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
    pub async fn latency(&self, latency: Option<[u64; 2]>) -> anyhow::Result<()> {
        let url = format!("{}/_emulator/faults", self.base);
        let req = match latency {
            Some(range) => self.http.put(url).json(&json!({ "latency_ms": range })),
            None => self.http.delete(url),
        };
        req.send()
            .await?
            .error_for_status()
            .context("setting the emulator's faults")?;
        Ok(())
    }

    /// An access token acting as `email` in Google Calendar (the user is created if new).
    pub async fn user_token(&self, email: &str) -> anyhow::Result<String> {
        let token: Value = self
            .http
            .post(format!("{}/_emulator/users/{email}/token", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(token["access_token"].as_str().context("an access token")?.to_owned())
    }
}

/// How many `op` requests (all statuses) the emulator's `stats` counted.
pub fn op_count(stats: &Value, op: &str) -> u64 {
    stats["requests"][op]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.as_u64())
        .sum()
}

/// How many `events.*` requests (all operations and statuses) the emulator counted.
pub fn calendar_calls(stats: &Value) -> u64 {
    stats["requests"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(op, _)| op.starts_with("events."))
        .map(|(op, _)| op_count(stats, op))
        .sum()
}

/// `op status: n` for every request the emulator counted.
pub fn request_detail(stats: &Value) -> String {
    let mut detail = Vec::new();
    for (op, statuses) in stats["requests"].as_object().into_iter().flatten() {
        for (status, n) in statuses.as_object().into_iter().flatten() {
            detail.push(format!("{op} {status}: {}", n.as_u64().unwrap_or(0)));
        }
    }
    if detail.is_empty() {
        "none".to_owned()
    } else {
        detail.join(", ")
    }
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

/// Turns the service's logs on when `RUST_LOG` is set (off by default: logging every
/// request would be measured too).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        slotsync::telemetry::init("pretty");
    }
}
