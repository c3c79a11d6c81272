//! The push outbox: dirty slots claimed under a lease, fairly across users (`claim`),
//! and the bookkeeping each push outcome writes. Every outcome write is conditional on
//! the version that was pushed, so a local change made during a push is never mistaken
//! for synced.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};
use uuid::Uuid;

use super::entities::{google_connections, slots};
use super::StoreError;
use crate::domain::{ConnectionStatus, PushState, Side, SlotBreaker, SlotDraft, UserId};

mod claim;

pub use claim::{claim_due, next_due_at};

/// What a successful push left at Google.
#[derive(Debug, Clone)]
pub struct Pushed<'a> {
    /// The event id (kept after a deletion, for the record).
    pub event_id: &'a str,
    /// The event's new etag; `None` after a deletion.
    pub etag: Option<&'a str>,
    /// Fingerprint of the content Google now holds.
    pub fingerprint: &'a str,
    /// The connection's home generation the call was made for: the outcome is recorded
    /// only if the slot was not re-homed since (its generation is not newer).
    pub home: i64,
}

/// Records a successful push of `version`. The slot becomes `clean` only if its version
/// did not move meanwhile; otherwise it stays dirty and is pushed again at once.
pub async fn record_pushed(
    db: &impl ConnectionTrait,
    slot: Uuid,
    version: i64,
    pushed: Pushed<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let unchanged = Expr::col(slots::Column::Version).eq(version);
    let result = slots::Entity::update_many()
        .col_expr(
            slots::Column::GoogleEventId,
            Expr::value(Some(pushed.event_id.to_owned())),
        )
        .col_expr(slots::Column::GoogleEtag, Expr::value(pushed.etag.map(str::to_owned)))
        .col_expr(
            slots::Column::SyncedFingerprint,
            Expr::value(Some(pushed.fingerprint.to_owned())),
        )
        .col_expr(slots::Column::SyncedVersion, Expr::value(Some(version)))
        .col_expr(slots::Column::LastSyncedAt, Expr::value(Some(now)))
        .col_expr(slots::Column::LastChangeSide, Expr::value(Some(Side::App)))
        .col_expr(
            slots::Column::PushState,
            Expr::case(unchanged, PushState::Clean).finally(PushState::Dirty).into(),
        )
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::HomeGeneration, Expr::value(pushed.home))
        .filter(slots::Column::Id.eq(slot))
        .filter(slots::Column::HomeGeneration.lte(pushed.home))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        // Re-homed while the call ran: the slot is due for its new calendar.
        release(db, slot).await?;
    }
    Ok(result.rows_affected > 0)
}

/// Records a failure of pushing `version` to retry at `retry_at`. If the slot changed
/// meanwhile only the lease is released: the new version is due now.
pub async fn record_retry(
    db: &impl ConnectionTrait,
    slot: Uuid,
    version: i64,
    home: i64,
    attempts: i32,
    retry_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    let update = slots::Entity::update_many()
        .col_expr(slots::Column::PushAttempts, Expr::value(attempts))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(retry_at)));
    record_for_version(db, slot, version, home, error, update).await?;
    Ok(())
}

/// Records that pushing `version` failed for good (`failed`, with the message). Returns
/// whether it was recorded (the slot was still at `version` in home `home`).
pub async fn record_failed(
    db: &impl ConnectionTrait,
    slot: Uuid,
    version: i64,
    home: i64,
    error: &str,
) -> Result<bool, StoreError> {
    let update = slots::Entity::update_many().col_expr(slots::Column::PushState, Expr::value(PushState::Failed));
    record_for_version(db, slot, version, home, error, update).await
}

/// Applies `update` with the error and the lease released, only if the slot is still at
/// `version` in home generation `home`; otherwise only releases the lease (the newer
/// version, or the new home, is due now). Returns whether `update` applied.
async fn record_for_version(
    db: &impl ConnectionTrait,
    slot: Uuid,
    version: i64,
    home: i64,
    error: &str,
    update: sea_orm::UpdateMany<slots::Entity>,
) -> Result<bool, StoreError> {
    let updated = update
        .col_expr(slots::Column::LastPushError, Expr::value(Some(error.to_owned())))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slots::Column::Id.eq(slot))
        .filter(slots::Column::Version.eq(version))
        .filter(slots::Column::HomeGeneration.lte(home))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        release(db, slot).await?;
    }
    Ok(updated.rows_affected > 0)
}

/// Gives a claimed slot back untouched.
pub async fn release(db: &impl ConnectionTrait, slot: Uuid) -> Result<(), StoreError> {
    slots::Entity::update_many()
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slots::Column::Id.eq(slot))
        .exec(db)
        .await?;
    Ok(())
}

/// Puts a `clean` slot back in the outbox, due now, without a new version: Google holds
/// its content but not all of its occurrence exceptions (a Google change to the master
/// won while an exception waited to be pushed).
pub async fn requeue_clean(db: &impl ConnectionTrait, slot: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Dirty))
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .filter(slots::Column::Id.eq(slot))
        .filter(slots::Column::PushState.eq(PushState::Clean))
        .exec(db)
        .await?;
    Ok(())
}

/// Pauses `user`'s slots that wait to be pushed (dirty or failed), with `reason`.
///
/// Only while the user's connection is not `active`: a failure answered before a
/// reconnect, recorded after it, must not pause what the reconnect resumed.
pub async fn pause_pending(db: &impl ConnectionTrait, user: UserId, reason: &str) -> Result<u64, StoreError> {
    let unusable = Query::select()
        .column(google_connections::Column::UserId)
        .from(google_connections::Entity)
        .and_where(google_connections::Column::UserId.eq(user.0))
        .and_where(google_connections::Column::Status.ne(ConnectionStatus::Active))
        .to_owned();
    Ok(super::slots::pausing(reason)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::UserId.in_subquery(unusable))
        .filter(slots::Column::PushState.is_in([PushState::Dirty, PushState::Failed]))
        .exec(db)
        .await?
        .rows_affected)
}

/// Puts every slot of `user` that is not in sync (dirty, failed or paused) back in the
/// outbox, due now with a fresh retry count. Returns how many.
pub async fn requeue_unsynced(db: &impl ConnectionTrait, user: UserId, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Dirty))
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::PushState.ne(PushState::Clean))
        .exec(db)
        .await?
        .rows_affected)
}

/// How many of a user's slots are in each outbox state, and the next retry time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    pub dirty: u64,
    pub failed: u64,
    pub paused: u64,
    pub clean: u64,
    /// Dirty slots currently claimed by a push.
    pub in_flight: u64,
    /// The earliest `next_push_at` of a dirty slot.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Counts `user`'s slots per push state.
pub async fn depth(db: &impl ConnectionTrait, user: UserId, now: DateTime<Utc>) -> Result<OutboxDepth, StoreError> {
    depth_of(db, Some(user), now).await
}

/// Counts every user's slots per push state (for the metrics).
pub async fn depth_all(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<OutboxDepth, StoreError> {
    depth_of(db, None, now).await
}

async fn depth_of(
    db: &impl ConnectionTrait,
    user: Option<UserId>,
    now: DateTime<Utc>,
) -> Result<OutboxDepth, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        push_state: String,
        n: i64,
        in_flight: i64,
        next: Option<DateTime<Utc>>,
    }
    let leased = Expr::col(slots::Column::PushLeaseUntil).gt(now);
    let mut select = Query::select()
        .column(slots::Column::PushState)
        .expr_as(Expr::col(slots::Column::Id).count(), "n")
        .expr_as(Expr::case(leased, 1).finally(0).sum(), "in_flight")
        .expr_as(Expr::col(slots::Column::NextPushAt).min(), "next")
        .from(slots::Entity)
        .group_by_col(slots::Column::PushState)
        .to_owned();
    if let Some(user) = user {
        select.and_where(slots::Column::UserId.eq(user.0));
    }
    let backend = db.get_database_backend();
    let rows = Row::find_by_statement(backend.build(&select)).all(db).await?;
    let mut depth = OutboxDepth::default();
    for row in rows {
        let n = u64::try_from(row.n).unwrap_or(0);
        match row.push_state.parse::<PushState>() {
            Ok(PushState::Dirty) => {
                depth.dirty = n;
                depth.in_flight = u64::try_from(row.in_flight).unwrap_or(0);
                depth.next_attempt_at = row.next;
            }
            Ok(PushState::Failed) => depth.failed = n,
            Ok(PushState::Paused) => depth.paused = n,
            Ok(PushState::Clean) => depth.clean = n,
            Err(_) => {}
        }
    }
    Ok(depth)
}

/// The slot breaker's state after a Google change, and the pause it imposes if it tripped.
#[derive(Debug, Clone)]
pub struct AfterRemote {
    pub breaker: SlotBreaker,
    /// Set when the breaker tripped: the slot is paused with this reason.
    pub pause: Option<String>,
}

/// Makes a slot hold what Google holds (a change made in Google, or Google won a
/// conflict): its content, a new version recorded as synced, `clean` (or `paused` if the
/// slot breaker tripped). Only if the slot is still at `expected_version`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_remote(
    db: &impl ConnectionTrait,
    slot: Uuid,
    expected_version: i64,
    draft: &SlotDraft,
    recurrence: &[String],
    pushed: Pushed<'_>,
    after: &AfterRemote,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = super::slots::set_content(slots::Entity::update_many(), draft)
        .col_expr(
            slots::Column::Recurrence,
            Expr::value(super::slots::recurrence_column(recurrence)),
        )
        .col_expr(
            slots::Column::GoogleEventId,
            Expr::value(Some(pushed.event_id.to_owned())),
        )
        .col_expr(slots::Column::GoogleEtag, Expr::value(pushed.etag.map(str::to_owned)))
        .col_expr(
            slots::Column::SyncedFingerprint,
            Expr::value(Some(pushed.fingerprint.to_owned())),
        )
        .col_expr(
            slots::Column::PushState,
            Expr::value(match after.pause {
                Some(_) => PushState::Paused,
                None => PushState::Clean,
            }),
        )
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::LastPushError, Expr::value(after.pause.clone()))
        .col_expr(
            slots::Column::BreakerAlternations,
            Expr::value(after.breaker.alternations),
        )
        .col_expr(
            slots::Column::BreakerWindowStart,
            Expr::value(after.breaker.window_start),
        );
    let result = as_google_change(update, slot, expected_version, pushed.home, now)
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Records a change Google made to one occurrence of the series `row` (as the
/// transaction holds it): a new version — recorded as synced when the slot was in sync,
/// so nothing is pushed back; a slot with a local change pending stays in the outbox.
/// Returns the slot after the change.
pub async fn occurrence_from_remote(
    db: &impl ConnectionTrait,
    row: &super::slots::SlotRow,
    home: i64,
    now: DateTime<Utc>,
) -> Result<super::slots::SlotRow, StoreError> {
    let update = if row.synced_version == Some(row.version) {
        as_google_change(slots::Entity::update_many(), row.id, row.version, home, now)
    } else {
        slots::Entity::update_many()
            .col_expr(slots::Column::Version, Expr::value(row.version + 1))
            .col_expr(slots::Column::UpdatedAt, Expr::value(now))
            .filter(slots::Column::Id.eq(row.id))
            .filter(slots::Column::Version.eq(row.version))
    };
    update.exec(db).await?;
    slots::Entity::find_by_id(row.id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Soft-deletes a slot because its event was deleted in Google (Google won a conflict):
/// a new version, recorded as synced, `clean`. Only if still at `expected_version`.
pub async fn delete_as_remote(
    db: &impl ConnectionTrait,
    slot: Uuid,
    expected_version: i64,
    home: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    remove_without_push(db, slot, expected_version, home, now, false).await
}

/// Takes an imported slot out of the user's slots because their import filter now
/// excludes its event: soft-deleted, unlinked (no event id or etag kept, so a later filter
/// that admits the event imports it again), recorded as synced and `clean` — nothing is
/// written to Google. Only if still at `expected_version`.
pub async fn unlink_filtered(
    db: &impl ConnectionTrait,
    slot: Uuid,
    expected_version: i64,
    home: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    remove_without_push(db, slot, expected_version, home, now, true).await
}

/// Soft-deletes a slot as a change from Google (nothing to push), forgetting its event's
/// etag — and its event id too when `unlink`.
async fn remove_without_push(
    db: &impl ConnectionTrait,
    slot: Uuid,
    expected_version: i64,
    home: i64,
    now: DateTime<Utc>,
    unlink: bool,
) -> Result<bool, StoreError> {
    let mut update = slots::Entity::update_many()
        .col_expr(slots::Column::DeletedAt, Expr::value(Some(now)))
        .col_expr(slots::Column::GoogleEtag, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::PushState, Expr::value(PushState::Clean))
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None));
    if unlink {
        update = update.col_expr(slots::Column::GoogleEventId, Expr::value(Option::<String>::None));
    }
    let result = as_google_change(update, slot, expected_version, home, now)
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// The bookkeeping of a change that came from Google: a new version, recorded as synced
/// (so it is never pushed back), side `google`, lease released; only at
/// `expected_version` and not re-homed past `home`.
fn as_google_change(
    update: sea_orm::UpdateMany<slots::Entity>,
    slot: Uuid,
    expected_version: i64,
    home: i64,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<slots::Entity> {
    update
        .col_expr(slots::Column::Version, Expr::value(expected_version + 1))
        .col_expr(slots::Column::SyncedVersion, Expr::value(Some(expected_version + 1)))
        .col_expr(slots::Column::UpdatedAt, Expr::value(now))
        .col_expr(slots::Column::LastSyncedAt, Expr::value(Some(now)))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(slots::Column::LastChangeSide, Expr::value(Some(Side::Google)))
        .col_expr(slots::Column::HomeGeneration, Expr::value(home))
        .filter(slots::Column::Id.eq(slot))
        .filter(slots::Column::Version.eq(expected_version))
        .filter(slots::Column::HomeGeneration.lte(home))
}

/// Remembers the event's current etag (the local change won a conflict detected by the
/// pull), so the pending push overwrites it without meeting the conflict again.
pub async fn adopt_etag(
    db: &impl ConnectionTrait,
    slot: Uuid,
    expected_version: i64,
    etag: Option<&str>,
) -> Result<(), StoreError> {
    slots::Entity::update_many()
        .col_expr(slots::Column::GoogleEtag, Expr::value(etag.map(str::to_owned)))
        .filter(slots::Column::Id.eq(slot))
        .filter(slots::Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(())
}

/// Reason given to slots paused by their breaker (recognised by [`reset_slot_breakers`]).
pub const SLOT_BREAKER_PAUSE: &str = "slot breaker";

/// Closes the slot breakers of `user`: slots it paused go back in the outbox with a fresh
/// count. Returns how many.
pub async fn reset_slot_breakers(
    db: &impl ConnectionTrait,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Dirty))
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::BreakerAlternations, Expr::value(0))
        .col_expr(
            slots::Column::BreakerWindowStart,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::PushState.eq(PushState::Paused))
        .filter(slots::Column::LastPushError.starts_with(SLOT_BREAKER_PAUSE))
        .exec(db)
        .await?
        .rows_affected)
}

/// Ids of `user`'s slots that their breaker paused.
pub async fn breaker_paused(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<Uuid>, StoreError> {
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::PushState.eq(PushState::Paused))
        .filter(slots::Column::LastPushError.starts_with(SLOT_BREAKER_PAUSE))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}
