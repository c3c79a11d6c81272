//! Meetings: `organizer` and `attendees`, the same event (same `id` and `iCalUID`) in the
//! organizer's calendar and in each attendee's primary calendar, edits of shared fields
//! refused to non-organizers (403 `forbiddenForNonOrganizer`), the organizer's changes and
//! deletion carried to every copy, and `sendUpdates` recorded per call. See
//! <https://developers.google.com/calendar/api/v3/reference/events> and
//! <https://developers.google.com/calendar/api/guides/errors>.

use super::errors::ApiError;
use super::model::{Event, Person};
use super::state::State;
use poem::Request;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Fields of a meeting only the organizer may change (the `self` attendee's own answer
/// aside); reminders, `colorId`, `transparency` and private properties stay per copy.
const SHARED_FIELDS: [&str; 12] = [
    "summary",
    "description",
    "location",
    "start",
    "end",
    "recurrence",
    "attendees",
    "visibility",
    "conferenceData",
    "guestsCanModify",
    "guestsCanInviteOthers",
    "guestsCanSeeOtherGuests",
];

/// Per-copy fields an attendee keeps when the organizer's version is copied over theirs.
const PER_COPY_FIELDS: [&str; 3] = ["reminders", "colorId", "transparency"];

/// What one call's `sendUpdates` would have emailed.
#[derive(Debug, Clone, Serialize)]
pub struct SentUpdate {
    /// Operation (`events.insert`, `events.patch`, …).
    pub op: String,
    /// Calendar written to.
    pub calendar_id: String,
    /// Event id.
    pub event_id: String,
    /// `all` | `externalOnly` | `none` (`none` when omitted).
    pub send_updates: String,
    /// Whether the caller set `sendUpdates`.
    pub given: bool,
    /// Who would have been emailed.
    pub recipients: Vec<String>,
}

/// The `sendUpdates` query parameter (400 for a value Google does not know).
pub fn send_updates_param(req: &Request) -> Result<Option<String>, ApiError> {
    let value = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "sendUpdates")
        .map(|(_, v)| v.into_owned());
    match value.as_deref() {
        None | Some("all" | "externalOnly" | "none") => Ok(value),
        Some(_) => Err(ApiError::invalid_parameter(
            "sendUpdates",
            "Invalid value for: sendUpdates",
        )),
    }
}

/// The organizer's email, if the event names one.
pub fn organizer_email(event: &Event) -> Option<&str> {
    event.organizer.as_ref().and_then(|p| p.email.as_deref())
}

/// Attendee emails of an event.
pub fn attendee_emails(event: &Event) -> Vec<String> {
    event
        .extra
        .get("attendees")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| a.get("email").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `owner` (the calendar's owner) organises the event (no organizer: they do).
pub fn is_organizer(owner: &str, event: &Event) -> bool {
    organizer_email(event).is_none_or(|o| o == owner)
}

/// 403 `forbiddenForNonOrganizer` when `owner`, not the organizer, changes a shared field
/// (unless the organizer let guests modify the event).
pub fn check_attendee_change(owner: &str, current: &Event, next: &Event) -> Result<(), ApiError> {
    if is_organizer(owner, current) || current.extra.get("guestsCanModify") == Some(&json!(true)) {
        return Ok(());
    }
    let shared = |e: &Event| {
        let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
        let mut out = Map::new();
        for field in SHARED_FIELDS {
            if let Some(x) = v.get_mut(field) {
                out.insert(field.to_owned(), x.take());
            }
        }
        if let Some(Value::Array(list)) = out.get_mut("attendees") {
            for a in list.iter_mut().filter(|a| a["email"] == json!(owner)) {
                if let Some(a) = a.as_object_mut() {
                    for own in ["self", "responseStatus", "comment", "additionalGuests"] {
                        a.remove(own);
                    }
                }
            }
        }
        let shared_props = v["extendedProperties"]["shared"].take();
        (out, shared_props)
    };
    if shared(current) != shared(next) {
        return Err(ApiError::forbidden_for_non_organizer());
    }
    Ok(())
}

/// Carries the organizer's version of `event` (just stored in `cal_id`) to every attendee
/// who has a calendar here: copies are created, updated, or cancelled (the meeting
/// cancelled, or the attendee removed, per `previous`). Returns the calendars changed.
pub fn propagate(st: &mut State, cal_id: &str, event: &Event, previous: Option<&Event>) -> Vec<String> {
    let Some(organizer) = organizer_email(event).map(str::to_owned) else {
        return Vec::new();
    };
    if st.calendars.get(cal_id).is_none_or(|c| c.owner != organizer) {
        return Vec::new();
    }
    let now_invited = attendee_emails(event);
    let mut changed = Vec::new();
    let mut targets: Vec<(String, bool)> = now_invited.iter().map(|e| (e.clone(), true)).collect();
    for gone in previous.map(attendee_emails).unwrap_or_default() {
        if !now_invited.contains(&gone) {
            targets.push((gone, false));
        }
    }
    for (email, invited) in targets {
        if email == organizer || st.calendars.get(&email).is_none_or(|c| c.owner != email) {
            continue;
        }
        let existing = st.calendars[&email].events.get(&event.id).map(|s| s.event.clone());
        let copy = match (&existing, invited) {
            (None, false) => continue,
            (Some(old), false) => {
                let mut c = old.clone();
                c.status = Some("cancelled".to_owned());
                c
            }
            (_, true) => attendee_copy(event, existing.as_ref(), &email),
        };
        if existing.as_ref().is_some_and(|old| same_content(old, &copy)) {
            continue;
        }
        st.store_event(&email, copy, false);
        changed.push(email);
    }
    changed
}

fn same_content(a: &Event, b: &Event) -> bool {
    super::event_types::changed_fields(a, b).is_empty() && a.status == b.status
}

/// `email`'s copy of the organizer's `event`, keeping what is per copy from `existing`.
fn attendee_copy(event: &Event, existing: Option<&Event>, email: &str) -> Event {
    let mut copy = event.clone();
    let not_self = |p: &Option<Person>| p.clone().map(|p| Person { is_self: None, ..p });
    copy.organizer = not_self(&event.organizer);
    copy.creator = not_self(&event.creator);
    if let Some(Value::Array(list)) = copy.extra.get_mut("attendees") {
        for a in list.iter_mut().filter_map(Value::as_object_mut) {
            let own = a.get("email") == Some(&json!(email));
            if own {
                a.insert("self".to_owned(), json!(true));
                let answered = existing
                    .and_then(|e| e.extra.get("attendees"))
                    .and_then(Value::as_array)
                    .and_then(|l| l.iter().find(|x| x["email"] == json!(email)))
                    .and_then(|x| x.get("responseStatus"))
                    .cloned();
                if let Some(r) = answered {
                    a.insert("responseStatus".to_owned(), r);
                }
            } else {
                a.remove("self");
            }
        }
    }
    for field in PER_COPY_FIELDS {
        copy.extra.remove(field);
        if let Some(v) = existing.and_then(|e| e.extra.get(field)) {
            copy.extra.insert(field.to_owned(), v.clone());
        }
    }
    copy.extra
        .entry("reminders")
        .or_insert_with(|| json!({"useDefault": true}));
    let private = existing
        .and_then(|e| e.extended_properties.as_ref())
        .and_then(|p| p.private.clone());
    if let Some(props) = copy.extended_properties.as_mut() {
        props.private = private;
    }
    copy
}

/// Records what a write's `sendUpdates` would have emailed (calls on events with
/// attendees, or naming `sendUpdates`). Only the organizer's writes email anyone.
pub fn record_send_updates(st: &mut State, op: &str, cal_id: &str, event: &Event, send_updates: Option<&str>) {
    let attendees = attendee_emails(event);
    if attendees.is_empty() && send_updates.is_none() {
        return;
    }
    let owner = st.calendars.get(cal_id).map(|c| c.owner.clone()).unwrap_or_default();
    let mode = send_updates.unwrap_or("none");
    let domain = |e: &str| e.rsplit('@').next().unwrap_or_default().to_ascii_lowercase();
    let recipients = if is_organizer(&owner, event) {
        attendees
            .into_iter()
            .filter(|a| *a != owner)
            .filter(|a| match mode {
                "all" => true,
                "externalOnly" => domain(a) != domain(&owner),
                _ => false,
            })
            .collect()
    } else {
        Vec::new()
    };
    *st.stats.send_updates.entry(mode.to_owned()).or_default() += 1;
    st.sent_updates.push(SentUpdate {
        op: op.to_owned(),
        calendar_id: cal_id.to_owned(),
        event_id: event.id.clone(),
        send_updates: mode.to_owned(),
        given: send_updates.is_some(),
        recipients,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(v: Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_attendee_may_answer_and_recolor_but_not_retitle() {
        let current = event(json!({"summary": "sync", "organizer": {"email": "org@a.com"},
            "attendees": [{"email": "org@a.com"}, {"email": "bob@b.com", "responseStatus": "needsAction"}]}));
        let mut answered = current.clone();
        answered.extra["attendees"][1]["responseStatus"] = json!("accepted");
        answered.extra.insert("colorId".to_owned(), json!("2"));
        assert!(check_attendee_change("bob@b.com", &current, &answered).is_ok());
        let mut retitled = current.clone();
        retitled.summary = Some("mine".to_owned());
        let e = check_attendee_change("bob@b.com", &current, &retitled).unwrap_err();
        assert_eq!((e.code, e.reason), (403, "forbiddenForNonOrganizer"));
        assert!(check_attendee_change("org@a.com", &current, &retitled).is_ok());
    }
}
