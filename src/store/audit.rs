//! The sync-event log: connection audit events, conflicts, breaker trips, failures.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;

use super::entities::sync_events;
use super::StoreError;
use crate::domain::{AuditKind, ConflictRecord, UserId};

pub use sync_events::Model as SyncEvent;

/// Logs a resolved conflict (kind `conflict`), in its one typed shape.
pub async fn record_conflict(
    db: &impl ConnectionTrait,
    user_id: UserId,
    slot_id: Uuid,
    conflict: &ConflictRecord,
) -> Result<(), StoreError> {
    let detail = serde_json::to_value(conflict).map_err(|e| StoreError::Db(sea_orm::DbErr::Json(e.to_string())))?;
    record(db, user_id, Some(slot_id), AuditKind::Conflict, detail).await
}

/// Appends an event of `kind` for `user_id` with a JSON `detail`. The connection's events
/// (connected, needs re-authorization, missing scopes or calendar, disconnected,
/// deletions held) go to the user's change log too, in the same transaction
/// (`AuditKind::change`): a client following the feed learns of them.
pub async fn record(
    db: &impl ConnectionTrait,
    user_id: UserId,
    slot_id: Option<Uuid>,
    kind: AuditKind,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let now = Utc::now();
    sync_events::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id.0),
        slot_id: Set(slot_id),
        kind: Set(kind.as_str().to_owned()),
        detail: Set(detail.to_string()),
        at: Set(now),
    }
    .insert(db)
    .await?;
    if let Some(change) = kind.change() {
        super::changes::append_one(db, user_id, super::changes::NewChange::about(change, detail), now).await?;
    }
    Ok(())
}

/// The newest events of `user_id` among `kinds`, newest first. Their `kind` is the stored
/// string (see [`AuditKind`] for why the column is not typed).
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: UserId,
    kinds: &[AuditKind],
    limit: u64,
) -> Result<Vec<SyncEvent>, StoreError> {
    Ok(sync_events::Entity::find()
        .filter(sync_events::Column::UserId.eq(user_id.0))
        .filter(sync_events::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())))
        .order_by_desc(sync_events::Column::At)
        .limit(limit)
        .all(db)
        .await?)
}

/// Deletes up to `limit` events recorded before `before`, in one statement (the retention
/// job calls it until fewer than `limit` go); returns how many were deleted.
pub async fn purge_batch(db: &impl ConnectionTrait, before: DateTime<Utc>, limit: u64) -> Result<u64, StoreError> {
    let oldest = Query::select()
        .column(sync_events::Column::Id)
        .from(sync_events::Entity)
        .and_where(sync_events::Column::At.lt(before))
        .limit(limit)
        .to_owned();
    Ok(sync_events::Entity::delete_many()
        .filter(sync_events::Column::Id.in_subquery(oldest))
        .exec(db)
        .await?
        .rows_affected)
}
