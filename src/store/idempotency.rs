//! Idempotency keys for `POST /slots`: the slot the first request created is kept, and
//! a retry with the same key and body answers that slot again.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::entities::idempotency_keys;
use super::StoreError;
use crate::domain::UserId;

pub use idempotency_keys::Model as StoredKey;

/// What `(user, key)` created, if the key was used.
pub async fn find(db: &impl ConnectionTrait, user_id: UserId, key: &str) -> Result<Option<StoredKey>, StoreError> {
    Ok(idempotency_keys::Entity::find_by_id((user_id.0, key.to_owned()))
        .one(db)
        .await?)
}

/// Records that `(user, key)` created `slot_id`; a concurrent first use of the same key is
/// [`StoreError::Duplicate`] (the caller's transaction then rolls back and replays).
pub async fn save(
    db: &impl ConnectionTrait,
    user_id: UserId,
    key: &str,
    request_hash: &str,
    slot_id: Uuid,
) -> Result<(), StoreError> {
    idempotency_keys::ActiveModel {
        user_id: Set(user_id.0),
        key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        slot_id: Set(slot_id),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .map_err(|e| StoreError::from_insert(e, "this idempotency key"))?;
    Ok(())
}

/// Deletes up to `limit` keys saved before `before`, in one statement (the retention job
/// calls it until fewer than `limit` go); returns how many were deleted.
pub async fn purge_batch(db: &impl ConnectionTrait, before: DateTime<Utc>, limit: u64) -> Result<u64, StoreError> {
    let oldest = Query::select()
        .columns([idempotency_keys::Column::UserId, idempotency_keys::Column::Key])
        .from(idempotency_keys::Entity)
        .and_where(idempotency_keys::Column::CreatedAt.lt(before))
        .limit(limit)
        .to_owned();
    let key = Expr::tuple([
        Expr::col(idempotency_keys::Column::UserId),
        Expr::col(idempotency_keys::Column::Key),
    ]);
    Ok(idempotency_keys::Entity::delete_many()
        .filter(key.in_subquery(oldest))
        .exec(db)
        .await?
        .rows_affected)
}
