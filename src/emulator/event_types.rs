//! `eventType` and Google's restrictions on the special types (`birthday`, `fromGmail`,
//! `outOfOffice`, `focusTime`, `workingLocation`); see
//! <https://developers.google.com/calendar/api/guides/event-types>.
//!
//! The type-specific `…Properties` objects travel in [`Event::extra`] and are kept and
//! returned verbatim. What is refused answers 400 `eventTypeRestriction`.

use super::errors::ApiError;
use super::model::Event;
use serde_json::{Map, Value};

/// Every `eventType` Google returns.
pub const EVENT_TYPES: [&str; 6] = [
    "default",
    "birthday",
    "fromGmail",
    "outOfOffice",
    "focusTime",
    "workingLocation",
];

/// Server-owned fields: never a client's change.
const SERVER_OWNED: [&str; 10] = [
    "kind",
    "etag",
    "id",
    "htmlLink",
    "created",
    "updated",
    "creator",
    "organizer",
    "iCalUID",
    "sequence",
];

/// The event's type (`default` when unset).
pub fn event_type(event: &Event) -> &str {
    event.event_type.as_deref().unwrap_or("default")
}

/// Shape rules every stored event of a type follows, however it is created.
pub fn check_shape(event: &Event) -> Result<(), ApiError> {
    let kind = event_type(event);
    if !EVENT_TYPES.contains(&kind) {
        return Err(ApiError::invalid(&format!("Invalid event type: {kind}.")));
    }
    let has = |field: &str| event.extra.get(field).is_some_and(|v| !v.is_null());
    if matches!(kind, "outOfOffice" | "focusTime" | "workingLocation") && has("attendees") {
        return Err(ApiError::event_type_restriction(&format!(
            "A {kind} event cannot have attendees."
        )));
    }
    if kind == "workingLocation" {
        if event.location.is_some() {
            return Err(ApiError::event_type_restriction(
                "A working location event cannot have a location; use workingLocationProperties.",
            ));
        }
        if !has("workingLocationProperties") {
            return Err(ApiError::required(
                "workingLocationProperties is required for a working location event.",
            ));
        }
    }
    Ok(())
}

/// What `events.insert` accepts: every type but `birthday` and `fromGmail` (those come
/// from Contacts and Gmail; the control API seeds them), in its shape.
pub fn check_insert(event: &Event) -> Result<(), ApiError> {
    check_shape(event)?;
    match event_type(event) {
        kind @ ("birthday" | "fromGmail") => Err(ApiError::event_type_restriction(&format!(
            "Events of type {kind} cannot be created through the API."
        ))),
        _ => Ok(()),
    }
}

/// Fields a client may change on an event of a restricted type; `None` when the type
/// allows every change (its shape rules still hold).
fn changeable(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "birthday" => Some(&["colorId", "reminders", "extendedProperties"]),
        "fromGmail" => Some(&[
            "colorId",
            "reminders",
            "visibility",
            "transparency",
            "extendedProperties",
        ]),
        _ => None,
    }
}

/// Whether `next` (an update or patch of `current`, server fields already carried over)
/// is a change Google allows for the event's type.
pub fn check_change(current: &Event, next: &Event) -> Result<(), ApiError> {
    let kind = event_type(current);
    if event_type(next) != kind {
        return Err(ApiError::event_type_restriction("The event type cannot be changed."));
    }
    check_shape(next)?;
    let Some(allowed) = changeable(kind) else {
        return Ok(());
    };
    for field in changed_fields(current, next) {
        if allowed.contains(&field.as_str()) {
            continue;
        }
        return Err(ApiError::event_type_restriction(&match (kind, field.as_str()) {
            ("fromGmail", "summary") => "The title of a fromGmail event cannot be changed.".to_owned(),
            _ => format!("The field {field} of a {kind} event cannot be changed."),
        }));
    }
    Ok(())
}

/// Top-level fields (server-owned ones aside) whose values differ.
pub fn changed_fields(current: &Event, next: &Event) -> Vec<String> {
    let as_map = |e: &Event| match serde_json::to_value(e) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let (a, b) = (as_map(current), as_map(next));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !SERVER_OWNED.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_birthday_may_change_its_color_but_not_its_title() {
        let current = event(json!({"eventType": "birthday", "summary": "Ann", "etag": "\"1\""}));
        let recolored = event(json!({"eventType": "birthday", "summary": "Ann", "colorId": "3"}));
        assert!(check_change(&current, &recolored).is_ok());
        let renamed = event(json!({"eventType": "birthday", "summary": "Bob"}));
        assert_eq!(
            check_change(&current, &renamed).unwrap_err().reason,
            "eventTypeRestriction"
        );
    }

    #[test]
    fn the_type_never_changes_and_working_locations_have_no_location() {
        let current = event(json!({"eventType": "focusTime"}));
        let retyped = event(json!({"eventType": "default"}));
        assert_eq!(
            check_change(&current, &retyped).unwrap_err().reason,
            "eventTypeRestriction"
        );
        let located = event(json!({"eventType": "workingLocation", "location": "HQ",
            "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}}}));
        assert_eq!(check_shape(&located).unwrap_err().reason, "eventTypeRestriction");
    }
}
