//! `events.watch` and `channels.stop`.

use super::errors::ApiError;
use super::events::own_calendar;
use super::model::ChannelRequest;
use super::pipeline::{calendar_op, parse_body, Done, Need};
use super::state::{decode_path, Channel, Shared};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use poem::web::Data;
use poem::{handler, Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Longest channel id Google accepts.
pub const MAX_CHANNEL_ID_LEN: usize = 64;
/// Longest channel token Google accepts.
pub const MAX_CHANNEL_TOKEN_LEN: usize = 256;

fn requested_expiration(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// When a channel created now expires: the requested `expiration` or `params.ttl`, else
/// the default ttl, never beyond the cap.
fn expiry(
    req: &ChannelRequest,
    now: DateTime<Utc>,
    default_ttl: Duration,
    cap: Duration,
) -> Result<DateTime<Utc>, ApiError> {
    let cap_at = now + ChronoDuration::from_std(cap).unwrap_or(ChronoDuration::days(30));
    let wanted = if let Some(raw) = req.expiration.as_ref().filter(|v| !v.is_null()) {
        let ms = requested_expiration(raw).ok_or_else(|| ApiError::invalid("Invalid channel expiration."))?;
        DateTime::from_timestamp_millis(ms).ok_or_else(|| ApiError::invalid("Invalid channel expiration."))?
    } else if let Some(ttl) = req.params.as_ref().and_then(|p| p.get("ttl")) {
        let secs: i64 = ttl
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| ApiError::invalid("Invalid ttl parameter."))?;
        now + ChronoDuration::seconds(secs)
    } else {
        now + ChronoDuration::from_std(default_ttl).unwrap_or(ChronoDuration::days(7))
    };
    if wanted <= now {
        return Err(ApiError::invalid("Channel expiration is in the past."));
    }
    Ok(wanted.min(cap_at))
}

/// `POST calendars/{calendarId}/events/watch`.
#[handler]
pub async fn watch(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let raw = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    let base = shared.base_url.clone();
    let (default_ttl, cap) = (shared.config.channel_ttl_default, shared.config.channel_ttl_cap);
    calendar_op(shared, req, "events.watch", Need::ReadEvents, |st, caller| {
        let cal_id = own_calendar(st, caller, &raw)?;
        let request: ChannelRequest = parse_body(&body)?;
        let id = request
            .id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::required("Required channel id."))?;
        let id_ok =
            id.len() <= MAX_CHANNEL_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(&b));
        if !id_ok {
            return Err(ApiError::invalid("Invalid channel id."));
        }
        match request.kind.as_deref() {
            Some("web_hook") | Some("webhook") => {}
            Some(_) => return Err(ApiError::invalid("Invalid channel type.")),
            None => return Err(ApiError::required("Required channel type.")),
        }
        let address = request
            .address
            .clone()
            .ok_or_else(|| ApiError::required("Required channel address."))?;
        match url::Url::parse(&address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(ApiError::invalid("Invalid channel address.")),
        }
        if request.token.as_ref().is_some_and(|t| t.len() > MAX_CHANNEL_TOKEN_LEN) {
            return Err(ApiError::invalid("Invalid channel token."));
        }
        if st.channels.contains_key(&id) {
            let mut e = ApiError::invalid(&format!("Channel id {id} not unique"));
            e.reason = "channelIdNotUnique";
            return Err(e);
        }
        let now = Utc::now();
        let expires_at = expiry(&request, now, default_ttl, cap)?;
        let cal = &st.calendars[&cal_id];
        let channel = Channel {
            id: id.clone(),
            resource_id: cal.resource_id.clone(),
            resource_uri: format!("{base}/calendar/v3/calendars/{cal_id}/events?alt=json"),
            calendar_id: cal_id.clone(),
            owner: caller.email.clone(),
            address,
            token: request.token.clone(),
            expires_at,
            // Message number 1 is the `sync` notification sent right away.
            message_number: 1,
            stopped: false,
        };
        let mut body = json!({
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": expires_at.timestamp_millis().to_string(),
        });
        if let Some(token) = &channel.token {
            body["token"] = json!(token);
        }
        st.channels.insert(id.clone(), channel);
        let mut done = Done::ok(body);
        done.new_channel = Some(id);
        Ok(done)
    })
    .await
}

/// `POST channels/stop` → 204; only the creator may stop a channel.
#[handler]
pub async fn stop(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    calendar_op(shared, req, "channels.stop", Need::ReadEvents, |st, caller| {
        let request: ChannelRequest = parse_body(&body)?;
        let id = request.id.ok_or_else(|| ApiError::required("Required channel id."))?;
        let not_found = || {
            let mut e = ApiError::not_found();
            e.message = format!("Channel '{id}' not found for project 'slotsync-emulator'").into();
            e
        };
        let channel = st.channels.get_mut(&id).ok_or_else(not_found)?;
        let resource_matches = request.resource_id.as_ref().is_none_or(|r| *r == channel.resource_id);
        if channel.stopped || channel.owner != caller.email || !resource_matches {
            return Err(not_found());
        }
        channel.stopped = true;
        Ok(Done::no_content())
    })
    .await
}
