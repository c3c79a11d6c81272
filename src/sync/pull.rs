//! The pull: Google's changes into slots. With a sync token, `events.list` page by page;
//! without one (or after a 410), a full listing over the window, then reconciliation.
//! Each page is planned (`plan.rs`) and applied in one transaction; the new sync token is
//! saved only after the last page, so a crash replays pages, which is harmless.
//!
//! Nothing is deleted on absence alone: a linked event missing from a full listing is
//! deleted locally only when `events.get` confirms it (404/410 or `cancelled`). Deletions
//! are gathered over the whole pull and applied at its end — or, when they are more than
//! the mass-deletion guard allows, held for the user (`held.rs`). A 404 on the listing
//! itself is checked against `calendars.get`: a deleted calendar puts the connection in
//! `calendar_missing` and deletes nothing. Every page checks, under a lock on the
//! connection row, that the connection was not re-homed since the pull began.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use google_calendar3::api::Event;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use super::conflicts;
use super::held::DeletionGuard;
use super::home;
use super::not_found::NotFoundRetry;
use super::plan::{event_marks, plan, Action, LocalSlot, PlanRules, SkipReason};
use super::pull_occurrences::{apply_instance, is_instance, InstanceOutcome};
use crate::domain::recurrence::split_parent;
use crate::domain::{
    AuditKind, BreakerRule, ChangeKind, ChangeOrigin, ConflictRecord, ConnectionStatus, DetectedBy, Fingerprint,
    SlotBreaker, SlotMarks, Source, SyncSettings, UserId,
};
use crate::google::client_health::ClientHealth;
use crate::google::mapping::{event_fingerprint, event_slot, event_to_draft};
use crate::google::{CalendarGateway, GoneKind, GoogleError, ListFrom};
use crate::observe;
use crate::store::changes::{self, NewChange};
use crate::store::outbox::{self, AfterRemote, Pushed, SLOT_BREAKER_PAUSE};
use crate::store::slots::SlotRow;
use crate::store::{self, audit, connections, held_deletions, sync_states};
use crate::sync::SyncError;

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
    /// Import, filter, conflict policy and window of every user who chose nothing else
    /// (`sync_settings`).
    pub defaults: SyncSettings,
    /// This deployment's `slotsync_origin`.
    pub origin: String,
    /// The slot breaker.
    pub breaker: BreakerRule,
    /// How long one pull may hold its claim.
    pub lease: Duration,
    /// When deletions are held for the user instead of applied.
    pub guard: DeletionGuard,
    /// How a 404 on a linked event is confirmed before it counts as a deletion.
    pub not_found: NotFoundRetry,
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
    /// Of the skipped events, those the user's import filter excludes.
    pub filtered: u32,
    /// Imported slots whose event the filter now excludes: they left the user's slots,
    /// the events stay in Google.
    pub unlinked: u32,
    /// Conflicts resolved (both sides changed).
    pub conflicts: u32,
    /// Slot breakers tripped.
    pub breakers_tripped: u32,
    /// Deletions held by the mass-deletion guard (not applied; see `/sync/held-deletions`).
    pub held: u32,
}

/// Pulls users' calendars into their slots.
pub struct Puller {
    db: DatabaseConnection,
    gateway: Arc<dyn CalendarGateway>,
    config: PullConfig,
    client_health: Arc<ClientHealth>,
}

/// A deletion seen during a pull, applied (or held) at its end.
struct PendingDeletion {
    slot: Uuid,
    version: i64,
    event_id: String,
    conflict: Option<ConflictRecord>,
}

/// Everything one pull of one user shares.
struct Run<'a> {
    user: UserId,
    calendar: String,
    /// The connection's home generation the pull was started for.
    home: i64,
    /// Deletions seen so far.
    deletions: Vec<PendingDeletion>,
    /// How far back a full sync lists (the user's setting).
    window: chrono::Duration,
    rules: PlanRules<'a>,
    report: PullReport,
    /// Event ids a full listing returned.
    seen: HashSet<String>,
    /// Change-log entries of the transaction in progress, appended just before it
    /// commits (after every slot write of the transaction, so the user's log head is
    /// locked last and never held while waiting for a slot row).
    changes: Vec<NewChange>,
    /// Whether anything was logged (the feed's waiters are woken at the end).
    logged: bool,
    /// Instance items whose series was not linked yet when their page was applied (its
    /// master may come on a later page): applied once more at the end of the pull.
    pending_instances: Vec<Event>,
}

impl Puller {
    /// A puller reading through `gateway`; it pulls nothing while `client_health` says
    /// Google refuses the deployment's OAuth client.
    pub fn new(
        db: DatabaseConnection,
        gateway: Arc<dyn CalendarGateway>,
        config: PullConfig,
        client_health: Arc<ClientHealth>,
    ) -> Self {
        Self {
            db,
            gateway,
            config,
            client_health,
        }
    }

    /// Whether Google accepts the deployment's OAuth client (pulls wait while it does not).
    pub fn client_health(&self) -> &Arc<ClientHealth> {
        &self.client_health
    }

    /// Remembers that a notification of `user`'s channel led to a pull (the fallback sync
    /// pulls them less often while their channel works). Best effort: a failure is logged.
    pub async fn note_notified(&self, user: UserId) {
        if let Err(e) = store::pull_schedule::note_notified(&self.db, user, Utc::now()).await {
            tracing::debug!(user_id = %user, error = %e, "could not note the notification");
        }
    }

    /// Pulls `user`'s calendar now (one pull per user at a time, across instances).
    #[tracing::instrument(skip_all, fields(user_id = %user, mode = mode.as_str()), err(level = "info"))]
    pub async fn pull(&self, user: UserId, mode: PullMode) -> Result<PullReport, SyncError> {
        let started = std::time::Instant::now();
        let result = self.pull_now(user, mode).await;
        let (mode_label, result_label) = match &result {
            Ok(report) => (report.mode.as_str(), "ok"),
            Err(SyncError::PullRunning) => (mode.as_str(), "busy"),
            Err(SyncError::NotConnected) => (mode.as_str(), "not_connected"),
            Err(_) => (mode.as_str(), "error"),
        };
        observe::pull(mode_label, result_label, started.elapsed());
        result
    }

    async fn pull_now(&self, user: UserId, mode: PullMode) -> Result<PullReport, SyncError> {
        if let Some(degraded) = self.client_health.degraded() {
            return Err(SyncError::Google(GoogleError::ClientBroken(degraded.reason)));
        }
        let connection = match connections::find(&self.db, user).await? {
            Some(c) if c.status == ConnectionStatus::Active => c,
            _ => return Err(SyncError::NotConnected),
        };
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::minutes(2));
        let settings = store::sync_settings::find(&self.db, user)
            .await?
            .over(&self.config.defaults);
        let Some(state) = sync_states::claim_pull(&self.db, user, lease, Utc::now()).await? else {
            return Err(SyncError::PullRunning);
        };
        let mut run = Run {
            user,
            calendar: connection.calendar_id,
            home: connection.home_generation,
            deletions: Vec::new(),
            window: chrono::Duration::days(i64::from(settings.full_sync_window_days)),
            rules: PlanRules {
                policy: settings.conflict_policy,
                detected_by: DetectedBy::Pull,
                import: settings.import,
                origin: &self.config.origin,
                calendar_zone: Tz::UTC,
                filter: Some(&settings.filter),
            },
            report: PullReport::default(),
            seen: HashSet::new(),
            changes: Vec::new(),
            logged: false,
            pending_instances: Vec::new(),
        };
        let token = match mode {
            PullMode::Incremental => state.sync_token,
            PullMode::Full => None,
        };
        let listed = match self.list_and_apply(&mut run, token).await {
            Ok(next_token) => match self.apply_pending_instances(&mut run).await {
                Ok(()) => self.settle_deletions(&mut run).await.map(|()| next_token),
                Err(e) => Err(e),
            },
            Err(e) => Err(self.classify_failure(&run, e).await),
        };
        if run.logged {
            super::feed::changed(user);
        }
        match listed {
            Ok(next_token) => {
                let full = run.report.mode == PullMode::Full;
                sync_states::finish_pull(&self.db, user, run.home, next_token.as_deref(), full, Utc::now()).await?;
                tracing::debug!(report = ?run.report, "pulled");
                Ok(run.report)
            }
            Err(e) => {
                sync_states::fail_pull(&self.db, user, &e.to_string()).await?;
                Err(e)
            }
        }
    }

    /// Turns a 404 on the listing into `calendar_missing` (when `calendars.get` agrees the
    /// calendar is gone) and a missing scope into `missing_scopes`.
    async fn classify_failure(&self, run: &Run<'_>, error: SyncError) -> SyncError {
        let outcome = match &error {
            SyncError::Google(GoogleError::Gone(GoneKind::NotFound)) => {
                home::calendar_missing(&self.db, self.gateway.as_ref(), run.user, &run.calendar)
                    .await
                    .map(|gone| if gone { SyncError::CalendarMissing } else { error })
            }
            SyncError::Google(GoogleError::MissingScopes(why)) => home::scopes_missing(&self.db, run.user, why)
                .await
                .map(|()| SyncError::MissingScopes),
            _ => return error,
        };
        outcome.unwrap_or_else(SyncError::Store)
    }

    /// Lists (incrementally from `token`, or in full) and applies every page; returns the
    /// new sync token.
    async fn list_and_apply(&self, run: &mut Run<'_>, token: Option<String>) -> Result<Option<String>, SyncError> {
        match token {
            Some(token) => match self.pages(run, ListFrom::SyncToken(token)).await {
                // Any 410 on the listing, not only `fullSyncRequired` (Google also answers
                // e.g. `updatedMinTooLongAgo`, or `deleted`): the token is no good.
                Err(SyncError::Google(GoogleError::Gone(kind @ (GoneKind::FullSyncRequired | GoneKind::Deleted)))) => {
                    let reason = match kind {
                        GoneKind::FullSyncRequired => "fullSyncRequired",
                        _ => "gone (410)",
                    };
                    tracing::info!(user_id = %run.user, reason, "sync token refused: full sync");
                    sync_states::drop_token(&self.db, run.user).await?;
                    audit::record(
                        &self.db,
                        run.user,
                        None,
                        AuditKind::FullResync,
                        json!({ "reason": reason }),
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

    async fn full(&self, run: &mut Run<'_>) -> Result<Option<String>, SyncError> {
        run.report.mode = PullMode::Full;
        run.seen.clear();
        let started = Utc::now();
        let time_min = started - run.window;
        let token = self.pages(run, ListFrom::Window { time_min }).await?;
        self.reconcile(run, time_min, started).await?;
        Ok(token)
    }

    /// Reads and applies pages until the last one; returns its `nextSyncToken`.
    async fn pages(&self, run: &mut Run<'_>, from: ListFrom) -> Result<Option<String>, SyncError> {
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
    async fn apply_page(&self, run: &mut Run<'_>, page: &[Event]) -> Result<(), SyncError> {
        run.report.events += u32::try_from(page.len()).unwrap_or(u32::MAX);
        // Instances of a series become exceptions of its slot, after the page's masters.
        let (instances, events): (Vec<&Event>, Vec<&Event>) = page.iter().partition(|e| is_instance(e));
        let mut event_ids: Vec<String> = events.iter().filter_map(|e| e.id.clone()).collect();
        // The series a "this and following" split cut a new series from.
        let parents: Vec<String> = event_ids
            .iter()
            .filter_map(|id| split_parent(id).map(str::to_owned))
            .collect();
        event_ids.extend(parents);
        let tagged: Vec<uuid::Uuid> = events.iter().filter_map(|e| event_slot(e)).map(|s| s.0).collect();
        let txn = store::begin_write(&self.db).await?;
        if connections::home_locked(&txn, run.user).await? != Some(run.home) {
            return Err(SyncError::Rehomed);
        }
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
            if row.is_none() {
                // The second part of a series split in Google: its own slot, linked to
                // the first (whoever made the first, and whatever the import setting).
                let parent = split_parent(event_id).and_then(|p| by_event.get(p).copied());
                if let Some(parent) = parent {
                    self.import_split(&txn, run, event, parent).await?;
                    continue;
                }
            }
            let local = row.map(local_slot);
            let action = plan(event, local.as_ref(), &run.rules);
            self.execute(&txn, run, event, row, action).await?;
        }
        for event in instances {
            self.apply_instance(&txn, run, event, true).await?;
        }
        flush_changes(&txn, run).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Imports the second part of a series split in Google ("this and following") as a
    /// slot of its own whose `series_of` is `parent`'s.
    async fn import_split(
        &self,
        txn: &DatabaseTransaction,
        run: &mut Run<'_>,
        event: &Event,
        parent: &SlotRow,
    ) -> Result<(), SyncError> {
        let zone = run.rules.calendar_zone;
        let (Ok(draft), Some(fingerprint)) = (event_to_draft(event, zone), event_fingerprint(event, zone)) else {
            run.report.skipped += 1;
            return Ok(());
        };
        if event.status.as_deref() == Some("cancelled") {
            run.report.skipped += 1;
            return Ok(());
        }
        // The part keeps what the series was (read-only, a meeting), whatever the filter.
        let marks = run
            .rules
            .filter
            .and_then(|f| event_marks(event, f))
            .unwrap_or_else(|| marks_of(parent));
        let imported = store::slots::insert_imported(
            txn,
            run.user,
            &draft,
            event.recurrence.as_deref().unwrap_or(&[]),
            event.id.as_deref().unwrap_or_default(),
            event.etag.as_deref(),
            fingerprint.as_str(),
            run.home,
            Some(parent.id),
            &marks,
            Utc::now(),
        )
        .await?;
        run.report.imported += 1;
        run.changes.push(NewChange::slot(
            ChangeKind::SlotCreated,
            ChangeOrigin::Google,
            &imported,
        ));
        Ok(())
    }

    /// Applies one instance item as an exception of its series' slot. Without a linked
    /// series, it waits for the end of the pull (`defer`) or is skipped.
    async fn apply_instance(
        &self,
        txn: &DatabaseTransaction,
        run: &mut Run<'_>,
        event: &Event,
        defer: bool,
    ) -> Result<(), SyncError> {
        // The series itself was deleted in Google in this same pull: its exceptions come
        // along as tombstones. Applying one would make a new version of the slot, and the
        // deletion (settled at the end of the pull, at the version it saw) would then no
        // longer apply: the series would live on here with no event in Google.
        let series = event.recurring_event_id.as_deref();
        if series.is_some() && run.deletions.iter().any(|d| Some(d.event_id.as_str()) == series) {
            run.report.skipped += 1;
            return Ok(());
        }
        let outcome = apply_instance(txn, run.user, event, run.rules.policy, run.home, Utc::now()).await?;
        match outcome {
            InstanceOutcome::NoSeries if defer => run.pending_instances.push(event.clone()),
            InstanceOutcome::NoSeries | InstanceOutcome::Skipped => run.report.skipped += 1,
            InstanceOutcome::Echo => run.report.echoes += 1,
            InstanceOutcome::KeptLocal => run.report.conflicts += 1,
            InstanceOutcome::Applied(entry) => {
                run.report.applied += 1;
                run.changes.push(*entry);
            }
        }
        Ok(())
    }

    /// Applies the instance items whose series was linked only by a later page.
    async fn apply_pending_instances(&self, run: &mut Run<'_>) -> Result<(), SyncError> {
        if run.pending_instances.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut run.pending_instances);
        let txn = store::begin_write(&self.db).await?;
        if connections::home_locked(&txn, run.user).await? != Some(run.home) {
            return Err(SyncError::Rehomed);
        }
        for event in &pending {
            self.apply_instance(&txn, run, event, false).await?;
        }
        flush_changes(&txn, run).await?;
        txn.commit().await?;
        Ok(())
    }

    /// After a full listing: linked slots synced before the listing began whose events are
    /// not in it may have been deleted in Google (a full listing carries no tombstones).
    /// Each is asked for with `events.get`: only a 404/410 or a `cancelled` event is a
    /// deletion; an event that is there (moved out of the window, say) is planned like
    /// any listed event; an error leaves the slot alone until the next full sync.
    async fn reconcile(
        &self,
        run: &mut Run<'_>,
        time_min: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let candidates = store::slots::linked_live(&self.db, run.user, time_min, started).await?;
        let missing: Vec<(Uuid, String)> = candidates
            .into_iter()
            .filter(|(_, event_id)| !run.seen.contains(event_id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        tracing::info!(user_id = %run.user, missing = missing.len(), "confirming events missing from the listing");
        let mut confirmed: HashMap<Uuid, Event> = HashMap::new();
        for (slot, event_id) in &missing {
            let get = || self.gateway.get_event(run.user, &run.calendar, event_id);
            let event = match self.config.not_found.run("events.get", get).await {
                Ok(event) => event,
                Err(GoogleError::Gone(GoneKind::NotFound | GoneKind::Deleted)) => Event {
                    id: Some(event_id.clone()),
                    status: Some("cancelled".to_owned()),
                    ..Default::default()
                },
                Err(e) => {
                    tracing::info!(user_id = %run.user, event_id, error = %e, "could not confirm a missing event; left alone");
                    continue;
                }
            };
            confirmed.insert(*slot, event);
        }
        let ids: Vec<Uuid> = confirmed.keys().copied().collect();
        let txn = store::begin_write(&self.db).await?;
        if connections::home_locked(&txn, run.user).await? != Some(run.home) {
            return Err(SyncError::Rehomed);
        }
        // Read inside the write transaction: what is applied is what the plan saw.
        let rows = store::slots::by_ids(&txn, &ids).await?;
        for row in &rows {
            let Some(event) = confirmed.get(&row.id) else { continue };
            let changed_since = row.deleted_at.is_some()
                || row.last_synced_at.is_none_or(|at| at >= started)
                || row.google_event_id.as_deref() != event.id.as_deref();
            if changed_since {
                continue; // synced, deleted or relinked since the candidates were listed
            }
            let action = plan(event, Some(&local_slot(row)), &run.rules);
            self.execute(&txn, run, event, Some(row), action).await?;
        }
        flush_changes(&txn, run).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Applies the deletions the pull gathered — or holds them all for the user when they
    /// are more than the guard allows at once. Deletions already held stay held.
    async fn settle_deletions(&self, run: &mut Run<'_>) -> Result<(), SyncError> {
        if run.deletions.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = run.deletions.iter().map(|d| d.slot).collect();
        let already: HashSet<Uuid> = held_deletions::held_among(&self.db, &ids).await?.into_iter().collect();
        let deletions: Vec<PendingDeletion> = std::mem::take(&mut run.deletions)
            .into_iter()
            .filter(|d| !already.contains(&d.slot))
            .collect();
        if deletions.is_empty() {
            return Ok(());
        }
        let linked = store::slots::count_linked_live(&self.db, run.user).await?;
        let hold = self.config.guard.holds(deletions.len() as u64, linked);
        let now = Utc::now();
        let txn = store::begin_write(&self.db).await?;
        if connections::home_locked(&txn, run.user).await? != Some(run.home) {
            return Err(SyncError::Rehomed);
        }
        if hold {
            for d in &deletions {
                held_deletions::hold(&txn, run.user, d.slot, &d.event_id, d.version, now).await?;
            }
            run.report.held = u32::try_from(deletions.len()).unwrap_or(u32::MAX);
            tracing::warn!(user_id = %run.user, held = deletions.len(), linked, "mass deletion in Google held for the user");
            audit::record(
                &txn,
                run.user,
                None,
                AuditKind::DeletionsHeld,
                json!({ "count": deletions.len(), "live_linked_slots": linked,
                        "allowed_at_once": self.config.guard.allowed(linked),
                        "next": "GET /sync/held-deletions; POST /sync/held-deletions/apply or /discard" }),
            )
            .await?;
        } else {
            for d in deletions {
                if outbox::delete_as_remote(&txn, d.slot, d.version, run.home, now).await? {
                    run.report.deleted += 1;
                    log_slot(&txn, run, d.slot, ChangeKind::SlotDeleted, ChangeOrigin::Google).await?;
                }
                if let Some(c) = d.conflict {
                    run.report.conflicts += 1;
                    conflicts::log(&txn, run.user, d.slot, &c).await?;
                }
            }
        }
        flush_changes(&txn, run).await?;
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
    ) -> Result<(), SyncError> {
        let now = Utc::now();
        let event_id = event.id.as_deref().unwrap_or_default();
        // An imported slot shows what its event is now (a type, a meeting's attendees and
        // organizer are not in the fingerprint: an echo may carry a change of them).
        if let (Some(row), Some(filter)) = (row, run.rules.filter) {
            let stays = !matches!(action, Action::Unlink { .. } | Action::DeleteLocal { .. });
            if row.source == Source::Google && row.deleted_at.is_none() && stays {
                if let Some(marks) = event_marks(event, filter) {
                    if marks != marks_of(row) {
                        store::slots::set_marks(txn, row.id, &marks).await?;
                    }
                }
            }
        }
        match (action, row) {
            (Action::Skip(SkipReason::Echo), _) => run.report.echoes += 1,
            (Action::Skip(SkipReason::Filtered), _) => {
                run.report.skipped += 1;
                run.report.filtered += 1;
            }
            (Action::Skip(_), _) => run.report.skipped += 1,
            (Action::Unlink { why }, Some(row)) => {
                if outbox::unlink_filtered(txn, row.id, row.version, run.home, now).await? {
                    run.report.unlinked += 1;
                    let detail = json!({ "reason": "import_filter", "filtered": why.to_string(),
                                         "google_event_id": event_id });
                    if let Some(entry) = changes::slot_entry(
                        txn,
                        run.user,
                        row.id,
                        ChangeKind::SlotDeleted,
                        ChangeOrigin::System,
                        detail,
                    )
                    .await?
                    {
                        run.changes.push(entry);
                    }
                }
            }
            (
                Action::ApplyRemote {
                    draft,
                    fingerprint,
                    conflict,
                },
                Some(row),
            ) => {
                let previous = row.last_change_side;
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
                    home: run.home,
                };
                let after = AfterRemote { breaker, pause };
                let recurrence = event.recurrence.clone().unwrap_or_default();
                if outbox::apply_remote(txn, row.id, row.version, &draft, &recurrence, pushed, &after, now).await? {
                    run.report.applied += 1;
                    // A series' rule or times changed in Google (a "this and following"
                    // split truncates it): exceptions off the new occurrences go.
                    if let Ok(rule) = crate::domain::Recurrence::parse(&recurrence) {
                        super::occurrences::drop_stray(txn, row, &rule, &draft).await?;
                    }
                    super::occurrences::requeue_pending(txn, row, now).await?;
                    log_slot(txn, run, row.id, ChangeKind::SlotUpdated, ChangeOrigin::Google).await?;
                    if tripped {
                        log_slot(txn, run, row.id, ChangeKind::SlotPaused, ChangeOrigin::System).await?;
                        run.report.breakers_tripped += 1;
                        observe::breaker_trip("slot");
                        tracing::warn!(slot_id = %row.id, "slot breaker tripped: the slot is paused");
                        audit::record(
                            txn,
                            run.user,
                            Some(row.id),
                            AuditKind::BreakerTripped,
                            json!({ "scope": "slot", "alternations": breaker.alternations,
                                    "window_secs": self.config.breaker.window.num_seconds() }),
                        )
                        .await?;
                    }
                }
                if let Some(c) = conflict {
                    run.report.conflicts += 1;
                    conflicts::log(txn, run.user, row.id, &c).await?;
                }
            }
            (Action::DeleteLocal { conflict }, Some(row)) => {
                run.deletions.push(PendingDeletion {
                    slot: row.id,
                    version: row.version,
                    event_id: row.google_event_id.clone().unwrap_or_else(|| event_id.to_owned()),
                    conflict,
                });
            }
            (Action::KeepLocal { etag, conflict }, Some(row)) => {
                outbox::adopt_etag(txn, row.id, row.version, etag.as_deref()).await?;
                // Ours is written over a master someone changed: its overrides go again.
                store::occurrences::forget_synced(txn, row.id).await?;
                run.report.conflicts += 1;
                conflicts::log(txn, run.user, row.id, &conflict).await?;
            }
            (
                Action::Import {
                    draft,
                    fingerprint,
                    marks,
                },
                _,
            ) => {
                let recurrence = event.recurrence.clone().unwrap_or_default();
                let imported = store::slots::insert_imported(
                    txn,
                    run.user,
                    &draft,
                    &recurrence,
                    event_id,
                    event.etag.as_deref(),
                    fingerprint.as_str(),
                    run.home,
                    None,
                    &marks,
                    now,
                )
                .await?;
                run.report.imported += 1;
                run.changes.push(NewChange::slot(
                    ChangeKind::SlotCreated,
                    ChangeOrigin::Google,
                    &imported,
                ));
            }
            // Actions on a slot always come with the slot.
            (_, None) => run.report.skipped += 1,
        }
        Ok(())
    }
}

/// Queues a log entry for slot `slot` as the transaction now holds it.
async fn log_slot(
    txn: &DatabaseTransaction,
    run: &mut Run<'_>,
    slot: Uuid,
    kind: ChangeKind,
    origin: ChangeOrigin,
) -> Result<(), SyncError> {
    if let Some(entry) = changes::slot_entry(txn, run.user, slot, kind, origin, serde_json::Value::Null).await? {
        run.changes.push(entry);
    }
    Ok(())
}

/// Appends the transaction's queued log entries (just before it commits).
async fn flush_changes(txn: &DatabaseTransaction, run: &mut Run<'_>) -> Result<(), SyncError> {
    let entries = std::mem::take(&mut run.changes);
    if changes::append(txn, run.user, entries, Utc::now()).await?.is_some() {
        run.logged = true;
    }
    Ok(())
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
        imported: row.source == Source::Google,
    }
}

/// The marks a stored slot carries.
fn marks_of(row: &SlotRow) -> SlotMarks {
    SlotMarks {
        read_only_reason: row.read_only_reason.clone(),
        event_type: row.event_type.clone(),
        attendee_count: row.attendee_count,
    }
}
