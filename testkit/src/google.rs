//! The Google emulator as a test drives it: its control API (`/_emulator/…`, see
//! docs/emulator.md) through typed calls, and the emulator itself when the test starts it
//! in-process.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::{Client, Method};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use slotsync::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use slotsync::google::hub::{calendar_hub, Hub};
use slotsync::google::GoogleEndpoints;

use crate::settings::{CLIENT_ID, CLIENT_SECRET};

/// A Google emulator: started in this process ([`Google::start`]; it stops when this is
/// dropped) or running elsewhere ([`Google::at`], e.g. `slotsync emulator` in a child
/// process). Every control call panics unless the emulator answers 2xx.
pub struct Google {
    base: String,
    http: Client,
    _emulator: Option<EmulatorHandle>,
}

impl Google {
    /// An emulator in this process with the test configuration (any free port, seed 42).
    pub async fn start() -> Self {
        Self::start_with(EmulatorConfig::for_tests()).await
    }

    /// An emulator in this process with `config`.
    pub async fn start_with(config: EmulatorConfig) -> Self {
        let emulator = Emulator::start(config).await.expect("the emulator starts");
        let mut google = Self::at(&emulator.base_url());
        google._emulator = Some(emulator);
        google
    }

    /// The control API of the emulator at `base_url` (`http://127.0.0.1:<port>`).
    pub fn at(base_url: &str) -> Self {
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            _emulator: None,
        }
    }

    /// Root URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// One control call; answers its JSON (`null` without a body).
    async fn control(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        self.control_or_none(method.clone(), path, body)
            .await
            .unwrap_or_else(|| panic!("{method} /_emulator/{path} answered 404 Not Found"))
    }

    /// Like [`Google::control`], with `None` for a 404 (an unknown calendar, user, …).
    async fn control_or_none(&self, method: Method, path: &str, body: Option<&Value>) -> Option<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/_emulator/{path}", self.base));
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} /_emulator/{path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(
            status.is_success(),
            "{method} /_emulator/{path} answered {status}: {text}"
        );
        Some(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers the kit's OAuth client ([`CLIENT_ID`]) with these redirect URIs.
    pub async fn register_client(&self, redirect_uris: &[String]) {
        let body = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris});
        self.control(Method::POST, "clients", Some(&body)).await;
    }

    /// Sets the fault plan (`PUT /_emulator/faults`): a JSON plan, a
    /// [`slotsync::emulator::FaultPlan`], or anything serialising to `null` (`Value::Null`,
    /// `None`) to clear it.
    pub async fn faults(&self, plan: impl Serialize) {
        let plan = serde_json::to_value(plan).expect("a fault plan is JSON");
        if plan.is_null() {
            self.control(Method::DELETE, "faults", None).await;
        } else {
            self.control(Method::PUT, "faults", Some(&plan)).await;
        }
    }

    /// The request, fault and notification counters.
    pub async fn stats(&self) -> Stats {
        Stats::from_json(self.control(Method::GET, "stats", None).await)
    }

    /// Zeroes every counter.
    pub async fn clear_stats(&self) {
        self.control(Method::DELETE, "stats", None).await;
    }

    /// Sets what the consent screen answers next (`PUT /_emulator/consent`:
    /// `{"decision": "approve"|"deny", "scopes"?: […], "account"?: "…"}`).
    pub async fn consent(&self, setting: impl Serialize) {
        let body = serde_json::to_value(setting).expect("a consent setting is JSON");
        self.control(Method::PUT, "consent", Some(&body)).await;
    }

    /// `count` accounts `{prefix}{n}@bulk.example.com` (n from `start`), each with its
    /// primary calendar and a grant to the kit's client (`POST /_emulator/users/bulk`, in
    /// calls of at most 10 000): `[{email, sub, calendar_id, access_token, refresh_token,
    /// expires_in}]`.
    pub async fn bulk_users(&self, prefix: &str, start: u64, count: u64) -> Vec<Value> {
        let mut users = Vec::new();
        let mut next = start;
        while next < start + count {
            let n = (start + count - next).min(10_000);
            let body = json!({"prefix": prefix, "start": next, "count": n, "client_id": CLIENT_ID});
            let answer = self.control(Method::POST, "users/bulk", Some(&body)).await;
            users.extend(answer["users"].as_array().cloned().unwrap_or_default());
            next += n;
        }
        users
    }

    /// A full-scope access token acting as `email` (the user is created if new).
    pub async fn user_token(&self, email: &str) -> String {
        let token = self.control(Method::POST, &format!("users/{email}/token"), None).await;
        token["access_token"].as_str().expect("an access token").to_owned()
    }

    /// A google-calendar3 hub acting as `email` in Google Calendar (the "other side").
    pub async fn user_hub(&self, email: &str) -> Hub {
        let token = self.user_token(email).await;
        self.hub_with_token(&token)
    }

    /// A google-calendar3 hub pointed at the emulator, authenticating with `token`.
    pub fn hub_with_token(&self, token: &str) -> Hub {
        calendar_hub(&GoogleEndpoints::emulator(&self.base), token.to_owned())
    }

    /// Every event of a calendar, cancelled ones included (a primary calendar's id is its
    /// account's address); none for a calendar the emulator does not know (deleted, or of
    /// an account never seen).
    pub async fn events(&self, calendar_id: &str) -> Vec<Value> {
        let path = format!("calendars/{calendar_id}/events");
        let Some(dump) = self.control_or_none(Method::GET, &path, None).await else {
            return Vec::new();
        };
        dump["items"]
            .as_array()
            .or(dump.as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// Every channel (stopped and expired ones too, with `live`).
    pub async fn channels(&self) -> Vec<Value> {
        let body = self.control(Method::GET, "channels", None).await;
        body["channels"].as_array().cloned().unwrap_or_default()
    }

    /// Revokes every token of `email` (as the user does in their Google account).
    pub async fn revoke_tokens(&self, email: &str) {
        let body = json!({ "email": email });
        self.control(Method::POST, "tokens/revoke", Some(&body)).await;
    }

    /// Leaves `email`'s grants only `scopes` (calendar access removed in the account).
    pub async fn narrow_tokens(&self, email: &str, scopes: &[&str]) {
        let body = json!({ "email": email, "scopes": scopes });
        self.control(Method::POST, "tokens/narrow", Some(&body)).await;
    }

    /// Makes every access token expire now (refresh tokens keep working).
    pub async fn expire_access_tokens(&self) {
        self.control(Method::POST, "tokens/expire", Some(&json!({}))).await;
    }

    /// Makes every earlier sync token answer 410 (`fullSyncRequired`).
    pub async fn invalidate_sync_tokens(&self) {
        self.control(Method::POST, "sync-tokens/invalidate", Some(&json!({})))
            .await;
    }

    /// Stores `event` in `calendar_id` as Google itself would create it (any `eventType`,
    /// e.g. a `birthday` or `fromGmail` event; `organizer` kept) and returns it.
    pub async fn seed_event(&self, calendar_id: &str, event: &Value) -> Value {
        self.control(Method::POST, &format!("calendars/{calendar_id}/events"), Some(event))
            .await
    }

    /// Creates a meeting organised by `organizer` with a copy in each attendee's calendar
    /// (`POST /_emulator/meetings`); `event` holds its fields. Returns the organizer's copy.
    pub async fn create_meeting(&self, organizer: &str, attendees: &[&str], event: &Value) -> Value {
        let body = json!({"organizer": organizer, "attendees": attendees, "event": event});
        self.control(Method::POST, "meetings", Some(&body)).await
    }

    /// What each write's `sendUpdates` would have emailed, oldest first
    /// (`{op, calendar_id, event_id, send_updates, given, recipients}`).
    pub async fn sent_updates(&self) -> Vec<Value> {
        let body = self.control(Method::GET, "sent-updates", None).await;
        body["updates"].as_array().cloned().unwrap_or_default()
    }
}

/// The emulator's counters (`GET /_emulator/stats`), typed; indexing (`stats["faults"]`)
/// reads the JSON as the emulator sent it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Requests by operation (`events.insert`, `oauth.token.refresh_token`, …), then by
    /// answered status (`"200"`, `"409"`, …).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Injected faults by operation, then by fault (`"503"`, `"lost_response"`).
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
    /// Push notification counters by name (`sent`, `failed`, `dropped`, `duplicated`,
    /// `retried`, `attempts`, `suppressed`).
    pub notifications: BTreeMap<String, u64>,
    #[serde(skip)]
    json: Value,
}

impl Stats {
    fn from_json(json: Value) -> Self {
        let stats: Stats = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("the emulator's stats do not parse ({e}): {json}"));
        Stats { json, ..stats }
    }

    /// How many `op` requests the emulator answered with `status`.
    pub fn op_count(&self, op: &str, status: &str) -> u64 {
        self.requests.get(op).and_then(|s| s.get(status)).copied().unwrap_or(0)
    }

    /// How many `op` requests the emulator answered, whatever the status.
    pub fn op_total(&self, op: &str) -> u64 {
        self.requests.get(op).map_or(0, |s| s.values().sum())
    }

    /// How many Calendar requests (`events.*`, every status) the emulator answered.
    pub fn calendar_calls(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(op, _)| op.starts_with("events."))
            .flat_map(|(_, s)| s.values())
            .sum()
    }

    /// How many times the fault `fault` (`"503"`, `"lost_response"`) was injected into `op`.
    pub fn fault_count(&self, op: &str, fault: &str) -> u64 {
        self.faults.get(op).and_then(|f| f.get(fault)).copied().unwrap_or(0)
    }

    /// The JSON as the emulator sent it.
    pub fn json(&self) -> &Value {
        &self.json
    }
}

impl std::ops::Index<&str> for Stats {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        &self.json[key]
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.json.fmt(f)
    }
}

/// The slot an event was written for (`extendedProperties.private.slotsync_slot`), if
/// slotsync wrote it.
pub fn tagged_slot(event: &Value) -> Option<&str> {
    event["extendedProperties"]["private"]["slotsync_slot"].as_str()
}

/// Whether the event is deleted (`status: cancelled`).
pub fn cancelled(event: &Value) -> bool {
    event["status"] == "cancelled"
}
