//! Claiming due slots, fairly across users.
//!
//! A claim of `limit` slots takes users in turn: every user's oldest due slot first (the
//! one that has waited longest leading), then every user's second oldest, and so on,
//! never more than a user's room under the per-user cap. A user's room is the cap less
//! that user's slots already leased, by any instance (leased slots are queued or being
//! pushed), so one user's backlog cannot hold every push slot of a deployment while it
//! waits on that user's Google limit.
//!
//! The turn is a window function over the due slots. PostgreSQL refuses `FOR UPDATE` in
//! a query level that has one, so the ranking (with the claim's `LIMIT`) is a subquery
//! joined to `slots`, and only `slots` is locked (`FOR UPDATE OF slots SKIP LOCKED`).
//! Two instances claiming at once rank the same slots; the second skips the rows the
//! first has locked, and a row the first has already leased and committed fails the
//! "dirty, not leased, due" check that PostgreSQL repeats on the row's newest version. So
//! no slot is claimed twice, and the second claim stays within each user's room, since
//! its ranks are the first one's. (The cap is fairness, not safety: a slot released and
//! ranked again between two simultaneous claims could let a user briefly exceed it.)
//! SQLite's single writer serialises claims instead: the claim runs in a write
//! transaction.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Asterisk, Expr, ExprTrait, Func, IntoIden, JoinType, LockBehavior, LockType, Order, Query, SelectStatement,
    WindowStatement,
};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};
use uuid::Uuid;

use crate::domain::{ConnectionStatus, PushState};
use crate::store::entities::{google_connections, slots, sync_states};
use crate::store::slots::SlotRow;
use crate::store::StoreError;

/// Alias of a user's due slots, ranked.
const BY_USER: &str = "by_user";
/// Alias of the ranked due slots within the cap, of users who may push.
const RANKED: &str = "ranked";
/// A slot's rank among its owner's due slots (1 = the oldest).
const TURN: &str = "turn";
/// Alias of the slots picked for the claim, in claim order.
const PICKED: &str = "picked";
/// Alias of the per-user counts of leased slots.
const IN_FLIGHT: &str = "in_flight";
/// A user's leased slots.
const LEASED: &str = "leased";

/// Dirty and not leased.
fn unclaimed(now: DateTime<Utc>) -> Condition {
    Condition::all().add(slots::Column::PushState.eq(PushState::Dirty)).add(
        Condition::any()
            .add(slots::Column::PushLeaseUntil.is_null())
            .add(slots::Column::PushLeaseUntil.lt(now)),
    )
}

/// The user in `user` has an active connection and a closed breaker.
fn owner_may_push(user: Expr, now: DateTime<Utc>) -> Condition {
    let active_users = Query::select()
        .column(google_connections::Column::UserId)
        .from(google_connections::Entity)
        .and_where(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .to_owned();
    let broken_users = Query::select()
        .column(sync_states::Column::UserId)
        .from(sync_states::Entity)
        .and_where(sync_states::Column::BreakerOpenUntil.gt(now))
        .to_owned();
    Condition::all()
        .add(user.clone().in_subquery(active_users))
        .add(user.not_in_subquery(broken_users))
}

/// Dirty slots under a lease that has not run out: claimed, queued or being pushed.
/// (A lease is released whenever a slot leaves `dirty`.)
fn leased(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(slots::Column::PushState.eq(PushState::Dirty))
        .add(slots::Column::PushLeaseUntil.gt(now))
}

/// How many slots each user has leased: `(user_id, leased)`.
fn leased_per_user(now: DateTime<Utc>) -> SelectStatement {
    Query::select()
        .column(slots::Column::UserId)
        .expr_as(Expr::col(slots::Column::Id).count(), LEASED)
        .from(slots::Entity)
        .cond_where(leased(now))
        .group_by_col(slots::Column::UserId)
        .to_owned()
}

/// The slot's owner has fewer than `per_user` slots leased.
fn below_cap(now: DateTime<Utc>, per_user: u64) -> Expr {
    let capped_users = Query::select()
        .column(slots::Column::UserId)
        .from(slots::Entity)
        .cond_where(leased(now))
        .group_by_col(slots::Column::UserId)
        .and_having(Expr::col(slots::Column::Id).count().gte(cap_value(per_user)))
        .to_owned();
    slots::Column::UserId.not_in_subquery(capped_users)
}

fn cap_value(per_user: u64) -> i64 {
    i64::try_from(per_user).unwrap_or(i64::MAX)
}

/// Claims up to `limit` due slots for `lease`, at most `per_user` in flight for each
/// user (counting the slots already leased), round-robin across users (see the module
/// docs), and returns them in that order. Run it in a write transaction
/// ([`crate::store::GroupCommit`] or [`crate::store::begin_write`]): it picks the ids,
/// sets their lease and reads them back, so if anything fails nothing stays claimed.
pub async fn claim_due(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
    per_user: u64,
) -> Result<Vec<SlotRow>, StoreError> {
    #[derive(FromQueryResult)]
    struct Picked {
        id: Uuid,
    }
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    let backend = txn.get_database_backend();
    let ids: Vec<Uuid> = Picked::find_by_statement(backend.build(&due_query(now, limit, per_user)))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    slots::Entity::update_many()
        .col_expr(slots::Column::PushLeaseUntil, Expr::value(Some(until)))
        .filter(slots::Column::Id.is_in(ids.iter().copied()))
        .exec(txn)
        .await?;
    let order: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut rows = slots::Entity::find()
        .filter(slots::Column::Id.is_in(ids))
        .all(txn)
        .await?;
    rows.sort_by_key(|r| order.get(&r.id).copied().unwrap_or(usize::MAX));
    Ok(rows)
}

/// The ids of up to `limit` due slots, round-robin across users and within each user's
/// room under `per_user`; on PostgreSQL the `slots` rows are locked, skipping rows
/// another transaction holds.
///
/// ```sql
/// SELECT slots.id FROM slots
/// JOIN (SELECT ranked.id, ranked.turn, ranked.next_push_at, ranked.user_id
///       FROM (SELECT * FROM (SELECT id, user_id, next_push_at, ROW_NUMBER() OVER
///                              (PARTITION BY user_id ORDER BY next_push_at, id) AS turn
///                            FROM slots WHERE <dirty, not leased, due, owner below the cap>)
///               AS by_user
///             WHERE turn <= per_user AND <owner active, breaker closed>) AS ranked
///       LEFT JOIN (SELECT user_id, COUNT(id) AS leased FROM slots WHERE <leased>
///                  GROUP BY user_id) AS in_flight ON in_flight.user_id = ranked.user_id
///       WHERE ranked.turn <= per_user - COALESCE(in_flight.leased, 0)
///       ORDER BY ranked.turn, ranked.next_push_at, ranked.user_id LIMIT limit) AS picked
///   ON picked.id = slots.id
/// WHERE <slots dirty, not leased, due>                -- re-checked once locked
/// ORDER BY picked.turn, picked.next_push_at, picked.user_id
/// FOR UPDATE OF slots SKIP LOCKED                     -- PostgreSQL only
/// ```
///
/// Ranks are per user, so the conditions on the owner (connection, breaker) are applied
/// to the few ranked slots rather than to every due one. Within a turn, the slot that has
/// waited longest goes first: in the first turn, users by their oldest due slot. The
/// `LIMIT` is inside the pick, so only the picked rows are looked up and locked; a claim
/// running at the same moment as another may come back short (it skips the rows the
/// other holds rather than looking further), and the worker claims again soon after.
fn due_query(now: DateTime<Utc>, limit: u64, per_user: u64) -> SelectStatement {
    let by_user = Query::select()
        .columns([slots::Column::Id, slots::Column::UserId, slots::Column::NextPushAt])
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(slots::Column::UserId)
                .order_by(slots::Column::NextPushAt, Order::Asc)
                .order_by(slots::Column::Id, Order::Asc)
                .to_owned(),
            TURN,
        )
        .from(slots::Entity)
        .cond_where(
            unclaimed(now)
                .add(slots::Column::NextPushAt.lte(now))
                .add(below_cap(now, per_user)),
        )
        .to_owned();
    let ranked = Query::select()
        .column(Asterisk)
        .from_subquery(by_user, BY_USER)
        .and_where(Expr::col((BY_USER, TURN)).lte(cap_value(per_user)))
        .cond_where(owner_may_push(Expr::col((BY_USER, slots::Column::UserId)), now))
        .to_owned();
    let room =
        Expr::value(cap_value(per_user)).sub(Func::coalesce([Expr::col((IN_FLIGHT, LEASED)), Expr::value(0i64)]));
    let picked = Query::select()
        .columns([
            (RANKED, slots::Column::Id.into_iden()),
            (RANKED, TURN.into_iden()),
            (RANKED, slots::Column::NextPushAt.into_iden()),
            (RANKED, slots::Column::UserId.into_iden()),
        ])
        .from_subquery(ranked, RANKED)
        .join_subquery(
            JoinType::LeftJoin,
            leased_per_user(now),
            IN_FLIGHT,
            Expr::col((IN_FLIGHT, slots::Column::UserId)).equals((RANKED, slots::Column::UserId)),
        )
        .and_where(Expr::col((RANKED, TURN)).lte(room))
        .order_by((RANKED, TURN), Order::Asc)
        .order_by((RANKED, slots::Column::NextPushAt), Order::Asc)
        .order_by((RANKED, slots::Column::UserId), Order::Asc)
        .limit(limit)
        .to_owned();
    let slot = |column| Expr::col((slots::Entity, column));
    Query::select()
        .column((slots::Entity, slots::Column::Id))
        .from(slots::Entity)
        .join_subquery(
            JoinType::InnerJoin,
            picked,
            PICKED,
            Expr::col((PICKED, slots::Column::Id)).equals((slots::Entity, slots::Column::Id)),
        )
        // Repeated on the locked row's newest version by PostgreSQL: a slot another
        // instance leased and committed meanwhile, or whose retry moved it later, is
        // dropped, not claimed again.
        .and_where(slot(slots::Column::PushState).eq(PushState::Dirty))
        .cond_where(
            Condition::any()
                .add(slot(slots::Column::PushLeaseUntil).is_null())
                .add(slot(slots::Column::PushLeaseUntil).lt(now)),
        )
        .and_where(slot(slots::Column::NextPushAt).lte(now))
        .order_by((PICKED, TURN), Order::Asc)
        .order_by((PICKED, slots::Column::NextPushAt), Order::Asc)
        .order_by((PICKED, slots::Column::UserId), Order::Asc)
        .lock_with_tables_behavior(LockType::Update, [slots::Entity], LockBehavior::SkipLocked)
        .to_owned()
}

/// When the next waiting slot of a user below the per-user cap falls due, if any waits.
/// (Slots leased by a push that died become claimable when their lease ends, and a
/// capped user's when one of its pushes ends; the worker looks again then, or at its
/// periodic look.)
pub async fn next_due_at(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    per_user: u64,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    #[derive(FromQueryResult)]
    struct Due {
        next: Option<DateTime<Utc>>,
    }
    let select = Query::select()
        .expr_as(Expr::col(slots::Column::NextPushAt).min(), "next")
        .from(slots::Entity)
        .cond_where(
            unclaimed(now)
                .add(owner_may_push(Expr::col(slots::Column::UserId), now))
                .add(below_cap(now, per_user)),
        )
        .to_owned();
    let backend = db.get_database_backend();
    let row = Due::find_by_statement(backend.build(&select)).one(db).await?;
    Ok(row.and_then(|r| r.next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbBackend;

    #[test]
    fn claims_rank_in_a_subquery_and_lock_only_slots_skipping_locked_rows_on_postgres() {
        let now = Utc::now();
        let pg = DbBackend::Postgres.build(&due_query(now, 10, 4)).to_string();
        // PostgreSQL refuses FOR UPDATE beside a window function in the same SELECT: the
        // ranking is a joined subquery and only `slots` is locked.
        assert!(pg.ends_with(r#"FOR UPDATE OF "slots" SKIP LOCKED"#), "{pg}");
        assert!(pg.contains("LIMIT 10) AS \"picked\""), "{pg}");
        let (outer, ranked) = pg.split_once("JOIN (").expect("a joined subquery");
        assert!(!outer.contains("OVER"), "{pg}");
        assert!(
            ranked.contains(r#"ROW_NUMBER() OVER ( PARTITION BY "user_id" ORDER BY "next_push_at" ASC, "id" ASC )"#),
            "{pg}"
        );
        // SQLite has no row locks; it serialises writers instead.
        let sqlite = DbBackend::Sqlite.build(&due_query(now, 10, 4)).to_string();
        assert!(!sqlite.contains("FOR UPDATE"), "{sqlite}");
        assert!(sqlite.contains("\"push_state\" = 'dirty'"), "{sqlite}");
        assert!(sqlite.contains("ROW_NUMBER() OVER"), "{sqlite}");
    }
}
