//! Pushing everything not in sync again, and the overview behind `GET /sync/status`.

use chrono::{DateTime, Utc};

use super::{PushWaker, SyncError};
use crate::domain::{AuditKind, ConnectionStatus, UserId};
use crate::store::outbox::{self, OutboxDepth};
use crate::store::{self, connections, sync_states};
use sea_orm::DatabaseConnection;

/// Puts every slot of `user` that is not in sync (dirty, failed, paused) back in the
/// outbox, closes the user's breaker (the user asked for it) and wakes the worker.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn push_all(db: &DatabaseConnection, waker: &PushWaker, user: UserId) -> Result<u64, SyncError> {
    match connections::find(db, user).await? {
        None => return Err(SyncError::NotConnected),
        Some(c) if c.status != ConnectionStatus::Active => return Err(SyncError::Unusable(c.status)),
        Some(_) => {}
    }
    let queued = outbox::requeue_unsynced(db, user, Utc::now()).await?;
    sync_states::close_breaker(db, user).await?;
    waker.wake();
    Ok(queued)
}

/// A user's sync status.
#[derive(Debug, Clone)]
pub struct SyncOverview {
    /// The connection's status, or `None` when never connected.
    pub connection: Option<ConnectionStatus>,
    /// Whether a sync token is kept (the next pull is incremental).
    pub sync_token_present: bool,
    /// When the last pull ended.
    pub last_pull_at: Option<DateTime<Utc>>,
    /// When the last full sync ended.
    pub last_full_sync_at: Option<DateTime<Utc>>,
    /// Why the last pull failed (cleared by the next success).
    pub last_pull_error: Option<String>,
    /// Live notification channels and when each expires.
    pub channels: Vec<(uuid::Uuid, DateTime<Utc>)>,
    /// Slots paused by their breaker.
    pub breaker_paused_slots: Vec<uuid::Uuid>,
    /// Recent failures and trips, newest first.
    pub recent_errors: Vec<(String, serde_json::Value, DateTime<Utc>)>,
    /// Slot counts per outbox state.
    pub outbox: OutboxDepth,
    /// The last failed push, and when.
    pub last_push_error: Option<(String, DateTime<Utc>)>,
    /// Until when the user's breaker stops Google calls, if open.
    pub breaker_open_until: Option<DateTime<Utc>>,
    /// Consecutive failed Google calls so far.
    pub consecutive_failures: i32,
    /// Why the connection is not active (what the user should know), if it is not.
    pub connection_error: Option<String>,
    /// Deletions from Google held by the mass-deletion guard.
    pub held_deletions: u64,
    /// A disconnect's deletion of slotsync's events, if one ever ran.
    pub event_deletion: Option<sync_states::Cleanup>,
    /// The user's outbound webhook endpoints and how their deliveries fare.
    pub webhooks: Vec<store::webhooks::Health>,
}

/// Sync events shown as recent errors in the status.
const ERROR_KINDS: [AuditKind; 8] = [
    AuditKind::PushFailed,
    AuditKind::BreakerTripped,
    AuditKind::NeedsReauth,
    AuditKind::FullResync,
    AuditKind::ChannelFailed,
    AuditKind::MissingScopes,
    AuditKind::CalendarMissing,
    AuditKind::DeletionsHeld,
];

/// Reads the sync status of `user`.
pub async fn overview(db: &DatabaseConnection, user: UserId) -> Result<SyncOverview, SyncError> {
    let now = Utc::now();
    let row = connections::find(db, user).await?;
    let connection_error = row
        .as_ref()
        .filter(|c| c.status != ConnectionStatus::Active)
        .and_then(|c| c.last_error.clone());
    let connection = row.map(|c| c.status);
    let outbox = outbox::depth(db, user, now).await?;
    let state = sync_states::find(db, user).await?.unwrap_or_default();
    let event_deletion = sync_states::Cleanup::of(&state);
    let channels = store::channels::live(db, user)
        .await?
        .into_iter()
        .map(|c| (c.id, c.expires_at))
        .collect();
    let recent_errors = store::audit::list(db, user, &ERROR_KINDS, 10)
        .await?
        .into_iter()
        .map(|e| (e.kind, serde_json::from_str(&e.detail).unwrap_or_default(), e.at))
        .collect();
    Ok(SyncOverview {
        connection,
        sync_token_present: state.sync_token.is_some(),
        last_pull_at: state.last_pull_at,
        last_full_sync_at: state.full_synced_at,
        last_pull_error: state.last_error,
        channels,
        breaker_paused_slots: outbox::breaker_paused(db, user).await?,
        recent_errors,
        outbox,
        last_push_error: state.last_push_error.zip(state.last_push_error_at),
        breaker_open_until: state.breaker_open_until.filter(|until| *until > now),
        consecutive_failures: state.consecutive_failures,
        connection_error,
        held_deletions: store::held_deletions::count(db, user).await?,
        event_deletion,
        webhooks: store::webhooks::health(db, user).await?,
    })
}
