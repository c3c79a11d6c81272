//! HTTP calls every harness makes to a running service, by its address alone: they work
//! for a service in this process and for `slotsync serve` in a child process alike.

use std::time::Duration;

use reqwest::{Client, Method, Response};
use serde_json::{json, Value};
use slotsync::domain::UserId;

use crate::settings::ADMIN_TOKEN;
use crate::{browser, wait};

/// A created user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    /// Its API token.
    pub token: String,
}

impl TestUser {
    /// The user's id, typed.
    pub fn user_id(&self) -> UserId {
        UserId(uuid::Uuid::parse_str(&self.id).expect("a user id is a UUID"))
    }
}

/// HTTP access to one service (clonable into load tasks; it outlives restarts). Calls
/// other than [`ServiceClient::send`] panic unless the service answers as expected.
#[derive(Clone)]
pub struct ServiceClient {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub http: Client,
}

impl ServiceClient {
    pub fn new(base: impl Into<String>, http: Client) -> Self {
        Self {
            base: base.into(),
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One request with a bearer token, an optional JSON body and extra headers; transport
    /// errors are the caller's to judge (the process may be down).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Result<Response> {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(bearer);
        if let Some(body) = body {
            req = req.json(body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await
    }

    /// A request that must succeed (2xx); answers its JSON (or `null` without a body).
    pub async fn must(&self, method: Method, path: &str, bearer: &str, body: Option<&Value>) -> Value {
        self.expect(method, path, bearer, body, None).await
    }

    /// A request that must answer `status` (any 2xx when `None`); answers its JSON.
    async fn expect(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        status: Option<u16>,
    ) -> Value {
        let resp = self
            .send(method.clone(), path, bearer, body, &[])
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answered = resp.status();
        let text = resp.text().await.unwrap_or_default();
        match status {
            Some(expected) => assert_eq!(answered, expected, "{method} {path} answered {answered}: {text}"),
            None => assert!(answered.is_success(), "{method} {path} answered {answered}: {text}"),
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Creates a user (`POST /auth/users` as the admin: 201).
    pub async fn create_user(&self, email: &str) -> TestUser {
        let body = json!({ "email": email });
        let created = self
            .expect(Method::POST, "/auth/users", ADMIN_TOKEN, Some(&body), Some(201))
            .await;
        TestUser {
            id: created["user"]["id"].as_str().expect("a user id").to_owned(),
            email: email.to_owned(),
            token: created["api_token"].as_str().expect("an api_token").to_owned(),
        }
    }

    /// The Google consent URL for `user` (`GET /auth/google/authorize{query}`: 200).
    pub async fn authorize_url(&self, user: &TestUser, query: &str) -> String {
        let path = format!("/auth/google/authorize{query}");
        let body = self.expect(Method::GET, &path, &user.token, None, Some(200)).await;
        body["url"].as_str().expect("a consent URL").to_owned()
    }

    /// Connects `user`'s Google account through the browser flow: our authorize route,
    /// the emulator's consent (approved at once for the `login_hint`, unless the test set
    /// the consent screen otherwise), our callback (200). Returns the callback URL used.
    pub async fn connect_google(&self, user: &TestUser) -> String {
        let url = self.authorize_url(user, "").await;
        browser::consent_and_return(&url).await
    }

    /// `GET /sync/status` of `user`.
    pub async fn sync_status(&self, user: &TestUser) -> Value {
        self.must(Method::GET, "/sync/status", &user.token, None).await
    }

    /// Waits (at most 30 s) until `user`'s first pull, which connecting requests, is done:
    /// its sync token is stored and `idle()` holds (an in-process service also checks that
    /// no pull is in flight; a child process cannot be asked).
    pub async fn wait_first_pull(&self, user: &TestUser, idle: impl Fn() -> bool) {
        let what = format!("the first pull of {} ran", user.email);
        wait::wait_until(&what, Duration::from_secs(30), || async {
            idle() && self.sync_status(user).await["pull"]["sync_token_present"] == true
        })
        .await;
    }

    /// Runs a scheduled job once (`POST /admin/jobs/{name}/run`: 200) and answers its
    /// outcome.
    pub async fn run_job(&self, name: &str) -> Value {
        let path = format!("/admin/jobs/{name}/run");
        self.expect(Method::POST, &path, ADMIN_TOKEN, Some(&json!({})), Some(200))
            .await["outcome"]
            .clone()
    }

    /// Every slot of `user` that `GET /slots?{query}` lists, following cursors.
    pub async fn slots(&self, user: &TestUser, query: &str) -> Vec<Value> {
        let mut slots = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/slots?{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.expect(Method::GET, &path, &user.token, None, Some(200)).await;
            slots.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return slots,
            }
        }
    }

    /// The value of the first Prometheus series starting with `prefix` (0 if absent).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_value(&text, prefix).unwrap_or(0.0)
    }
}

/// The value of the first series in a Prometheus scrape whose line starts with `prefix`.
pub fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
