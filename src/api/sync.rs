//! The caller's sync with Google: push everything again, and the sync status.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::auth::UserAuth;
use super::error::ApiError;
use super::ApiTags;
use crate::state::AppState;
use crate::store;
use crate::sync::status::{self, PushStatus};

/// What `POST /sync/push-all` queued.
#[derive(Debug, Object)]
pub struct PushAllResult {
    /// Slots (including deletions) put back in the outbox: every one that was pending,
    /// failed or paused. They are pushed in the background; watch `GET /sync/status`.
    pub queued: u64,
}

/// Slot counts per outbox state.
#[derive(Debug, Object)]
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
pub struct LastError {
    /// What went wrong.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The caller's breaker on consecutive Google failures.
#[derive(Debug, Object)]
pub struct UserBreaker {
    /// Whether Google calls are stopped for now.
    pub open: bool,
    /// Until when, if open.
    pub open_until: Option<DateTime<Utc>>,
    /// Consecutive failed Google calls counted so far.
    pub consecutive_failures: i32,
}

/// The caller's sync status.
#[derive(Debug, Object)]
pub struct SyncStatus {
    /// The Google connection: `active`, `needs_reauth`, `revoked`; absent if never connected.
    pub connection: Option<String>,
    /// The push outbox.
    pub outbox: OutboxCounts,
    /// The last failed push.
    pub last_push_error: Option<LastError>,
    /// The breaker that stops Google calls after repeated failures.
    pub breaker: UserBreaker,
}

impl From<PushStatus> for SyncStatus {
    fn from(s: PushStatus) -> Self {
        SyncStatus {
            connection: s.connection,
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

/// How many conflicts `GET /sync/conflicts` lists at most.
pub const CONFLICTS_LISTED: u64 = 200;

/// Sync operations.
pub struct SyncApi;

#[OpenApi(tag = "ApiTags::Sync")]
impl SyncApi {
    /// Push again every slot that is not in sync (pending, failed or paused), and close
    /// the caller's breaker. Answers at once; the pushes run in the background.
    #[oai(path = "/sync/push-all", method = "post")]
    async fn push_all(&self, state: Data<&AppState>, auth: UserAuth) -> Result<Json<PushAllResult>, ApiError> {
        let queued = status::push_all(&state.db, &state.push_waker, auth.user_id()).await?;
        Ok(Json(PushAllResult { queued }))
    }

    /// The caller's most recent conflicts (newest first, at most 200) and how each was resolved.
    #[oai(path = "/sync/conflicts", method = "get")]
    async fn conflicts(&self, state: Data<&AppState>, auth: UserAuth) -> Result<Json<Vec<Conflict>>, ApiError> {
        let rows = store::audit::list(&state.db, auth.0.id, &["conflict"], CONFLICTS_LISTED).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| {
                    let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
                    let text = |k: &str| detail[k].as_str().unwrap_or_default().to_owned();
                    Conflict {
                        slot_id: r.slot_id,
                        kind: text("kind"),
                        policy: text("policy"),
                        winner: text("winner"),
                        detail,
                        at: r.at,
                    }
                })
                .collect(),
        ))
    }

    /// The caller's sync status: connection, outbox depth, last push error, breaker.
    #[oai(path = "/sync/status", method = "get")]
    async fn status(&self, state: Data<&AppState>, auth: UserAuth) -> Result<Json<SyncStatus>, ApiError> {
        let status = status::push_status(&state.db, auth.user_id()).await?;
        Ok(Json(status.into()))
    }
}
