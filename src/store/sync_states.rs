//! Per-connection sync state: for now the per-user breaker on consecutive Google failures
//! and the last push error. (The pull adds its token and scheduling here.)

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::entities::{google_connections, sync_states};
use super::StoreError;
use crate::domain::UserId;

pub use sync_states::Model as SyncState;

/// The sync state of `user`, if connected once.
pub async fn find(db: &impl ConnectionTrait, user: UserId) -> Result<Option<SyncState>, StoreError> {
    Ok(sync_states::Entity::find_by_id(user.0).one(db).await?)
}

/// Counts one more consecutive Google failure and remembers it. Past `threshold`, opens
/// the user's breaker until `now + cooldown` and returns `true` (it just tripped).
pub async fn note_failure(
    db: &impl ConnectionTrait,
    user: UserId,
    error: &str,
    threshold: u32,
    cooldown: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    sync_states::Entity::update_many()
        .col_expr(
            sync_states::Column::ConsecutiveFailures,
            Expr::col(sync_states::Column::ConsecutiveFailures).add(1),
        )
        .col_expr(sync_states::Column::LastPushError, Expr::value(Some(error.to_owned())))
        .col_expr(sync_states::Column::LastPushErrorAt, Expr::value(Some(now)))
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    // Trip once: only the update that finds the count at the threshold with the breaker
    // closed opens it.
    let tripped = sync_states::Entity::update_many()
        .col_expr(sync_states::Column::BreakerOpenUntil, Expr::value(Some(now + cooldown)))
        .col_expr(sync_states::Column::ConsecutiveFailures, Expr::value(0))
        .filter(sync_states::Column::UserId.eq(user.0))
        .filter(sync_states::Column::ConsecutiveFailures.gte(i64::from(threshold)))
        .exec(db)
        .await?;
    Ok(tripped.rows_affected > 0)
}

/// Which of `users` have consecutive failures counted (a success must reset them).
pub async fn failing_users(
    db: &impl ConnectionTrait,
    users: impl IntoIterator<Item = UserId>,
) -> Result<HashSet<UserId>, StoreError> {
    let users: BTreeSet<Uuid> = users.into_iter().map(|u| u.0).collect();
    Ok(sync_states::Entity::find()
        .select_only()
        .column(sync_states::Column::UserId)
        .filter(sync_states::Column::UserId.is_in(users))
        .filter(sync_states::Column::ConsecutiveFailures.gt(0))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .map(UserId)
        .collect())
}

/// Resets the consecutive-failure count after a successful call. Almost always the count
/// is already 0: a read answers that without taking SQLite's write lock.
pub async fn note_success(db: &impl ConnectionTrait, user: UserId) -> Result<(), StoreError> {
    let failing = sync_states::Entity::find_by_id(user.0)
        .filter(sync_states::Column::ConsecutiveFailures.gt(0))
        .one(db)
        .await?;
    if failing.is_none() {
        return Ok(());
    }
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::ConsecutiveFailures, Expr::value(0))
        .filter(sync_states::Column::UserId.eq(user.0))
        .filter(sync_states::Column::ConsecutiveFailures.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Closes the user's breaker now.
pub async fn close_breaker(db: &impl ConnectionTrait, user: UserId) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(
            sync_states::Column::BreakerOpenUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(sync_states::Column::ConsecutiveFailures, Expr::value(0))
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Claims the right to pull for `user` until `now + lease` (one pull per user at a time,
/// across instances). Returns the state, or `None` if another pull holds it.
pub async fn claim_pull(
    db: &impl ConnectionTrait,
    user: UserId,
    lease: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Option<SyncState>, StoreError> {
    let claimed = sync_states::Entity::update_many()
        .col_expr(sync_states::Column::PullLeaseUntil, Expr::value(Some(now + lease)))
        .filter(sync_states::Column::UserId.eq(user.0))
        .filter(
            sea_orm::Condition::any()
                .add(sync_states::Column::PullLeaseUntil.is_null())
                .add(sync_states::Column::PullLeaseUntil.lt(now)),
        )
        .exec(db)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(None);
    }
    match find(db, user).await {
        Ok(state) => Ok(state),
        Err(e) => {
            // Never keep a claim nobody will use.
            fail_pull(db, user, &e.to_string()).await?;
            Err(e)
        }
    }
}

/// Ends a successful pull made for home generation `home`: keeps the new sync token,
/// notes the time (and the full sync). If the connection was re-homed meanwhile, only the
/// claim is released: the token belongs to the old calendar.
pub async fn finish_pull(
    db: &impl ConnectionTrait,
    user: UserId,
    home: i64,
    sync_token: Option<&str>,
    full: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let same_home = Query::select()
        .column(google_connections::Column::UserId)
        .from(google_connections::Entity)
        .and_where(google_connections::Column::UserId.eq(user.0))
        .and_where(google_connections::Column::HomeGeneration.eq(home))
        .to_owned();
    let mut update = sync_states::Entity::update_many()
        .col_expr(
            sync_states::Column::SyncToken,
            Expr::value(sync_token.map(str::to_owned)),
        )
        .col_expr(sync_states::Column::LastPullAt, Expr::value(Some(now)))
        .col_expr(
            sync_states::Column::PullLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(sync_states::Column::LastError, Expr::value(Option::<String>::None));
    if full {
        update = update.col_expr(sync_states::Column::FullSyncedAt, Expr::value(Some(now)));
    }
    let done = update
        .filter(sync_states::Column::UserId.eq(user.0))
        .filter(sync_states::Column::UserId.in_subquery(same_home))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        fail_pull(
            db,
            user,
            "the connection moved to another account or calendar during the pull",
        )
        .await?;
    }
    Ok(())
}

/// Starts the sync state of a new home: no sync token (the next pull is a full sync of
/// the new calendar), no full sync yet, no pull error.
pub async fn reset_for_new_home(db: &impl ConnectionTrait, user: UserId) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::SyncToken, Expr::value(Option::<String>::None))
        .col_expr(
            sync_states::Column::FullSyncedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(sync_states::Column::LastError, Expr::value(Option::<String>::None))
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Progress of a disconnect's deletion of slotsync's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub total: i32,
    pub done: i32,
    pub failed: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Cleanup {
    /// The cleanup recorded in `state`, if one was ever started.
    pub fn of(state: &SyncState) -> Option<Self> {
        Some(Self {
            total: state.cleanup_total?,
            done: state.cleanup_done.unwrap_or(0),
            failed: state.cleanup_failed.unwrap_or(0),
            started_at: state.cleanup_started_at,
            finished_at: state.cleanup_finished_at,
        })
    }
}

/// Records the cleanup's progress (`finished` ends it).
pub async fn record_cleanup(db: &impl ConnectionTrait, user: UserId, progress: Cleanup) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::CleanupTotal, Expr::value(Some(progress.total)))
        .col_expr(sync_states::Column::CleanupDone, Expr::value(Some(progress.done)))
        .col_expr(sync_states::Column::CleanupFailed, Expr::value(Some(progress.failed)))
        .col_expr(sync_states::Column::CleanupStartedAt, Expr::value(progress.started_at))
        .col_expr(
            sync_states::Column::CleanupFinishedAt,
            Expr::value(progress.finished_at),
        )
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends a failed pull: releases the claim and remembers the error (the token is kept).
pub async fn fail_pull(db: &impl ConnectionTrait, user: UserId, error: &str) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(
            sync_states::Column::PullLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(sync_states::Column::LastError, Expr::value(Some(error.to_owned())))
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets the sync token (Google answered 410, or syncing was stopped).
pub async fn drop_token(db: &impl ConnectionTrait, user: UserId) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::SyncToken, Expr::value(Option::<String>::None))
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(())
}
