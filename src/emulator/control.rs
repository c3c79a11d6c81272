//! The control API under `/_emulator/` (JSON) for tests and the demo.

use super::config::OAuthClient;
use super::faults::FaultPlan;
use super::pipeline::json_response;
use super::state::{decode_path, Shared};
use super::token::{issue_control_token, revoke_user};
use chrono::Utc;
use poem::web::Data;
use poem::{handler, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({"error": message}))
}

/// Parses an optional JSON body; the error is the message for a 400.
fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

/// `POST /_emulator/reset`: forgets users, grants, calendars, channels, counters and
/// faults (registered OAuth clients stay).
#[handler]
pub fn reset(Data(shared): Data<&Arc<Shared>>) -> Response {
    shared.state.lock().reset();
    json_response(200, &json!({"reset": true}))
}

#[derive(Debug, Default, Deserialize)]
struct NewUser {
    email: String,
    name: Option<String>,
}

/// `POST /_emulator/users` `{email, name?}` → `{email, calendar_id}` (idempotent).
#[handler]
pub fn create_user(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let new: NewUser = match parse(&body) {
        Ok(n) => n,
        Err(message) => return error(400, &message),
    };
    if !new.email.contains('@') {
        return error(400, "`email` must be an email address");
    }
    let user = shared.state.lock().ensure_user(&new.email, new.name.as_deref());
    json_response(
        200,
        &json!({"email": user.email, "name": user.name, "sub": user.sub, "calendar_id": user.email}),
    )
}

/// `GET /_emulator/users`.
#[handler]
pub fn list_users(Data(shared): Data<&Arc<Shared>>) -> Response {
    let st = shared.state.lock();
    let users: Vec<Value> = st
        .users
        .values()
        .map(|u| json!({"email": u.email, "name": u.name, "sub": u.sub, "calendar_id": u.email}))
        .collect();
    json_response(200, &json!({"users": users}))
}

/// `POST /_emulator/users/{email}/token` → `{access_token, expires_in, token_type}` with
/// full calendar scope (the user is created when unknown).
#[handler]
pub fn user_token(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let email = decode_path(req.raw_path_param("email").unwrap_or_default());
    if !email.contains('@') {
        return error(400, "path must name an email address");
    }
    let lifetime = shared.config.access_token_lifetime;
    let mut st = shared.state.lock();
    st.ensure_user(&email, None);
    let token = issue_control_token(&mut st, lifetime, &email);
    json_response(
        200,
        &json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
    )
}

/// `GET /_emulator/stats`.
#[handler]
pub fn stats(Data(shared): Data<&Arc<Shared>>) -> Response {
    let st = shared.state.lock();
    json_response(200, &serde_json::to_value(&st.stats).unwrap_or(Value::Null))
}

/// `DELETE /_emulator/stats`: zeroes every counter.
#[handler]
pub fn clear_stats(Data(shared): Data<&Arc<Shared>>) -> Response {
    shared.state.lock().stats = Default::default();
    json_response(200, &json!({"cleared": true}))
}

/// `PUT /_emulator/faults`: replaces the fault plan.
#[handler]
pub fn put_faults(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(400, &format!("invalid JSON body: {e}")),
    };
    match FaultPlan::from_json(value) {
        Ok(plan) => {
            let echo = serde_json::to_value(&plan).unwrap_or(Value::Null);
            let mut st = shared.state.lock();
            st.faults = plan;
            st.transient_404_hits.clear();
            json_response(200, &echo)
        }
        Err(e) => error(400, &e.to_string()),
    }
}

/// `GET /_emulator/faults`.
#[handler]
pub fn get_faults(Data(shared): Data<&Arc<Shared>>) -> Response {
    let st = shared.state.lock();
    json_response(200, &serde_json::to_value(&st.faults).unwrap_or(Value::Null))
}

/// `DELETE /_emulator/faults`: no faults, no latency.
#[handler]
pub fn clear_faults(Data(shared): Data<&Arc<Shared>>) -> Response {
    let mut st = shared.state.lock();
    st.faults = FaultPlan::default();
    st.transient_404_hits.clear();
    json_response(200, &json!({"cleared": true}))
}

#[derive(Debug, Default, Deserialize)]
struct CalendarSelector {
    calendar_id: Option<String>,
}

/// `POST /_emulator/sync-tokens/invalidate` `{calendar_id?}`: every earlier sync token of
/// that calendar (or of all calendars) answers 410 `fullSyncRequired`.
#[handler]
pub fn invalidate_sync_tokens(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let sel: CalendarSelector = match parse(&body) {
        Ok(s) => s,
        Err(message) => return error(400, &message),
    };
    let mut st = shared.state.lock();
    let mut invalidated = Vec::new();
    for cal in st.calendars.values_mut() {
        if sel.calendar_id.as_ref().is_none_or(|id| *id == cal.id) {
            cal.epoch += 1;
            invalidated.push(cal.id.clone());
        }
    }
    if invalidated.is_empty() && sel.calendar_id.is_some() {
        return error(404, "unknown calendar");
    }
    json_response(200, &json!({"invalidated": invalidated}))
}

#[derive(Debug, Default, Deserialize)]
struct UserSelector {
    email: Option<String>,
}

/// `POST /_emulator/tokens/revoke` `{email}`: revokes every access and refresh token of
/// the user and forgets every grant the user gave (as if access were removed in the
/// Google account settings).
#[handler]
pub fn revoke_tokens(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let sel: UserSelector = match parse(&body) {
        Ok(s) => s,
        Err(message) => return error(400, &message),
    };
    let Some(email) = sel.email else {
        return error(400, "`email` is required");
    };
    revoke_user(&mut shared.state.lock(), &email);
    json_response(200, &json!({"revoked": email}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Narrowing {
    email: Option<String>,
    scopes: Option<Vec<String>>,
}

/// `POST /_emulator/tokens/narrow` `{email, scopes}`: the account keeps only `scopes` in
/// what it granted OAuth clients (its grants, refresh and access tokens; control-API
/// tokens are left alone) — as when access is narrowed in the Google account later. A
/// call then needing a removed scope answers 403 `insufficientPermissions`.
#[handler]
pub fn narrow_tokens(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let n: Narrowing = match parse(&body) {
        Ok(n) => n,
        Err(message) => return error(400, &message),
    };
    let (Some(email), Some(keep)) = (n.email, n.scopes) else {
        return error(400, "`email` and `scopes` (an array of scopes to keep) are required");
    };
    let mut st = shared.state.lock();
    let kept = |scopes: &mut Vec<String>| scopes.retain(|s| keep.contains(s));
    let mut narrowed = 0;
    for t in st
        .access_tokens
        .values_mut()
        .filter(|t| t.email == email && t.client_id != super::token::CONTROL_CLIENT_ID)
    {
        kept(&mut t.scopes);
        narrowed += 1;
    }
    for r in st.refresh_tokens.values_mut().filter(|r| r.email == email) {
        kept(&mut r.scopes);
    }
    for ((e, _), scopes) in st.grants.iter_mut() {
        if *e == email {
            kept(scopes);
        }
    }
    json_response(200, &json!({"email": email, "scopes": keep, "access_tokens": narrowed}))
}

/// `POST /_emulator/tokens/expire` `{email?}`: makes access tokens expire now (refresh
/// tokens stay valid), to exercise a refresh.
#[handler]
pub fn expire_tokens(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let sel: UserSelector = match parse(&body) {
        Ok(s) => s,
        Err(message) => return error(400, &message),
    };
    let mut st = shared.state.lock();
    let now = Utc::now();
    let mut expired = 0;
    for t in st.access_tokens.values_mut() {
        if sel.email.as_ref().is_none_or(|e| *e == t.email) && t.expires_at > now {
            t.expires_at = now;
            expired += 1;
        }
    }
    json_response(200, &json!({"expired": expired}))
}

#[derive(Debug, Default, Deserialize)]
struct ChannelSelector {
    channel_id: Option<String>,
}

/// `POST /_emulator/channels/expire` `{channel_id?}`: the channel (or every channel)
/// expires now; nothing more is sent to it.
#[handler]
pub fn expire_channels(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let sel: ChannelSelector = match parse(&body) {
        Ok(s) => s,
        Err(message) => return error(400, &message),
    };
    let mut st = shared.state.lock();
    let now = Utc::now();
    let mut expired = Vec::new();
    for ch in st.channels.values_mut() {
        if sel.channel_id.as_ref().is_none_or(|id| *id == ch.id) {
            ch.expires_at = ch.expires_at.min(now);
            expired.push(ch.id.clone());
        }
    }
    if expired.is_empty() && sel.channel_id.is_some() {
        return error(404, "unknown channel");
    }
    json_response(200, &json!({"expired": expired}))
}

/// `GET /_emulator/channels`: every channel with its state.
#[handler]
pub fn list_channels(Data(shared): Data<&Arc<Shared>>) -> Response {
    let st = shared.state.lock();
    let now = Utc::now();
    let channels: Vec<Value> = st
        .channels
        .values()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["live"] = json!(c.is_live(now));
            v
        })
        .collect();
    json_response(200, &json!({"channels": channels}))
}

/// `GET /_emulator/calendars/{calendarId}/events`: every event, deleted ones included, as
/// full resources.
#[handler]
pub fn calendar_events(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let id = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    let st = shared.state.lock();
    let Some(cal) = st.calendars.get(&id) else {
        return error(404, "unknown calendar");
    };
    let items: Vec<Value> = cal
        .events
        .values()
        .map(|e| serde_json::to_value(&e.event).unwrap_or(Value::Null))
        .collect();
    json_response(200, &json!({"calendar_id": cal.id, "items": items}))
}

/// `POST /_emulator/clients` `{client_id, client_secret, redirect_uris}`: registers or
/// replaces an OAuth client.
#[handler]
pub fn register_client(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let client: OAuthClient = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return error(400, &format!("invalid client: {e}")),
    };
    if client.client_id.is_empty() || client.redirect_uris.is_empty() {
        return error(400, "`client_id` and at least one redirect URI are required");
    }
    let echo = serde_json::to_value(&client).unwrap_or(Value::Null);
    shared.state.lock().clients.insert(client.client_id.clone(), client);
    json_response(200, &echo)
}

/// `GET /_emulator/sent-updates`: every write recorded with its `sendUpdates` and who it
/// would have emailed, oldest first.
#[handler]
pub fn sent_updates(Data(shared): Data<&Arc<Shared>>) -> Response {
    let st = shared.state.lock();
    let updates = serde_json::to_value(&st.sent_updates).unwrap_or(Value::Null);
    json_response(200, &json!({"updates": updates}))
}
