//! The push worker: claims due slots from the outbox in batches (leased, so several
//! instances share the work), keeps up to `concurrency` pushes in flight, and sleeps until
//! woken by a local change, the next retry time, or a periodic look.
//!
//! Claims are fair across users: each takes users in turn and gives a user no more than
//! its room under `per_user_in_flight` (its slots already leased, by any instance,
//! count). A claim that came back short may therefore have left a capped user's slots
//! due, and the end of one of that user's pushes makes room: so after a claim that found
//! something, the end of a push looks at the outbox again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::push::{Owner, PushOutcome, Pusher};
use super::PushWaker;
use crate::domain::UserId;
use crate::observe;
use crate::store::slots::SlotRow;
use crate::store::StoreError;
use crate::store::{connections, outbox, sync_states};

/// A claimed slot is not started when less than this remains of its lease (or half the
/// lease, if shorter): Google calls and bookkeeping must finish before another instance
/// may claim it.
const LEASE_MARGIN: Duration = Duration::from_secs(25);

/// Counts of what one [`Pusher::drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub pushed: u64,
    pub google_kept: u64,
    pub retrying: u64,
    pub failed: u64,
    pub paused: u64,
    pub skipped: u64,
}

impl DrainReport {
    fn count(&mut self, outcome: &PushOutcome) {
        match outcome {
            PushOutcome::Pushed => self.pushed += 1,
            PushOutcome::GoogleKept => self.google_kept += 1,
            PushOutcome::Retrying(_) => self.retrying += 1,
            PushOutcome::Failed(_) => self.failed += 1,
            PushOutcome::Paused(_) => self.paused += 1,
            PushOutcome::Skipped => self.skipped += 1,
        }
    }
}

struct Claimed {
    row: SlotRow,
    /// The owner's connection; `None` if it is no longer active.
    owner: Option<Owner>,
    lease_ends: Instant,
}

impl Pusher {
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let lease_ends = Instant::now() + self.config.lease;
        let lease = self.config.lease;
        let per_user = self.config.per_user_in_flight.max(1) as u64;
        let rows = self
            .writes
            .write(move |txn| {
                Box::pin(async move { outbox::claim_due(txn, Utc::now(), lease, limit as u64, per_user).await })
            })
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // What each push needs to know of its owner, read once per batch.
        let calendars = connections::active_calendars(&self.db, rows.iter().map(|r| UserId(r.user_id))).await?;
        let failing = sync_states::failing_users(&self.db, calendars.keys().copied()).await?;
        Ok(rows
            .into_iter()
            .map(|row| Claimed {
                owner: calendars.get(&UserId(row.user_id)).map(|(calendar, home)| Owner {
                    calendar: calendar.clone(),
                    home: *home,
                    had_failures: failing.contains(&UserId(row.user_id)),
                }),
                row,
                lease_ends,
            })
            .collect())
    }

    /// Pushes one claimed slot unless its lease is nearly over (then it is given back).
    async fn push_claimed(self: Arc<Self>, claimed: Claimed) -> Result<PushOutcome, StoreError> {
        let started = Instant::now();
        if started + LEASE_MARGIN.min(self.config.lease / 2) > claimed.lease_ends {
            outbox::release(&self.db, claimed.row.id).await?;
            return Ok(PushOutcome::Skipped);
        }
        let outcome = self.push(&claimed.row, claimed.owner.as_ref()).await;
        if let Ok(o) = &outcome {
            observe::push(o.label(), started.elapsed());
        }
        outcome
    }

    /// Pushes everything due now, until nothing due is left, and reports what happened
    /// (used by jobs and tests; the worker does the same continuously).
    pub async fn drain(self: &Arc<Self>) -> Result<DrainReport, StoreError> {
        let mut report = DrainReport::default();
        loop {
            // Google refuses the deployment's OAuth client: nothing can be pushed; the slots
            // wait, pending (see `google/client_health.rs`).
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) || self.client_health.is_degraded() {
                return Ok(report);
            }
            let batch = self.claim(self.config.concurrency.max(1)).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            let mut tasks = JoinSet::new();
            for claimed in batch {
                tasks.spawn(Arc::clone(self).push_claimed(claimed));
            }
            while let Some(done) = tasks.join_next().await {
                let outcome = done.map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))??;
                report.count(&outcome);
            }
        }
    }

    /// Runs until `shutdown` turns true: then stops claiming, gives back what it claimed
    /// but did not start, and lets the pushes in flight finish.
    pub async fn run(self: Arc<Self>, waker: PushWaker, mut shutdown: watch::Receiver<bool>) {
        let concurrency = self.config.concurrency.max(1);
        let mut queue: VecDeque<Claimed> = VecDeque::new();
        let mut tasks: JoinSet<Result<PushOutcome, StoreError>> = JoinSet::new();
        // Whether the last claim found fewer slots than asked: the outbox is drained until
        // something wakes the worker.
        let mut drained = false;
        // Whether the last claim found any slot: the end of a push then makes room for the
        // slots of its user that the per-user cap held back.
        let mut claimed_some = false;
        tracing::info!(concurrency, "push worker started");
        while !*shutdown.borrow() {
            if self.client_health.is_degraded() {
                // Google refuses the deployment's OAuth client: give back what is queued,
                // let the pushes in flight end, then wait until it is accepted again.
                for claimed in queue.drain(..) {
                    if let Err(e) = outbox::release(&self.db, claimed.row.id).await {
                        tracing::warn!(error = %e, "could not give back a claimed slot; its lease will expire");
                    }
                }
                if tasks.is_empty() {
                    tracing::info!("push worker paused: Google refuses the deployment's OAuth client");
                    tokio::select! {
                        _ = self.client_health.wait_until_accepted() => {
                            tracing::info!("push worker resumed");
                            drained = false;
                        }
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                drained = true;
            }
            if !drained && queue.len() < concurrency {
                let asked = 2 * concurrency - queue.len();
                match self.claim(asked).await {
                    Ok(batch) => {
                        drained = batch.len() < asked;
                        claimed_some = !batch.is_empty();
                        queue.extend(batch);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming slots to push failed");
                        drained = true;
                        claimed_some = false;
                    }
                }
            }
            while tasks.len() < concurrency {
                let Some(claimed) = queue.pop_front() else { break };
                tasks.spawn(Arc::clone(&self).push_claimed(claimed));
            }
            let idle_for = if tasks.is_empty() && queue.is_empty() {
                self.idle_wait().await
            } else {
                self.config.idle_poll
            };
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok(Ok(PushOutcome::Pushed | PushOutcome::GoogleKept | PushOutcome::Skipped)) => {
                            drained &= !claimed_some;
                        }
                        // A retry time was set: look at the outbox again to sleep until it.
                        Ok(Ok(_)) => drained = false,
                        Ok(Err(e)) => tracing::error!(error = %e, "recording a push failed; the slot is retried when its lease ends"),
                        Err(e) => tracing::error!(error = %e, "a push task panicked"),
                    }
                }
                _ = waker.woken() => drained = false,
                _ = tokio::time::sleep(idle_for) => drained = false,
                _ = shutdown.changed() => {}
            }
        }
        for claimed in queue {
            if let Err(e) = outbox::release(&self.db, claimed.row.id).await {
                tracing::warn!(error = %e, "could not give back a claimed slot; its lease will expire");
            }
        }
        let in_flight = tasks.len();
        while tasks.join_next().await.is_some() {}
        tracing::info!(in_flight, "push worker stopped");
    }

    /// How long to sleep when nothing is in flight: until the next retry falls due, at
    /// most the idle poll (which also catches leases of crashed instances running out).
    async fn idle_wait(&self) -> Duration {
        let now = Utc::now();
        let per_user = self.config.per_user_in_flight.max(1) as u64;
        match outbox::next_due_at(&self.db, now, per_user).await {
            Ok(Some(due)) => (due - now)
                .to_std()
                .unwrap_or(Duration::from_millis(10))
                .clamp(Duration::from_millis(10), self.config.idle_poll),
            Ok(None) => self.config.idle_poll,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed");
                self.config.idle_poll
            }
        }
    }
}
