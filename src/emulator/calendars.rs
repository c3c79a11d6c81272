//! `calendars.insert` / `get` / `delete` and `calendarList.list`.

use super::errors::ApiError;
use super::events::own_calendar;
use super::pipeline::{calendar_op, parse_body, Done, Need};
use super::state::{decode_path, etag_for, Calendar, Shared};
use super::times::parse_tz;
use poem::web::Data;
use poem::{handler, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCalendar {
    summary: Option<String>,
    description: Option<String>,
    time_zone: Option<String>,
}

/// The `calendar#calendar` resource.
pub fn calendar_json(cal: &Calendar) -> Value {
    let mut v = json!({
        "kind": "calendar#calendar",
        "etag": cal.etag,
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
    });
    if let Some(d) = &cal.description {
        v["description"] = json!(d);
    }
    v
}

fn list_entry_json(cal: &Calendar) -> Value {
    let mut v = calendar_json(cal);
    v["kind"] = json!("calendar#calendarListEntry");
    v["accessRole"] = json!("owner");
    v["defaultReminders"] = json!([]);
    v["selected"] = json!(true);
    if cal.primary {
        v["primary"] = json!(true);
    }
    v
}

/// `POST calendars`.
#[handler]
pub async fn insert(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    calendar_op(shared, req, "calendars.insert", Need::WriteCalendars, |st, caller| {
        let new: NewCalendar = parse_body(&body)?;
        let summary = new
            .summary
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::required("Missing title."))?;
        if let Some(tz) = &new.time_zone {
            if parse_tz(tz).is_none() {
                return Err(ApiError::invalid("Invalid time zone definition."));
            }
        }
        let id = format!("{}@group.calendar.google.com", st.new_alnum(26));
        let cal = st.create_calendar(&caller.email, id, summary, new.description, new.time_zone, false);
        Ok(Done::ok(calendar_json(cal)))
    })
    .await
}

/// `GET calendars/{calendarId}`.
#[handler]
pub async fn get(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let raw = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    calendar_op(shared, req, "calendars.get", Need::ReadEvents, |st, caller| {
        let id = own_calendar(st, caller, &raw)?;
        Ok(Done::ok(calendar_json(&st.calendars[&id])))
    })
    .await
}

/// `DELETE calendars/{calendarId}` → 204; the primary calendar cannot be deleted.
#[handler]
pub async fn delete(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let raw = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    calendar_op(shared, req, "calendars.delete", Need::WriteCalendars, |st, caller| {
        let id = own_calendar(st, caller, &raw)?;
        if st.calendars[&id].primary {
            return Err(ApiError::invalid("Cannot delete primary calendar."));
        }
        st.calendars.remove(&id);
        st.deleted_calendars.push(id.clone());
        for channel in st.channels.values_mut() {
            if channel.calendar_id == id {
                channel.stopped = true;
            }
        }
        Ok(Done::no_content())
    })
    .await
}

/// `GET users/me/calendarList`.
#[handler]
pub async fn calendar_list(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    calendar_op(shared, req, "calendarList.list", Need::ReadCalendars, |st, caller| {
        let mut items: Vec<&Calendar> = st.calendars.values().filter(|c| c.owner == caller.email).collect();
        items.sort_by_key(|c| (!c.primary, c.id.clone()));
        let newest = items.iter().map(|c| c.updated).max().unwrap_or_default();
        Ok(Done::ok(json!({
            "kind": "calendar#calendarList",
            "etag": etag_for(newest),
            "nextSyncToken": format!("CL{}", newest.timestamp_micros()),
            "items": items.into_iter().map(list_entry_json).collect::<Vec<_>>(),
        })))
    })
    .await
}
