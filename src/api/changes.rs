//! The change feed: `GET /changes` — the caller's changes after a cursor, oldest first;
//! with `wait`, the request is held until a change arrives (long poll). `GET /slots`
//! gives the position to start from (`changes_cursor`), so a client lists and then
//! follows without a gap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{param::Query, Enum, Object, OpenApi};
use uuid::Uuid;

use super::auth::UserAuth;
use super::error::{answers::*, ApiError, Fails};
use super::pagination;
use super::slot_model::Slot;
use super::ApiTags;
use crate::domain::{ChangeKind, ChangeOrigin, UserId};
use crate::state::AppState;
use crate::store::changes::{self, ChangeRow, Head};
use crate::store::slots::SlotRow;
use crate::sync::feed;

/// Longest `wait`, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// What a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChangeType {
    #[oai(rename = "slot.created")]
    SlotCreated,
    #[oai(rename = "slot.updated")]
    SlotUpdated,
    #[oai(rename = "slot.deleted")]
    SlotDeleted,
    /// One occurrence of a recurring slot was changed (`detail.occurrence`: it after the
    /// change, as `GET /slots/{id}/occurrences` shows it).
    #[oai(rename = "occurrence.updated")]
    OccurrenceUpdated,
    /// One occurrence of a recurring slot was cancelled (`detail.occurrence`).
    #[oai(rename = "occurrence.cancelled")]
    OccurrenceCancelled,
    /// Pushing the slot failed for good (`detail.error`).
    #[oai(rename = "slot.sync_failed")]
    SlotSyncFailed,
    /// The slot's breaker paused its pushes.
    #[oai(rename = "slot.paused")]
    SlotPaused,
    #[oai(rename = "slot.resumed")]
    SlotResumed,
    #[oai(rename = "connection.connected")]
    ConnectionConnected,
    /// Google refused the grant: connect again.
    #[oai(rename = "connection.needs_reauth")]
    ConnectionNeedsReauth,
    #[oai(rename = "connection.missing_scopes")]
    ConnectionMissingScopes,
    #[oai(rename = "connection.calendar_missing")]
    ConnectionCalendarMissing,
    #[oai(rename = "connection.disconnected")]
    ConnectionDisconnected,
    /// A mass deletion in Google waits for the user (`GET /sync/held-deletions`).
    #[oai(rename = "deletions.held")]
    DeletionsHeld,
    /// An outbound webhook endpoint was disabled (`detail.endpoint_id`, `detail.reason`).
    #[oai(rename = "webhook.endpoint_disabled")]
    WebhookEndpointDisabled,
}

/// The API's change types and the domain's kinds have the same variants: one list, both
/// conversions.
macro_rules! same_variants {
    ($($variant:ident),+ $(,)?) => {
        impl From<ChangeType> for ChangeKind {
            fn from(t: ChangeType) -> Self {
                match t { $(ChangeType::$variant => ChangeKind::$variant),+ }
            }
        }
        impl From<ChangeKind> for ChangeType {
            fn from(k: ChangeKind) -> Self {
                match k { $(ChangeKind::$variant => ChangeType::$variant),+ }
            }
        }
    };
}

same_variants!(
    SlotCreated,
    SlotUpdated,
    SlotDeleted,
    OccurrenceUpdated,
    OccurrenceCancelled,
    SlotSyncFailed,
    SlotPaused,
    SlotResumed,
    ConnectionConnected,
    ConnectionNeedsReauth,
    ConnectionMissingScopes,
    ConnectionCalendarMissing,
    ConnectionDisconnected,
    DeletionsHeld,
    WebhookEndpointDisabled,
);

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Origin {
    /// Through this API.
    Api,
    /// In Google Calendar.
    Google,
    /// slotsync itself (a failure, a breaker, the connection's state).
    System,
}

impl From<ChangeOrigin> for Origin {
    fn from(o: ChangeOrigin) -> Self {
        match o {
            ChangeOrigin::Api => Origin::Api,
            ChangeOrigin::Google => Origin::Google,
            ChangeOrigin::System => Origin::System,
        }
    }
}

/// One change.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Change {
    /// Pass as `after` to read the changes that follow this one.
    pub cursor: String,
    /// What happened.
    #[oai(rename = "type")]
    pub kind: ChangeType,
    /// Who made it.
    pub origin: Option<Origin>,
    /// The slot it is about, for slot changes.
    pub slot_id: Option<Uuid>,
    /// The slot as it was right after the change (a deleted slot has `deleted: true`).
    pub slot: Option<Slot>,
    /// What happened, for changes that are not a slot's content (the error, the reason,
    /// the connection's home…).
    pub detail: Option<serde_json::Value>,
    /// When it was committed (UTC).
    pub at: DateTime<Utc>,
}

/// A page of the feed.
#[derive(Debug, Object)]
pub struct ChangePage {
    /// The changes, oldest first.
    pub changes: Vec<Change>,
    /// Where to continue from: pass as `after` (the last change's cursor, or `after`
    /// itself when there was none).
    pub next_cursor: String,
    /// More changes are waiting: read again at once.
    pub has_more: bool,
}

/// The cursor of the position after change `seq`.
pub fn cursor(seq: i64) -> String {
    pagination::encode(&format!("changes:{seq}"))
}

fn position(after: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(
            "after",
            "is not a cursor returned by this API (GET /changes or GET /slots)",
        )
    };
    let raw = pagination::decode(after).map_err(|_| bad())?;
    raw.strip_prefix("changes:")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(bad)
}

fn render(row: ChangeRow) -> Change {
    let data: serde_json::Value = serde_json::from_str(&row.data).unwrap_or_default();
    let slot = data
        .get("slot")
        .and_then(|s| serde_json::from_value::<SlotRow>(s.clone()).ok())
        .map(|r| Slot::from(&r));
    let detail = data.get("detail").cloned();
    Change {
        cursor: cursor(row.seq),
        kind: row
            .kind
            .parse::<ChangeKind>()
            .map(ChangeType::from)
            .unwrap_or(ChangeType::SlotUpdated),
        origin: row
            .origin
            .as_deref()
            .and_then(|o| o.parse::<ChangeOrigin>().ok())
            .map(Origin::from),
        slot_id: row.slot_id,
        slot,
        detail,
        at: row.created_at,
    }
}

/// A change as the feed shows it, as JSON: the `data` of its outbound webhook.
pub fn render_json(row: &ChangeRow) -> serde_json::Value {
    use poem_openapi::types::ToJSON;
    render(row.clone()).to_json().unwrap_or_default()
}

/// The change feed.
pub struct ChangesApi;

#[OpenApi(tag = "ApiTags::Slots")]
impl ChangesApi {
    /// Read your changes
    ///
    /// The caller's changes after `after`, oldest first: slots created, updated and
    /// deleted (through the API or in Google), pushes failed for good, breakers, and the
    /// connection's state. Start from `changes_cursor` of `GET /slots`, then pass each
    /// answer's `next_cursor`. With `wait` (seconds, up to 60) and nothing new, the request
    /// is held until a change arrives or the time is up (then `changes` is empty). A cursor
    /// older than the retention (`CHANGE_RETENTION_DAYS`, default 30) is answered 410
    /// `cursor_expired`: read `GET /slots` again and start from its `changes_cursor`.
    #[oai(path = "/changes", method = "get", operation_id = "list_changes")]
    async fn list_changes(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// `next_cursor` of the previous answer, or `changes_cursor` of `GET /slots`
        /// (default: the oldest change kept).
        after: Query<Option<String>>,
        /// Most changes in one answer, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// Seconds to wait for a change when there is none yet, 0–60 (default 0).
        #[oai(validator(minimum(value = "0"), maximum(value = "60")))]
        wait: Query<Option<u64>>,
    ) -> Result<Json<ChangePage>, Fails<{ BAD_REQUEST | GONE | AUTHENTICATED }>> {
        let user = auth.user_id();
        let limit = pagination::page_size(limit.0)?;
        let wait = match wait.0.unwrap_or(0) {
            n @ 0..=MAX_WAIT_SECS => Duration::from_secs(n),
            n => return Err(ApiError::invalid("wait", format!("{n} is out of range; expected 0 to 60")).into()),
        };
        let head = changes::head(&state.db, user).await?;
        let after = match after.0.as_deref() {
            Some(c) => position(c)?,
            None => head.purged_through,
        };
        check(after, head)?;
        let deadline = tokio::time::Instant::now() + wait;
        let signal = feed::signal(user);
        loop {
            // Listen before reading: a change committed after the read still wakes us.
            let woken = signal.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let page = read(&state, user, after, limit).await?;
            let now = tokio::time::Instant::now();
            if !page.changes.is_empty() || now >= deadline {
                return Ok(Json(page));
            }
            let nap = (deadline - now).min(feed::TICK);
            let _ = tokio::time::timeout(nap, woken).await;
        }
    }
}

/// A cursor ahead of the log was not issued here; one behind the purge lost changes.
fn check(after: i64, head: Head) -> Result<(), ApiError> {
    if after > head.seq {
        return Err(ApiError::invalid(
            "after",
            "is ahead of the feed: not a cursor returned by this API for this user",
        ));
    }
    if after < head.purged_through {
        return Err(ApiError::gone(
            "cursor_expired",
            "changes after this cursor were purged (older than CHANGE_RETENTION_DAYS); read GET /slots \
             again and continue from its changes_cursor",
        ));
    }
    Ok(())
}

async fn read(state: &AppState, user: UserId, after: i64, limit: u64) -> Result<ChangePage, ApiError> {
    let mut rows = changes::after(&state.db, user, after, limit + 1).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next = rows.last().map(|r| r.seq).unwrap_or(after);
    Ok(ChangePage {
        changes: rows.into_iter().map(render).collect(),
        next_cursor: cursor(next),
        has_more,
    })
}
