//! The caller's sync with Google: status, conflicts, pull now, push everything again,
//! stop and resume, breakers.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

use super::auth::UserAuth;
use super::error::{answers::*, Fails};
use super::ApiTags;
use crate::domain::{AuditKind, ConflictRecord};
use crate::state::AppState;
use crate::store;
use crate::sync::control;
use crate::sync::pull::{PullMode, PullReport};
use crate::sync::status::{self, SyncOverview};

/// What `POST /sync/push-all` queued.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PushAllResult {
    /// Slots (including deletions) put back in the outbox: every one that was pending,
    /// failed or paused. They are pushed in the background; watch `GET /sync/status`.
    pub queued: u64,
}

/// Slot counts per outbox state.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OutboxCounts {
    /// Changes waiting to be pushed (including deletions and ones waiting for a retry).
    pub pending: u64,
    /// Of the pending ones, how many are being pushed right now.
    pub in_flight: u64,
    /// Slots whose push failed for good; see each slot's `sync.last_error`.
    pub failed: u64,
    /// Slots whose push is paused (re-authorisation needed, disconnected, or breaker).
    pub paused: u64,
    /// Slots Google holds as they are.
    pub synced: u64,
    /// When the next pending push (or retry) is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The last push that failed.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LastError {
    /// What went wrong.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The caller's breaker on consecutive Google failures.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserBreaker {
    /// Whether Google calls are stopped for now.
    pub open: bool,
    /// Until when, if open.
    pub open_until: Option<DateTime<Utc>>,
    /// Consecutive failed Google calls counted so far.
    pub consecutive_failures: i32,
}

/// A live notification channel.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChannelInfo {
    /// The channel id (sent to Google).
    pub id: uuid::Uuid,
    /// When Google stops sending on it (renewed before).
    pub expires_at: DateTime<Utc>,
}

/// The pull side: how Google's changes come in.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PullInfo {
    /// Whether a sync token is kept (the next pull is incremental).
    pub sync_token_present: bool,
    /// When the last pull ended.
    pub last_pull_at: Option<DateTime<Utc>>,
    /// When the last full sync ended.
    pub last_full_sync_at: Option<DateTime<Utc>>,
    /// Why the last pull failed (cleared by the next success).
    pub last_error: Option<String>,
    /// Live notification channels (none without `PUBLIC_BASE_URL`: the fallback sync pulls).
    pub channels: Vec<ChannelInfo>,
}

/// A recent failure or trip.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RecentError {
    /// `push_failed`, `breaker_tripped`, `needs_reauth`, `full_resync` or `channel_failed`.
    pub kind: String,
    /// What was recorded.
    pub detail: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// A disconnect's deletion of the events slotsync created.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventDeletion {
    /// Events to delete.
    pub total: i32,
    /// Deleted (or already gone).
    pub done: i32,
    /// Could not be deleted (see `GET /auth/audit`, `disconnect_finished`).
    pub failed: i32,
    /// When it began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (absent while it runs).
    pub finished_at: Option<DateTime<Utc>>,
}

/// The caller's sync status.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SyncStatus {
    /// The Google connection: `active`, `needs_reauth`, `missing_scopes`,
    /// `calendar_missing`, `disconnecting`, `revoked`, `stopped`; absent if never connected.
    pub connection: Option<String>,
    /// Why the connection is not `active` and what to do (see `GET /auth/google/connection`).
    pub connection_error: Option<String>,
    /// Deletions made in Google that the mass-deletion guard holds for the caller to apply
    /// or discard (`GET /sync/held-deletions`).
    pub held_deletions: u64,
    /// The deletion of slotsync's events started by a disconnect, if one ran.
    pub event_deletion: Option<EventDeletion>,
    /// The pull side.
    pub pull: PullInfo,
    /// The push outbox.
    pub outbox: OutboxCounts,
    /// The last failed push.
    pub last_push_error: Option<LastError>,
    /// The breaker that stops Google calls after repeated failures.
    pub breaker: UserBreaker,
    /// Slots paused by their breaker (changed on both sides again and again);
    /// `POST /sync/breaker/reset` resumes them.
    pub breaker_paused_slots: Vec<uuid::Uuid>,
    /// Recent failures and trips, newest first.
    pub recent_errors: Vec<RecentError>,
    /// Your outbound webhook endpoints and how their deliveries fare.
    pub webhook_endpoints: Vec<WebhookHealth>,
}

/// How an outbound webhook endpoint fares.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookHealth {
    pub id: uuid::Uuid,
    pub url: String,
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Deliveries waiting (due now, or retrying).
    pub pending_deliveries: u64,
    /// Deliveries whose retries ran out.
    pub failed_deliveries: u64,
    /// When the last delivery succeeded.
    pub last_delivered_at: Option<DateTime<Utc>>,
}

impl From<SyncOverview> for SyncStatus {
    fn from(s: SyncOverview) -> Self {
        SyncStatus {
            connection: s.connection.map(|c| c.as_str().to_owned()),
            connection_error: s.connection_error,
            held_deletions: s.held_deletions,
            event_deletion: s.event_deletion.map(|c| EventDeletion {
                total: c.total,
                done: c.done,
                failed: c.failed,
                started_at: c.started_at,
                finished_at: c.finished_at,
            }),
            pull: PullInfo {
                sync_token_present: s.sync_token_present,
                last_pull_at: s.last_pull_at,
                last_full_sync_at: s.last_full_sync_at,
                last_error: s.last_pull_error,
                channels: s
                    .channels
                    .into_iter()
                    .map(|(id, expires_at)| ChannelInfo { id, expires_at })
                    .collect(),
            },
            breaker_paused_slots: s.breaker_paused_slots,
            recent_errors: s
                .recent_errors
                .into_iter()
                .map(|(kind, detail, at)| RecentError { kind, detail, at })
                .collect(),
            webhook_endpoints: s
                .webhooks
                .into_iter()
                .map(|h| WebhookHealth {
                    id: h.endpoint.id,
                    url: h.endpoint.url,
                    enabled: h.endpoint.enabled,
                    disabled_reason: h.endpoint.disabled_reason,
                    failing_since: h.endpoint.failing_since,
                    pending_deliveries: h.pending,
                    failed_deliveries: h.failed,
                    last_delivered_at: h.last_delivered_at,
                })
                .collect(),
            outbox: OutboxCounts {
                pending: s.outbox.dirty,
                in_flight: s.outbox.in_flight,
                failed: s.outbox.failed,
                paused: s.outbox.paused,
                synced: s.outbox.clean,
                next_attempt_at: s.outbox.next_attempt_at,
            },
            last_push_error: s.last_push_error.map(|(message, at)| LastError { message, at }),
            breaker: UserBreaker {
                open: s.breaker_open_until.is_some(),
                open_until: s.breaker_open_until,
                consecutive_failures: s.consecutive_failures,
            },
        }
    }
}

/// A conflict: both sides changed a slot since the last sync.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Conflict {
    /// The slot.
    pub slot_id: Option<uuid::Uuid>,
    /// `both_changed` (edited on both sides) or `deleted_in_google` (deleted there, edited here).
    pub kind: String,
    /// The policy in force: `latest_wins`, `app_wins` or `google_wins`.
    pub policy: String,
    /// The side kept: `app` or `google`.
    pub winner: String,
    /// The whole record as logged.
    pub detail: serde_json::Value,
    /// When it was resolved.
    pub at: DateTime<Utc>,
}

/// How to pull.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum TriggerMode {
    /// Changes since the last pull (a full sync when there is no sync token).
    Incremental,
    /// Everything in the window, then reconciliation of what was deleted in Google.
    Full,
}

/// What a pull did.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PullResult {
    /// `incremental` or `full`.
    pub mode: String,
    /// Google had invalidated the sync token: a full sync ran instead.
    pub full_sync_required: bool,
    /// `events.list` pages read.
    pub pages: u32,
    /// Events Google returned.
    pub events: u32,
    /// Slots updated from Google.
    pub applied: u32,
    /// Slots deleted because their event was deleted in Google.
    pub deleted: u32,
    /// Slots created for events created in Google.
    pub imported: u32,
    /// Our own writes coming back (nothing to do).
    pub echoes: u32,
    /// Other events needing nothing.
    pub skipped: u32,
    /// Of the skipped events, those the caller's import filter excludes
    /// (`GET /sync/settings`).
    pub filtered: u32,
    /// Imported slots whose event the import filter now excludes: they left the caller's
    /// slots (deleted here, with `reason: import_filter` in the change feed); the events
    /// stay in Google.
    pub unlinked: u32,
    /// Conflicts resolved.
    pub conflicts: u32,
    /// Slot breakers tripped.
    pub breakers_tripped: u32,
    /// Deletions held by the mass-deletion guard (not applied; `GET /sync/held-deletions`).
    pub held: u32,
}

impl From<PullReport> for PullResult {
    fn from(r: PullReport) -> Self {
        PullResult {
            mode: r.mode.as_str().to_owned(),
            full_sync_required: r.full_sync_required,
            pages: r.pages,
            events: r.events,
            applied: r.applied,
            deleted: r.deleted,
            imported: r.imported,
            echoes: r.echoes,
            skipped: r.skipped,
            filtered: r.filtered,
            unlinked: r.unlinked,
            conflicts: r.conflicts,
            breakers_tripped: r.breakers_tripped,
            held: r.held,
        }
    }
}

/// What `DELETE /sync` did.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StopResult {
    /// Notification channels stopped.
    pub channels_stopped: u64,
    /// Pending pushes paused.
    pub slots_paused: u64,
}

/// What `POST /sync/breaker/reset` did.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BreakerResetResult {
    /// Slots their breaker had paused, back in the outbox.
    pub slots_resumed: u64,
}

/// How many conflicts `GET /sync/conflicts` lists at most.
pub const CONFLICTS_LISTED: u64 = 200;

/// Sync operations.
pub struct SyncApi;

#[OpenApi(tag = "ApiTags::Sync")]
impl SyncApi {
    /// Push every unsynced slot again
    ///
    /// Push again every slot that is not in sync (pending, failed or paused), and close
    /// the caller's breaker. Answers at once; the pushes run in the background.
    #[oai(path = "/sync/push-all", method = "post", operation_id = "push_all")]
    async fn push_all(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<PushAllResult>, Fails<{ CONFLICT | AUTHENTICATED }>> {
        let queued = status::push_all(&state.db, &state.push_waker, auth.user_id()).await?;
        Ok(Json(PushAllResult { queued }))
    }

    /// Pull from Google now
    ///
    /// Pull the caller's calendar now (`incremental` by default, or `full`) and answer
    /// what changed. Changes arrive by themselves through notifications and the fallback
    /// sync; this is for when you do not want to wait.
    #[oai(path = "/sync/trigger", method = "post", operation_id = "trigger_pull")]
    async fn trigger(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// `incremental` (default) or `full`.
        mode: Query<Option<TriggerMode>>,
    ) -> Result<Json<PullResult>, Fails<{ BAD_REQUEST | CONFLICT | UNAVAILABLE | AUTHENTICATED }>> {
        let mode = match mode.0 {
            Some(TriggerMode::Full) => PullMode::Full,
            _ => PullMode::Incremental,
        };
        Ok(Json(
            control::trigger_pull(&state.sync, auth.user_id(), mode).await?.into(),
        ))
    }

    /// Stop syncing
    ///
    /// Stop syncing: stop the notification channels, pause pushes, make no Google call.
    /// Slots keep being editable; `POST /sync/resume` catches up.
    #[oai(path = "/sync", method = "delete", operation_id = "stop_sync")]
    async fn stop(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<StopResult>, Fails<{ CONFLICT | AUTHENTICATED }>> {
        let stopped = control::stop(&state.sync, auth.user_id()).await?;
        Ok(Json(StopResult {
            channels_stopped: stopped.channels_stopped,
            slots_paused: stopped.slots_paused,
        }))
    }

    /// Resume syncing
    ///
    /// Resume syncing after `DELETE /sync`: pending changes are pushed, a channel is
    /// created and Google's changes are pulled.
    #[oai(path = "/sync/resume", method = "post", operation_id = "resume_sync")]
    async fn resume(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<SyncStatus>, Fails<{ CONFLICT | UNAVAILABLE | AUTHENTICATED }>> {
        control::resume(&state.sync, auth.user_id()).await?;
        Ok(Json(status::overview(&state.db, auth.user_id()).await?.into()))
    }

    /// Close your breakers
    ///
    /// Close the caller's breakers: the one on repeated Google failures, and every slot
    /// breaker (slots paused after changing on both sides again and again go back in the
    /// outbox).
    #[oai(path = "/sync/breaker/reset", method = "post", operation_id = "reset_breakers")]
    async fn reset_breakers(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<BreakerResetResult>, Fails<{ CONFLICT | AUTHENTICATED }>> {
        let reset = control::reset_breakers(&state.sync, auth.user_id()).await?;
        Ok(Json(BreakerResetResult {
            slots_resumed: reset.slots_resumed,
        }))
    }

    /// Your recent conflicts
    ///
    /// The caller's most recent conflicts (newest first, at most 200) and how each was resolved.
    #[oai(path = "/sync/conflicts", method = "get", operation_id = "list_conflicts")]
    async fn conflicts(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<Vec<Conflict>>, Fails<{ AUTHENTICATED }>> {
        let rows = store::audit::list(&state.db, auth.user_id(), &[AuditKind::Conflict], CONFLICTS_LISTED).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| {
                    let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
                    let record = serde_json::from_value::<ConflictRecord>(detail.clone()).ok();
                    Conflict {
                        slot_id: r.slot_id,
                        kind: record.as_ref().map(|c| c.kind.as_str().to_owned()).unwrap_or_default(),
                        policy: record
                            .as_ref()
                            .map(|c| c.policy.as_str().to_owned())
                            .unwrap_or_default(),
                        winner: record
                            .as_ref()
                            .map(|c| c.winner.as_str().to_owned())
                            .unwrap_or_default(),
                        detail,
                        at: r.at,
                    }
                })
                .collect(),
        ))
    }

    /// Your sync status
    ///
    /// The caller's sync status: connection, outbox depth, last push error, breaker.
    #[oai(path = "/sync/status", method = "get", operation_id = "get_sync_status")]
    async fn status(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<SyncStatus>, Fails<{ AUTHENTICATED }>> {
        let status = status::overview(&state.db, auth.user_id()).await?;
        Ok(Json(status.into()))
    }
}
