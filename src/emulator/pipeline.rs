//! The path every Calendar API request takes: latency, authentication, scope, quota,
//! fault injection, the operation itself, counters, then push notifications.

use super::config::QuotaStatus;
use super::errors::ApiError;
use super::faults::Fault;
use super::push;
use super::state::{Shared, State};
use chrono::Utc;
use poem::http::StatusCode;
use poem::{IntoResponse, Request, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Full access to calendars and events.
pub const SCOPE_CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
/// Read/write access to events.
pub const SCOPE_EVENTS: &str = "https://www.googleapis.com/auth/calendar.events";
/// Read-only access to calendars and events.
pub const SCOPE_READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";
/// Read-only access to events.
pub const SCOPE_EVENTS_READONLY: &str = "https://www.googleapis.com/auth/calendar.events.readonly";

/// The scope an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any calendar scope.
    ReadEvents,
    /// `calendar` or `calendar.events`.
    WriteEvents,
    /// `calendar` or `calendar.readonly`.
    ReadCalendars,
    /// `calendar`.
    WriteCalendars,
}

impl Need {
    fn accepted(self) -> &'static [&'static str] {
        match self {
            Need::ReadEvents => &[SCOPE_CALENDAR, SCOPE_EVENTS, SCOPE_READONLY, SCOPE_EVENTS_READONLY],
            Need::WriteEvents => &[SCOPE_CALENDAR, SCOPE_EVENTS],
            Need::ReadCalendars => &[SCOPE_CALENDAR, SCOPE_READONLY],
            Need::WriteCalendars => &[SCOPE_CALENDAR],
        }
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's email.
    pub email: String,
}

/// What an operation produced.
#[derive(Debug, Default)]
pub struct Done {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`None` for 204).
    pub body: Option<Value>,
    /// Calendar whose events changed (its channels get an `exists` notification).
    pub changed_calendar: Option<String>,
    /// Further calendars whose events changed (attendees' copies of a meeting).
    pub also_changed: Vec<String>,
    /// Channel just created (it gets its `sync` notification).
    pub new_channel: Option<String>,
}

impl Done {
    /// 200 with a JSON body.
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
            ..Self::default()
        }
    }

    /// 204 without a body.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            ..Self::default()
        }
    }

    /// Marks a change to a calendar's events.
    pub fn changing(mut self, calendar_id: &str) -> Self {
        self.changed_calendar = Some(calendar_id.to_owned());
        self
    }

    /// Marks changes to further calendars.
    pub fn also_changing(mut self, calendar_ids: Vec<String>) -> Self {
        self.also_changed.extend(calendar_ids);
        self
    }
}

/// Renders a JSON body the way Google does.
pub fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type("application/json; charset=UTF-8")
        .body(body.to_string())
}

/// Runs one Calendar API operation named `op` through the whole pipeline.
pub async fn calendar_op<F>(shared: &Arc<Shared>, req: &Request, op: &'static str, need: Need, operation: F) -> Response
where
    F: FnOnce(&mut State, &Caller) -> Result<Done, ApiError>,
{
    let latency = {
        let mut guard = shared.state.lock();
        let st = &mut *guard;
        st.faults.draw_latency(&mut st.rng)
    };
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    let (response, changed, new_channel) = {
        let mut guard = shared.state.lock();
        let st = &mut *guard;
        let outcome = run_locked(shared, st, req, op, need, operation);
        let (response, status, changed, new_channel) = match outcome {
            Ok((done, lost)) => {
                let changed: Vec<String> = done
                    .changed_calendar
                    .iter()
                    .chain(&done.also_changed)
                    .cloned()
                    .collect();
                let new_channel = done.new_channel.clone();
                if lost {
                    let e = ApiError::injected(503);
                    (e.clone().into_response(), 503, changed, new_channel)
                } else {
                    let resp = match &done.body {
                        Some(body) => json_response(done.status, body),
                        None => Response::builder()
                            .status(StatusCode::from_u16(done.status).unwrap_or(StatusCode::OK))
                            .finish(),
                    };
                    (resp, done.status, changed, new_channel)
                }
            }
            Err(e) => {
                let code = e.code;
                (e.into_response(), code, Vec::new(), None)
            }
        };
        st.stats.record(op, status);
        (response, changed, new_channel)
    };
    if let Some(channel_id) = new_channel {
        push::notify_sync(shared, &channel_id);
    }
    for calendar_id in changed {
        push::notify_change(shared, &calendar_id);
    }
    response
}

/// Authentication, scope, quota, faults and the operation, under the state lock.
/// Returns the result and whether the response is to be "lost" (answered 503).
fn run_locked<F>(
    shared: &Shared,
    st: &mut State,
    req: &Request,
    op: &'static str,
    need: Need,
    operation: F,
) -> Result<(Done, bool), ApiError>
where
    F: FnOnce(&mut State, &Caller) -> Result<Done, ApiError>,
{
    let (caller, scopes) = authenticate(st, req)?;
    if !scopes.iter().any(|s| need.accepted().contains(&s.as_str())) {
        return Err(ApiError::insufficient_scopes(op));
    }
    check_quota(shared, st, &caller.email)?;
    let fault = {
        let State { faults, rng, .. } = st;
        faults.draw(op, rng)
    };
    match fault {
        Some(Fault::Status(code)) => {
            st.stats.record_fault(op, &code.to_string());
            Err(ApiError::injected(code))
        }
        Some(Fault::LostResponse) => {
            st.stats.record_fault(op, &Fault::LostResponse.key());
            operation(st, &caller).map(|done| (done, true))
        }
        None => operation(st, &caller).map(|done| (done, false)),
    }
}

/// The bearer token of a request (`Authorization: Bearer …` or `access_token=`).
pub fn bearer_token(req: &Request) -> Option<String> {
    if let Some(value) = req.header("Authorization") {
        let mut parts = value.splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let token = parts.next().unwrap_or_default().trim();
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            return Some(token.to_owned());
        }
        return None;
    }
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}

/// Resolves the access token to its user and scopes (401 when missing, unknown,
/// expired or revoked).
pub fn authenticate(st: &State, req: &Request) -> Result<(Caller, Vec<String>), ApiError> {
    let has_header = req.header("Authorization").is_some();
    let Some(token) = bearer_token(req) else {
        return Err(if has_header {
            ApiError::invalid_credentials()
        } else {
            ApiError::login_required()
        });
    };
    match st.access_tokens.get(&token) {
        Some(t) if !t.revoked && t.expires_at > Utc::now() => Ok((Caller { email: t.email.clone() }, t.scopes.clone())),
        _ => Err(ApiError::invalid_credentials()),
    }
}

fn check_quota(shared: &Shared, st: &mut State, email: &str) -> Result<(), ApiError> {
    let Some(quota) = shared.config.quota else {
        return Ok(());
    };
    let now = Instant::now();
    let window = st.quota_windows.entry(email.to_owned()).or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        window.pop_front();
    }
    if window.len() >= quota.per_user_per_minute as usize {
        return Err(match quota.status {
            QuotaStatus::Forbidden403 => ApiError::user_rate_limit(),
            QuotaStatus::TooMany429 => ApiError::rate_limit(),
        });
    }
    window.push_back(now);
    Ok(())
}

/// Parses a JSON request body (400 `parseError` when it is not JSON).
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ApiError::parse_error())?;
    serde_json::from_value(value).map_err(|e| ApiError::invalid(&format!("Invalid value: {e}")))
}
