//! Slots: local writes always set `push_state = dirty` in the same statement, which is
//! what makes the outbox transactional.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::entities::slots;
use super::StoreError;
use crate::domain::{PushState, SlotDraft, SlotId, SlotTiming, Source, UserId};

pub use slots::Model as SlotRow;

/// A page request for [`list`].
#[derive(Debug, Clone, Default)]
pub struct SlotQuery {
    /// Only slots ending after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only slots starting before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Include soft-deleted slots.
    pub include_deleted: bool,
    /// Continue after this `(start_at, id)` (exclusive).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// Page size; `limit + 1` rows are read to tell whether more follow.
    pub limit: u64,
}

/// The `start_date`/`end_date` columns of a draft (set for all-day slots only).
fn timing_columns(draft: &SlotDraft) -> (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>) {
    match draft.timing {
        SlotTiming::AllDay { start_date, end_date } => (Some(start_date), Some(end_date)),
        SlotTiming::Timed { .. } => (None, None),
    }
}

/// The synced content of a stored slot.
pub fn draft(row: &SlotRow) -> SlotDraft {
    let timezone = row.timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let timing = match (row.all_day, row.start_date, row.end_date) {
        (true, Some(start_date), Some(end_date)) => SlotTiming::AllDay { start_date, end_date },
        _ => SlotTiming::Timed {
            start: row.start_at,
            end: row.end_at,
        },
    };
    SlotDraft {
        title: row.title.clone(),
        description: row.description.clone(),
        location: row.location.clone(),
        timezone,
        timing,
    }
}

/// The recurrence lines of a stored slot (none until recurrence is supported by the API).
pub fn recurrence(row: &SlotRow) -> Vec<String> {
    row.recurrence
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

/// Inserts a new app-created slot, dirty so the push worker picks it up.
pub async fn insert_new(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    draft: &SlotDraft,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let (start_date, end_date) = timing_columns(draft);
    let row = slots::ActiveModel {
        id: Set(id.0),
        user_id: Set(user.0),
        title: Set(draft.title.clone()),
        description: Set(draft.description.clone()),
        location: Set(draft.location.clone()),
        start_at: Set(draft.start_at()),
        end_at: Set(draft.end_at()),
        timezone: Set(draft.timezone.name().to_owned()),
        all_day: Set(draft.all_day()),
        start_date: Set(start_date),
        end_date: Set(end_date),
        recurrence: Set(None),
        source: Set(Source::App.as_str().to_owned()),
        version: Set(1),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        google_event_id: Set(None),
        google_etag: Set(None),
        synced_fingerprint: Set(None),
        synced_version: Set(None),
        last_synced_at: Set(None),
        push_state: Set(PushState::Dirty.as_str().to_owned()),
        push_attempts: Set(0),
        next_push_at: Set(Some(now)),
        push_lease_until: Set(None),
        last_push_error: Set(None),
        last_change_side: Set(None),
        breaker_alternations: Set(0),
        breaker_window_start: Set(None),
    };
    Ok(row.insert(db).await?)
}

/// A slot of `user` that is not deleted.
pub async fn find_live(db: &impl ConnectionTrait, user: UserId, id: SlotId) -> Result<Option<SlotRow>, StoreError> {
    Ok(slots::Entity::find_by_id(id.0)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}

/// A page of `user`'s slots ordered by `(start_at, id)`.
pub async fn list(db: &impl ConnectionTrait, user: UserId, q: &SlotQuery) -> Result<Vec<SlotRow>, StoreError> {
    let mut select = slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .order_by_asc(slots::Column::StartAt)
        .order_by_asc(slots::Column::Id);
    if !q.include_deleted {
        select = select.filter(slots::Column::DeletedAt.is_null());
    }
    if let Some(from) = q.from {
        select = select.filter(slots::Column::EndAt.gt(from));
    }
    if let Some(to) = q.to {
        select = select.filter(slots::Column::StartAt.lt(to));
    }
    if let Some((start, id)) = q.after {
        select = select.filter(
            Condition::any().add(slots::Column::StartAt.gt(start)).add(
                Condition::all()
                    .add(slots::Column::StartAt.eq(start))
                    .add(slots::Column::Id.gt(id)),
            ),
        );
    }
    Ok(select.limit(q.limit + 1).all(db).await?)
}

/// Explains why a conditional write touched no row: the slot is gone, or its version moved.
async fn no_row_reason(db: &impl ConnectionTrait, user: UserId, id: SlotId) -> Result<StoreError, StoreError> {
    Ok(match find_live(db, user, id).await? {
        Some(row) => StoreError::VersionMismatch { current: row.version },
        None => StoreError::NotFound,
    })
}

/// Sets a slot's content columns to `draft`'s.
pub(crate) fn set_content(
    update: sea_orm::UpdateMany<slots::Entity>,
    draft: &SlotDraft,
) -> sea_orm::UpdateMany<slots::Entity> {
    let (start_date, end_date) = timing_columns(draft);
    update
        .col_expr(slots::Column::Title, Expr::value(draft.title.clone()))
        .col_expr(slots::Column::Description, Expr::value(draft.description.clone()))
        .col_expr(slots::Column::Location, Expr::value(draft.location.clone()))
        .col_expr(slots::Column::StartAt, Expr::value(draft.start_at()))
        .col_expr(slots::Column::EndAt, Expr::value(draft.end_at()))
        .col_expr(slots::Column::Timezone, Expr::value(draft.timezone.name()))
        .col_expr(slots::Column::AllDay, Expr::value(draft.all_day()))
        .col_expr(slots::Column::StartDate, Expr::value(start_date))
        .col_expr(slots::Column::EndDate, Expr::value(end_date))
}

/// Replaces a live slot's fields, bumps its version and marks it dirty. With
/// `expected_version`, the write happens only if the stored version still matches.
pub async fn replace(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    draft: &SlotDraft,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let mut update = mark_changed(set_content(slots::Entity::update_many(), draft), now)
        .filter(slots::Column::Id.eq(id.0))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null());
    if let Some(v) = expected_version {
        update = update.filter(slots::Column::Version.eq(v));
    }
    if update.exec(db).await?.rows_affected == 0 {
        return Err(no_row_reason(db, user, id).await?);
    }
    find_live(db, user, id).await?.ok_or(StoreError::NotFound)
}

/// Soft-deletes a live slot (version bumped, dirty so the deletion reaches Google).
pub async fn soft_delete(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut update = mark_changed(
        slots::Entity::update_many().col_expr(slots::Column::DeletedAt, Expr::value(Some(now))),
        now,
    )
    .filter(slots::Column::Id.eq(id.0))
    .filter(slots::Column::UserId.eq(user.0))
    .filter(slots::Column::DeletedAt.is_null());
    if let Some(v) = expected_version {
        update = update.filter(slots::Column::Version.eq(v));
    }
    if update.exec(db).await?.rows_affected == 0 {
        return Err(no_row_reason(db, user, id).await?);
    }
    Ok(())
}

/// The bookkeeping every local change carries: a new version, and a place in the outbox.
fn mark_changed(update: sea_orm::UpdateMany<slots::Entity>, now: DateTime<Utc>) -> sea_orm::UpdateMany<slots::Entity> {
    update
        .col_expr(slots::Column::Version, Expr::col(slots::Column::Version).add(1))
        .col_expr(slots::Column::UpdatedAt, Expr::value(now))
        // A paused slot stays paused (re-authorisation, disconnect or breaker): the change
        // is pushed when pushing resumes.
        .col_expr(
            slots::Column::PushState,
            Expr::case(
                Expr::col(slots::Column::PushState).eq(PushState::Paused.as_str()),
                PushState::Paused.as_str(),
            )
            .finally(PushState::Dirty.as_str())
            .into(),
        )
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
}

/// Inserts a slot for an event created in Google (`source = google`), already in sync.
#[allow(clippy::too_many_arguments)]
pub async fn insert_imported(
    db: &impl ConnectionTrait,
    user: UserId,
    draft: &SlotDraft,
    recurrence: &[String],
    event_id: &str,
    etag: Option<&str>,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let (start_date, end_date) = timing_columns(draft);
    let row = slots::ActiveModel {
        id: Set(SlotId::new().0),
        user_id: Set(user.0),
        title: Set(draft.title.clone()),
        description: Set(draft.description.clone()),
        location: Set(draft.location.clone()),
        start_at: Set(draft.start_at()),
        end_at: Set(draft.end_at()),
        timezone: Set(draft.timezone.name().to_owned()),
        all_day: Set(draft.all_day()),
        start_date: Set(start_date),
        end_date: Set(end_date),
        recurrence: Set((!recurrence.is_empty()).then(|| serde_json::to_string(recurrence).expect("JSON"))),
        source: Set(Source::Google.as_str().to_owned()),
        version: Set(1),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        google_event_id: Set(Some(event_id.to_owned())),
        google_etag: Set(etag.map(str::to_owned)),
        synced_fingerprint: Set(Some(fingerprint.to_owned())),
        synced_version: Set(Some(1)),
        last_synced_at: Set(Some(now)),
        push_state: Set(PushState::Clean.as_str().to_owned()),
        push_attempts: Set(0),
        next_push_at: Set(None),
        push_lease_until: Set(None),
        last_push_error: Set(None),
        last_change_side: Set(Some("google".to_owned())),
        breaker_alternations: Set(0),
        breaker_window_start: Set(None),
    };
    Ok(row.insert(db).await?)
}

/// `user`'s slots (deleted ones too) linked to one of `event_ids`, or whose id is one of
/// `slot_ids` (events slotsync wrote whose link was not recorded yet).
pub async fn for_events(
    db: &impl ConnectionTrait,
    user: UserId,
    event_ids: &[String],
    slot_ids: &[Uuid],
) -> Result<Vec<SlotRow>, StoreError> {
    if event_ids.is_empty() && slot_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .filter(
            Condition::any()
                .add(slots::Column::GoogleEventId.is_in(event_ids.iter().cloned()))
                .add(slots::Column::Id.is_in(slot_ids.iter().copied())),
        )
        .all(db)
        .await?)
}

/// The ids and event ids of live slots of `user` linked to an event, ending after
/// `ends_after`, last synced before `synced_before` (candidates for a full sync's
/// reconciliation; only the pairs, as a calendar may hold many thousands).
pub async fn linked_live(
    db: &impl ConnectionTrait,
    user: UserId,
    ends_after: DateTime<Utc>,
    synced_before: DateTime<Utc>,
) -> Result<Vec<(Uuid, String)>, StoreError> {
    Ok(slots::Entity::find()
        .select_only()
        .column(slots::Column::Id)
        .column(slots::Column::GoogleEventId)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::GoogleEventId.is_not_null())
        .filter(slots::Column::EndAt.gt(ends_after))
        .filter(slots::Column::LastSyncedAt.lt(synced_before))
        .into_tuple()
        .all(db)
        .await?)
}

/// The slots with these ids (any owner, deleted or not).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<SlotRow>, StoreError> {
    let mut rows = Vec::with_capacity(ids.len());
    // Bounded lists keep every statement under the databases' parameter limits.
    for chunk in ids.chunks(500) {
        let found = slots::Entity::find()
            .filter(slots::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        rows.extend(found);
    }
    Ok(rows)
}

/// Pauses every live slot of `user` with `reason` (the account was disconnected).
pub async fn pause_all(db: &impl ConnectionTrait, user: UserId, reason: &str) -> Result<u64, StoreError> {
    Ok(slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Paused.as_str()))
        .col_expr(slots::Column::LastPushError, Expr::value(Some(reason.to_owned())))
        .filter(slots::Column::UserId.eq(user.0))
        .exec(db)
        .await?
        .rows_affected)
}

/// Puts every paused slot of `user` back in the outbox (the account was reconnected).
pub async fn resume_paused(db: &impl ConnectionTrait, user: UserId, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Dirty.as_str()))
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::PushState.eq(PushState::Paused.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}

/// Slots of `user` that have a Google event (for deleting the events slotsync pushed).
pub async fn with_events(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<SlotRow>, StoreError> {
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::GoogleEventId.is_not_null())
        .all(db)
        .await?)
}
