//! `spawn_app()` and typed helpers shared by the tests.

use clap::Parser;
use reqwest::{Client, Response};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use slotsync::app::Application;
use slotsync::config::Settings;
use slotsync::state::AppState;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
const SECRET_KEY: &str = "test-secret-key-0123456789abcdefghijklmnop";

#[derive(Parser)]
struct SettingsArgs {
    #[command(flatten)]
    settings: Settings,
}

/// A database that exists for one test and is removed afterwards.
pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Another instance's database: its owner removes it.
    Shared,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(db) = Database::connect(&admin_url).await {
                        let _ = db
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Creates the test's database and returns its URL.
pub async fn test_database() -> (String, TestDb) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("slotsync_test_{}", uuid::Uuid::new_v4().simple());
            let db = Database::connect(&admin_url).await.expect("TEST_DATABASE_URL answers");
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("can create a test database");
            let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&format!("/{name}"));
            (url.to_string(), TestDb::Postgres { admin_url, name })
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("slotsync.db").display());
            (url, TestDb::Sqlite(dir))
        }
    }
}

/// Settings for a test: random port, the given database, test secrets.
pub fn test_settings(database_url: &str) -> Settings {
    SettingsArgs::try_parse_from([
        "slotsync",
        "--database-url",
        database_url,
        "--bind-addr",
        "127.0.0.1:0",
        "--admin-token",
        ADMIN_TOKEN,
        "--secret-key",
        SECRET_KEY,
        "--rate-limit-per-minute",
        "100000",
        // Jobs run on demand in tests (`run_once`, or `POST /admin/jobs/{name}/run`).
        "--scheduler-enabled",
        "false",
    ])
    .expect("test settings parse")
    .settings
}

/// A running service.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub state: AppState,
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    _db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `configure` adjusted its settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("RUST_LOG").is_some() {
        slotsync::telemetry::init("pretty");
    }
    spawn_app_on(None, configure).await
}

/// Like [`spawn_app_with`], serving on `listener` if given (bound beforehand, so no other
/// test can take its port between choosing it and the service binding it).
async fn spawn_app_on(listener: Option<std::net::TcpListener>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (url, db) = test_database().await;
    let mut settings = test_settings(&url);
    configure(&mut settings);
    start_on(settings, db, listener).await
}

/// Starts the service with `settings`; `db` is dropped (and removed) with the app.
pub async fn start(settings: Settings, db: TestDb) -> TestApp {
    start_on(settings, db, None).await
}

async fn start_on(settings: Settings, db: TestDb, listener: Option<std::net::TcpListener>) -> TestApp {
    let app = match listener {
        Some(listener) => Application::build_on(settings, listener).await,
        None => Application::build(settings).await,
    }
    .expect("the app builds");
    let address = format!("http://{}", app.addr());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: Client::new(),
        state,
        stop: Some((stop, running)),
        _db: db,
    }
}

/// Another instance of `app`'s service on the same database (settings adjusted by
/// `configure`), as a second process of a deployment would be.
pub async fn start_another_instance(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = (*app.state.settings).clone();
    settings.bind_addr = "127.0.0.1:0".parse().unwrap();
    configure(&mut settings);
    start(settings, TestDb::Shared).await
}

/// Polls `check` every 25 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// A service wired to its own Google emulator (OAuth client registered for its callback).
pub struct ConnectedApp {
    pub app: TestApp,
    pub google: slotsync::emulator::EmulatorHandle,
}

pub async fn spawn_app_with_google() -> ConnectedApp {
    spawn_app_with_google_and(|_| {}).await
}

/// Like [`spawn_app_with_google`], with settings adjusted by `configure`.
pub async fn spawn_app_with_google_and(configure: impl FnOnce(&mut Settings)) -> ConnectedApp {
    use slotsync::emulator::{Emulator, EmulatorConfig};
    let google = Emulator::start(EmulatorConfig::for_tests())
        .await
        .expect("emulator starts");
    // The callback URL must be registered before the app starts, so bind its port first
    // and hand the listener over (a port only probed could be taken meanwhile).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirect = format!("http://127.0.0.1:{port}/auth/google/callback");
    let resp = Client::new()
        .post(format!("{}/_emulator/clients", google.base_url()))
        .json(&json!({"client_id": "test-client", "client_secret": "test-secret", "redirect_uris": [redirect]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "registering the OAuth client");
    let base = google.base_url();
    let app = spawn_app_on(Some(listener), |s| {
        s.bind_addr = format!("127.0.0.1:{port}").parse().unwrap();
        s.google_client_id = Some("test-client".into());
        s.google_client_secret = Some("test-secret".into());
        s.oauth_redirect_uri = Some(redirect.clone());
        s.google_emulator_url = Some(base.clone());
        s.return_to_origins = vec!["https://app.example.com".into()];
        // Retries in tests come quickly; the default schedule is tested as a pure rule.
        s.push_retry_base_ms = 50;
        s.push_retry_max_secs = 2;
        configure(s);
    })
    .await;
    ConnectedApp { app, google }
}

/// A client that does not follow redirects, as a test's "browser".
pub fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl ConnectedApp {
    /// Connects `user`'s Google account through the browser flow (consent at the
    /// emulator, then our callback) and returns the callback URL that was used.
    pub async fn connect(&self, user: &TestUser) -> String {
        let resp = self.app.get(user, "/auth/google/authorize").await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let consent = browser().get(body["url"].as_str().unwrap()).send().await.unwrap();
        assert!(
            consent.status().is_redirection(),
            "consent answered {}",
            consent.status()
        );
        let callback = consent.headers()["location"].to_str().unwrap().to_owned();
        let resp = browser().get(&callback).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
        callback
    }

    /// Connects `user` and waits until the initial pull that connecting requests is done,
    /// so the test's own pulls and counters start from a settled state.
    pub async fn connect_and_settle(&self, user: &TestUser) {
        self.connect(user).await;
        let id = slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap());
        wait_until("the initial pull ran", std::time::Duration::from_secs(10), || async {
            !self.app.state.pulls.in_flight(id)
                && self.app.sync_status(user).await["pull"]["sync_token_present"] == true
        })
        .await;
    }

    /// Creates a user and connects it (see [`ConnectedApp::connect_and_settle`]).
    pub async fn connected_user(&self, email: &str) -> TestUser {
        let user = self.app.create_user(email).await;
        self.connect_and_settle(&user).await;
        user
    }

    /// Every event (cancelled ones included) in the primary calendar of `email`.
    pub async fn events(&self, email: &str) -> Vec<Value> {
        let dump: Value = reqwest::get(format!("{}/_emulator/calendars/{email}/events", self.google.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        dump["items"]
            .as_array()
            .or(dump.as_array())
            .expect("an event list")
            .clone()
    }

    /// Sets the emulator's fault plan (`Value::Null` clears it).
    pub async fn faults(&self, plan: Value) {
        let url = format!("{}/_emulator/faults", self.google.base_url());
        let resp = if plan.is_null() {
            Client::new().delete(url).send().await.unwrap()
        } else {
            Client::new().put(url).json(&plan).send().await.unwrap()
        };
        assert!(resp.status().is_success(), "setting faults: {}", resp.status());
    }

    /// The emulator's counters.
    pub async fn stats(&self) -> Value {
        google_stats(&self.google.base_url()).await
    }

    /// A google-calendar3 hub acting as `email` in Google Calendar (the "other side").
    pub async fn google_user(&self, email: &str) -> slotsync::google::hub::Hub {
        let token: Value = Client::new()
            .post(format!("{}/_emulator/users/{email}/token", self.google.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let endpoints = slotsync::google::GoogleEndpoints::emulator(&self.google.base_url());
        slotsync::google::hub::calendar_hub(&endpoints, token["access_token"].as_str().unwrap().to_owned())
    }
}

impl TestApp {
    /// Stops the service gracefully (as on SIGTERM) and waits until it has.
    pub async fn stop(&mut self) {
        if let Some((stop, running)) = self.stop.take() {
            let _ = stop.send(());
            running
                .await
                .expect("the service task")
                .expect("the service stops cleanly");
        }
    }

    /// A slot's JSON, as its owner sees it.
    pub async fn slot(&self, user: &TestUser, id: &str) -> Value {
        self.get_json(user, &format!("/slots/{id}")).await
    }

    /// The stored row of a slot (deleted ones too).
    pub async fn slot_row(&self, id: &str) -> slotsync::store::slots::SlotRow {
        use sea_orm::EntityTrait;
        slotsync::store::entities::slots::Entity::find_by_id(uuid::Uuid::parse_str(id).unwrap())
            .one(&self.state.db)
            .await
            .unwrap()
            .expect("the slot exists")
    }

    /// Waits until the slot's current version is at Google (`clean`), and returns its row.
    pub async fn wait_until_pushed(&self, id: &str) -> slotsync::store::slots::SlotRow {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let row = self.slot_row(id).await;
            if row.push_state == "clean" && row.synced_version == Some(row.version) {
                return row;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "slot {id} was never pushed; last seen: {row:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Pulls `user`'s calendar now (`POST /sync/trigger?mode=`) and returns the report.
    pub async fn pull(&self, user: &TestUser, mode: &str) -> Value {
        let resp = self
            .user_send(user, reqwest::Method::POST, &format!("/sync/trigger?mode={mode}"))
            .await;
        assert_eq!(resp.status(), 200, "pull: {:?}", resp.text().await);
        resp.json().await.unwrap()
    }

    /// Runs a scheduled job once through the admin route and returns its outcome.
    pub async fn run_job(&self, name: &str) -> Value {
        let resp = self.admin_post(&format!("/admin/jobs/{name}/run"), &json!({})).await;
        assert_eq!(resp.status(), 200, "job {name}: {:?}", resp.text().await);
        let body: Value = resp.json().await.unwrap();
        body["outcome"].clone()
    }

    /// The caller's sync status.
    pub async fn sync_status(&self, user: &TestUser) -> Value {
        self.get_json(user, "/sync/status").await
    }
}

/// A created user: its id and API token.
pub struct TestUser {
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_user(&self, email: &str) -> TestUser {
        let resp = self.admin_post("/auth/users", &json!({ "email": email })).await;
        assert_eq!(resp.status(), 201, "creating {email}");
        let body: Value = resp.json().await.unwrap();
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["api_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a body-less request with the user's token.
    pub async fn user_send(&self, user: &TestUser, method: reqwest::Method, path: &str) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// GET as `user` and parse the JSON answer.
    pub async fn get_json(&self, user: &TestUser, path: &str) -> Value {
        self.get(user, path).await.json().await.unwrap()
    }

    pub async fn get(&self, user: &TestUser, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_slot(&self, user: &TestUser, body: &Value) -> Response {
        self.client
            .post(self.url("/slots"))
            .bearer_auth(&user.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a slot and returns its JSON.
    pub async fn create_slot(&self, user: &TestUser, body: &Value) -> Value {
        let resp = self.post_slot(user, body).await;
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    pub async fn put_slot(&self, user: &TestUser, id: &str, body: &Value, if_match: Option<&str>) -> Response {
        let mut req = self
            .client
            .put(self.url(&format!("/slots/{id}")))
            .bearer_auth(&user.token)
            .json(body);
        if let Some(v) = if_match {
            req = req.header("If-Match", v);
        }
        req.send().await.unwrap()
    }

    pub async fn delete_slot(&self, user: &TestUser, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/slots/{id}")))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// All of the user's slots (following cursors), ids only.
    pub async fn list_slot_ids(&self, user: &TestUser, query: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/slots?{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let resp = self.get(user, &path).await;
            assert_eq!(resp.status(), 200);
            let page: Value = resp.json().await.unwrap();
            for s in page["items"].as_array().unwrap() {
                ids.push(s["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }
}

/// A valid timed slot body.
pub fn slot_body(title: &str, start: &str, end: &str) -> Value {
    json!({ "title": title, "start": start, "end": end, "timezone": "Europe/Paris" })
}

/// The Google event id slotsync derives for a slot (given as the API's JSON).
pub fn event_id_of(slot: &Value) -> String {
    let id = uuid::Uuid::parse_str(slot["id"].as_str().unwrap()).unwrap();
    slotsync::domain::EventId::from_slot(slotsync::domain::SlotId(id))
        .as_str()
        .to_owned()
}

/// Asserts the common error body and returns it.
pub async fn assert_error(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// The emulator's request and notification counters.
pub async fn google_stats(base_url: &str) -> Value {
    reqwest::get(format!("{base_url}/_emulator/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// How many `op` requests the emulator answered with `status`.
pub fn op_count(stats: &Value, op: &str, status: &str) -> u64 {
    stats["requests"][op][status].as_u64().unwrap_or(0)
}

/// Like [`spawn_app_with_google_and`], with `PUBLIC_BASE_URL` set to the app's own address,
/// so notification channels are on and the emulator delivers to the app's webhook. The
/// scheduler is off (tests run jobs on demand), unless `configure` turns it on.
pub async fn spawn_app_with_channels_and(configure: impl FnOnce(&mut Settings)) -> ConnectedApp {
    spawn_app_with_google_and(|s| {
        s.public_base_url = Some(format!("http://{}", s.bind_addr));
        s.scheduler_enabled = false;
        configure(s);
    })
    .await
}

impl ConnectedApp {
    /// Waits until at least `n` notifications were settled (delivered or given up), then
    /// asserts that the app accepted every one; returns the counters.
    pub async fn wait_for_notifications(&self, n: u64) -> Value {
        let settled = |c: &Value| c["sent"].as_u64().unwrap_or(0) + c["failed"].as_u64().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let counters = self.stats().await["notifications"].clone();
            if settled(&counters) >= n {
                assert_eq!(counters["failed"], 0, "a notification was refused: {counters}");
                return counters;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {n} notifications: {counters}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Every channel the emulator knows (stopped and expired ones too, with `live`).
    pub async fn google_channels(&self) -> Vec<Value> {
        let body: Value = reqwest::get(format!("{}/_emulator/channels", self.google.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["channels"].as_array().expect("a channel list").clone()
    }
}

impl TestApp {
    /// The user's channels not stopped (expired ones included), oldest first.
    pub async fn live_channels(&self, user: &TestUser) -> Vec<slotsync::store::channels::ChannelRow> {
        let id = uuid::Uuid::parse_str(&user.id).unwrap();
        slotsync::store::channels::live(&self.state.db, id).await.unwrap()
    }

    /// Posts a push notification to the webhook with exactly these headers.
    pub async fn notify(&self, headers: &[(&str, String)]) -> Response {
        let mut req = self.client.post(self.url("/webhooks/google-calendar"));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        req.send().await.unwrap()
    }
}
