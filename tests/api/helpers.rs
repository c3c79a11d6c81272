//! `spawn_app()` and what only the API tests use, on the shared test kit
//! (`slotsync-testkit`, in `testkit/`): the kit makes the database, the settings, the
//! emulator and its control client, the browser OAuth flow and the running service; this
//! file adds the API calls and assertions of these tests.

use std::ops::{Deref, DerefMut};

use reqwest::Response;
use serde_json::{json, Value};
use slotsync::config::Settings;
use slotsync_testkit::{Google, RunningApp, TestDb, TestSettings};

pub use slotsync_testkit::{browser, test_database, wait_until, TestUser, ADMIN_TOKEN};

/// A running service and its database (removed with it). The service's fields and the
/// calls every harness shares (`address`, `client`, `state`, `create_user`, `connect`,
/// `sync_status`, `run_job`, `stop`, …) are the kit's [`RunningApp`].
pub struct TestApp {
    app: RunningApp,
    _db: TestDb,
}

impl Deref for TestApp {
    type Target = RunningApp;

    fn deref(&self) -> &RunningApp {
        &self.app
    }
}

impl DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut RunningApp {
        &mut self.app
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `configure` adjusted its settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    slotsync_testkit::init_logs();
    spawn_app_on(None, configure).await
}

/// Like [`spawn_app_with`], serving on `listener` if given (bound beforehand, so no other
/// test can take its port between choosing it and the service binding it).
async fn spawn_app_on(listener: Option<std::net::TcpListener>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (url, db) = test_database().await;
    let mut settings = Settings::for_tests(&url);
    configure(&mut settings);
    TestApp {
        app: RunningApp::start_on(settings, listener).await,
        _db: db,
    }
}

/// Another instance of `app`'s service on the same database (settings adjusted by
/// `configure`), as a second process of a deployment would be.
pub async fn start_another_instance(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = (*app.state.settings).clone();
    settings.bind_addr = "127.0.0.1:0".parse().unwrap();
    configure(&mut settings);
    TestApp {
        app: RunningApp::start(settings).await,
        _db: TestDb::Shared,
    }
}

/// A service wired to its own Google emulator (OAuth client registered for its callback).
pub struct ConnectedApp {
    pub app: TestApp,
    pub google: Google,
}

pub async fn spawn_app_with_google() -> ConnectedApp {
    spawn_app_with_google_and(|_| {}).await
}

/// Like [`spawn_app_with_google`], with settings adjusted by `configure`.
pub async fn spawn_app_with_google_and(configure: impl FnOnce(&mut Settings)) -> ConnectedApp {
    let google = Google::start().await;
    // The callback URL must be registered before the app starts, so bind its port first
    // and hand the listener over (a port only probed could be taken meanwhile).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    google.register_client(&[slotsync_testkit::callback_url(port)]).await;
    let base = google.base_url();
    let app = spawn_app_on(Some(listener), |s| {
        s.use_google(&base, port);
        s.return_to_origins = vec!["https://app.example.com".into()];
        // Retries in tests come quickly; the default schedule is tested as a pure rule.
        s.push_retry_base_ms = 50;
        s.push_retry_max_secs = 2;
        // A 404 on a known event is confirmed quickly.
        s.google_not_found_retry_ms = 10;
        configure(s);
    })
    .await;
    ConnectedApp { app, google }
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
    /// Clears the emulator's counters, pulls `user` incrementally then in full, waits for
    /// every slot to be pushed, and asserts that nothing was written to Google. Returns the
    /// full pull's report, for the caller's own checks that nothing changed here.
    pub async fn pull_twice_writing_nothing(&self, user: &TestUser) -> Value {
        self.google.clear_stats().await;
        self.app.pull(user, "incremental").await;
        let second = self.app.pull(user, "full").await;
        for id in self.app.list_slot_ids(user, "").await {
            self.app.wait_until_pushed(&id).await;
        }
        let stats = self.google.stats().await;
        for op in ["events.insert", "events.patch", "events.update", "events.delete"] {
            assert_eq!(stats.op_total(op), 0, "{op} written back: {stats}");
        }
        second
    }

    /// Waits until at least `n` notifications were settled (delivered or given up), then
    /// asserts that the app accepted every one; returns the counters.
    pub async fn wait_for_notifications(&self, n: u64) -> Value {
        let settled = |c: &Value| c["sent"].as_u64().unwrap_or(0) + c["failed"].as_u64().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let counters = self.google.stats().await["notifications"].clone();
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
}

impl TestApp {
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
            if row.push_state == slotsync::domain::PushState::Clean && row.synced_version == Some(row.version) {
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
    /// A pull already running (a notification's, or the first one after connecting) is
    /// answered 409 `pull_running`: then this waits and asks again, so the report is of a
    /// pull that started after the call.
    pub async fn pull(&self, user: &TestUser, mode: &str) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let resp = self
                .user_send(user, reqwest::Method::POST, &format!("/sync/trigger?mode={mode}"))
                .await;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status == 409 && body["code"] == "pull_running" && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                continue;
            }
            assert_eq!(status, 200, "pull: {body}");
            return body;
        }
    }

    /// One request with a bearer token and an optional JSON body.
    async fn send_as(&self, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>) -> Response {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.send_as(ADMIN_TOKEN, reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn admin_delete(&self, path: &str) -> Response {
        self.send_as(ADMIN_TOKEN, reqwest::Method::DELETE, path, None).await
    }

    pub async fn admin_get(&self, path: &str) -> Response {
        self.send_as(ADMIN_TOKEN, reqwest::Method::GET, path, None).await
    }

    /// Sends a body-less request with the user's token.
    pub async fn user_send(&self, user: &TestUser, method: reqwest::Method, path: &str) -> Response {
        self.send_as(&user.token, method, path, None).await
    }

    /// GET as `user` and parse the JSON answer.
    pub async fn get_json(&self, user: &TestUser, path: &str) -> Value {
        self.get(user, path).await.json().await.unwrap()
    }

    pub async fn get(&self, user: &TestUser, path: &str) -> Response {
        self.user_send(user, reqwest::Method::GET, path).await
    }

    pub async fn post_slot(&self, user: &TestUser, body: &Value) -> Response {
        self.send_as(&user.token, reqwest::Method::POST, "/slots", Some(body))
            .await
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
        self.user_send(user, reqwest::Method::DELETE, &format!("/slots/{id}"))
            .await
    }

    /// All of the user's slots (following cursors), ids only.
    pub async fn list_slot_ids(&self, user: &TestUser, query: &str) -> Vec<String> {
        let slots = self.api().slots(user, query).await;
        slots.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
    }

    /// The user's channels not stopped (expired ones included), oldest first.
    pub async fn live_channels(&self, user: &TestUser) -> Vec<slotsync::store::channels::ChannelRow> {
        let id = slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap());
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
