//! Pushing one claimed slot to Google: insert (derived id), patch with `If-Match`, or
//! delete; then the bookkeeping for each outcome. When Google's event moved under the push
//! (412, a 409 on an event edited since, or the event deleted), the plan (`plan.rs`, the
//! decision the pull makes too) says what happens; conflicts are logged as it built them.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use google_calendar3::api::Event;
use sea_orm::DatabaseConnection;
use serde_json::{json, Value};

use super::conflicts;
use super::not_found::NotFoundRetry;
use super::plan::{plan, Action, LocalSlot, PlanRules, SkipReason};
use crate::domain::{
    AuditKind, Backoff, ChangeKind, ChangeOrigin, ConflictPolicy, DetectedBy, EventId, Fingerprint, SlotBreaker,
    SlotId, UserId,
};
use crate::google::client_health::ClientHealth;
use crate::google::mapping::EventContent;
use crate::google::{CalendarGateway, ConflictKind, GoneKind, GoogleError};
use crate::observe;
use crate::store::changes;
use crate::store::outbox::{self, Pushed};
use crate::store::slots::SlotRow;
use crate::store::{self, audit, occurrences, sync_states, GroupCommit, StoreError};

/// How the push engine behaves (from the settings).
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Pushes in flight at once.
    pub concurrency: usize,
    /// Slots of one user claimed (queued or pushing) at once, across every instance.
    pub per_user_in_flight: usize,
    /// How long a claim holds a slot.
    pub lease: Duration,
    /// Retry schedule for retryable failures.
    pub backoff: Backoff,
    /// Who wins a conflict.
    pub policy: ConflictPolicy,
    /// `slotsync_origin` of every event written.
    pub origin: String,
    /// Consecutive failures of one user that open the user's breaker.
    pub breaker_failures: u32,
    /// How long the user's breaker stays open.
    pub breaker_cooldown: Duration,
    /// Longest idle wait before the outbox is looked at again.
    pub idle_poll: Duration,
    /// How a 404 on a linked event is confirmed before it counts as a deletion.
    pub not_found: NotFoundRetry,
}

/// How a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Google holds the slot's content (or its deletion).
    Pushed,
    /// Google's version won a conflict and the slot took it.
    GoogleKept,
    /// The slot will be retried at its `next_push_at`.
    Retrying(String),
    /// The slot failed for good.
    Failed(String),
    /// The user's pushes are paused (re-authorisation needed).
    Paused(String),
    /// Nothing was done (no active connection, or the claim ran out).
    Skipped,
}

impl PushOutcome {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            PushOutcome::Pushed => "pushed",
            PushOutcome::GoogleKept => "google_kept",
            PushOutcome::Retrying(_) => "retrying",
            PushOutcome::Failed(_) => "failed",
            PushOutcome::Paused(_) => "paused",
            PushOutcome::Skipped => "skipped",
        }
    }
}

/// What a push needs to know of the slot's owner (read when the slot was claimed).
#[derive(Debug, Clone)]
pub struct Owner {
    /// The calendar the owner's events live in.
    pub calendar: String,
    /// The connection's home generation that calendar belongs to.
    pub home: i64,
    /// Whether the owner had consecutive Google failures counted: a success resets them.
    pub had_failures: bool,
}

/// Pushes slots for one deployment.
pub struct Pusher {
    pub(super) db: DatabaseConnection,
    /// Claims and successful pushes' bookkeeping are group-committed.
    pub(super) writes: Arc<GroupCommit>,
    pub(super) gateway: Arc<dyn CalendarGateway>,
    pub(super) config: PushConfig,
    /// Set at shutdown: draining stops claiming.
    pub(super) stopping: std::sync::atomic::AtomicBool,
    /// Whether Google accepts the deployment's OAuth client: while it does not, nothing is
    /// claimed (the slots wait, pending).
    pub(super) client_health: Arc<ClientHealth>,
}

/// What Google ended up holding for a slot.
enum Settled {
    /// Our content (or deletion), with this event id and etag.
    Ours { event_id: String, etag: Option<String> },
    /// Google's content won and was applied to the slot.
    Theirs,
}

/// Why a push step stopped: Google said no, the calendar itself is gone (the connection
/// is now `calendar_missing`), or the database failed.
enum StepError {
    Google(GoogleError),
    CalendarMissing,
    Store(StoreError),
}

impl From<GoogleError> for StepError {
    fn from(e: GoogleError) -> Self {
        StepError::Google(e)
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

impl From<sea_orm::DbErr> for StepError {
    fn from(e: sea_orm::DbErr) -> Self {
        StepError::Store(StoreError::Db(e))
    }
}

type Step = Result<Settled, StepError>;

/// One push in progress: the claimed row and what it should look like at Google.
struct Job<'a> {
    row: &'a SlotRow,
    user: UserId,
    calendar: String,
    home: i64,
    content: EventContent<'a>,
    fingerprint: Fingerprint,
}

impl Pusher {
    /// A pusher writing through `gateway`, pausing while `client_health` says Google
    /// refuses the deployment's OAuth client.
    pub fn new(
        writes: Arc<GroupCommit>,
        gateway: Arc<dyn CalendarGateway>,
        config: PushConfig,
        client_health: Arc<ClientHealth>,
    ) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
            gateway,
            config,
            stopping: std::sync::atomic::AtomicBool::new(false),
            client_health,
        }
    }

    /// Stops [`Pusher::drain`] from claiming more (the process is shutting down).
    pub fn stop(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Pushes one claimed slot for its `owner` (`None` if the owner's connection is no
    /// longer active: the slot is given back) and records the outcome.
    #[tracing::instrument(skip_all, fields(user_id = %row.user_id, slot_id = %row.id, version = row.version))]
    pub async fn push(&self, row: &SlotRow, owner: Option<&Owner>) -> Result<PushOutcome, StoreError> {
        let user = UserId(row.user_id);
        let Some(owner) = owner else {
            outbox::release(&self.db, row.id).await?;
            return Ok(PushOutcome::Skipped);
        };
        let draft = store::slots::draft(row);
        let recurrence = store::slots::recurrence(row);
        let content = EventContent {
            slot: SlotId(row.id),
            draft: &draft,
            recurrence: &recurrence,
            origin: &self.config.origin,
        };
        let deleted = row.deleted_at.is_some();
        let job = Job {
            row,
            user,
            calendar: owner.calendar.clone(),
            home: owner.home,
            fingerprint: Fingerprint::of(&draft, &recurrence, deleted),
            content,
        };
        let result = if deleted {
            self.delete(&job).await
        } else {
            match &row.google_event_id {
                None => self.insert(&job, EventId::from_slot(SlotId(row.id))).await,
                Some(id) => self.update(&job, id).await,
            }
        };
        // A series' exceptions follow its master, to the master's instances.
        let result = match result {
            Ok(Settled::Ours { event_id, etag }) if !deleted && row.recurrence.is_some() => {
                match self.push_exceptions(&job, &event_id).await {
                    Ok(exceptions) => Ok((Settled::Ours { event_id, etag }, exceptions)),
                    Err(e) => Err(e),
                }
            }
            other => other.map(|settled| (settled, Vec::new())),
        };
        let now = Utc::now();
        match result {
            Ok((Settled::Ours { event_id, etag }, exceptions)) => {
                let (slot, version, fingerprint, home) =
                    (row.id, row.version, job.fingerprint.as_str().to_owned(), job.home);
                self.writes
                    .write_one(move |txn| {
                        Box::pin(async move {
                            for e in &exceptions {
                                let synced = occurrences::Synced {
                                    fingerprint: &e.fingerprint,
                                    etag: e.etag.as_deref(),
                                };
                                occurrences::record_pushed(txn, slot, &e.original_start, synced).await?;
                            }
                            let pushed = Pushed {
                                event_id: &event_id,
                                etag: etag.as_deref(),
                                fingerprint: &fingerprint,
                                home,
                            };
                            outbox::record_pushed(txn, slot, version, pushed, now).await
                        })
                    })
                    .await?;
                if owner.had_failures {
                    sync_states::note_success(&self.db, user).await?;
                }
                Ok(PushOutcome::Pushed)
            }
            Ok((Settled::Theirs, _)) => {
                if owner.had_failures {
                    sync_states::note_success(&self.db, user).await?;
                }
                Ok(PushOutcome::GoogleKept)
            }
            Err(StepError::Google(e)) => self.record_error(row, owner.home, user, e).await,
            Err(StepError::CalendarMissing) => Ok(PushOutcome::Paused(
                "the calendar was deleted in Google; the connection is calendar_missing".into(),
            )),
            // The lease runs out and the slot is claimed again.
            Err(StepError::Store(e)) => Err(e),
        }
    }

    async fn record_error(
        &self,
        row: &SlotRow,
        home: i64,
        user: UserId,
        error: GoogleError,
    ) -> Result<PushOutcome, StoreError> {
        let message = error.to_string();
        let now = Utc::now();
        match error {
            GoogleError::MissingScopes(why) => {
                super::home::scopes_missing(&self.db, user, &why).await?;
                outbox::release(&self.db, row.id).await?;
                Ok(PushOutcome::Paused(message))
            }
            GoogleError::Auth(_) => {
                let reason = format!("{message}; pushes resume when the Google account is connected again");
                outbox::pause_pending(&self.db, user, &reason).await?;
                // Reconnected meanwhile: nothing was paused, and this slot is due again now.
                outbox::release(&self.db, row.id).await?;
                Ok(PushOutcome::Paused(reason))
            }
            // The deployment's OAuth client, not this slot: it waits, pending, uncounted; the
            // worker claims nothing until the client is accepted again.
            GoogleError::ClientBroken(_) => {
                outbox::release(&self.db, row.id).await?;
                Ok(PushOutcome::Skipped)
            }
            GoogleError::Fatal(_) | GoogleError::Forbidden(_) => {
                tracing::warn!(error = %message, "push failed for good");
                let txn = store::begin_write(&self.db).await?;
                if outbox::record_failed(&txn, row.id, row.version, home, &message).await? {
                    audit::record(
                        &txn,
                        user,
                        Some(row.id),
                        AuditKind::PushFailed,
                        json!({ "error": message }),
                    )
                    .await?;
                    log_slot(
                        &txn,
                        user,
                        row.id,
                        ChangeKind::SlotSyncFailed,
                        ChangeOrigin::System,
                        json!({ "error": message }),
                    )
                    .await?;
                }
                txn.commit().await?;
                super::feed::changed(user);
                Ok(PushOutcome::Failed(message))
            }
            // Retryable, or a conflict that moved again while being resolved: try later.
            _ => {
                let attempts = row.push_attempts.saturating_add(1);
                let delay = self
                    .config
                    .backoff
                    .delay(u32::try_from(attempts).unwrap_or(u32::MAX), rand::random::<f64>());
                let retry_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::minutes(15));
                tracing::debug!(error = %message, attempts, ?delay, "push will be retried");
                outbox::record_retry(&self.db, row.id, row.version, home, attempts, retry_at, &message).await?;
                let tripped = sync_states::note_failure(
                    &self.db,
                    user,
                    &message,
                    self.config.breaker_failures,
                    chrono::Duration::from_std(self.config.breaker_cooldown).unwrap_or(chrono::Duration::minutes(1)),
                    now,
                )
                .await?;
                if tripped {
                    observe::breaker_trip("user");
                    tracing::warn!(user_id = %user, "user breaker opened after repeated Google failures");
                    audit::record(
                        &self.db,
                        user,
                        None,
                        AuditKind::BreakerTripped,
                        json!({ "scope": "user", "consecutive_failures": self.config.breaker_failures,
                                "cooldown_secs": self.config.breaker_cooldown.as_secs(), "last_error": message }),
                    )
                    .await?;
                }
                Ok(PushOutcome::Retrying(message))
            }
        }
    }

    /// Inserts the event under `id`. A 409 means the id exists (a retry after a lost
    /// response, an event left in this calendar by an earlier connection, or a
    /// re-creation): fetch it and make it hold our content. If it exists but was deleted,
    /// the next id in the slot's line is tried: the slot has no event in this calendar, and
    /// a deletion it never saw is not a reason to lose it. A 404 can only mean that the
    /// calendar is gone (or a passing error): that is checked.
    async fn insert(&self, job: &Job<'_>, id: EventId) -> Step {
        let mut event = job.content.to_event();
        event.id = Some(id.as_str().to_owned());
        match self.gateway.insert_event(job.user, &job.calendar, event).await {
            Ok(created) => Ok(ours(id.as_str(), &created)),
            Err(GoogleError::Conflict(ConflictKind::Duplicate)) => {
                let existing = match self.get_known(job, id.as_str()).await {
                    Ok(e) if !is_cancelled(&e) => e,
                    Ok(_) | Err(GoogleError::Gone(_)) => return Box::pin(self.recreate(job, id.as_str())).await,
                    Err(e) => return Err(e.into()),
                };
                // Ours already (a lost answer), an older write of ours, or edited in
                // Google since: the plan decides, as for a 412.
                self.settle_against(job, id.as_str(), &existing).await
            }
            Err(GoogleError::Gone(GoneKind::NotFound)) => Err(self.not_found(job).await),
            Err(e) => Err(e.into()),
        }
    }

    /// Pushes the series' exceptions Google does not hold yet (after its master).
    async fn push_exceptions(
        &self,
        job: &Job<'_>,
        event_id: &str,
    ) -> Result<Vec<super::push_occurrences::PushedException>, StepError> {
        let exceptions = occurrences::for_slot(&self.db, job.row.id).await?;
        let target = super::push_occurrences::Target {
            user: job.user,
            calendar: &job.calendar,
            slot: SlotId(job.row.id),
            event_id,
            fresh: job.row.google_event_id.as_deref() != Some(event_id),
        };
        Ok(super::push_occurrences::push_exceptions(
            self.gateway.as_ref(),
            target,
            job.content.draft,
            &exceptions,
            &self.config.origin,
        )
        .await?)
    }

    /// A 404 where the event cannot be the cause: is the calendar gone?
    async fn not_found(&self, job: &Job<'_>) -> StepError {
        match super::home::calendar_missing(&self.db, self.gateway.as_ref(), job.user, &job.calendar).await {
            Ok(true) => StepError::CalendarMissing,
            Ok(false) => StepError::Google(GoogleError::Retryable(
                "404 from an insert while the calendar exists; will retry".into(),
            )),
            Err(e) => StepError::Store(e),
        }
    }

    /// The event answered 404 or 410: deleted in Google — unless the whole calendar is
    /// gone, which deletes nothing.
    async fn gone(&self, job: &Job<'_>, event_id: &str, kind: GoneKind) -> Step {
        if kind == GoneKind::NotFound
            && super::home::calendar_missing(&self.db, self.gateway.as_ref(), job.user, &job.calendar).await?
        {
            return Err(StepError::CalendarMissing);
        }
        // What a pull would see: the event's tombstone.
        let tombstone = Event {
            id: Some(event_id.to_owned()),
            status: Some("cancelled".to_owned()),
            ..Default::default()
        };
        self.settle_against(job, event_id, &tombstone).await
    }

    /// Patches the linked event, conditional on the etag of the last sync.
    async fn update(&self, job: &Job<'_>, event_id: &str) -> Step {
        let patch = job.content.to_patch();
        let etag = job.row.google_etag.as_deref();
        let patched = self
            .config
            .not_found
            .run("events.patch", || {
                self.gateway
                    .patch_event(job.user, &job.calendar, event_id, &patch, etag)
            })
            .await;
        match patched {
            Ok(event) => Ok(ours(event_id, &event)),
            Err(GoogleError::Conflict(ConflictKind::EtagMismatch)) => self.resolve(job, event_id).await,
            Err(GoogleError::Gone(kind)) => self.gone(job, event_id, kind).await,
            Err(GoogleError::Forbidden(why)) => self.forbidden(job, event_id, why).await,
            Err(e) => Err(e.into()),
        }
    }

    /// `events.get` of an event slotsync knows, a 404 asked again before it is believed.
    async fn get_known(&self, job: &Job<'_>, event_id: &str) -> Result<Event, GoogleError> {
        self.config
            .not_found
            .run("events.get", || {
                self.gateway.get_event(job.user, &job.calendar, event_id)
            })
            .await
    }

    /// A write to the linked event answered 403 without a reason to act on. Google has
    /// answered so for events deleted in its UI (instead of 410 `deleted`): `events.get`
    /// tells. Deleted (`cancelled`, 404, 410) → exactly as for a 410; there → a refusal
    /// for good.
    async fn forbidden(&self, job: &Job<'_>, event_id: &str, why: String) -> Step {
        match self.get_known(job, event_id).await {
            Ok(event) if is_cancelled(&event) => {
                tracing::info!(event_id, "a 403 on a write was an event deleted in Google");
                self.gone(job, event_id, GoneKind::Deleted).await
            }
            Ok(_) => Err(GoogleError::Forbidden(why).into()),
            Err(GoogleError::Gone(kind)) => self.gone(job, event_id, kind).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn patch(&self, job: &Job<'_>, event_id: &str, etag: Option<&str>) -> Step {
        let patch = job.content.to_patch();
        let event = self
            .gateway
            .patch_event(job.user, &job.calendar, event_id, &patch, etag)
            .await?;
        Ok(ours(event_id, &event))
    }

    /// The event changed in Google since the last sync (412): fetch it and settle.
    async fn resolve(&self, job: &Job<'_>, event_id: &str) -> Step {
        let current = match self.get_known(job, event_id).await {
            Ok(e) => e,
            Err(GoogleError::Gone(kind)) => return self.gone(job, event_id, kind).await,
            Err(e) => return Err(e.into()),
        };
        self.settle_against(job, event_id, &current).await
    }

    /// Google holds `current` (possibly a tombstone) under `event_id`, not what the slot
    /// last synced: the plan — the same decision the pull makes — says what happens. Only
    /// metadata moved, or an older write of ours is there: write ours with Google's etag.
    /// Both sides changed: the policy's winner, logged; a local win over a deletion
    /// re-creates the event.
    async fn settle_against(&self, job: &Job<'_>, event_id: &str, current: &Event) -> Step {
        let local = LocalSlot {
            version: job.row.version,
            synced_version: job.row.synced_version,
            synced_fingerprint: job.row.synced_fingerprint.clone(),
            current_fingerprint: job.fingerprint.clone(),
            updated_at: job.row.updated_at,
            deleted: false,
            imported: false,
        };
        // The user's own conflict policy, if they chose one (`PATCH /sync/settings`).
        let chosen = store::sync_settings::find(&self.db, job.user).await?;
        let rules = PlanRules {
            policy: chosen.conflict_policy.unwrap_or(self.config.policy),
            detected_by: DetectedBy::Push,
            import: false,
            origin: &self.config.origin,
            calendar_zone: zone(job),
            filter: None,
        };
        let now = Utc::now();
        match plan(current, Some(&local), &rules) {
            Action::Skip(SkipReason::AlreadyEqual) => Ok(ours(event_id, current)),
            Action::KeepLocal { etag, conflict } => {
                conflicts::log(&self.db, job.user, job.row.id, &conflict).await?;
                // Ours is written over a master someone changed: its overrides go again.
                occurrences::forget_synced(&self.db, job.row.id).await?;
                if is_cancelled(current) {
                    Box::pin(self.recreate(job, event_id)).await
                } else {
                    self.patch(job, event_id, etag.as_deref()).await
                }
            }
            Action::ApplyRemote {
                draft,
                fingerprint,
                conflict,
            } => {
                let txn = store::begin_write(&self.db).await?;
                if let Some(c) = &conflict {
                    conflicts::log(&txn, job.user, job.row.id, c).await?;
                }
                let pushed = Pushed {
                    event_id,
                    etag: current.etag.as_deref(),
                    fingerprint: fingerprint.as_str(),
                    home: job.home,
                };
                let after = outbox::AfterRemote {
                    breaker: SlotBreaker {
                        alternations: job.row.breaker_alternations,
                        window_start: job.row.breaker_window_start,
                    },
                    pause: None,
                };
                let applied = outbox::apply_remote(
                    &txn,
                    job.row.id,
                    job.row.version,
                    &draft,
                    current.recurrence.as_deref().unwrap_or(&[]),
                    pushed,
                    &after,
                    now,
                )
                .await?;
                if applied {
                    let recurrence = current.recurrence.as_deref().unwrap_or(&[]);
                    if let Ok(rule) = crate::domain::Recurrence::parse(recurrence) {
                        super::occurrences::drop_stray(&txn, job.row, &rule, &draft).await?;
                    }
                    super::occurrences::requeue_pending(&txn, job.row, now).await?;
                    log_slot(
                        &txn,
                        job.user,
                        job.row.id,
                        ChangeKind::SlotUpdated,
                        ChangeOrigin::Google,
                        Value::Null,
                    )
                    .await?;
                }
                txn.commit().await?;
                if applied {
                    super::feed::changed(job.user);
                } else {
                    // The slot changed again locally: push that version next.
                    outbox::release(&self.db, job.row.id).await?;
                }
                Ok(Settled::Theirs)
            }
            Action::DeleteLocal { conflict } => {
                let txn = store::begin_write(&self.db).await?;
                if let Some(c) = &conflict {
                    conflicts::log(&txn, job.user, job.row.id, c).await?;
                }
                let deleted = outbox::delete_as_remote(&txn, job.row.id, job.row.version, job.home, now).await?;
                if deleted {
                    log_slot(
                        &txn,
                        job.user,
                        job.row.id,
                        ChangeKind::SlotDeleted,
                        ChangeOrigin::Google,
                        Value::Null,
                    )
                    .await?;
                }
                txn.commit().await?;
                if deleted {
                    super::feed::changed(job.user);
                } else {
                    outbox::release(&self.db, job.row.id).await?;
                }
                Ok(Settled::Theirs)
            }
            // Nothing newer than ours in Google (an echo, metadata, an event slotsync
            // cannot read): ours is written over it.
            Action::Skip(_) | Action::Import { .. } | Action::Unlink { .. } => {
                self.patch(job, event_id, current.etag.as_deref()).await
            }
        }
    }

    /// Creates the slot's event again after `deleted` was deleted in Google. A deleted id
    /// can never be reused, so the new id derives from the slot and `deleted`: the same
    /// for every retry, even after further local edits, so a re-creation whose answer was
    /// lost is met again (409) and updated, never duplicated.
    async fn recreate(&self, job: &Job<'_>, deleted: &str) -> Step {
        let id = EventId::recreated(SlotId(job.row.id), deleted);
        self.insert(job, id).await
    }

    /// Deletes the linked event (or the derived one, in case an insert's answer was lost);
    /// an event already gone counts as deleted.
    async fn delete(&self, job: &Job<'_>) -> Step {
        let known = job.row.google_event_id.clone();
        let id = known
            .clone()
            .unwrap_or_else(|| EventId::from_slot(SlotId(job.row.id)).as_str().to_owned());
        // A meeting's deletion tells its attendees (or not) as the user chose with it.
        let send_updates = job.row.delete_send_updates.as_deref();
        let delete = || {
            self.gateway
                .delete_event_notifying(job.user, &job.calendar, &id, send_updates)
        };
        // Only a linked event's 404 is asked again: the derived id may never have been written.
        let deleted = match known {
            Some(_) => self.config.not_found.run("events.delete", delete).await,
            None => delete().await,
        };
        match deleted {
            Ok(()) | Err(GoogleError::Gone(_)) => Ok(Settled::Ours {
                event_id: id,
                etag: None,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Logs a change of `slot` as `txn` now holds it: a Google change that won, or a push
/// failed for good (`detail` says why).
async fn log_slot(
    txn: &impl sea_orm::ConnectionTrait,
    user: UserId,
    slot: uuid::Uuid,
    kind: ChangeKind,
    origin: ChangeOrigin,
    detail: Value,
) -> Result<(), StoreError> {
    if let Some(entry) = changes::slot_entry(txn, user, slot, kind, origin, detail).await? {
        changes::append_one(txn, user, entry, Utc::now()).await?;
    }
    Ok(())
}

fn ours(event_id: &str, event: &Event) -> Settled {
    Settled::Ours {
        event_id: event_id.to_owned(),
        etag: event.etag.clone(),
    }
}

/// Whether Google answered the event's tombstone.
fn is_cancelled(event: &Event) -> bool {
    event.status.as_deref() == Some("cancelled")
}

/// The zone to read an event's times in when it names none: the slot's.
fn zone(job: &Job<'_>) -> Tz {
    job.content.draft.timezone
}
