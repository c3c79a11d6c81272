//! Logging a resolved conflict, the same for the push and the pull: the trace, the metric
//! and the audit record (the [`ConflictRecord`] the plan decided, serialised once).

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::domain::{ConflictRecord, UserId};
use crate::observe;
use crate::store::{audit, StoreError};

/// Logs `record`, a conflict on `user`'s slot `slot`, in `db` (the caller's transaction
/// when the resolution is written with it).
pub async fn log(
    db: &impl ConnectionTrait,
    user: UserId,
    slot: Uuid,
    record: &ConflictRecord,
) -> Result<(), StoreError> {
    tracing::info!(slot_id = %slot, winner = ?record.winner, kind = ?record.kind,
                   detected_by = ?record.detected_by, "conflict resolved");
    observe::conflict(record.winner.as_str(), record.detected_by.as_str());
    audit::record_conflict(db, user, slot, record).await
}
