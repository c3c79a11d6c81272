//! `events.list`: filters, ordering, pagination and sync tokens.

use super::errors::ApiError;
use super::events::own_calendar;
use super::instances::{exceptions_by_master, is_master};
use super::model::Event;
use super::pipeline::{calendar_op, Caller, Done, Need};
use super::recurrence::expand;
use super::state::{decode_path, etag_for, rfc3339, Calendar, Shared, State, StoredEvent};
use super::sync_token::{PageCursor, SyncPosition};
use super::times::{event_span, overlaps, parse_rfc3339};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::{handler, Request, Response};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Parameters that may not accompany `syncToken`.
const FORBIDDEN_WITH_SYNC_TOKEN: [&str; 8] = [
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
];

/// Default page size.
pub const DEFAULT_MAX_RESULTS: usize = 250;
/// Largest page size.
pub const MAX_MAX_RESULTS: usize = 2500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderBy {
    StartTime,
    Updated,
}

/// Parsed `events.list` query.
#[derive(Debug, Default)]
struct ListParams {
    max_results: usize,
    page_token: Option<String>,
    sync_token: Option<String>,
    show_deleted: bool,
    single_events: bool,
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
    updated_min: Option<DateTime<Utc>>,
    private_props: Vec<(String, String)>,
    shared_props: Vec<(String, String)>,
    order_by: Option<OrderBy>,
    q: Option<String>,
    ical_uid: Option<String>,
    /// `eventTypes` (repeatable): only events of these types; empty lists every type.
    event_types: Vec<String>,
    /// Hash of the query minus paging parameters, tying page tokens to their query.
    query_hash: u64,
}

/// `GET calendars/{calendarId}/events`.
#[handler]
pub async fn list(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let calendar = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    calendar_op(shared, req, "events.list", Need::ReadEvents, |st, caller| {
        let params = parse_params(&query)?;
        list_events(st, caller, &calendar, &params)
    })
    .await
}

pub fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(ApiError::invalid_parameter(
            name,
            &format!("Invalid boolean value: '{value}'."),
        )),
    }
}

pub fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    parse_rfc3339(value)
        .ok_or_else(|| ApiError::invalid_parameter(name, &format!("Bad Request: invalid {name} '{value}'")))
}

fn parse_prop(name: &str, value: &str) -> Result<(String, String), ApiError> {
    value
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| ApiError::invalid_parameter(name, &format!("Invalid {name} value: '{value}'.")))
}

fn parse_params(query: &[(String, String)]) -> Result<ListParams, ApiError> {
    let mut p = ListParams {
        max_results: DEFAULT_MAX_RESULTS,
        ..ListParams::default()
    };
    let mut show_deleted: Option<bool> = None;
    let mut hashed: Vec<(String, String)> = Vec::new();
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
            "syncToken" => p.sync_token = Some(value.clone()),
            "showDeleted" => show_deleted = Some(parse_bool(name, value)?),
            "singleEvents" => p.single_events = parse_bool(name, value)?,
            "timeMin" => p.time_min = Some(parse_time(name, value)?),
            "timeMax" => p.time_max = Some(parse_time(name, value)?),
            "updatedMin" => p.updated_min = Some(parse_time(name, value)?),
            "privateExtendedProperty" => p.private_props.push(parse_prop(name, value)?),
            "sharedExtendedProperty" => p.shared_props.push(parse_prop(name, value)?),
            "eventTypes" => {
                if !super::event_types::EVENT_TYPES.contains(&value.as_str()) {
                    return Err(ApiError::invalid_parameter(
                        name,
                        &format!("Invalid value for eventTypes: '{value}'."),
                    ));
                }
                p.event_types.push(value.clone());
            }
            "orderBy" => {
                p.order_by = Some(match value.as_str() {
                    "startTime" => OrderBy::StartTime,
                    "updated" => OrderBy::Updated,
                    _ => {
                        return Err(ApiError::invalid_parameter(
                            name,
                            &format!("Invalid value for orderBy: '{value}'."),
                        ))
                    }
                })
            }
            "q" => p.q = Some(value.to_lowercase()),
            "iCalUID" => p.ical_uid = Some(value.clone()),
            _ => {}
        }
        if !matches!(
            name.as_str(),
            "pageToken" | "maxResults" | "alt" | "fields" | "prettyPrint" | "quotaUser" | "key"
        ) {
            hashed.push((name.clone(), value.clone()));
        }
    }
    if p.sync_token.is_some() {
        if let Some((name, _)) = query
            .iter()
            .find(|(n, _)| FORBIDDEN_WITH_SYNC_TOKEN.contains(&n.as_str()))
        {
            return Err(ApiError::invalid_parameter(
                name,
                &format!("The parameter {name} cannot be used together with syncToken."),
            ));
        }
        if show_deleted == Some(false) {
            return Err(ApiError::invalid_parameter(
                "showDeleted",
                "showDeleted=false cannot be used together with syncToken.",
            ));
        }
    }
    p.show_deleted = show_deleted.unwrap_or(false);
    if p.order_by == Some(OrderBy::StartTime) && !p.single_events {
        return Err(ApiError::invalid_parameter(
            "orderBy",
            "The requested ordering is not available for the particular query.",
        ));
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

/// FNV-1a over the canonical query, stable across processes.
pub fn stable_hash(pairs: &[(String, String)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in pairs {
        for b in k.bytes().chain([b'=']).chain(v.bytes()).chain([b'&']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// One candidate listing row (of `events.list` or `events.instances`): its sort key and
/// its JSON.
pub struct Row {
    pub key: String,
    pub item: Value,
}

/// One page of `rows`: sorted by key, those after `after_key`, at most `max`. Gives the
/// items and, when more rows follow, the last key given (the next page's cursor).
pub fn page(mut rows: Vec<Row>, after_key: Option<&str>, max: usize) -> (Vec<Value>, Option<String>) {
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let mut remaining = rows
        .into_iter()
        .filter(|r| after_key.is_none_or(|k| r.key.as_str() > k))
        .peekable();
    let mut items = Vec::new();
    let mut last_key = None;
    while items.len() < max {
        let Some(row) = remaining.next() else { break };
        last_key = Some(row.key);
        items.push(row.item);
    }
    let more = remaining.peek().is_some();
    (items, last_key.filter(|_| more))
}

/// The `calendar#events` answer around one page of `items`.
pub fn events_body(cal: &Calendar, items: Vec<Value>) -> Value {
    json!({
        "kind": "calendar#events",
        "etag": etag_for(cal.updated),
        "summary": cal.summary,
        "updated": rfc3339(cal.updated),
        "timeZone": cal.time_zone,
        "accessRole": "owner",
        "defaultReminders": [],
        "items": items,
    })
}

fn list_events(st: &State, caller: &Caller, calendar: &str, p: &ListParams) -> Result<Done, ApiError> {
    let cal_id = own_calendar(st, caller, calendar)?;
    let cal = &st.calendars[&cal_id];
    let since = match &p.sync_token {
        Some(token) => Some(
            SyncPosition::decode(token)
                .filter(|pos| pos.is_valid_for(cal))
                .ok_or_else(ApiError::full_sync_required)?
                .seq,
        ),
        None => None,
    };
    let (snapshot, after_key) = match &p.page_token {
        Some(token) => {
            let cursor = PageCursor::decode(token)
                .filter(|c| c.calendar == cal.id && c.query_hash == p.query_hash && c.since == since)
                .ok_or_else(|| ApiError::invalid_parameter("pageToken", "Invalid page token."))?;
            if since.is_some() && cursor.epoch != cal.epoch {
                return Err(ApiError::full_sync_required());
            }
            (cursor.snapshot, Some(cursor.after_key))
        }
        None => (cal.seq, None),
    };
    let rows = collect_rows(cal, p, since, snapshot);
    let (items, next_after) = page(rows, after_key.as_deref(), p.max_results);
    let mut body = events_body(cal, items);
    if let Some(d) = &cal.description {
        body["description"] = json!(d);
    }
    match next_after {
        Some(last) => {
            let cursor = PageCursor {
                calendar: cal.id.clone(),
                epoch: cal.epoch,
                snapshot,
                since,
                after_key: last,
                query_hash: p.query_hash,
            };
            body["nextPageToken"] = json!(cursor.encode());
        }
        None => {
            let position = SyncPosition {
                calendar: cal.id.clone(),
                epoch: cal.epoch,
                seq: snapshot,
            };
            body["nextSyncToken"] = json!(position.encode());
        }
    }
    Ok(Done::ok(body))
}

fn collect_rows(cal: &Calendar, p: &ListParams, since: Option<u64>, snapshot: u64) -> Vec<Row> {
    let exceptions = exceptions_by_master(cal);
    let mut rows = Vec::new();
    for stored in cal.events.values() {
        let ev = &stored.event;
        let incremental = since.is_some();
        if let Some(since) = since {
            if stored.change_seq <= since || stored.change_seq > snapshot {
                continue;
            }
        } else if !shown_in_full_listing(stored, p) || !matches_filters(ev, p) {
            continue;
        }
        let is_instance = ev.recurring_event_id.is_some();
        // Exceptions (modified or cancelled instances) are listed by their own times.
        if is_instance && !incremental && !in_window(ev, cal, p) {
            continue;
        }
        let key = sort_key(p, stored.change_seq, ev, cal, incremental);
        if ev.is_cancelled() && p.single_events && is_master(ev) {
            // "If showDeleted and singleEvents are both True, only single instances of
            // deleted events (but not the underlying recurring events) are returned."
            // An exception changed in the same increment is served on its own.
            let served_alone = |id: &str| {
                since.is_some_and(|since| {
                    cal.events
                        .get(id)
                        .is_some_and(|s| s.change_seq > since && s.change_seq <= snapshot)
                })
            };
            for inst in expand(ev, &cal.time_zone, p.time_min, p.time_max) {
                if served_alone(&inst.id) || (!incremental && !in_window(&inst, cal, p)) {
                    continue;
                }
                let key = sort_key(p, stored.change_seq, &inst, cal, incremental);
                rows.push(Row {
                    key,
                    item: inst.tombstone(),
                });
            }
            continue;
        }
        if ev.is_cancelled() {
            rows.push(Row {
                key,
                item: ev.tombstone(),
            });
            continue;
        }
        if is_master(ev) {
            let overridden: HashSet<&str> = exceptions
                .get(ev.id.as_str())
                .map(|found| found.iter().map(|s| s.event.id.as_str()).collect())
                .unwrap_or_default();
            let in_window: Vec<Event> = expand(ev, &cal.time_zone, p.time_min, p.time_max)
                .into_iter()
                .filter(|i| in_window(i, cal, p))
                .collect();
            if p.single_events {
                // An occurrence with an exception is served as that exception.
                for inst in in_window.into_iter().filter(|i| !overridden.contains(i.id.as_str())) {
                    let key = sort_key(p, stored.change_seq, &inst, cal, incremental);
                    rows.push(Row {
                        key,
                        item: serde_json::to_value(&inst).unwrap_or(Value::Null),
                    });
                }
                continue;
            }
            if in_window.is_empty() && (p.time_min.is_some() || p.time_max.is_some()) {
                continue;
            }
        } else if !is_instance && !in_window(ev, cal, p) {
            continue;
        }
        rows.push(Row {
            key,
            item: serde_json::to_value(ev).unwrap_or(Value::Null),
        });
    }
    rows
}

/// Whether a full (not incremental) listing serves a stored event at all. Deleted events
/// only with `showDeleted` (or when updated since `updatedMin`); but, as Google documents
/// for `showDeleted`, cancelled instances of a live series are listed even without it
/// when `singleEvents` is false. Tombstones of detached exceptions (their series was
/// deleted or no longer has that occurrence) are not served with `singleEvents`.
fn shown_in_full_listing(stored: &StoredEvent, p: &ListParams) -> bool {
    let ev = &stored.event;
    if !ev.is_cancelled() {
        return true;
    }
    let is_instance = ev.recurring_event_id.is_some();
    if is_instance && stored.detached && p.single_events {
        return false;
    }
    if p.show_deleted || updated_since(ev, p.updated_min) {
        return true;
    }
    is_instance && !stored.detached && !p.single_events
}

fn in_window(ev: &Event, cal: &Calendar, p: &ListParams) -> bool {
    event_span(ev, &cal.time_zone).is_some_and(|span| overlaps(span, p.time_min, p.time_max))
}

fn updated_since(ev: &Event, updated_min: Option<DateTime<Utc>>) -> bool {
    match (updated_min, ev.updated.as_deref().and_then(parse_rfc3339)) {
        (Some(min), Some(updated)) => updated >= min,
        _ => false,
    }
}

fn matches_filters(ev: &Event, p: &ListParams) -> bool {
    if !p.event_types.is_empty() && !p.event_types.iter().any(|t| t == super::event_types::event_type(ev)) {
        return false;
    }
    if p.updated_min.is_some() && !updated_since(ev, p.updated_min) {
        return false;
    }
    if let Some(uid) = &p.ical_uid {
        if ev.ical_uid.as_ref() != Some(uid) {
            return false;
        }
    }
    let props = ev.extended_properties.as_ref();
    let private = props.and_then(|x| x.private.as_ref());
    let shared = props.and_then(|x| x.shared.as_ref());
    for (wanted, have) in [(&p.private_props, private), (&p.shared_props, shared)] {
        for (k, v) in wanted {
            if have.and_then(|m| m.get(k)) != Some(v) {
                return false;
            }
        }
    }
    if let Some(q) = &p.q {
        let text = [&ev.summary, &ev.description, &ev.location]
            .iter()
            .filter_map(|f| f.as_deref())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if !text.contains(q.as_str()) {
            return false;
        }
    }
    true
}

/// A string key whose lexical order is the listing order (zero-padded numbers, then id).
fn sort_key(p: &ListParams, change_seq: u64, ev: &Event, cal: &Calendar, incremental: bool) -> String {
    let padded = |micros: i64| format!("{:020}", (micros as i128 + i64::MAX as i128) as u128);
    match p.order_by {
        Some(OrderBy::StartTime) => {
            let start = event_span(ev, &cal.time_zone)
                .map(|(s, _)| s.timestamp_micros())
                .unwrap_or(i64::MIN);
            format!("{}|{}", padded(start), ev.id)
        }
        Some(OrderBy::Updated) => {
            let updated = ev
                .updated
                .as_deref()
                .and_then(parse_rfc3339)
                .map(|u| u.timestamp_micros())
                .unwrap_or(i64::MIN);
            format!("{}|{}", padded(updated), ev.id)
        }
        None if incremental => format!("{change_seq:020}|{}", ev.id),
        None => ev.id.clone(),
    }
}
