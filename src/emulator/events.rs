//! `events.insert` / `get` / `patch` / `update` / `delete`; the last four also take instance
//! ids of recurring events (resolved in `instances.rs`). Event types (`event_types.rs`),
//! field validation (`fields.rs`), meetings (`meetings.rs`) and the transient-404 and
//! deleted-event faults (`transient.rs`) are checked here on the way.

use super::errors::ApiError;
use super::event_types::{check_change, check_insert, check_shape};
use super::fields::validate_fields;
use super::instances::{cancel_exceptions, is_master, pin_instance_fields, reconcile_exceptions, resolve, Resolved};
use super::meetings::{check_attendee_change, propagate, record_send_updates, send_updates_param};
use super::model::{Event, Person};
use super::pipeline::{calendar_op, parse_body, Caller, Done, Need};
use super::recurrence::validate_recurrence;
use super::state::{decode_path, Shared, State};
use super::times::validate_times;
use super::transient::{answer_write_to_deleted, transient_404};
use poem::web::Data;
use poem::{handler, Request, Response};
use serde_json::{Map, Value};
use std::sync::Arc;

fn path_ids(req: &Request) -> (String, String) {
    (
        decode_path(req.raw_path_param("calendar_id").unwrap_or_default()),
        decode_path(req.raw_path_param("event_id").unwrap_or_default()),
    )
}

/// `POST calendars/{calendarId}/events`.
#[handler]
pub async fn insert(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let (calendar, _) = path_ids(req);
    let base = shared.base_url.clone();
    let send_updates = send_updates_param(req);
    calendar_op(shared, req, "events.insert", Need::WriteEvents, |st, caller| {
        insert_event(st, &base, caller, &calendar, &body, send_updates?.as_deref())
    })
    .await
}

/// `GET calendars/{calendarId}/events/{eventId}`.
#[handler]
pub async fn get(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let (calendar, event_id) = path_ids(req);
    calendar_op(shared, req, "events.get", Need::ReadEvents, |st, caller| {
        let cal_id = own_calendar(st, caller, &calendar)?;
        let resolved = resolve(&st.calendars[&cal_id], &event_id)?;
        transient_404(st, "events.get", &cal_id, &resolved.current)?;
        Ok(Done::ok(to_json(&resolved.current)))
    })
    .await
}

/// `PUT calendars/{calendarId}/events/{eventId}` (full replace).
#[handler]
pub async fn update(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let (calendar, event_id) = path_ids(req);
    let if_match = req.header("If-Match").map(str::to_owned);
    let send_updates = send_updates_param(req);
    calendar_op(shared, req, "events.update", Need::WriteEvents, |st, caller| {
        let replacement: Event = parse_body(&body)?;
        let write = Write {
            op: "events.update",
            if_match: if_match.as_deref(),
            send_updates: send_updates?,
        };
        modify_event(st, caller, &calendar, &event_id, write, |_| Ok(replacement))
    })
    .await
}

/// `PATCH calendars/{calendarId}/events/{eventId}` (unset fields kept; arrays replaced).
#[handler]
pub async fn patch(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let (calendar, event_id) = path_ids(req);
    let if_match = req.header("If-Match").map(str::to_owned);
    let send_updates = send_updates_param(req);
    calendar_op(shared, req, "events.patch", Need::WriteEvents, |st, caller| {
        let changes: Map<String, Value> = parse_body(&body)?;
        let write = Write {
            op: "events.patch",
            if_match: if_match.as_deref(),
            send_updates: send_updates?,
        };
        modify_event(st, caller, &calendar, &event_id, write, |current| {
            let mut merged = serde_json::to_value(current).unwrap_or(Value::Null);
            merge_patch(&mut merged, &changes);
            serde_json::from_value(merged).map_err(|e| ApiError::invalid(&format!("Invalid value: {e}")))
        })
    })
    .await
}

/// `DELETE calendars/{calendarId}/events/{eventId}` → 204.
#[handler]
pub async fn delete(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let (calendar, event_id) = path_ids(req);
    let if_match = req.header("If-Match").map(str::to_owned);
    let send_updates = send_updates_param(req);
    calendar_op(shared, req, "events.delete", Need::WriteEvents, |st, caller| {
        let send_updates = send_updates?;
        let cal_id = own_calendar(st, caller, &calendar)?;
        let resolved = resolve(&st.calendars[&cal_id], &event_id)?;
        let mut event = resolved.current;
        if event.is_cancelled() {
            return Err(ApiError::deleted());
        }
        transient_404(st, "events.delete", &cal_id, &event)?;
        check_if_match(if_match.as_deref(), &event.etag)?;
        if is_master(&event) {
            cancel_exceptions(st, &cal_id, &event.id);
        }
        // Deleting an instance stores a cancelled exception: the occurrence's tombstone.
        event.status = Some("cancelled".to_owned());
        let previous = event.clone();
        let stored = store(st, &cal_id, event);
        // The organizer's deletion cancels the meeting in every attendee's calendar.
        let copies = match resolved.instance_of {
            None => propagate(st, &cal_id, &stored, Some(&previous)),
            Some(_) => Vec::new(),
        };
        record_send_updates(st, "events.delete", &cal_id, &stored, send_updates.as_deref());
        Ok(Done::no_content().changing(&cal_id).also_changing(copies))
    })
    .await
}

/// Resolves a calendar path parameter to a calendar the caller owns (404 otherwise).
pub fn own_calendar(st: &State, caller: &Caller, raw: &str) -> Result<String, ApiError> {
    st.resolve_calendar_id(&caller.email, raw)
        .ok_or_else(ApiError::not_found)
}

/// Serializes an event resource.
pub fn to_json(event: &Event) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// Whether a client-supplied id follows Google's rules: base32hex, 5 to 1024 chars.
pub fn is_valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'a'..=b'v' | b'0'..=b'9'))
}

fn check_if_match(if_match: Option<&str>, etag: &str) -> Result<(), ApiError> {
    match if_match {
        Some("*") | None => Ok(()),
        Some(given) => {
            let given = given.trim().trim_start_matches("W/");
            let bare = |s: &str| s.trim_matches('"').to_owned();
            if given == etag || bare(given) == bare(etag) {
                Ok(())
            } else {
                Err(ApiError::condition_not_met())
            }
        }
    }
}

/// Stamps a modification and stores a live (not detached) event.
fn store(st: &mut State, cal_id: &str, event: Event) -> Event {
    st.store_event(cal_id, event, false)
}

fn insert_event(
    st: &mut State,
    base_url: &str,
    caller: &Caller,
    calendar: &str,
    body: &[u8],
    send_updates: Option<&str>,
) -> Result<Done, ApiError> {
    let cal_id = own_calendar(st, caller, calendar)?;
    let event: Event = parse_body(body)?;
    check_insert(&event)?;
    let mut event = prepare_new(st, base_url, &cal_id, event)?;
    let person = Person {
        email: Some(st.calendars[&cal_id].owner.clone()),
        is_self: Some(true),
    };
    event.creator = Some(person.clone());
    event.organizer = Some(person);
    let stored = store(st, &cal_id, event);
    let copies = propagate(st, &cal_id, &stored, None);
    record_send_updates(st, "events.insert", &cal_id, &stored, send_updates);
    Ok(Done::ok(to_json(&stored)).changing(&cal_id).also_changing(copies))
}

/// Checks a new event for `cal_id` (id, times, recurrence, type shape, fields) and fills
/// in what Google sets on creation; `creator` and `organizer` are the caller's to set.
pub fn prepare_new(st: &mut State, base_url: &str, cal_id: &str, mut event: Event) -> Result<Event, ApiError> {
    if event.id.is_empty() {
        event.id = st.new_event_id();
    } else if !is_valid_event_id(&event.id) {
        return Err(ApiError::invalid("Invalid resource id value."));
    } else if st.calendars[cal_id].events.contains_key(&event.id) {
        return Err(ApiError::duplicate());
    }
    validate_times(&event)?;
    validate_recurrence(&event)?;
    check_shape(&event)?;
    validate_fields(&event)?;
    event.kind = "calendar#event".to_owned();
    event.created = None;
    event.status = Some(event.status.unwrap_or_else(|| "confirmed".to_owned()));
    event.html_link = Some(format!("{base_url}/calendar/event?eid={}", event.id));
    event.ical_uid = Some(event.ical_uid.unwrap_or_else(|| format!("{}@google.com", event.id)));
    event.sequence = Some(event.sequence.unwrap_or(0).max(0));
    event.event_type = Some(event.event_type.unwrap_or_else(|| "default".to_owned()));
    event.recurring_event_id = None;
    event.original_start_time = None;
    event
        .extra
        .entry("reminders")
        .or_insert_with(|| serde_json::json!({"useDefault": true}));
    Ok(event)
}

/// How an update or patch was asked for.
struct Write<'a> {
    op: &'static str,
    if_match: Option<&'a str>,
    send_updates: Option<String>,
}

/// Shared path of update and patch: checks, builds the new version with `build`, keeps
/// server-owned fields, bumps `sequence` when times change, enforces the event type's and
/// the meeting's restrictions, stores it and carries a meeting to its attendees.
fn modify_event(
    st: &mut State,
    caller: &Caller,
    calendar: &str,
    event_id: &str,
    write: Write<'_>,
    build: impl FnOnce(&Event) -> Result<Event, ApiError>,
) -> Result<Done, ApiError> {
    let cal_id = own_calendar(st, caller, calendar)?;
    let Resolved { current, instance_of } = resolve(&st.calendars[&cal_id], event_id)?;
    if current.is_cancelled() {
        return Err(answer_write_to_deleted(st));
    }
    transient_404(st, write.op, &cal_id, &current)?;
    check_if_match(write.if_match, &current.etag)?;
    let mut next = build(&current)?;
    if let Some(master_id) = &instance_of {
        // Writing an instance creates or changes its exception.
        pin_instance_fields(&mut next, &current, master_id)?;
    }
    validate_times(&next)?;
    validate_recurrence(&next)?;
    next.kind = current.kind.clone();
    next.id = current.id.clone();
    next.created = current.created.clone();
    next.html_link = current.html_link.clone();
    next.creator = current.creator.clone();
    next.organizer = current.organizer.clone();
    next.ical_uid = next.ical_uid.or_else(|| current.ical_uid.clone());
    next.event_type = next.event_type.or_else(|| current.event_type.clone());
    next.status = Some(next.status.unwrap_or_else(|| "confirmed".to_owned()));
    check_change(&current, &next)?;
    validate_fields(&next)?;
    check_attendee_change(&st.calendars[&cal_id].owner, &current, &next)?;
    let times_changed = next.start != current.start || next.end != current.end || next.recurrence != current.recurrence;
    let base_seq = current.sequence.unwrap_or(0).max(next.sequence.unwrap_or(0));
    next.sequence = Some(if times_changed { base_seq + 1 } else { base_seq });
    if instance_of.is_none() {
        next.recurring_event_id = None;
        next.original_start_time = None;
        if is_master(&current) && next.is_cancelled() {
            cancel_exceptions(st, &cal_id, &next.id);
        } else if is_master(&current) {
            reconcile_exceptions(st, &cal_id, &next);
        }
    }
    let stored = store(st, &cal_id, next);
    let copies = match instance_of {
        None => propagate(st, &cal_id, &stored, Some(&current)),
        Some(_) => Vec::new(),
    };
    record_send_updates(st, write.op, &cal_id, &stored, write.send_updates.as_deref());
    Ok(Done::ok(to_json(&stored)).changing(&cal_id).also_changing(copies))
}

/// Applies patch semantics: objects merge recursively (except `start`/`end`, which
/// replace), arrays and scalars replace, `null` clears.
pub fn merge_patch(target: &mut Value, changes: &Map<String, Value>) {
    let Value::Object(map) = target else {
        *target = Value::Object(changes.clone());
        return;
    };
    for (key, value) in changes {
        let replace_whole = matches!(key.as_str(), "start" | "end" | "originalStartTime");
        match (map.get_mut(key), value) {
            (_, Value::Null) => {
                map.remove(key);
            }
            (Some(existing @ Value::Object(_)), Value::Object(inner)) if !replace_whole => {
                merge_patch(existing, inner);
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_ids_must_be_lowercase_base32hex_of_5_to_1024_chars() {
        assert!(is_valid_event_id("abcv0123"));
        assert!(!is_valid_event_id("abcw0123"));
        assert!(!is_valid_event_id("ABC0123"));
        assert!(!is_valid_event_id("ab12"));
        assert!(!is_valid_event_id(&"a".repeat(1025)));
    }

    #[test]
    fn patch_merges_objects_but_replaces_arrays_and_times() {
        let mut target = json!({"summary": "a", "start": {"date": "2025-01-01"},
            "extendedProperties": {"private": {"x": "1"}}, "recurrence": ["RRULE:FREQ=DAILY"]});
        let changes = json!({"start": {"dateTime": "2025-01-01T10:00:00Z"},
            "extendedProperties": {"private": {"y": "2"}}, "recurrence": [], "summary": null});
        merge_patch(&mut target, changes.as_object().unwrap());
        assert_eq!(
            target,
            json!({"start": {"dateTime": "2025-01-01T10:00:00Z"},
            "extendedProperties": {"private": {"x": "1", "y": "2"}}, "recurrence": []})
        );
    }

    #[test]
    fn if_match_accepts_the_etag_with_or_without_quotes_and_rejects_others() {
        assert!(check_if_match(Some("\"12\""), "\"12\"").is_ok());
        assert!(check_if_match(Some("12"), "\"12\"").is_ok());
        assert_eq!(check_if_match(Some("\"13\""), "\"12\"").unwrap_err().code, 412);
    }
}
