//! `fallback_sync`: the safety net for notifications Google dropped (and the only pull when
//! channels are off). Each active connection is pulled once per `FALLBACK_INTERVAL_SECS`,
//! at its own phase within the interval — or every `FALLBACK_QUIET_FACTOR` intervals
//! while its channel notifies. The job runs often (every 30 s by default); each run claims
//! the connections that are due in batches (`store::pull_schedule`: `SKIP LOCKED` on
//! PostgreSQL, so instances take disjoint batches), pulls up to `FALLBACK_CONCURRENCY` at
//! once (at most half the database pool; one on SQLite, whose single writer they would
//! only queue for) within the
//! per-user and per-project Google limits, and moves each due time on by
//! whole intervals. A backlog larger than one run can pull waits for the next run; an
//! instance that dies holding a batch leaves it to another after `PULL_LEASE_SECS`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use sea_orm::DbBackend;
use serde_json::json;

use super::{JobError, Outcome};
use crate::domain::PullCadence;
use crate::state::AppState;
use crate::store::pull_schedule::{self, DuePull};
use crate::sync::pull::PullMode;
use crate::sync::SyncError;

/// A run stops claiming after this long (it finishes the pulls it claimed); the next run
/// goes on with the backlog. Keeps a shutdown, which waits for runs under way, short.
const RUN_BUDGET: Duration = Duration::from_secs(60);
/// A due pull found running elsewhere (a notification's pull, or another instance's) is
/// tried again after this long.
const BUSY_DEFER: chrono::Duration = chrono::Duration::seconds(5);
/// Pulls at once on SQLite, whatever `FALLBACK_CONCURRENCY` says. SQLite has one writer;
/// with several fallback pulls at once (each a few write transactions) writers were seen
/// to wait out the 10 s busy timeout (`database is locked`) — not understood yet.
const SQLITE_CONCURRENCY: usize = 1;
/// Connections given their first due time per statement.
const FIRST_DUE_BATCH: u64 = 500;

/// How a claimed pull ended.
enum Ended {
    Pulled { events: u32, applied: u32 },
    Failed(String),
    Busy,
    NotConnected,
}

/// The cadence the settings ask for.
pub fn cadence(state: &AppState) -> PullCadence {
    PullCadence {
        interval: chrono::Duration::seconds(i64::try_from(state.settings.fallback_interval_secs).unwrap_or(900)),
        quiet_factor: state.settings.fallback_quiet_factor,
    }
}

/// Runs once: schedules new connections, then claims and pulls due ones until none is
/// due (or the run's budget is spent).
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let cadence = cadence(state);
    let scheduled = schedule_new(state, cadence).await?;
    let started = Instant::now();
    let concurrency = usize::try_from(state.settings.fallback_concurrency).unwrap_or(32);
    // SQLite has one writer: more pulls at once only queue for it.
    let concurrency = match state.db.get_database_backend() {
        DbBackend::Sqlite => concurrency.min(SQLITE_CONCURRENCY),
        // Each pull takes a connection for each of its statements, one after another: more
        // pulls than half the pool starve its other users (pushes, the API, the claims
        // themselves) — seen in the fleet benchmark as 10 s acquire timeouts with 32 pulls
        // on 16 connections, and pulled users left to their claim's expiry.
        _ => concurrency.min(usize::try_from(state.settings.pool_size() / 2).unwrap_or(1).max(1)),
    };
    // The claim covers the wait of a batch's last connection behind the one before it,
    // then its pull's own lease.
    let lease =
        chrono::Duration::seconds(i64::try_from(state.settings.pull_lease_secs.saturating_mul(2)).unwrap_or(240));
    let (mut claimed, mut overdue_ms) = (0u64, 0i64);
    // Batches are claimed as the pulls of the previous one start, so a slow pull holds
    // one of the `concurrency` places, never the whole batch.
    let mut queue: VecDeque<DuePull> = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let mut exhausted = false;
    let mut results = Vec::new();
    let mut claim_error = None;
    loop {
        while in_flight.len() < concurrency {
            if queue.is_empty() && !exhausted {
                let now = Utc::now();
                let batch = if started.elapsed() < RUN_BUDGET && claim_error.is_none() {
                    // A failed claim ends the claiming; the pulls under way still finish.
                    pull_schedule::claim_due(&state.db, now, now + lease, concurrency as u64)
                        .await
                        .unwrap_or_else(|e| {
                            claim_error = Some(JobError::from(e));
                            Vec::new()
                        })
                } else {
                    Vec::new()
                };
                exhausted = batch.is_empty();
                claimed += batch.len() as u64;
                if let Some(first) = batch.first() {
                    overdue_ms = overdue_ms.max((now - first.due).num_milliseconds());
                }
                queue.extend(batch);
            }
            match queue.pop_front() {
                Some(due) => in_flight.push(pull_one(state, cadence, due)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some(result) => results.push(result),
            None if exhausted => break,
            None => {}
        }
    }
    if let Some(e) = claim_error {
        tracing::warn!(
            pulled = results.len(),
            "claiming due pulls failed; the next run goes on"
        );
        return Err(e);
    }
    let (mut pulled, mut busy, mut failed, mut events, mut applied) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    for result in results {
        match result? {
            Ended::Pulled { events: e, applied: a } => {
                pulled += 1;
                events += u64::from(e);
                applied += u64::from(a);
            }
            Ended::Busy => busy += 1,
            Ended::NotConnected => {}
            Ended::Failed(e) => {
                failed += 1;
                if errors.len() < 20 {
                    errors.push(e);
                }
            }
        }
    }
    Ok(
        json!({ "scheduled": scheduled, "claimed": claimed, "pulled": pulled, "busy": busy,
               "failed": failed, "events": events, "changes_applied": applied,
               "max_overdue_secs": overdue_ms as f64 / 1000.0, "errors": errors }),
    )
}

/// Gives every active connection without a due time one at a random phase within the
/// interval (new connections, and every connection once after the upgrade).
async fn schedule_new(state: &AppState, cadence: PullCadence) -> Result<u64, JobError> {
    let mut scheduled = 0;
    loop {
        let users = pull_schedule::unscheduled(&state.db, FIRST_DUE_BATCH).await?;
        if users.is_empty() {
            return Ok(scheduled);
        }
        let now = Utc::now();
        let due: Vec<_> = {
            let mut rng = rand::thread_rng();
            users
                .iter()
                .map(|u| (*u, cadence.first_due(now, rng.gen::<f64>())))
                .collect()
        };
        scheduled += pull_schedule::set_first_due(&state.db, &due).await?;
        if (users.len() as u64) < FIRST_DUE_BATCH {
            return Ok(scheduled);
        }
    }
}

/// Pulls one claimed connection and moves its due time on.
async fn pull_one(state: &AppState, cadence: PullCadence, due: DuePull) -> Result<Ended, JobError> {
    let outcome = state.pulls.puller().pull(due.user, PullMode::Incremental).await;
    let now = Utc::now();
    let next = cadence.next_due(due.due, now, due.last_notified);
    let ended = match outcome {
        Ok(report) => Ended::Pulled {
            events: report.events,
            applied: report.applied + report.deleted + report.imported,
        },
        Err(SyncError::PullRunning) => {
            pull_schedule::defer(&state.db, &due, now + BUSY_DEFER).await?;
            return Ok(Ended::Busy);
        }
        Err(SyncError::NotConnected) => Ended::NotConnected,
        Err(e) => Ended::Failed(e.to_string()),
    };
    let counted = !matches!(ended, Ended::NotConnected);
    pull_schedule::reschedule(&state.db, &due, next, counted).await?;
    Ok(ended)
}
