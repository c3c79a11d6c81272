//! The push side's user controls: push everything not in sync again, and what the outbox
//! holds. (The pull adds its part of the status.)

use chrono::{DateTime, Utc};

use super::{PushWaker, SyncError};
use crate::domain::UserId;
use crate::store::outbox::{self, OutboxDepth};
use crate::store::{connections, sync_states};
use sea_orm::DatabaseConnection;

/// Why a sync action cannot run for the user.
#[derive(Debug, thiserror::Error)]
pub enum NotSyncing {
    /// No Google account is connected.
    #[error("no Google account is connected; connect one first (POST /auth/users/{{id}}/authorize-link or GET /auth/google/authorize)")]
    NotConnected,
    /// The connection exists but cannot be used.
    #[error("the Google connection is `{0}`; connect the Google account again")]
    Unusable(String),
}

/// Puts every slot of `user` that is not in sync (dirty, failed, paused) back in the
/// outbox, closes the user's breaker (the user asked for it) and wakes the worker.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn push_all(db: &DatabaseConnection, waker: &PushWaker, user: UserId) -> Result<u64, SyncError> {
    match connections::find(db, user.0).await? {
        None => return Err(SyncError::NotSyncing(NotSyncing::NotConnected)),
        Some(c) if c.status != connections::ACTIVE => {
            return Err(SyncError::NotSyncing(NotSyncing::Unusable(c.status)))
        }
        Some(_) => {}
    }
    let queued = outbox::requeue_unsynced(db, user, Utc::now()).await?;
    sync_states::close_breaker(db, user).await?;
    waker.wake();
    Ok(queued)
}

/// The push side of a user's sync status.
#[derive(Debug, Clone)]
pub struct PushStatus {
    /// `active`, `needs_reauth`, `revoked`, or `None` when never connected.
    pub connection: Option<String>,
    /// Slot counts per outbox state.
    pub outbox: OutboxDepth,
    /// The last failed push, and when.
    pub last_push_error: Option<(String, DateTime<Utc>)>,
    /// Until when the user's breaker stops Google calls, if open.
    pub breaker_open_until: Option<DateTime<Utc>>,
    /// Consecutive failed Google calls so far.
    pub consecutive_failures: i32,
}

/// Reads the push status of `user`.
pub async fn push_status(db: &DatabaseConnection, user: UserId) -> Result<PushStatus, SyncError> {
    let now = Utc::now();
    let connection = connections::find(db, user.0).await?.map(|c| c.status);
    let outbox = outbox::depth(db, user, now).await?;
    let state = sync_states::find(db, user).await?;
    let (last_push_error, breaker_open_until, consecutive_failures) = match state {
        Some(s) => (
            s.last_push_error.zip(s.last_push_error_at),
            s.breaker_open_until.filter(|until| *until > now),
            s.consecutive_failures,
        ),
        None => (None, None, 0),
    };
    Ok(PushStatus {
        connection,
        outbox,
        last_push_error,
        breaker_open_until,
        consecutive_failures,
    })
}
