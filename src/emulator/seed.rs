//! Control routes that put events into calendars the way Google itself does, not the way
//! a Calendar API client can: any `eventType` (birthdays from Contacts, `fromGmail` from
//! Gmail) and meetings organised by one user with copies in each attendee's calendar.

use super::errors::ApiError;
use super::event_types::check_shape;
use super::events::{prepare_new, to_json};
use super::meetings::{attendee_emails, propagate, record_send_updates};
use super::model::{Event, Person};
use super::pipeline::json_response;
use super::push;
use super::state::{decode_path, Shared, State};
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// `POST /_emulator/calendars/{calendarId}/events` with an event resource: stores it as
/// Google would have created it (any `eventType`; `organizer` kept when given, else the
/// owner). Errors in Google's JSON shape; the calendar's channels are notified.
#[handler]
pub fn seed_event(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let cal_id = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    let event: Event = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return ApiError::invalid(&format!("Invalid value: {e}")).into_response(),
    };
    let outcome = {
        let mut st = shared.state.lock();
        if !st.calendars.contains_key(&cal_id) {
            return ApiError::not_found().into_response();
        }
        store_seeded(&mut st, &shared.base_url, &cal_id, event)
    };
    respond(shared, outcome)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMeeting {
    organizer: String,
    #[serde(default)]
    attendees: Vec<String>,
    #[serde(default)]
    event: Option<Event>,
    #[serde(default, rename = "sendUpdates")]
    send_updates: Option<String>,
}

/// `POST /_emulator/meetings` `{organizer, attendees: [email…], event, sendUpdates?}`:
/// creates the accounts that do not exist yet, stores the meeting in the organizer's
/// primary calendar (organizer first among the attendees, `accepted`; the others
/// `needsAction`) and a copy with the same `id` and `iCalUID` in each attendee's. Extra
/// guests without an account here can be listed in `event.attendees`.
#[handler]
pub fn create_meeting(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let new: NewMeeting = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return json_response(400, &json!({"error": format!("invalid meeting: {e}")})),
    };
    let outcome = {
        let mut st = shared.state.lock();
        st.ensure_user(&new.organizer, None);
        for email in &new.attendees {
            st.ensure_user(email, None);
        }
        let mut event = new.event.unwrap_or_default();
        let mut attendees = vec![json!({"email": new.organizer, "organizer": true, "responseStatus": "accepted"})];
        let listed = attendee_emails(&event);
        for email in new
            .attendees
            .iter()
            .filter(|e| !listed.contains(e) && **e != new.organizer)
        {
            attendees.push(json!({"email": email, "responseStatus": "needsAction"}));
        }
        if let Some(Value::Array(extra)) = event.extra.remove("attendees") {
            attendees.extend(extra.into_iter().filter(|a| a["email"] != json!(new.organizer)));
        }
        event.extra.insert("attendees".to_owned(), Value::Array(attendees));
        event.organizer = Some(Person {
            email: Some(new.organizer.clone()),
            is_self: None,
        });
        let send_updates = new.send_updates.clone();
        let organizer = new.organizer.clone();
        store_seeded(&mut st, &shared.base_url, &organizer, event).map(|(stored, changed)| {
            record_send_updates(&mut st, "meetings.create", &organizer, &stored, send_updates.as_deref());
            (stored, changed)
        })
    };
    respond(shared, outcome)
}

/// Checks and stores a seeded event in `cal_id`, then carries a meeting to its attendees;
/// returns it with every calendar changed.
fn store_seeded(st: &mut State, base_url: &str, cal_id: &str, event: Event) -> Result<(Event, Vec<String>), ApiError> {
    check_shape(&event)?;
    let owner = st.calendars[cal_id].owner.clone();
    let mut event = prepare_new(st, base_url, cal_id, event)?;
    let mark = |p: Option<Person>| {
        let email = p.and_then(|p| p.email).unwrap_or_else(|| owner.clone());
        Person {
            is_self: (email == owner).then_some(true),
            email: Some(email),
        }
    };
    event.organizer = Some(mark(event.organizer.take()));
    event.creator = Some(mark(event.creator.take().or_else(|| event.organizer.clone())));
    if let Some(Value::Array(list)) = event.extra.get_mut("attendees") {
        for a in list.iter_mut().filter(|a| a["email"] == json!(owner)) {
            a["self"] = json!(true);
        }
    }
    let stored = st.store_event(cal_id, event, false);
    let mut changed = vec![cal_id.to_owned()];
    changed.extend(propagate(st, cal_id, &stored, None));
    Ok((stored, changed))
}

fn respond(shared: &Arc<Shared>, outcome: Result<(Event, Vec<String>), ApiError>) -> Response {
    match outcome {
        Ok((stored, changed)) => {
            for cal in changed {
                push::notify_change(shared, &cal);
            }
            json_response(200, &to_json(&stored))
        }
        Err(e) => e.into_response(),
    }
}
