//! The slot as the API shows it, and the body clients send.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, Union};
use uuid::Uuid;

use super::appearance_model::{self as appearance, ReminderInput, SlotReminders, SlotTransparency, SlotVisibility};
use super::date::Date;
use crate::domain::{PushState, SlotFields, Source};
use crate::store::slots::SlotRow;

/// Body of `POST /slots` and `PUT /slots/{id}` as the server reads it: one flat object,
/// so that every broken rule is reported on its own field. The spec shows it as
/// [`SlotBody`], a `oneOf` of a timed and an all-day slot.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlotInput {
    pub title: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<DateTime<FixedOffset>>,
    pub end: Option<DateTime<FixedOffset>>,
    pub timezone: Option<String>,
    pub all_day: Option<bool>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub recurrence: Option<Vec<String>>,
    pub visibility: Option<String>,
    pub transparency: Option<String>,
    pub color_id: Option<String>,
    pub reminders: Option<ReminderInput>,
}

/// A slot: timed (`start` and `end`) or all-day (`all_day: true`, `start_date`, `end_date`).
#[derive(Debug, Clone, Union)]
#[oai(one_of)]
pub enum SlotBody {
    /// A slot with a start and an end time.
    Timed(TimedSlotInput),
    /// A slot that takes whole days.
    AllDay(AllDaySlotInput),
}

/// A timed slot.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none, deny_unknown_fields)]
pub struct TimedSlotInput {
    /// Title, 1–1024 characters, not only spaces or control characters.
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub title: String,
    /// Description, up to 8192 characters, not only spaces or control characters (omit for none).
    #[oai(validator(min_length = 1, max_length = 8192, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub description: Option<String>,
    /// Location, up to 1024 characters, not only spaces or control characters (omit for none).
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub location: Option<String>,
    /// Start, RFC 3339 with offset. Stored in UTC, whole seconds.
    pub start: DateTime<FixedOffset>,
    /// End, RFC 3339 with offset, after `start` and at most 31 days later.
    pub end: DateTime<FixedOffset>,
    /// IANA time zone of the slot (default `UTC`), e.g. `Europe/Berlin`; answers show
    /// times in it. A series repeats at the same local time in it.
    pub timezone: Option<String>,
    /// Makes the slot repeat: RFC 5545 lines as Google Calendar uses them — `RRULE:`,
    /// `EXDATE:` and `RDATE:` (with `;TZID=…` or `;VALUE=DATE`), no `DTSTART` (the slot's
    /// start is the first occurrence). At most 10 lines; no `SECONDLY`, `MINUTELY` or
    /// `HOURLY` rules. Omit (or send `[]`) for a slot that does not repeat. See
    /// `docs/recurrence.md`.
    #[oai(validator(max_items = 10))]
    pub recurrence: Option<Vec<String>>,
    /// Who may see the details in Google Calendar: `default` (the calendar's setting; the
    /// default), `public`, `private`, `confidential`.
    pub visibility: Option<SlotVisibility>,
    /// `busy` (the default) blocks the time; `free` shows it as available.
    pub transparency: Option<SlotTransparency>,
    /// Google's event colour, `"1"` to `"11"`; omit (or null) for the calendar's colour.
    #[oai(validator(pattern = r"^([1-9]|1[01])$"))]
    pub color_id: Option<String>,
    /// Reminders: omit for the calendar's default ones, or e.g.
    /// `{"use_default": false, "minutes": [10, 60]}` (at most 5 in all).
    pub reminders: Option<SlotReminders>,
}

impl Example for TimedSlotInput {
    fn example() -> Self {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("a valid example time");
        TimedSlotInput {
            title: "Office hours".into(),
            description: Some("Drop in with your questions".into()),
            location: Some("Room 4.12".into()),
            start: at("2026-12-07T09:00:00+01:00"),
            end: at("2026-12-07T10:30:00+01:00"),
            timezone: Some("Europe/Berlin".into()),
            recurrence: Some(vec!["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=12".into()]),
            visibility: None,
            transparency: None,
            color_id: Some("5".into()),
            reminders: Some(SlotReminders {
                use_default: false,
                minutes: Some(vec![appearance::ReminderMinutes(10)]),
                email_minutes: None,
            }),
        }
    }
}

/// An all-day slot.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none, deny_unknown_fields)]
pub struct AllDaySlotInput {
    /// Title, 1–1024 characters, not only spaces or control characters.
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub title: String,
    /// Description, up to 8192 characters, not only spaces or control characters (omit for none).
    #[oai(validator(min_length = 1, max_length = 8192, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub description: Option<String>,
    /// Location, up to 1024 characters, not only spaces or control characters (omit for none).
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub location: Option<String>,
    /// Always `true`: this is what makes the slot all-day.
    pub all_day: AllDay,
    /// First day.
    pub start_date: Date,
    /// Day after the last day (exclusive, as in Google Calendar), at most 31 days after
    /// `start_date`.
    pub end_date: Date,
    /// IANA time zone of the slot (default `UTC`); the days start at its midnight.
    pub timezone: Option<String>,
    /// Makes the slot repeat: RFC 5545 lines as Google Calendar uses them — `RRULE:`,
    /// `EXDATE:` and `RDATE:` (with `;TZID=…` or `;VALUE=DATE`), no `DTSTART` (the slot's
    /// start is the first occurrence). At most 10 lines; no `SECONDLY`, `MINUTELY` or
    /// `HOURLY` rules. Omit (or send `[]`) for a slot that does not repeat. See
    /// `docs/recurrence.md`.
    #[oai(validator(max_items = 10))]
    pub recurrence: Option<Vec<String>>,
    /// Who may see the details in Google Calendar: `default` (the calendar's setting; the
    /// default), `public`, `private`, `confidential`.
    pub visibility: Option<SlotVisibility>,
    /// `busy` (the default) blocks the time; `free` shows it as available.
    pub transparency: Option<SlotTransparency>,
    /// Google's event colour, `"1"` to `"11"`; omit (or null) for the calendar's colour.
    #[oai(validator(pattern = r"^([1-9]|1[01])$"))]
    pub color_id: Option<String>,
    /// Reminders: omit for the calendar's default ones, or e.g.
    /// `{"use_default": false, "minutes": [10, 60]}` (at most 5 in all).
    pub reminders: Option<SlotReminders>,
}

impl Example for AllDaySlotInput {
    fn example() -> Self {
        let day = |s: &str| Date(s.parse().expect("a valid example date"));
        AllDaySlotInput {
            title: "Conference".into(),
            description: None,
            location: Some("Lisbon".into()),
            all_day: AllDay::True,
            start_date: day("2026-12-14"),
            end_date: day("2026-12-16"),
            timezone: Some("Europe/Lisbon".into()),
            recurrence: None,
            visibility: None,
            transparency: None,
            color_id: None,
            reminders: None,
        }
    }
}

impl From<SlotInput> for SlotFields {
    fn from(i: SlotInput) -> Self {
        SlotFields {
            title: Some(i.title),
            description: i.description,
            location: i.location,
            start: i.start,
            end: i.end,
            timezone: i.timezone,
            all_day: i.all_day,
            start_date: i.start_date.map(|d| d.0),
            end_date: i.end_date.map(|d| d.0),
            appearance: appearance::fields(i.visibility, i.transparency, i.color_id, i.reminders),
        }
    }
}

/// Where the slot was born.
#[derive(Debug, Clone, Copy, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SlotSource {
    /// Created through this API.
    App,
    /// Imported from an event created in Google Calendar.
    Google,
}

/// Where the slot stands with Google.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SyncStateName {
    /// A local change waits to be pushed to Google (also while no Google account is connected).
    Pending,
    /// Google holds the current version.
    Synced,
    /// Pushing failed for good; see `last_error`.
    Failed,
    /// Pushing is paused (breaker, re-authorisation needed, or sync stopped).
    Paused,
}

/// The slot's sync status.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct SlotSync {
    /// Where the slot stands with Google.
    pub state: SyncStateName,
    /// The Google Calendar event id, once pushed.
    pub google_event_id: Option<String>,
    /// When Google last matched this slot.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The last push error, if any.
    pub last_error: Option<String>,
}

/// A slot.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Slot {
    /// The slot's id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Start, in the slot's time zone (local midnight of `start_date` for all-day slots).
    pub start: DateTime<FixedOffset>,
    /// End, in the slot's time zone (local midnight of `end_date` for all-day slots).
    pub end: DateTime<FixedOffset>,
    /// IANA time zone.
    pub timezone: String,
    /// Whether the slot takes whole days.
    pub all_day: bool,
    /// First day (all-day slots).
    pub start_date: Option<Date>,
    /// Day after the last day, exclusive (all-day slots).
    pub end_date: Option<Date>,
    /// Where the slot was born.
    pub source: SlotSource,
    /// Bumped on every change; send it as `If-Match` to update safely.
    pub version: i64,
    /// Sync status with Google.
    pub sync: SlotSync,
    /// When the slot was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the slot last changed (UTC).
    pub updated_at: DateTime<Utc>,
    /// Whether the slot was deleted (only listed with `include_deleted=true`).
    pub deleted: bool,
    /// The slot's recurrence lines, when it repeats (see `GET /slots/{id}/occurrences`).
    pub recurrence: Option<Vec<String>>,
    /// The series this slot was split from by a "this and following" edit in Google.
    pub series_of: Option<Uuid>,
    /// Whether the slot can only be changed in Google: `PUT`, `DELETE` and the
    /// occurrence routes answer 409 `read_only`. Google's changes still come in.
    pub read_only: bool,
    /// Why it is read-only: `event_type:<type>` (a Google event type whose changes Google
    /// restricts, imported as read-only by the caller's settings) or `not_organizer` (a
    /// meeting someone else organises).
    pub read_only_reason: Option<String>,
    /// The Google event type of an imported special event (`outOfOffice`, `focusTime`,
    /// `fromGmail`, `birthday`, `workingLocation`); absent for ordinary events.
    pub event_type: Option<String>,
    /// For a meeting the caller organises: how many attendees it lists (the organizer
    /// included). Deleting it needs `notify_attendees`.
    pub attendee_count: Option<i32>,
    /// Who may see the details in Google Calendar.
    pub visibility: SlotVisibility,
    /// Whether the slot blocks time (`busy`) or shows as available (`free`).
    pub transparency: SlotTransparency,
    /// Google's event colour `"1"`–`"11"`; absent: the calendar's colour.
    pub color_id: Option<String>,
    /// The slot's reminders (the occurrences of a series share them).
    pub reminders: SlotReminders,
    /// Only in the answer to `PUT /slots/{id}` on a series: how many occurrence
    /// exceptions (moved, changed or cancelled occurrences) were dropped because they no
    /// longer fall on an occurrence of the new rule or times.
    pub exceptions_dropped: Option<u64>,
}

impl Slot {
    /// The `ETag` for this slot's version.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

impl From<&SlotRow> for Slot {
    fn from(r: &SlotRow) -> Self {
        let tz: Tz = r.timezone.parse().unwrap_or(Tz::UTC);
        let state = match r.push_state {
            PushState::Clean => SyncStateName::Synced,
            PushState::Failed => SyncStateName::Failed,
            PushState::Paused => SyncStateName::Paused,
            PushState::Dirty => SyncStateName::Pending,
        };
        let shown = appearance::Shown::from(&crate::store::slots::appearance(r));
        Slot {
            id: r.id,
            title: r.title.clone(),
            description: r.description.clone(),
            location: r.location.clone(),
            start: r.start_at.with_timezone(&tz).fixed_offset(),
            end: r.end_at.with_timezone(&tz).fixed_offset(),
            timezone: r.timezone.clone(),
            all_day: r.all_day,
            start_date: r.start_date.map(Date),
            end_date: r.end_date.map(Date),
            source: match r.source {
                Source::Google => SlotSource::Google,
                Source::App => SlotSource::App,
            },
            version: r.version,
            sync: SlotSync {
                state,
                google_event_id: r.google_event_id.clone(),
                last_synced_at: r.last_synced_at,
                last_error: r.last_push_error.clone(),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted: r.deleted_at.is_some(),
            recurrence: r
                .recurrence
                .as_ref()
                .map(|_| crate::store::slots::recurrence(r))
                .filter(|lines| !lines.is_empty()),
            series_of: r.series_of,
            read_only: r.read_only_reason.is_some(),
            read_only_reason: r.read_only_reason.clone(),
            event_type: r.event_type.clone(),
            attendee_count: r.attendee_count,
            visibility: shown.visibility,
            transparency: shown.transparency,
            color_id: shown.color_id,
            reminders: shown.reminders,
            exceptions_dropped: None,
        }
    }
}

/// A page of slots.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SlotPage {
    /// Slots ordered by start.
    pub items: Vec<Slot>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The change feed's position before this listing: pass as `after` to
    /// `GET /changes` to follow every change from here (none is missed; one already
    /// in this listing may come again).
    pub changes_cursor: String,
}

/// The JSON value `true`, alone: `all_day` of an all-day slot. The spec shows it as a
/// boolean whose only value is `true`, so the two kinds of slot cannot be mistaken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllDay {
    /// `true`.
    True,
}

super::scalar_type!(
    AllDay,
    "boolean_true",
    poem_openapi::registry::MetaSchema {
        enum_items: vec![serde_json::Value::Bool(true)],
        ..poem_openapi::registry::MetaSchema::new("boolean")
    }
);

impl poem_openapi::types::ParseFromJSON for AllDay {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            Some(serde_json::Value::Bool(true)) => Ok(AllDay::True),
            _ => Err(poem_openapi::types::ParseError::custom("must be true")),
        }
    }
}

impl poem_openapi::types::ToJSON for AllDay {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::Bool(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    /// The examples Swagger UI pre-fills are bodies the server accepts.
    #[test]
    fn both_examples_are_valid_slots() {
        for example in [
            TimedSlotInput::example().to_json().unwrap(),
            AllDaySlotInput::example().to_json().unwrap(),
        ] {
            let input: SlotInput = serde_json::from_value(example.clone()).unwrap();
            crate::domain::SlotDraft::validate(input.into()).unwrap_or_else(|e| panic!("{example} is refused: {e}"));
        }
    }
}
