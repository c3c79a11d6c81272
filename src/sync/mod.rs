//! The sync engine: local slot writes (each committing the slot and its outbox mark in
//! one transaction, then waking the push worker), the push of outbox slots to Google,
//! and the user's controls over it.

pub mod backlog;
pub mod channel_directory;
pub mod channels;
pub mod coalesce;
pub mod conflicts;
pub mod connect;
pub mod context;
pub mod control;
pub mod disconnect;
pub mod error;
pub mod feed;
pub mod fleet;
pub mod held;
pub mod home;
pub mod lifecycle;
pub mod local;
pub mod not_found;
pub mod occurrences;
pub mod plan;
pub mod pull;
pub mod pull_occurrences;
pub mod push;
pub mod push_occurrences;
pub mod settings;
pub mod status;
pub mod webhooks;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

pub use error::{Refused, SyncError};

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
