//! Occurrence exceptions of recurring slots (`occurrence_exceptions`): the occurrences
//! that differ from the rule, keyed by (slot, original start). Every write happens in the
//! transaction of the change it belongs to (the slot's new version and outbox mark, or the
//! pull's page), with its change-log entry.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::entities::occurrence_exceptions::{self as exceptions, Column};
use super::StoreError;
use crate::domain::{OccurrenceKey, OccurrenceOrigin, SlotDraft, SlotTiming, UserId};

pub use exceptions::Model as ExceptionRow;

/// What Google holds for an instance after a sync: the fingerprint and the etag.
#[derive(Debug, Clone, Copy)]
pub struct Synced<'a> {
    pub fingerprint: &'a str,
    pub etag: Option<&'a str>,
}

/// An exception to write.
#[derive(Debug, Clone, Copy)]
pub struct NewException<'a> {
    pub user: UserId,
    pub slot: Uuid,
    pub key: OccurrenceKey,
    /// The original start's instant.
    pub original_at: DateTime<Utc>,
    /// The occurrence's content; `None` cancels it.
    pub content: Option<&'a SlotDraft>,
    pub origin: OccurrenceOrigin,
    /// Set when the content comes from Google (already in sync); a local change leaves
    /// what Google holds as it was, so the push sees the difference.
    pub synced: Option<Synced<'a>>,
}

/// The exception's key.
pub fn key(row: &ExceptionRow) -> Option<OccurrenceKey> {
    OccurrenceKey::from_basic(&row.original_start)
}

/// The exception's content (`None` when cancelled), in the zone of its `series`. An
/// exception keeps its own text and times; its appearance (visibility, busy/free, colour,
/// reminders) is always the series' (not stored per occurrence).
pub fn content(row: &ExceptionRow, series: &SlotDraft) -> Option<SlotDraft> {
    if row.cancelled {
        return None;
    }
    let timing = match (row.start_date, row.end_date, row.start_at, row.end_at) {
        (Some(start_date), Some(end_date), _, _) => SlotTiming::AllDay { start_date, end_date },
        (_, _, Some(start), Some(end)) => SlotTiming::Timed { start, end },
        _ => return None,
    };
    Some(SlotDraft {
        title: row.title.clone().unwrap_or_default(),
        description: row.description.clone(),
        location: row.location.clone(),
        timezone: series.timezone,
        timing,
        appearance: series.appearance.clone(),
    })
}

/// The exceptions of `slot`, in the order of their original starts.
pub async fn for_slot(db: &impl ConnectionTrait, slot: Uuid) -> Result<Vec<ExceptionRow>, StoreError> {
    Ok(exceptions::Entity::find()
        .filter(Column::SlotId.eq(slot))
        .order_by_asc(Column::OriginalAt)
        .all(db)
        .await?)
}

/// Writes (inserts or replaces) one exception.
pub async fn upsert(
    db: &impl ConnectionTrait,
    new: NewException<'_>,
    now: DateTime<Utc>,
) -> Result<ExceptionRow, StoreError> {
    let (title, description, location, timing) = match new.content {
        Some(d) => (
            Some(d.title.clone()),
            d.description.clone(),
            d.location.clone(),
            Some(d.timing.clone()),
        ),
        None => (None, None, None, None),
    };
    let (start_at, end_at, start_date, end_date) = match timing {
        Some(SlotTiming::Timed { start, end }) => (Some(start), Some(end), None, None),
        Some(SlotTiming::AllDay { start_date, end_date }) => (None, None, Some(start_date), Some(end_date)),
        None => (None, None, None, None),
    };
    let row = exceptions::ActiveModel {
        slot_id: Set(new.slot),
        original_start: Set(new.key.basic()),
        user_id: Set(new.user.0),
        original_at: Set(new.original_at),
        cancelled: Set(new.content.is_none()),
        title: Set(title),
        description: Set(description),
        location: Set(location),
        start_at: Set(start_at),
        end_at: Set(end_at),
        start_date: Set(start_date),
        end_date: Set(end_date),
        origin: Set(new.origin),
        synced_fingerprint: Set(new.synced.map(|s| s.fingerprint.to_owned())),
        google_etag: Set(new.synced.and_then(|s| s.etag.map(str::to_owned))),
        updated_at: Set(now),
    };
    let mut columns = vec![
        Column::Cancelled,
        Column::Title,
        Column::Description,
        Column::Location,
        Column::StartAt,
        Column::EndAt,
        Column::StartDate,
        Column::EndDate,
        Column::Origin,
        Column::UpdatedAt,
    ];
    if new.synced.is_some() {
        columns.extend([Column::SyncedFingerprint, Column::GoogleEtag]);
    }
    exceptions::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::SlotId, Column::OriginalStart])
                .update_columns(columns)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    exceptions::Entity::find_by_id((new.slot, new.key.basic()))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Deletes the exceptions of `slot` named by `keys` (basic forms). Returns how many.
pub async fn delete_keys(db: &impl ConnectionTrait, slot: Uuid, keys: &[String]) -> Result<u64, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut deleted = 0;
    for chunk in keys.chunks(500) {
        deleted += exceptions::Entity::delete_many()
            .filter(Column::SlotId.eq(slot))
            .filter(Column::OriginalStart.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(deleted)
}

/// Records what Google now holds for the instance (what was pushed). An exception edited
/// meanwhile still differs from it, so it is pushed again.
pub async fn record_pushed(
    db: &impl ConnectionTrait,
    slot: Uuid,
    original_start: &str,
    synced: Synced<'_>,
) -> Result<bool, StoreError> {
    use sea_orm::sea_query::Expr;
    Ok(exceptions::Entity::update_many()
        .col_expr(
            Column::SyncedFingerprint,
            Expr::value(Some(synced.fingerprint.to_owned())),
        )
        .col_expr(Column::GoogleEtag, Expr::value(synced.etag.map(str::to_owned)))
        .filter(Column::SlotId.eq(slot))
        .filter(Column::OriginalStart.eq(original_start))
        .exec(db)
        .await?
        .rows_affected
        > 0)
}

/// Forgets what Google holds for every instance of `slot`: each exception is pushed again
/// with the next push (Google's master was changed by someone and ours is written over
/// it; Google may have dropped overrides meanwhile).
pub async fn forget_synced(db: &impl ConnectionTrait, slot: Uuid) -> Result<(), StoreError> {
    use sea_orm::sea_query::Expr;
    exceptions::Entity::update_many()
        .col_expr(Column::SyncedFingerprint, Expr::value(Option::<String>::None))
        .filter(Column::SlotId.eq(slot))
        .exec(db)
        .await?;
    Ok(())
}
