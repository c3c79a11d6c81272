//! The sync engine: local slot writes (each committing the slot and its outbox mark in
//! one transaction, then waking the push worker), the push of outbox slots to Google,
//! and the user's controls over it.

pub mod channel_directory;
pub mod channels;
pub mod coalesce;
pub mod conflicts;
pub mod connect;
pub mod context;
pub mod control;
pub mod disconnect;
pub mod held;
pub mod home;
pub mod lifecycle;
pub mod local;
pub mod plan;
pub mod pull;
pub mod push;
pub mod status;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// Wakes the push worker; waking with nobody waiting is remembered for the next wait.
#[derive(Clone, Default)]
pub struct PushWaker(Arc<Notify>);

impl PushWaker {
    /// Signals that the outbox has work.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits for the next signal.
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// What the engine's operations report.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The same `Idempotency-Key` was used with a different request body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyMismatch,
    /// The user's Google connection does not allow syncing.
    #[error(transparent)]
    NotSyncing(#[from] status::NotSyncing),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for SyncError {
    fn from(e: sea_orm::DbErr) -> Self {
        SyncError::Store(StoreError::Db(e))
    }
}
