//! `events.instances`: the occurrences of one recurring event, exceptions applied.

use super::errors::ApiError;
use super::events::{own_calendar, to_json};
use super::instances::{exceptions_by_master, is_master, OriginalStart};
use super::list::{events_body, page, parse_bool, parse_time, stable_hash, Row, DEFAULT_MAX_RESULTS, MAX_MAX_RESULTS};
use super::model::Event;
use super::pipeline::{calendar_op, Done, Need};
use super::recurrence::expand;
use super::state::{decode_path, Calendar, Shared};
use super::sync_token::PageCursor;
use super::times::{event_span, overlaps};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::{handler, Request, Response};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Parsed `events.instances` query.
#[derive(Debug, Default)]
struct InstancesParams {
    max_results: usize,
    page_token: Option<String>,
    show_deleted: bool,
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
    original_start: Option<OriginalStart>,
    /// Hash of the event id and the query minus paging parameters.
    query_hash: u64,
}

/// `GET calendars/{calendarId}/events/{eventId}/instances`.
#[handler]
pub async fn instances(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let calendar = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    let event_id = decode_path(req.raw_path_param("event_id").unwrap_or_default());
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    calendar_op(shared, req, "events.instances", Need::ReadEvents, |st, caller| {
        let params = parse_params(&event_id, &query)?;
        let cal_id = own_calendar(st, caller, &calendar)?;
        list_instances(&st.calendars[&cal_id], &event_id, &params)
    })
    .await
}

fn parse_params(event_id: &str, query: &[(String, String)]) -> Result<InstancesParams, ApiError> {
    let mut p = InstancesParams {
        max_results: DEFAULT_MAX_RESULTS,
        ..InstancesParams::default()
    };
    let mut hashed = vec![("eventId".to_owned(), event_id.to_owned())];
    for (name, value) in query {
        match name.as_str() {
            "maxResults" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| ApiError::invalid_parameter(name, "Invalid value for maxResults."))?;
                if n < 1 {
                    return Err(ApiError::invalid_parameter(name, "Invalid value for maxResults."));
                }
                p.max_results = (n as usize).min(MAX_MAX_RESULTS);
            }
            "pageToken" => p.page_token = Some(value.clone()),
            "showDeleted" => p.show_deleted = parse_bool(name, value)?,
            "timeMin" => p.time_min = Some(parse_time(name, value)?),
            "timeMax" => p.time_max = Some(parse_time(name, value)?),
            "originalStart" => {
                p.original_start = Some(OriginalStart::from_param(value).ok_or_else(|| {
                    ApiError::invalid_parameter(name, &format!("Invalid originalStart value: '{value}'."))
                })?)
            }
            _ => {}
        }
        if !matches!(
            name.as_str(),
            "pageToken" | "maxResults" | "alt" | "fields" | "prettyPrint" | "quotaUser" | "key"
        ) {
            hashed.push((name.clone(), value.clone()));
        }
    }
    if let (Some(min), Some(max)) = (p.time_min, p.time_max) {
        if max <= min {
            return Err(ApiError::time_range_empty("timeMax"));
        }
    }
    hashed.sort();
    p.query_hash = stable_hash(&hashed);
    Ok(p)
}

/// One instance row: its sort key (original start, then id) and its JSON.
fn row(instance: &Event, item: Value) -> Row {
    let at = OriginalStart::of_instance(instance)
        .map(|o| o.instant().timestamp_micros())
        .unwrap_or(i64::MIN);
    let padded = (at as i128 + i64::MAX as i128) as u128;
    Row {
        key: format!("{padded:020}|{}", instance.id),
        item,
    }
}

fn list_instances(cal: &Calendar, event_id: &str, p: &InstancesParams) -> Result<Done, ApiError> {
    let master = cal
        .events
        .get(event_id)
        .map(|s| &s.event)
        .filter(|e| e.recurring_event_id.is_none())
        .ok_or_else(ApiError::not_found)?;
    if master.is_cancelled() {
        return Err(ApiError::deleted());
    }
    let in_window =
        |e: &Event| event_span(e, &cal.time_zone).is_some_and(|span| overlaps(span, p.time_min, p.time_max));
    let wanted = |e: &Event| {
        p.original_start
            .is_none_or(|o| OriginalStart::of_instance(e) == Some(o))
    };
    let mut rows = Vec::new();
    if is_master(master) {
        let exceptions = exceptions_by_master(cal).remove(master.id.as_str()).unwrap_or_default();
        let overridden: HashSet<&str> = exceptions.iter().map(|s| s.event.id.as_str()).collect();
        for inst in expand(master, &cal.time_zone, p.time_min, p.time_max) {
            if !overridden.contains(inst.id.as_str()) && in_window(&inst) && wanted(&inst) {
                let item = to_json(&inst);
                rows.push(row(&inst, item));
            }
        }
        for stored in exceptions {
            let ev = &stored.event;
            if (ev.is_cancelled() && !p.show_deleted) || !in_window(ev) || !wanted(ev) {
                continue;
            }
            let item = if ev.is_cancelled() { ev.tombstone() } else { to_json(ev) };
            rows.push(row(ev, item));
        }
    } else if in_window(master) && p.original_start.is_none() {
        // A single event is its own only instance (our choice; see docs/emulator.md).
        rows.push(Row {
            key: master.id.clone(),
            item: to_json(master),
        });
    }
    let after_key = match &p.page_token {
        Some(token) => Some(
            PageCursor::decode(token)
                .filter(|c| c.calendar == cal.id && c.query_hash == p.query_hash && c.since.is_none())
                .ok_or_else(|| ApiError::invalid_parameter("pageToken", "Invalid page token."))?
                .after_key,
        ),
        None => None,
    };
    let (items, next_after) = page(rows, after_key.as_deref(), p.max_results);
    let mut body = events_body(cal, items);
    if let Some(last) = next_after {
        let cursor = PageCursor {
            calendar: cal.id.clone(),
            epoch: cal.epoch,
            snapshot: cal.seq,
            since: None,
            after_key: last,
            query_hash: p.query_hash,
        };
        body["nextPageToken"] = json!(cursor.encode());
    }
    Ok(Done::ok(body))
}
