//! Instances of the service sharing the database: each writes its heartbeat every few
//! seconds; the ones heard from recently are live and share the Google quota.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::entities::instances;
use super::StoreError;

pub use instances::Model as Instance;

/// Writes the heartbeat of instance `id` (creating its row on the first beat).
pub async fn beat(
    db: &impl ConnectionTrait,
    id: Uuid,
    host: &str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    instances::Entity::insert(instances::ActiveModel {
        id: Set(id),
        host: Set(host.to_owned()),
        started_at: Set(started_at),
        heartbeat_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(instances::Column::Id)
            .update_column(instances::Column::HeartbeatAt)
            .to_owned(),
    )
    // Without `RETURNING`: on SQLite a returning insert's statement can keep the write
    // lock after its row is read.
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Instances whose last heartbeat is after `since`, oldest first.
pub async fn live(db: &impl ConnectionTrait, since: DateTime<Utc>) -> Result<Vec<Instance>, StoreError> {
    Ok(instances::Entity::find()
        .filter(instances::Column::HeartbeatAt.gt(since))
        .order_by_asc(instances::Column::StartedAt)
        .all(db)
        .await?)
}

/// Removes instance `id` (it stops).
pub async fn remove(db: &impl ConnectionTrait, id: Uuid) -> Result<(), StoreError> {
    instances::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Removes instances silent since before `before` (killed ones). Returns how many.
pub async fn purge_silent(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(instances::Entity::delete_many()
        .filter(instances::Column::HeartbeatAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
