//! `slots`: the slot itself plus its sync bookkeeping (the outbox lives in these columns).

use sea_orm::entity::prelude::*;

use crate::domain::{PushState, Side, Source};

/// Serialisable: the change log keeps each slot as it was after the change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "slots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub location: Option<String>,
    pub start_at: DateTimeUtc,
    pub end_at: DateTimeUtc,
    pub timezone: String,
    pub all_day: bool,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// JSON array of RRULE/EXDATE lines.
    #[sea_orm(column_type = "Text", nullable)]
    pub recurrence: Option<String>,
    pub source: Source,
    pub version: i64,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub google_event_id: Option<String>,
    pub google_etag: Option<String>,
    pub synced_fingerprint: Option<String>,
    pub synced_version: Option<i64>,
    pub last_synced_at: Option<DateTimeUtc>,
    pub push_state: PushState,
    pub push_attempts: i32,
    pub next_push_at: Option<DateTimeUtc>,
    pub push_lease_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_push_error: Option<String>,
    /// The side whose change was synced last (for the slot breaker); `None` before any.
    pub last_change_side: Option<Side>,
    /// Alternations between the sides counted in the breaker's current window.
    pub breaker_alternations: i32,
    /// When the breaker's current window began.
    pub breaker_window_start: Option<DateTimeUtc>,
    /// The connection's home generation this slot's Google link belongs to: outcomes of a
    /// push or pull made for another generation are not recorded.
    pub home_generation: i64,
    /// The series this one was split from by a "this and following" edit in Google.
    pub series_of: Option<Uuid>,
    /// An imported event's special type (`outOfOffice`, …), if any.
    pub event_type: Option<String>,
    /// Why the slot cannot be changed through the API (`event_type:outOfOffice`,
    /// `not_organizer`); `None` for an ordinary slot.
    #[sea_orm(column_type = "Text", nullable)]
    pub read_only_reason: Option<String>,
    /// For an imported meeting the user organises: how many attendees it lists.
    pub attendee_count: Option<i32>,
    /// A deleted meeting's `sendUpdates` (`all` | `none`), chosen with the deletion and
    /// sent by the push's `events.delete`.
    pub delete_send_updates: Option<String>,
    /// `public`, `private` or `confidential`; null: `default` (the calendar's setting).
    pub visibility: Option<String>,
    /// `free`; null: `busy`.
    pub transparency: Option<String>,
    /// Google's event colour `1`–`11`; null: the calendar's colour.
    pub color_id: Option<String>,
    /// Custom reminders as `popup:10,email:60` (empty: none); null: the calendar's defaults.
    pub reminders: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
