//! The user's controls over syncing: pull now, stop, resume, close breakers.

use chrono::Utc;
use serde_json::json;

use super::context::SyncContext;
use super::pull::{PullMode, PullReport};
use super::SyncError;
use crate::domain::{AuditKind, ChangeKind, ChangeOrigin, ConnectionStatus, UserId};
use crate::store::{self, connections, outbox, sync_states};

async fn active(state: &SyncContext, user: UserId) -> Result<(), SyncError> {
    match connections::find(&state.db, user).await? {
        None => Err(SyncError::NotConnected),
        Some(c) if c.status != ConnectionStatus::Active => Err(SyncError::Unusable(c.status)),
        Some(_) => Ok(()),
    }
}

/// Pulls `user`'s calendar now and reports what changed.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn trigger_pull(state: &SyncContext, user: UserId, mode: PullMode) -> Result<PullReport, SyncError> {
    active(state, user).await?;
    state.pulls.puller().pull(user, mode).await
}

/// What stopping did.
#[derive(Debug, Clone, Default)]
pub struct Stopped {
    pub channels_stopped: u64,
    pub slots_paused: u64,
}

/// Stops syncing: the connection becomes `stopped` (no Google call is made for the user,
/// tokens are kept), its channels are stopped, pending pushes are paused.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn stop(state: &SyncContext, user: UserId) -> Result<Stopped, SyncError> {
    active(state, user).await?;
    let channels = super::channels::stop_all(state, user).await?;
    connections::set_status(&state.db, user, ConnectionStatus::Stopped, None).await?;
    state.vault.forget(user);
    let paused = outbox::pause_pending(&state.db, user, "syncing is stopped; POST /sync/resume to resume").await?;
    store::audit::record(
        &state.db,
        user,
        None,
        AuditKind::SyncStopped,
        json!({ "channels_stopped": channels.stopped, "slots_paused": paused, "problems": channels.problems }),
    )
    .await?;
    Ok(Stopped {
        channels_stopped: channels.stopped,
        slots_paused: paused,
    })
}

/// Resumes syncing after [`stop`]: the connection is active again, paused slots go back in
/// the outbox, a channel is created and a pull requested.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn resume(state: &SyncContext, user: UserId) -> Result<(), SyncError> {
    match connections::find(&state.db, user).await? {
        None => return Err(SyncError::NotConnected),
        Some(c) if c.status == ConnectionStatus::Stopped => {
            connections::set_status(&state.db, user, ConnectionStatus::Active, None).await?;
        }
        Some(c) if c.status == ConnectionStatus::Active => {}
        Some(c) => return Err(SyncError::Unusable(c.status)),
    }
    store::audit::record(&state.db, user, None, AuditKind::SyncResumed, json!({})).await?;
    // A Google failure here keeps its meaning (503, or 409 when the account needs
    // connecting again); the connection is active again either way.
    super::connect::initialize_sync(state, user).await
}

/// What closing the breakers did.
#[derive(Debug, Clone, Default)]
pub struct BreakersReset {
    /// Slots the slot breaker had paused, now back in the outbox.
    pub slots_resumed: u64,
}

/// Closes the user's breaker and every slot breaker of the user, and wakes the worker.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn reset_breakers(state: &SyncContext, user: UserId) -> Result<BreakersReset, SyncError> {
    sync_states::close_breaker(&state.db, user).await?;
    let now = Utc::now();
    let txn = store::begin_write(&state.db).await?;
    let paused = outbox::breaker_paused(&txn, user).await?;
    let slots_resumed = outbox::reset_slot_breakers(&txn, user, now).await?;
    store::audit::record(
        &txn,
        user,
        None,
        AuditKind::BreakerReset,
        json!({ "slots_resumed": slots_resumed }),
    )
    .await?;
    store::changes::append_slots(&txn, user, &paused, ChangeKind::SlotResumed, ChangeOrigin::Api, now).await?;
    txn.commit().await?;
    state.push_waker.wake();
    super::feed::changed(user);
    Ok(BreakersReset { slots_resumed })
}
