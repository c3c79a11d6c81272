//! The real `slotsync` binary as child processes: a Google emulator (`slotsync emulator`),
//! service instances (`slotsync serve`) configured through the environment only, and the
//! HTTP calls the tests make to them. Every child is killed when its handle is dropped, so
//! a failing test leaks no process; the last lines of its log are printed then.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use slotsync_testkit::{callback_url, ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, SECRET_KEY};

pub use slotsync_testkit::google::{cancelled, tagged_slot};
pub use slotsync_testkit::{free_port, ServiceClient as Api, TestUser as User};

/// How long a child may take to start answering (a debug build on a busy CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The seed of a test's random choices: `PROCESS_TEST_SEED` or `default`, printed so a
/// failing run can be repeated.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("PROCESS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (set PROCESS_TEST_SEED to change it)");
    seed
}

/// The last `lines` lines of a log file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The binary with a clean environment (nothing from the developer's shell or a `.env`
/// leaks in), run in `dir`, writing stdout and stderr to `log`.
fn command(args: &[&str], dir: &Path, log: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slotsync"));
    c.args(args).current_dir(dir).env_clear();
    for var in ["RUST_LOG", "RUST_BACKTRACE", "PATH"] {
        if let Some(value) = std::env::var_os(var) {
            c.env(var, value);
        }
    }
    let out = File::options().create(true).append(true).open(log).expect("a log file");
    let err = out.try_clone().expect("a second handle on the log");
    c.stdin(Stdio::null()).stdout(out).stderr(err);
    c
}

/// A running child, killed (SIGKILL) and reaped on drop.
struct Guard {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Guard {
    fn spawn(mut command: Command, name: &str, log: &Path) -> Self {
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        }
    }

    /// Panics with the log's tail if the child has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its log ends with:\n{}",
                self.name,
                tail(&self.log, 60)
            );
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} ({}) ends with ---\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }
}

/// An HTTP client with a bound on every call, so a request to a dying process fails
/// instead of hanging the test.
fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// `slotsync emulator` in a child process, driven through the kit's control client.
pub struct Google {
    _guard: Guard,
    control: slotsync_testkit::Google,
}

impl Google {
    /// Starts the emulator on a port of its choosing and reads that port from what it
    /// prints (`Google emulator listening on http://…`).
    pub async fn start(dir: &Path) -> Self {
        let log = dir.join("emulator.log");
        let command = command(&["emulator", "--bind", "127.0.0.1:0", "--seed", "7"], dir, &log);
        let mut guard = Guard::spawn(command, "the emulator", &log);
        let deadline = Instant::now() + START_TIMEOUT;
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text
                .lines()
                .find_map(|l| l.strip_prefix("Google emulator listening on "))
            {
                break rest.trim().to_owned();
            }
            guard.assert_running();
            assert!(Instant::now() < deadline, "the emulator never said where it listens");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            _guard: guard,
            control: slotsync_testkit::Google::at(&base),
        }
    }
}

impl Deref for Google {
    type Target = slotsync_testkit::Google;

    fn deref(&self) -> &slotsync_testkit::Google {
        &self.control
    }
}

/// What a service process is started with: everything is an environment variable.
#[derive(Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub port: u16,
    env: Vec<(String, String)>,
}

impl ServiceSpec {
    /// A service on `port` using `database_url` and the emulator at `google`, with
    /// notification channels on (`PUBLIC_BASE_URL` is its own address), quick push retries,
    /// limits out of the way, and the default schedules.
    pub fn new(name: &str, port: u16, database_url: &str, google: &str) -> Self {
        let address = format!("http://127.0.0.1:{port}");
        let env = [
            ("DATABASE_URL", database_url.to_owned()),
            ("BIND_ADDR", format!("127.0.0.1:{port}")),
            ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("SECRET_KEY", SECRET_KEY.to_owned()),
            ("GOOGLE_EMULATOR_URL", google.to_owned()),
            ("GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
            ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("OAUTH_REDIRECT_URI", callback_url(port)),
            ("PUBLIC_BASE_URL", address),
            ("PUSH_RETRY_BASE_MS", "50".to_owned()),
            ("PUSH_RETRY_MAX_SECS", "2".to_owned()),
            ("RATE_LIMIT_PER_MINUTE", "1000000".to_owned()),
            ("GOOGLE_USER_CALLS_PER_MINUTE", "100000".to_owned()),
            ("GOOGLE_CALLS_PER_MINUTE", "1000000".to_owned()),
        ];
        Self {
            name: name.to_owned(),
            port,
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    /// Sets (or replaces) environment variables.
    pub fn with(mut self, vars: &[(&str, &str)]) -> Self {
        for (key, value) in vars {
            self.env.retain(|(k, _)| k != key);
            self.env.push(((*key).to_owned(), (*value).to_owned()));
        }
        self
    }
}

/// `slotsync serve` in a child process, which the test may kill, stop and start again
/// (on the same port and database).
pub struct Service {
    pub spec: ServiceSpec,
    pub api: Api,
    dir: PathBuf,
    guard: Option<Guard>,
    starts: u32,
}

impl Service {
    /// Starts the service and waits until it is ready.
    pub async fn start(spec: ServiceSpec, dir: &Path) -> Self {
        let mut service = Self {
            api: Api::new(format!("http://127.0.0.1:{}", spec.port), http()),
            spec,
            dir: dir.to_owned(),
            guard: None,
            starts: 0,
        };
        service.launch();
        service.wait_ready().await;
        service
    }

    fn launch(&mut self) {
        assert!(self.guard.is_none(), "{} is already running", self.spec.name);
        self.starts += 1;
        let log = self.dir.join(format!("{}.log", self.spec.name));
        let mut command = command(&["serve"], &self.dir, &log);
        for (key, value) in &self.spec.env {
            command.env(key, value);
        }
        let name = format!("{} (start {})", self.spec.name, self.starts);
        self.guard = Some(Guard::spawn(command, &name, &log));
    }

    /// Polls `GET /health/ready` until it answers 200; returns how long it took.
    pub async fn wait_ready(&mut self) -> Duration {
        let started = Instant::now();
        let url = self.api.url("/health/ready");
        let probe = Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        loop {
            if let Ok(resp) = probe.get(&url).send().await {
                if resp.status() == 200 {
                    return started.elapsed();
                }
            }
            self.guard.as_mut().expect("a running service").assert_running();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} was not ready within {START_TIMEOUT:?}",
                self.spec.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts the process again (same port, database and settings) and waits until ready.
    pub async fn restart(&mut self) -> Duration {
        self.launch();
        self.wait_ready().await
    }

    /// Replaces the settings for the next start.
    pub fn reconfigure(&mut self, vars: &[(&str, &str)]) {
        self.spec = self.spec.clone().with(vars);
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        let mut guard = self.guard.take().expect("a running service");
        guard.child.kill().expect("SIGKILL");
        guard.child.wait().expect("the killed process is reaped");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.guard.as_ref().expect("a running service").child.id()
    }

    /// Sends SIGTERM (a graceful stop), as an orchestrator does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.guard
            .as_mut()
            .is_some_and(|g| matches!(g.child.try_wait(), Ok(None)))
    }

    /// Waits up to `timeout` for the process to exit and returns its status (`None` if it
    /// is still running then).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let guard = self.guard.as_mut().expect("a started service");
            if let Some(status) = guard.child.try_wait().expect("try_wait") {
                self.guard = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.spec.name))).unwrap_or_default()
    }
}

/// Opens the test's database from the test process (to inspect what a dead process left,
/// or to let leases run out).
pub async fn open_db(url: &str) -> DatabaseConnection {
    sea_orm::Database::connect(url).await.expect("the test database opens")
}

/// Parses an RFC 3339 instant from JSON.
pub fn instant(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .to_utc()
}

/// Every slot of `user` (deleted ones too).
pub async fn all_slots(api: &Api, user: &User) -> Vec<Value> {
    api.slots(user, "include_deleted=true&limit=500").await
}
