//! Notification channels: created by the channel lifecycle (`sync::channels`), renewed
//! under a lease, stopped on disconnect. Several may be live per user during a renewal.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::entities::channels;
use super::StoreError;
use crate::domain::UserId;

pub use channels::Model as ChannelRow;

/// One channel by id (a primary-key lookup: the webhook's only query).
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<ChannelRow>, StoreError> {
    Ok(channels::Entity::find_by_id(id).one(db).await?)
}

/// Channels of `user_id` not yet stopped (expired ones included), oldest first.
pub async fn live(db: &impl ConnectionTrait, user_id: UserId) -> Result<Vec<ChannelRow>, StoreError> {
    Ok(channels::Entity::find()
        .filter(channels::Column::UserId.eq(user_id.0))
        .filter(channels::Column::StoppedAt.is_null())
        .order_by_asc(channels::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Stores a channel about to be requested from Google, without its resource id yet: Google
/// may send the first notification before it answers `events.watch`, and that notification
/// must find the channel.
pub async fn insert_pending(
    db: &impl ConnectionTrait,
    id: Uuid,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<ChannelRow, StoreError> {
    Ok(channels::ActiveModel {
        id: Set(id),
        user_id: Set(user_id.0),
        resource_id: Set(None),
        expires_at: Set(expires_at),
        created_at: Set(now),
        stopped_at: Set(None),
        renew_lease_until: Set(None),
        replaced_by: Set(None),
    }
    .insert(db)
    .await?)
}

/// Records what Google answered to `events.watch`. Returns the row, or `None` when the
/// channel was stopped meanwhile (a concurrent re-creation retired it).
pub async fn set_watched(
    db: &impl ConnectionTrait,
    id: Uuid,
    resource_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<Option<ChannelRow>, StoreError> {
    let updated = channels::Entity::update_many()
        .col_expr(channels::Column::ResourceId, Expr::value(Some(resource_id.to_owned())))
        .col_expr(channels::Column::ExpiresAt, Expr::value(expires_at))
        .filter(channels::Column::Id.eq(id))
        .filter(channels::Column::StoppedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        // Keep the resource id anyway, so the record says what Google holds.
        channels::Entity::update_many()
            .col_expr(channels::Column::ResourceId, Expr::value(Some(resource_id.to_owned())))
            .filter(channels::Column::Id.eq(id))
            .exec(db)
            .await?;
        return Ok(None);
    }
    find(db, id).await
}

/// Makes a channel due for renewal now (its creation failed for a reason worth retrying,
/// so the renewal job tries again).
pub async fn expire_now(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    channels::Entity::update_many()
        .col_expr(channels::Column::ExpiresAt, Expr::value(now))
        .filter(channels::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a channel stopped (and by which channel it was replaced, if any). Returns whether
/// this call stopped it (false: it was already stopped).
pub async fn mark_stopped(
    db: &impl ConnectionTrait,
    id: Uuid,
    replaced_by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = channels::Entity::update_many()
        .col_expr(channels::Column::StoppedAt, Expr::value(Some(now)))
        .col_expr(channels::Column::ReplacedBy, Expr::value(replaced_by))
        .filter(channels::Column::Id.eq(id))
        .filter(channels::Column::StoppedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

fn lease_free(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(channels::Column::RenewLeaseUntil.is_null())
        .add(channels::Column::RenewLeaseUntil.lt(now))
}

/// Claims up to `limit` live channels expiring before `horizon` (expired ones included),
/// soonest first, whose renewal lease is free at `now`, until `until`. On PostgreSQL in
/// one statement (`FOR UPDATE SKIP LOCKED`: instances claiming at once take disjoint
/// batches); on SQLite read and claimed under the write lock.
pub async fn claim_expiring(
    db: &DatabaseConnection,
    horizon: DateTime<Utc>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ChannelRow>, StoreError> {
    let mut candidates = Query::select()
        .column(channels::Column::Id)
        .from(channels::Entity)
        .and_where(channels::Column::StoppedAt.is_null())
        .and_where(channels::Column::ExpiresAt.lt(horizon))
        .cond_where(lease_free(now))
        .order_by(channels::Column::ExpiresAt, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let claim = channels::Entity::update_many().col_expr(channels::Column::RenewLeaseUntil, Expr::value(Some(until)));
    let mut claimed = match db.get_database_backend() {
        DbBackend::Postgres => {
            candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
            claim
                .filter(channels::Column::Id.in_subquery(candidates))
                .exec_with_returning(db)
                .await?
        }
        // Not with `RETURNING` on SQLite: its statement keeps the write lock after the
        // rows are read.
        _ => {
            let txn = super::begin_write(db).await?;
            let ids: Vec<Uuid> = channels::Entity::find()
                .select_only()
                .column(channels::Column::Id)
                .filter(channels::Column::Id.in_subquery(candidates))
                .into_tuple::<Uuid>()
                .all(&txn)
                .await?;
            claim
                .filter(channels::Column::Id.is_in(ids.iter().copied()))
                .exec(&txn)
                .await?;
            let rows = channels::Entity::find()
                .filter(channels::Column::Id.is_in(ids))
                .all(&txn)
                .await?;
            txn.commit().await?;
            rows
        }
    };
    claimed.sort_by_key(|c| c.expires_at);
    Ok(claimed)
}

/// Live channels due for renewal at `now` (expiring before `horizon`), claimed or not,
/// and the soonest expiry among them.
pub async fn renewal_backlog(
    db: &impl ConnectionTrait,
    horizon: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    let due = channels::Entity::find()
        .filter(channels::Column::StoppedAt.is_null())
        .filter(channels::Column::ExpiresAt.lt(horizon));
    let count = sea_orm::PaginatorTrait::count(due.clone(), db).await?;
    let soonest = due
        .select_only()
        .column(channels::Column::ExpiresAt)
        .order_by_asc(channels::Column::ExpiresAt)
        .limit(1)
        .into_tuple::<DateTime<Utc>>()
        .one(db)
        .await?;
    Ok((count, soonest))
}

/// Gives a renewal lease back (the renewal did not happen; the next run may try again).
pub async fn release_renewal(db: &impl ConnectionTrait, id: Uuid) -> Result<(), StoreError> {
    channels::Entity::update_many()
        .col_expr(
            channels::Column::RenewLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(channels::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes up to `limit` channels that were stopped, or expired without being stopped,
/// before `before` — none held by a renewal at `now` — in one statement (the retention job
/// calls it until fewer than `limit` go). Returns the ids deleted.
pub async fn purge_batch(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, StoreError> {
    let ended = Condition::any().add(channels::Column::StoppedAt.lt(before)).add(
        Condition::all()
            .add(channels::Column::StoppedAt.is_null())
            .add(channels::Column::ExpiresAt.lt(before)),
    );
    let oldest = Query::select()
        .column(channels::Column::Id)
        .from(channels::Entity)
        .cond_where(Condition::all().add(ended).add(lease_free(now)))
        .limit(limit)
        .to_owned();
    let deleted = channels::Entity::delete_many()
        .filter(channels::Column::Id.in_subquery(oldest))
        .exec_with_returning(db)
        .await?;
    Ok(deleted.into_iter().map(|c| c.id).collect())
}
