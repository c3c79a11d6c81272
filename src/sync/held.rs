//! The mass-deletion guard's other half: deletions a pull held (more than the threshold
//! at once — see [`DeletionGuard`]) wait for the user, who applies them (the slots are
//! deleted, as Google says) or discards them (the slots stay and are pushed to Google
//! again as new events).

use chrono::Utc;
use sea_orm::DatabaseConnection;
use serde_json::json;
use uuid::Uuid;

use super::PushWaker;
use crate::domain::{AuditKind, ChangeKind, ChangeOrigin, UserId};
use crate::store::held_deletions::HeldDeletion;
use crate::store::{self, audit, connections, held_deletions, outbox, StoreError};

/// When a pull's deletions are held: more than `max(min, percent % of the user's live
/// linked slots)` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionGuard {
    /// Off: every deletion is applied.
    pub enabled: bool,
    /// Deletions up to this many are always applied.
    pub min: u64,
    /// … and up to this share (percent) of the user's live linked slots.
    pub percent: u64,
}

impl Default for DeletionGuard {
    fn default() -> Self {
        Self {
            enabled: true,
            min: 10,
            percent: 25,
        }
    }
}

impl DeletionGuard {
    /// The most deletions one pull may apply for a user with `linked` live linked slots.
    pub fn allowed(&self, linked: u64) -> u64 {
        self.min.max((linked * self.percent).div_ceil(100))
    }

    /// Whether `deletions` out of `linked` must be held.
    pub fn holds(&self, deletions: u64, linked: u64) -> bool {
        self.enabled && deletions > self.allowed(linked)
    }
}

/// What applying or discarding did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Slots deleted (apply) or queued to be pushed again (discard).
    pub slots: u64,
    /// Held deletions of slots that changed locally since: dropped; the local change
    /// stands and is pushed as a new event.
    pub changed_since: u64,
}

/// The user's held deletions.
pub async fn list(db: &DatabaseConnection, user: UserId) -> Result<Vec<HeldDeletion>, StoreError> {
    held_deletions::list(db, user).await
}

/// Applies the user's held deletions (all, or those of `only`): each slot still at the
/// version it had when held is deleted as Google deleted it; a slot edited since keeps
/// the edit and is pushed as a new event.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn apply(
    db: &DatabaseConnection,
    waker: &PushWaker,
    user: UserId,
    only: Option<&[Uuid]>,
) -> Result<Settled, StoreError> {
    let home = home_of(db, user).await?;
    let now = Utc::now();
    let txn = store::begin_write(db).await?;
    let held = selected(&txn, user, only).await?;
    let mut done = Settled::default();
    let mut changed = Vec::new();
    let mut deleted = Vec::new();
    for h in &held {
        if outbox::delete_as_remote(&txn, h.slot_id, h.slot_version, home, now).await? {
            done.slots += 1;
            deleted.push(h.slot_id);
        } else {
            changed.push(h.slot_id);
        }
    }
    done.changed_since = store::slots::relink(&txn, user, &changed, now).await?;
    let ids: Vec<Uuid> = held.iter().map(|h| h.slot_id).collect();
    held_deletions::release(&txn, user, Some(&ids)).await?;
    audit::record(
        &txn,
        user,
        None,
        AuditKind::DeletionsApplied,
        json!({ "deleted": done.slots, "kept_changed_since": done.changed_since }),
    )
    .await?;
    store::changes::append_slots(&txn, user, &deleted, ChangeKind::SlotDeleted, ChangeOrigin::Google, now).await?;
    txn.commit().await?;
    super::feed::changed(user);
    if done.changed_since > 0 {
        waker.wake();
    }
    Ok(done)
}

/// Discards the user's held deletions (all, or those of `only`): the slots stay, and are
/// pushed to Google again, each as one new event.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn discard(
    db: &DatabaseConnection,
    waker: &PushWaker,
    user: UserId,
    only: Option<&[Uuid]>,
) -> Result<Settled, StoreError> {
    let now = Utc::now();
    let txn = store::begin_write(db).await?;
    let held = selected(&txn, user, only).await?;
    let ids: Vec<Uuid> = held.iter().map(|h| h.slot_id).collect();
    let repushed = store::slots::relink(&txn, user, &ids, now).await?;
    held_deletions::release(&txn, user, Some(&ids)).await?;
    audit::record(
        &txn,
        user,
        None,
        AuditKind::DeletionsDiscarded,
        json!({ "slots_repushed": repushed }),
    )
    .await?;
    txn.commit().await?;
    waker.wake();
    Ok(Settled {
        slots: repushed,
        changed_since: 0,
    })
}

async fn selected(
    db: &impl sea_orm::ConnectionTrait,
    user: UserId,
    only: Option<&[Uuid]>,
) -> Result<Vec<HeldDeletion>, StoreError> {
    let all = held_deletions::list(db, user).await?;
    Ok(match only {
        Some(ids) => all.into_iter().filter(|h| ids.contains(&h.slot_id)).collect(),
        None => all,
    })
}

async fn home_of(db: &DatabaseConnection, user: UserId) -> Result<i64, StoreError> {
    Ok(connections::find(db, user)
        .await?
        .map(|c| c.home_generation)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_holds_more_than_ten_or_a_quarter_whichever_is_larger() {
        let guard = DeletionGuard::default();
        assert!(!guard.holds(10, 12), "ten are always allowed");
        assert!(guard.holds(11, 12));
        assert!(!guard.holds(25, 100));
        assert!(guard.holds(26, 100));
        assert!(!guard.holds(26, 101), "25 % rounds up");
        assert!(!DeletionGuard {
            enabled: false,
            ..guard
        }
        .holds(1000, 1000));
    }
}
