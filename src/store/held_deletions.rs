//! Deletions from Google held by the mass-deletion guard: one row per slot whose event a
//! pull found deleted, kept until the user applies or discards them.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::entities::held_deletions;
use super::StoreError;
use crate::domain::UserId;

pub use held_deletions::Model as HeldDeletion;

/// Holds the deletion of `slot` (at `version`), whose event `event_id` Google deleted.
/// Holding it again keeps the first hold.
pub async fn hold(
    db: &impl ConnectionTrait,
    user: UserId,
    slot: Uuid,
    event_id: &str,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    held_deletions::Entity::insert(held_deletions::ActiveModel {
        slot_id: Set(slot),
        user_id: Set(user.0),
        event_id: Set(event_id.to_owned()),
        slot_version: Set(version),
        held_at: Set(now),
    })
    .on_conflict_do_nothing_on([held_deletions::Column::SlotId])
    .exec(db)
    .await?;
    Ok(())
}

/// `user`'s held deletions, oldest first.
pub async fn list(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<HeldDeletion>, StoreError> {
    Ok(held_deletions::Entity::find()
        .filter(held_deletions::Column::UserId.eq(user.0))
        .order_by_asc(held_deletions::Column::HeldAt)
        .order_by_asc(held_deletions::Column::SlotId)
        .all(db)
        .await?)
}

/// How many deletions `user` has held.
pub async fn count(db: &impl ConnectionTrait, user: UserId) -> Result<u64, StoreError> {
    Ok(held_deletions::Entity::find()
        .filter(held_deletions::Column::UserId.eq(user.0))
        .count(db)
        .await?)
}

/// The slots among `slots` whose deletion is held.
pub async fn held_among(db: &impl ConnectionTrait, slots: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    Ok(held_deletions::Entity::find()
        .filter(held_deletions::Column::SlotId.is_in(slots.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|h| h.slot_id)
        .collect())
}

/// Forgets `user`'s held deletions (all of them, or those of `slots`). Returns how many.
pub async fn release(db: &impl ConnectionTrait, user: UserId, slots: Option<&[Uuid]>) -> Result<u64, StoreError> {
    let mut delete = held_deletions::Entity::delete_many().filter(held_deletions::Column::UserId.eq(user.0));
    if let Some(slots) = slots {
        delete = delete.filter(held_deletions::Column::SlotId.is_in(slots.iter().copied()));
    }
    Ok(delete.exec(db).await?.rows_affected)
}
