//! The fallback pull schedule, kept in each connection's sync state: when its next pull is
//! due (`next_pull_at`), which instance claimed it (`fallback_lease_until`), when its
//! channel last notified, and how many fallback pulls it had.
//!
//! Instances claim due connections in batches with one statement. On PostgreSQL the
//! candidates are selected `FOR UPDATE SKIP LOCKED`, so instances claiming at the same
//! moment take disjoint batches without waiting for each other; on SQLite the statement is
//! atomic under the database's single writer (correct with several processes, but one
//! writer: SQLite is for one instance). A claim is a lease: an instance that dies holding
//! it leaves the connection to whoever claims after the lease ends.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{google_connections, sync_states};
use super::StoreError;
use crate::domain::{ConnectionStatus, UserId};

/// A fallback pull claimed by this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuePull {
    pub user: UserId,
    /// The due time claimed (the schedule moves on from it, keeping the phase).
    pub due: DateTime<Utc>,
    /// When the user's channel last notified.
    pub last_notified: Option<DateTime<Utc>>,
}

/// Users whose connection is `active`.
fn active_users() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(google_connections::Column::UserId)
        .from(google_connections::Entity)
        .and_where(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .to_owned()
}

fn free(column: sync_states::Column, now: DateTime<Utc>) -> Condition {
    Condition::any().add(column.is_null()).add(column.lt(now))
}

/// Active connections never scheduled, at most `limit` of them.
pub async fn unscheduled(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<UserId>, StoreError> {
    Ok(sync_states::Entity::find()
        .select_only()
        .column(sync_states::Column::UserId)
        .filter(sync_states::Column::NextPullAt.is_null())
        .filter(sync_states::Column::UserId.in_subquery(active_users()))
        .limit(limit)
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .map(UserId)
        .collect())
}

/// Gives each of `due` its first due time (only where none is set yet), in one statement.
pub async fn set_first_due(db: &impl ConnectionTrait, due: &[(UserId, DateTime<Utc>)]) -> Result<u64, StoreError> {
    if due.is_empty() {
        return Ok(0);
    }
    let mut case = CaseStatement::new();
    for (user, at) in due {
        case = case.case(sync_states::Column::UserId.eq(user.0), Expr::value(Some(*at)));
    }
    let updated = sync_states::Entity::update_many()
        .col_expr(sync_states::Column::NextPullAt, case.into())
        .filter(sync_states::Column::UserId.is_in(due.iter().map(|(u, _)| u.0)))
        .filter(sync_states::Column::NextPullAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}

/// Claims up to `limit` active connections whose fallback pull is due at `now` — soonest
/// first, none claimed by another instance and none being pulled — until `until`.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DuePull>, StoreError> {
    let candidates = Query::select()
        .column(sync_states::Column::UserId)
        .from(sync_states::Entity)
        .and_where(sync_states::Column::NextPullAt.lte(now))
        .cond_where(free(sync_states::Column::FallbackLeaseUntil, now))
        .cond_where(free(sync_states::Column::PullLeaseUntil, now))
        .and_where(sync_states::Column::UserId.in_subquery(active_users()))
        .order_by(sync_states::Column::NextPullAt, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let claim =
        sync_states::Entity::update_many().col_expr(sync_states::Column::FallbackLeaseUntil, Expr::value(Some(until)));
    let claimed = match db.get_database_backend() {
        // One statement; instances claiming at once skip each other's rows.
        DbBackend::Postgres => {
            let mut candidates = candidates;
            candidates.lock_with_tables_behavior(LockType::Update, [sync_states::Entity], LockBehavior::SkipLocked);
            claim
                .filter(sync_states::Column::UserId.in_subquery(candidates))
                .exec_with_returning(db)
                .await?
        }
        // SQLite: read and claim under the write lock (`BEGIN IMMEDIATE`). Not with
        // `RETURNING`: its statement keeps the write lock after the rows are read.
        _ => {
            let txn = super::begin_write(db).await?;
            let ids: Vec<Uuid> = sync_states::Entity::find()
                .select_only()
                .column(sync_states::Column::UserId)
                .filter(sync_states::Column::UserId.in_subquery(candidates))
                .into_tuple::<Uuid>()
                .all(&txn)
                .await?;
            claim
                .filter(sync_states::Column::UserId.is_in(ids.iter().copied()))
                .exec(&txn)
                .await?;
            let rows = sync_states::Entity::find()
                .filter(sync_states::Column::UserId.is_in(ids))
                .all(&txn)
                .await?;
            txn.commit().await?;
            rows
        }
    };
    let mut due: Vec<DuePull> = claimed
        .into_iter()
        .filter_map(|s| {
            Some(DuePull {
                user: UserId(s.user_id),
                due: s.next_pull_at?,
                last_notified: s.last_notified_at,
            })
        })
        .collect();
    due.sort_by_key(|d| d.due);
    Ok(due)
}

/// Ends a claimed fallback pull that was made: the next due time becomes `next` and the
/// pull is counted — only if the due time is still the one claimed (an instance whose
/// lease ran out while it pulled does not move the schedule a second time). Returns
/// whether it did.
pub async fn reschedule(
    db: &impl ConnectionTrait,
    pull: &DuePull,
    next: DateTime<Utc>,
    counted: bool,
) -> Result<bool, StoreError> {
    let mut update = sync_states::Entity::update_many()
        .col_expr(sync_states::Column::NextPullAt, Expr::value(Some(next)))
        .col_expr(
            sync_states::Column::FallbackLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    if counted {
        update = update.col_expr(
            sync_states::Column::FallbackPulls,
            Expr::col(sync_states::Column::FallbackPulls).add(1),
        );
    }
    let done = update
        .filter(sync_states::Column::UserId.eq(pull.user.0))
        .filter(sync_states::Column::NextPullAt.eq(pull.due))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Keeps a claimed pull due but unclaimable until `until` (another pull of the user was
/// running: this one is tried again then).
pub async fn defer(db: &impl ConnectionTrait, pull: &DuePull, until: DateTime<Utc>) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::FallbackLeaseUntil, Expr::value(Some(until)))
        .filter(sync_states::Column::UserId.eq(pull.user.0))
        .filter(sync_states::Column::NextPullAt.eq(pull.due))
        .exec(db)
        .await?;
    Ok(())
}

/// Remembers that the user's channel notified at `at`.
pub async fn note_notified(db: &impl ConnectionTrait, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::LastNotifiedAt, Expr::value(Some(at)))
        .filter(sync_states::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(())
}

/// What is due and not done yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Active connections whose fallback pull is due at `now` (claimed ones included).
    pub due: u64,
    /// The oldest due time among them.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The fallback pulls due at `now`.
pub async fn backlog(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Backlog, StoreError> {
    let due = sync_states::Entity::find()
        .filter(sync_states::Column::NextPullAt.lte(now))
        .filter(sync_states::Column::UserId.in_subquery(active_users()));
    let count = sea_orm::PaginatorTrait::count(due.clone(), db).await?;
    let oldest = due
        .select_only()
        .column(sync_states::Column::NextPullAt)
        .order_by_asc(sync_states::Column::NextPullAt)
        .limit(1)
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    Ok(Backlog {
        due: count,
        oldest_due: oldest,
    })
}

/// Users whose fallback pull is due before `before` (for the token refresh ahead of time).
pub fn due_before(before: DateTime<Utc>) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(sync_states::Column::UserId)
        .from(sync_states::Entity)
        .and_where(sync_states::Column::NextPullAt.lt(before))
        .to_owned()
}

/// Makes every active connection's fallback pull due at `now` (an operator's "pull
/// everyone now", and how tests and benchmarks start a cycle). Returns how many.
pub async fn make_all_due(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(sync_states::Entity::update_many()
        .col_expr(sync_states::Column::NextPullAt, Expr::value(Some(now)))
        .filter(sync_states::Column::UserId.in_subquery(active_users()))
        .exec(db)
        .await?
        .rows_affected)
}
