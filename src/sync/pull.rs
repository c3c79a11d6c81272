//! The pull: Google's changes into slots. With a sync token, `events.list` page by page;
//! without one (or after a 410), a full listing over the window, then reconciliation.
//! Each page is planned (`plan.rs`) and applied in one transaction; the new sync token is
//! saved only after the last page, so a crash replays pages, which is harmless.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use google_calendar3::api::Event;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use super::plan::{plan, Action, ConflictNote, LocalSlot, PlanRules, SkipReason};
use super::push::winner_label;
use crate::domain::{BreakerRule, ConflictPolicy, Fingerprint, Side, SlotBreaker, UserId};
use crate::google::mapping::event_slot;
use crate::google::{CalendarGateway, GoneKind, GoogleError, ListFrom};
use crate::observe;
use crate::store::outbox::{self, AfterRemote, Pushed, SLOT_BREAKER_PAUSE};
use crate::store::slots::SlotRow;
use crate::store::{self, audit, connections, sync_states, StoreError};

/// How a pull lists events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullMode {
    /// Changes since the last sync token (a full sync when there is none).
    #[default]
    Incremental,
    /// Everything in the window, then reconciliation.
    Full,
}

impl PullMode {
    /// The spelling in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PullMode::Incremental => "incremental",
            PullMode::Full => "full",
        }
    }
}

/// How the pull behaves (from the settings).
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// How far back a full sync lists.
    pub window: chrono::Duration,
    /// Import events created in Google.
    pub import: bool,
    /// Who wins a conflict.
    pub policy: ConflictPolicy,
    /// This deployment's `slotsync_origin`.
    pub origin: String,
    /// The slot breaker.
    pub breaker: BreakerRule,
    /// How long one pull may hold its claim.
    pub lease: Duration,
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// The listing that ran (`full` after a 410 too).
    pub mode: PullMode,
    /// Google answered 410: the token was dropped and a full sync ran.
    pub full_sync_required: bool,
    /// `events.list` pages read.
    pub pages: u32,
    /// Events seen.
    pub events: u32,
    /// Slots updated from Google.
    pub applied: u32,
    /// Slots deleted because their event was deleted in Google.
    pub deleted: u32,
    /// Slots created for events created in Google.
    pub imported: u32,
    /// Our own writes coming back.
    pub echoes: u32,
    /// Other events needing nothing.
    pub skipped: u32,
    /// Conflicts resolved (both sides changed).
    pub conflicts: u32,
    /// Slot breakers tripped.
    pub breakers_tripped: u32,
}

/// Why a pull did not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The user has no active Google connection.
    #[error("no active Google connection")]
    NotConnected,
    /// Another pull of this user is running (here or on another instance).
    #[error("another pull of this user is running")]
    Busy,
    /// Google failed.
    #[error(transparent)]
    Google(#[from] GoogleError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for PullError {
    fn from(e: sea_orm::DbErr) -> Self {
        PullError::Store(StoreError::Db(e))
    }
}

/// Pulls users' calendars into their slots.
pub struct Puller {
    db: DatabaseConnection,
    gateway: Arc<dyn CalendarGateway>,
    config: PullConfig,
}

/// Everything one pull of one user shares.
struct Run<'a> {
    user: UserId,
    calendar: String,
    rules: PlanRules<'a>,
    report: PullReport,
    /// Event ids a full listing returned.
    seen: HashSet<String>,
}

impl Puller {
    /// A puller reading through `gateway`.
    pub fn new(db: DatabaseConnection, gateway: Arc<dyn CalendarGateway>, config: PullConfig) -> Self {
        Self { db, gateway, config }
    }

    /// Pulls `user`'s calendar now (one pull per user at a time, across instances).
    #[tracing::instrument(skip_all, fields(user_id = %user, mode = mode.as_str()), err(level = "info"))]
    pub async fn pull(&self, user: UserId, mode: PullMode) -> Result<PullReport, PullError> {
        let started = std::time::Instant::now();
        let result = self.pull_now(user, mode).await;
        let (mode_label, result_label) = match &result {
            Ok(report) => (report.mode.as_str(), "ok"),
            Err(PullError::Busy) => (mode.as_str(), "busy"),
            Err(PullError::NotConnected) => (mode.as_str(), "not_connected"),
            Err(_) => (mode.as_str(), "error"),
        };
        observe::pull(mode_label, result_label, started.elapsed());
        result
    }

    async fn pull_now(&self, user: UserId, mode: PullMode) -> Result<PullReport, PullError> {
        let connection = match connections::find(&self.db, user.0).await? {
            Some(c) if c.status == connections::ACTIVE => c,
            _ => return Err(PullError::NotConnected),
        };
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::minutes(2));
        let Some(state) = sync_states::claim_pull(&self.db, user, lease, Utc::now()).await? else {
            return Err(PullError::Busy);
        };
        let mut run = Run {
            user,
            calendar: connection.calendar_id,
            rules: PlanRules {
                policy: self.config.policy,
                import: self.config.import,
                origin: &self.config.origin,
                calendar_zone: Tz::UTC,
            },
            report: PullReport::default(),
            seen: HashSet::new(),
        };
        let token = match mode {
            PullMode::Incremental => state.sync_token,
            PullMode::Full => None,
        };
        match self.list_and_apply(&mut run, token).await {
            Ok(next_token) => {
                let full = run.report.mode == PullMode::Full;
                sync_states::finish_pull(&self.db, user, next_token.as_deref(), full, Utc::now()).await?;
                tracing::debug!(report = ?run.report, "pulled");
                Ok(run.report)
            }
            Err(e) => {
                sync_states::fail_pull(&self.db, user, &e.to_string()).await?;
                Err(e)
            }
        }
    }

    /// Lists (incrementally from `token`, or in full) and applies every page; returns the
    /// new sync token.
    async fn list_and_apply(&self, run: &mut Run<'_>, token: Option<String>) -> Result<Option<String>, PullError> {
        match token {
            Some(token) => match self.pages(run, ListFrom::SyncToken(token)).await {
                Err(PullError::Google(GoogleError::Gone(GoneKind::FullSyncRequired))) => {
                    tracing::info!(user_id = %run.user, "sync token invalidated: full sync");
                    sync_states::drop_token(&self.db, run.user).await?;
                    audit::record(
                        &self.db,
                        run.user.0,
                        None,
                        "full_resync",
                        json!({ "reason": "fullSyncRequired" }),
                    )
                    .await?;
                    run.report = PullReport {
                        full_sync_required: true,
                        ..PullReport::default()
                    };
                    self.full(run).await
                }
                other => other,
            },
            None => self.full(run).await,
        }
    }

    async fn full(&self, run: &mut Run<'_>) -> Result<Option<String>, PullError> {
        run.report.mode = PullMode::Full;
        run.seen.clear();
        let started = Utc::now();
        let time_min = started - self.config.window;
        let token = self.pages(run, ListFrom::Window { time_min }).await?;
        self.reconcile(run, time_min, started).await?;
        Ok(token)
    }

    /// Reads and applies pages until the last one; returns its `nextSyncToken`.
    async fn pages(&self, run: &mut Run<'_>, from: ListFrom) -> Result<Option<String>, PullError> {
        let mut page_token: Option<String> = None;
        loop {
            let page = self
                .gateway
                .list_events(run.user, &run.calendar, &from, page_token.as_deref())
                .await?;
            run.report.pages += 1;
            if let Some(zone) = page.time_zone.as_deref().and_then(|z| z.parse::<Tz>().ok()) {
                run.rules.calendar_zone = zone;
            }
            if matches!(from, ListFrom::Window { .. }) {
                run.seen.extend(page.items.iter().filter_map(|e| e.id.clone()));
            }
            self.apply_page(run, &page.items).await?;
            match page.next_page_token {
                Some(next) => page_token = Some(next),
                None => return Ok(page.next_sync_token),
            }
        }
    }

    /// Plans and applies one page in one transaction.
    async fn apply_page(&self, run: &mut Run<'_>, events: &[Event]) -> Result<(), PullError> {
        run.report.events += u32::try_from(events.len()).unwrap_or(u32::MAX);
        let event_ids: Vec<String> = events.iter().filter_map(|e| e.id.clone()).collect();
        let tagged: Vec<uuid::Uuid> = events.iter().filter_map(event_slot).map(|s| s.0).collect();
        let txn = store::begin_write(&self.db).await?;
        let rows = store::slots::for_events(&txn, run.user, &event_ids, &tagged).await?;
        let by_event: HashMap<&str, &SlotRow> = rows
            .iter()
            .filter_map(|r| r.google_event_id.as_deref().map(|id| (id, r)))
            .collect();
        let by_id: HashMap<uuid::Uuid, &SlotRow> = rows.iter().map(|r| (r.id, r)).collect();
        for event in events {
            let Some(event_id) = event.id.as_deref() else { continue };
            let row = by_event.get(event_id).copied().or_else(|| {
                // An event we wrote whose link was not recorded yet (a lost answer).
                event_slot(event)
                    .and_then(|slot| by_id.get(&slot.0).copied())
                    .filter(|r| r.google_event_id.is_none())
            });
            let local = row.map(local_slot);
            let action = plan(event, local.as_ref(), &run.rules);
            self.execute(&txn, run, event, row, action).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// After a full listing: linked slots synced before the listing began whose events are
    /// not in it were deleted in Google (a full listing carries no tombstones).
    async fn reconcile(
        &self,
        run: &mut Run<'_>,
        time_min: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(), PullError> {
        let candidates = store::slots::linked_live(&self.db, run.user, time_min, started).await?;
        let missing: Vec<Uuid> = candidates
            .into_iter()
            .filter(|(_, event_id)| !run.seen.contains(event_id))
            .map(|(id, _)| id)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        tracing::info!(user_id = %run.user, missing = missing.len(), "reconciling events deleted in Google");
        let txn = store::begin_write(&self.db).await?;
        // Read inside the write transaction: what is applied is what the plan saw.
        let rows = store::slots::by_ids(&txn, &missing).await?;
        for row in &rows {
            let changed_since = row.deleted_at.is_some()
                || row.last_synced_at.is_none_or(|at| at >= started)
                || row.google_event_id.as_deref().is_none_or(|id| run.seen.contains(id));
            if changed_since {
                continue; // synced, deleted or relinked since the candidates were listed
            }
            let tombstone = Event {
                id: row.google_event_id.clone(),
                status: Some("cancelled".to_owned()),
                ..Default::default()
            };
            let action = plan(&tombstone, Some(&local_slot(row)), &run.rules);
            self.execute(&txn, run, &tombstone, Some(row), action).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn execute(
        &self,
        txn: &DatabaseTransaction,
        run: &mut Run<'_>,
        event: &Event,
        row: Option<&SlotRow>,
        action: Action,
    ) -> Result<(), PullError> {
        let now = Utc::now();
        let event_id = event.id.as_deref().unwrap_or_default();
        match (action, row) {
            (Action::Skip(SkipReason::Echo), _) => run.report.echoes += 1,
            (Action::Skip(_), _) => run.report.skipped += 1,
            (
                Action::ApplyRemote {
                    draft,
                    fingerprint,
                    conflict,
                },
                Some(row),
            ) => {
                let previous = row.last_change_side.as_deref().and_then(|s| match s {
                    "app" => Some(Side::App),
                    "google" => Some(Side::Google),
                    _ => None,
                });
                let breaker = SlotBreaker {
                    alternations: row.breaker_alternations,
                    window_start: row.breaker_window_start,
                };
                let (breaker, tripped) = breaker.after_google_change(previous, now, self.config.breaker);
                let pause = tripped.then(|| {
                    format!(
                        "{SLOT_BREAKER_PAUSE}: {} alternations between slotsync and Google within {} s; \
                         POST /sync/breaker/reset to resume",
                        breaker.alternations,
                        self.config.breaker.window.num_seconds()
                    )
                });
                let pushed = Pushed {
                    event_id,
                    etag: event.etag.as_deref(),
                    fingerprint: fingerprint.as_str(),
                };
                let after = AfterRemote { breaker, pause };
                if outbox::apply_remote(txn, row.id, row.version, &draft, pushed, &after, now).await? {
                    run.report.applied += 1;
                    if tripped {
                        run.report.breakers_tripped += 1;
                        observe::breaker_trip("slot");
                        tracing::warn!(slot_id = %row.id, "slot breaker tripped: the slot is paused");
                        audit::record(
                            txn,
                            run.user.0,
                            Some(row.id),
                            "breaker_tripped",
                            json!({ "scope": "slot", "alternations": breaker.alternations,
                                    "window_secs": self.config.breaker.window.num_seconds() }),
                        )
                        .await?;
                    }
                }
                if let Some(c) = conflict {
                    self.log_conflict(txn, run, row, event, c).await?;
                }
            }
            (Action::DeleteLocal { conflict }, Some(row)) => {
                if outbox::delete_as_remote(txn, row.id, row.version, now).await? {
                    run.report.deleted += 1;
                }
                if let Some(c) = conflict {
                    self.log_conflict(txn, run, row, event, c).await?;
                }
            }
            (Action::KeepLocal { etag, conflict }, Some(row)) => {
                outbox::adopt_etag(txn, row.id, row.version, etag.as_deref()).await?;
                self.log_conflict(txn, run, row, event, conflict).await?;
            }
            (Action::Import { draft, fingerprint }, _) => {
                let recurrence = event.recurrence.clone().unwrap_or_default();
                store::slots::insert_imported(
                    txn,
                    run.user,
                    &draft,
                    &recurrence,
                    event_id,
                    event.etag.as_deref(),
                    fingerprint.as_str(),
                    now,
                )
                .await?;
                run.report.imported += 1;
            }
            // Actions on a slot always come with the slot.
            (_, None) => run.report.skipped += 1,
        }
        Ok(())
    }

    async fn log_conflict(
        &self,
        txn: &DatabaseTransaction,
        run: &mut Run<'_>,
        row: &SlotRow,
        event: &Event,
        conflict: ConflictNote,
    ) -> Result<(), PullError> {
        run.report.conflicts += 1;
        tracing::info!(slot_id = %row.id, winner = ?conflict.winner, "conflict resolved");
        observe::conflict(winner_label(conflict.winner), "pull");
        audit::record(
            txn,
            run.user.0,
            Some(row.id),
            "conflict",
            json!({
                "kind": if conflict.deleted_in_google { "deleted_in_google" } else { "both_changed" },
                "policy": self.config.policy.as_str(),
                "winner": winner_label(conflict.winner),
                "slot_version": row.version,
                "slot_updated_at": row.updated_at,
                "google_updated_at": event.updated,
                "detected_by": "pull",
            }),
        )
        .await?;
        Ok(())
    }
}

/// What the plan needs of a stored slot.
fn local_slot(row: &SlotRow) -> LocalSlot {
    let draft = store::slots::draft(row);
    let recurrence = store::slots::recurrence(row);
    LocalSlot {
        version: row.version,
        synced_version: row.synced_version,
        synced_fingerprint: row.synced_fingerprint.clone(),
        current_fingerprint: Fingerprint::of(&draft, &recurrence, false),
        updated_at: row.updated_at,
        deleted: row.deleted_at.is_some(),
    }
}
