//! Google's JSON resources (the emulator's own serde types, camelCase as on the wire).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `start` / `end` / `originalStartTime` of an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDateTime {
    /// All-day date `yyyy-mm-dd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// RFC 3339 instant (an offset may be omitted when `timeZone` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    /// IANA time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// `extendedProperties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendedProperties {
    /// Properties private to this copy of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<BTreeMap<String, String>>,
    /// Properties shared between attendees' copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<BTreeMap<String, String>>,
}

/// `organizer` / `creator`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether this is the calendar's owner.
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub is_self: Option<bool>,
}

/// The `calendar#event` resource. Fields the emulator does not interpret are kept in
/// `extra` and echoed back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Always `calendar#event`.
    #[serde(default)]
    pub kind: String,
    /// Quoted etag string.
    #[serde(default)]
    pub etag: String,
    /// Event id (base32hex).
    #[serde(default)]
    pub id: String,
    /// `confirmed` | `tentative` | `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Link to the event in the (emulated) web UI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_link: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Last modification time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Creator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<Person>,
    /// Organizer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizer: Option<Person>,
    /// Start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<EventDateTime>,
    /// End (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<EventDateTime>,
    /// RRULE / EXRULE / RDATE / EXDATE lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Vec<String>>,
    /// Master id, on instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_event_id: Option<String>,
    /// The instance's original start, on instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_start_time: Option<EventDateTime>,
    /// iCalendar UID (`<id>@google.com` unless supplied).
    #[serde(rename = "iCalUID", skip_serializing_if = "Option::is_none")]
    pub ical_uid: Option<String>,
    /// iCalendar sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    /// Extended properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_properties: Option<ExtendedProperties>,
    /// `default` unless supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Every other field, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Event {
    /// Whether the event is deleted.
    pub fn is_cancelled(&self) -> bool {
        self.status.as_deref() == Some("cancelled")
    }

    /// The minimal tombstone Google returns for a deleted event in a listing.
    pub fn tombstone(&self) -> Value {
        let mut v = serde_json::json!({
            "kind": "calendar#event",
            "etag": self.etag,
            "id": self.id,
            "status": "cancelled",
        });
        if let Some(r) = &self.recurring_event_id {
            v["recurringEventId"] = Value::String(r.clone());
        }
        if let Some(o) = &self.original_start_time {
            v["originalStartTime"] = serde_json::to_value(o).unwrap_or(Value::Null);
        }
        v
    }
}

/// The `api#channel` resource as sent to `events.watch` / `channels.stop`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRequest {
    /// Channel id chosen by the caller.
    #[serde(default)]
    pub id: Option<String>,
    /// `web_hook`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Delivery address.
    #[serde(default)]
    pub address: Option<String>,
    /// Opaque token echoed in `X-Goog-Channel-Token`.
    #[serde(default)]
    pub token: Option<String>,
    /// Requested expiration, unix ms (a string or a number).
    #[serde(default)]
    pub expiration: Option<Value>,
    /// `{"ttl": "<seconds>"}`.
    #[serde(default)]
    pub params: Option<BTreeMap<String, String>>,
    /// Resource id (for `channels.stop`).
    #[serde(default)]
    pub resource_id: Option<String>,
}
