//! The one test harness of slotsync, shared by the integration tests (`tests/api`), the
//! process tests (`tests/api/processes`), the emulator's conformance tests
//! (`tests/emulator`) and the benchmarks (`benches`):
//!
//! - [`db`]: a database per test — a SQLite file in a temporary directory, or a fresh
//!   PostgreSQL database under `TEST_DATABASE_URL`, dropped afterwards;
//! - [`settings`]: `Settings::for_tests(url)` (the [`TestSettings`] trait), the test
//!   secrets and OAuth client, wiring the settings to an emulator;
//! - [`google`]: a typed client of the emulator's control API (`/_emulator/…`: faults,
//!   stats and op counts, consent, tokens, events, channels), owning an in-process
//!   emulator or talking to one running elsewhere;
//! - [`browser`]: the browser side of the OAuth flow (consent at the emulator, then the
//!   service's callback);
//! - [`service`]: HTTP calls every harness makes to a running service (users, connecting
//!   Google, sync status, jobs, slot listing, metrics), by address only — it works for an
//!   in-process service and a child process alike;
//! - [`app`]: the service started in this process (as `slotsync serve` runs it, or its
//!   routes alone) and stopped gracefully;
//! - [`states`]: a slot's sync state and a connection's status, typed, for assertions;
//! - [`fleet`]: many connected users at once (the emulator's bulk accounts, the service's
//!   rows written directly), for fleet tests and benchmarks;
//! - [`wait`]: polling under a deadline.
//!
//! Everything panics with a message on failure: a test (or a benchmark's setup) cannot go
//! on without it.
//!
//! A new integration test needs no more than:
//!
//! ```no_run
//! use slotsync::config::Settings;
//! use slotsync_testkit::{test_database, Google, RunningApp, TestSettings};
//!
//! # async fn example() {
//! let (url, _db) = test_database().await; // removed when `_db` is dropped
//! let google = Google::start().await;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let port = listener.local_addr().unwrap().port();
//! google.register_client(&[slotsync_testkit::callback_url(port)]).await;
//! let mut settings = Settings::for_tests(&url);
//! settings.use_google(&google.base_url(), port);
//! let app = RunningApp::start_on(settings, Some(listener)).await;
//! let user = app.connected_user("ada@example.com").await;
//! assert_eq!(google.stats().await.op_count("events.watch", "200"), 0);
//! # let _ = user;
//! # }
//! ```

pub mod app;
pub mod browser;
pub mod db;
pub mod fleet;
pub mod google;
pub mod service;
pub mod settings;
pub mod states;
pub mod wait;

pub use app::RunningApp;
pub use browser::browser;
pub use db::{test_database, TestDb};
pub use google::{Google, Stats};
pub use service::{metric_value, ServiceClient, TestUser};
pub use settings::{callback_url, TestSettings, ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, SECRET_KEY};
pub use states::{all_in, connection_status, sync_state, ConnectionStatus, SyncState};
pub use wait::{wait_for, wait_until};

/// A port nothing listens on at the moment (the OS picks it; the probe is closed at once),
/// for a service whose OAuth callback must be known before it starts. Another process may
/// take it meanwhile: bind a listener and hand it over where the service allows it
/// ([`RunningApp::start_on`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Turns the service's logs on when `RUST_LOG` is set (off otherwise: a test's output
/// stays short, and a benchmark does not measure its logging).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        slotsync::telemetry::init("pretty");
    }
}
