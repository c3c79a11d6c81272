//! Disconnecting: stop the channels, revoke the grant at Google, erase the tokens, pause
//! the slots. With `delete_events=true` the events slotsync created (slots with
//! `source = app`) are deleted first — never the user's own events imported as slots —
//! in the background, through the gateway (its rate limits, classified errors and
//! retries), with the progress in `GET /sync/status`; the grant is revoked when that ends.
//! Meanwhile the connection is `disconnecting`; a process that stops half-way resumes the
//! deletion when it starts again ([`resume_unfinished`]). Reconnecting during the deletion
//! stops it.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::connect::oauth;
use super::context::SyncContext;
use super::SyncError;
use crate::crypto::Secret;
use crate::domain::{AuditKind, ConnectionStatus, UserId};
use crate::google::GoogleError;
use crate::store::sync_states::Cleanup;
use crate::store::{self, audit, connections, sync_states};
use crate::sync::channels;

/// Why the slots of a disconnected user are paused.
pub const DISCONNECTED: &str = "Google account disconnected; connect again to resume syncing";
/// Attempts per event before a retryable failure counts as failed.
const ATTEMPTS: u32 = 5;

/// What a disconnect did (or, for the event deletion, started).
#[derive(Debug)]
pub struct Disconnected {
    pub channels_stopped: u64,
    /// Events deleted before answering (always 0: the deletion runs in the background).
    pub events_deleted: u64,
    /// Events slotsync created that the background deletion will delete.
    pub events_to_delete: u64,
    pub revoked_at_google: bool,
    pub slots_paused: u64,
    /// `revoked`, or `disconnecting` while the events are being deleted.
    pub status: ConnectionStatus,
}

/// Disconnects `user` (see the module docs). Google-side steps are best effort (a user
/// must be able to leave even if Google is unreachable); what failed is in the audit log.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn disconnect(state: &SyncContext, user: UserId, delete_events: bool) -> Result<Disconnected, SyncError> {
    connections::find(&state.db, user)
        .await?
        .ok_or(SyncError::NoConnection)?;
    let stopped = channels::stop_all(state, user).await?;
    let mut done = Disconnected {
        channels_stopped: stopped.stopped,
        events_deleted: 0,
        events_to_delete: 0,
        revoked_at_google: false,
        slots_paused: store::slots::pause_all(&state.db, user, DISCONNECTED).await?,
        status: ConnectionStatus::Revoked,
    };
    let targets = if delete_events {
        store::slots::app_events(&state.db, user).await?
    } else {
        Vec::new()
    };
    if targets.is_empty() {
        let revoked = revoke_and_erase(state, user, None).await?;
        done.revoked_at_google = revoked.is_ok();
        audit::record(
            &state.db,
            user,
            None,
            AuditKind::Disconnect,
            json!({ "channels_stopped": done.channels_stopped, "events_deleted": 0,
                    "delete_events": delete_events, "revoked_at_google": done.revoked_at_google,
                    "problems": stopped.problems.into_iter().chain(revoked.err()).collect::<Vec<_>>() }),
        )
        .await?;
        return Ok(done);
    }
    done.events_to_delete = targets.len() as u64;
    done.status = ConnectionStatus::Disconnecting;
    let total = i32::try_from(targets.len()).unwrap_or(i32::MAX);
    connections::set_status(
        &state.db,
        user,
        ConnectionStatus::Disconnecting,
        Some(format!(
            "deleting the {total} events slotsync created; the grant is revoked when done"
        )),
    )
    .await?;
    sync_states::record_cleanup(
        &state.db,
        user,
        Cleanup {
            total,
            started_at: Some(Utc::now()),
            ..Cleanup::default()
        },
    )
    .await?;
    audit::record(
        &state.db,
        user,
        None,
        AuditKind::Disconnect,
        json!({ "channels_stopped": done.channels_stopped, "delete_events": true,
                "events_to_delete": total, "problems": stopped.problems,
                "note": "only events slotsync created are deleted; events imported from Google stay" }),
    )
    .await?;
    tokio::spawn(finish_in_background(state.clone(), user));
    Ok(done)
}

/// Resumes the event deletion of every disconnect a stopped process left unfinished.
pub async fn resume_unfinished(state: &SyncContext) -> Result<usize, store::StoreError> {
    let users = connections::disconnecting_users(&state.db).await?;
    for user in &users {
        tokio::spawn(finish_in_background(state.clone(), *user));
    }
    Ok(users.len())
}

async fn finish_in_background(state: SyncContext, user: UserId) {
    if let Err(e) = finish(&state, user).await {
        tracing::warn!(user_id = %user, error = %e, "the disconnect's event deletion stopped; it resumes at the next start");
    }
}

/// Deletes the remaining events slotsync created, then revokes and erases the tokens.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
async fn finish(state: &SyncContext, user: UserId) -> Result<(), SyncError> {
    let Some(conn) = connections::find(&state.db, user).await? else {
        return Ok(());
    };
    let mut progress = sync_states::find(&state.db, user)
        .await?
        .as_ref()
        .and_then(Cleanup::of)
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (slot, event_id) in store::slots::app_events(&state.db, user).await? {
        if !still_disconnecting(state, user).await? {
            tracing::info!(user_id = %user, "reconnected during the event deletion: it stops");
            return Ok(());
        }
        match delete_with_retries(state, user, &conn.calendar_id, &event_id).await {
            Ok(()) => {
                // The slot no longer has an event: a later connection pushes it anew.
                store::slots::forget_link_paused(&state.db, slot, DISCONNECTED).await?;
                progress.done += 1;
            }
            Err(e) => {
                problems.push(format!("event {event_id}: {e}"));
                progress.failed += 1;
            }
        }
        sync_states::record_cleanup(&state.db, user, progress).await?;
    }
    if !still_disconnecting(state, user).await? {
        return Ok(());
    }
    let revoked = revoke_and_erase(state, user, Some(ConnectionStatus::Disconnecting)).await?;
    progress.finished_at = Some(Utc::now());
    sync_states::record_cleanup(&state.db, user, progress).await?;
    audit::record(
        &state.db,
        user,
        None,
        AuditKind::DisconnectFinished,
        json!({ "events_deleted": progress.done, "events_failed": progress.failed,
                "revoked_at_google": revoked.is_ok(),
                "problems": problems.into_iter().chain(revoked.err()).collect::<Vec<_>>() }),
    )
    .await?;
    Ok(())
}

async fn still_disconnecting(state: &SyncContext, user: UserId) -> Result<bool, SyncError> {
    Ok(connections::find(&state.db, user)
        .await?
        .is_some_and(|c| c.status == ConnectionStatus::Disconnecting))
}

/// Deletes one event; an event already gone counts as deleted (a 404 once asked again);
/// passing failures are retried with backoff (the gateway already waits for the rate
/// limits).
async fn delete_with_retries(
    state: &SyncContext,
    user: UserId,
    calendar: &str,
    event_id: &str,
) -> Result<(), GoogleError> {
    let mut attempt = 0;
    let not_found = super::not_found::NotFoundRetry::from_settings(&state.settings);
    loop {
        let delete = || state.gateway.delete_event(user, calendar, event_id);
        match not_found.run("events.delete", delete).await {
            Ok(()) | Err(GoogleError::Gone(_)) => return Ok(()),
            Err(e) if e.is_retryable() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Revokes the grant at Google (best effort: the error is returned for the record) and
/// erases the tokens — only if the connection is still in `only_from` when given (a
/// reconnect during a background deletion must keep its new tokens).
async fn revoke_and_erase(
    state: &SyncContext,
    user: UserId,
    only_from: Option<ConnectionStatus>,
) -> Result<Result<(), String>, SyncError> {
    let Some(conn) = connections::find(&state.db, user).await? else {
        return Ok(Err("no connection".into()));
    };
    if only_from.is_some_and(|s| conn.status != s) {
        return Ok(Err(format!("the connection became `{}`; nothing revoked", conn.status)));
    }
    // Revoking the refresh token ends the whole grant; the access token is the fallback.
    let open = |enc: &Option<String>, what| enc.as_ref().and_then(|e| state.keys.decrypt(e, user.0, what).ok());
    let token = open(&conn.refresh_token_enc, Secret::RefreshToken)
        .or_else(|| open(&conn.access_token_enc, Secret::AccessToken));
    let revoked = match (token, oauth(state)) {
        (Some(token), Ok(oauth)) => oauth.revoke(&token).await.map_err(|e| format!("revoke: {e}")),
        (None, _) => Err("no token to revoke".to_owned()),
        (_, Err(e)) => Err(format!("revoke: {e}")),
    };
    connections::erase_tokens(&state.db, user, only_from).await?;
    state.vault.forget(user);
    Ok(revoked)
}
