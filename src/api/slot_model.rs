//! The slot as the API shows it, and the body clients send.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use crate::domain::{PushState, SlotFields};
use crate::store::slots::SlotRow;

/// Body of `POST /slots` and `PUT /slots/{id}`. Timed slots give `start` and `end`;
/// all-day slots give `all_day: true`, `start_date` and `end_date` (exclusive).
#[derive(Debug, Clone, Object, serde::Deserialize, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct SlotInput {
    /// Title, 1–1024 characters.
    #[oai(validator(max_length = 1024))]
    pub title: String,
    /// Description, up to 8192 characters (omit or null for none).
    #[oai(validator(max_length = 8192))]
    pub description: Option<String>,
    /// Location, up to 1024 characters (omit or null for none).
    #[oai(validator(max_length = 1024))]
    pub location: Option<String>,
    /// Start, RFC 3339 with offset (timed slots). Stored in UTC, whole seconds.
    pub start: Option<DateTime<FixedOffset>>,
    /// End, RFC 3339 with offset, after `start` and at most 31 days later (timed slots).
    pub end: Option<DateTime<FixedOffset>>,
    /// IANA time zone of the slot (default `UTC`); responses show times in it.
    pub timezone: Option<String>,
    /// Whether the slot takes whole days (default false).
    pub all_day: Option<bool>,
    /// First day, `yyyy-mm-dd` (all-day slots).
    pub start_date: Option<NaiveDate>,
    /// Day after the last day, `yyyy-mm-dd`, exclusive as in Google Calendar (all-day slots).
    pub end_date: Option<NaiveDate>,
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
            start_date: i.start_date,
            end_date: i.end_date,
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
#[derive(Debug, Clone, Copy, Enum, serde::Deserialize)]
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
    pub start_date: Option<NaiveDate>,
    /// Day after the last day, exclusive (all-day slots).
    pub end_date: Option<NaiveDate>,
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
        let state = match r.push_state.parse::<PushState>() {
            Ok(PushState::Clean) => SyncStateName::Synced,
            Ok(PushState::Failed) => SyncStateName::Failed,
            Ok(PushState::Paused) => SyncStateName::Paused,
            Ok(PushState::Dirty) | Err(_) => SyncStateName::Pending,
        };
        Slot {
            id: r.id,
            title: r.title.clone(),
            description: r.description.clone(),
            location: r.location.clone(),
            start: r.start_at.with_timezone(&tz).fixed_offset(),
            end: r.end_at.with_timezone(&tz).fixed_offset(),
            timezone: r.timezone.clone(),
            all_day: r.all_day,
            start_date: r.start_date,
            end_date: r.end_date,
            source: if r.source == "google" {
                SlotSource::Google
            } else {
                SlotSource::App
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
}
