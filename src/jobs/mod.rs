//! Scheduled jobs (tokio-cron-scheduler). Each job is `run_once(&AppState)`, callable on
//! its schedule, from `POST /admin/jobs/{name}/run`, and from tests without any timing.
//! Work inside a job is claimed by leases, so several instances may run the same schedule.

pub mod fallback_sync;
pub mod purge_old_records;
pub mod refresh_tokens;
pub mod renew_channels;
pub mod retry_pushes;

use std::future::Future;
use std::pin::Pin;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::Settings;
use crate::state::AppState;

/// What a job run reports (shown by the admin route and logged).
pub type Outcome = serde_json::Value;

/// Why a job run failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        JobError(e.to_string())
    }
}

type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, JobError>> + Send + 'a>>;

/// A job: its name and how to run it once.
#[derive(Clone, Copy)]
pub struct JobSpec {
    /// The name used in schedules, logs and `POST /admin/jobs/{name}/run`.
    pub name: &'static str,
    /// What it does, for `--help`-like listings and errors.
    pub about: &'static str,
    run: for<'a> fn(&'a AppState) -> JobFuture<'a>,
    /// Its cron schedule, from the settings.
    schedule: fn(&Settings) -> &str,
    /// It calls Google: skipped while Google refuses the deployment's OAuth client.
    calls_google: bool,
}

impl JobSpec {
    /// Runs the job once — unless it calls Google and Google refuses the deployment's
    /// OAuth client: then it does nothing and says why (the probe resumes the work).
    pub async fn run_once(&self, state: &AppState) -> Result<Outcome, JobError> {
        if self.calls_google {
            if let Some(degraded) = state.client_health.degraded() {
                return Ok(serde_json::json!({
                    "skipped": "google_client_degraded",
                    "reason": degraded.reason,
                    "since": degraded.since.to_rfc3339(),
                }));
            }
        }
        (self.run)(state).await
    }
}

/// Every job.
pub const JOBS: [JobSpec; 5] = [
    JobSpec {
        name: "renew_channels",
        about: "replaces notification channels about to expire (new channel first, then the old one stopped)",
        run: |s| Box::pin(renew_channels::run_once(s)),
        schedule: |s| &s.schedule_renew_channels,
        calls_google: true,
    },
    JobSpec {
        name: "retry_pushes",
        about: "pushes dirty slots whose retry time has come",
        run: |s| Box::pin(retry_pushes::run_once(s)),
        schedule: |s| &s.schedule_retry_pushes,
        calls_google: true,
    },
    JobSpec {
        name: "fallback_sync",
        about: "pulls the active connections whose fallback pull is due (for notifications Google dropped)",
        run: |s| Box::pin(fallback_sync::run_once(s)),
        schedule: |s| &s.schedule_fallback_sync,
        calls_google: true,
    },
    JobSpec {
        name: "refresh_tokens",
        about: "refreshes access tokens about to expire, and purges expired authorizations",
        run: |s| Box::pin(refresh_tokens::run_once(s)),
        schedule: |s| &s.schedule_refresh_tokens,
        calls_google: true,
    },
    JobSpec {
        name: "purge_old_records",
        about: "deletes idempotency keys, sync events and ended channels older than their retention, in small batches",
        run: |s| Box::pin(purge_old_records::run_once(s)),
        schedule: |s| &s.schedule_purge_old_records,
        calls_google: false,
    },
];

/// Checks a cron schedule (clap's value parser for `SCHEDULE_*` settings), so a bad one
/// stops startup naming its variable.
pub fn parse_schedule(schedule: &str) -> Result<String, String> {
    match Job::new(schedule, |_, _| {}) {
        Ok(_) => Ok(schedule.to_owned()),
        Err(_) => Err(format!(
            "`{schedule}` is not a cron schedule; expected six fields with seconds first, \
             e.g. `0 30 3 * * *` for 03:30 every day"
        )),
    }
}

/// The job called `name`.
pub fn find(name: &str) -> Option<&'static JobSpec> {
    JOBS.iter().find(|j| j.name == name)
}

/// The running schedule.
pub struct Scheduler {
    inner: JobScheduler,
    running: Arc<Running>,
}

/// Job runs under way, so shutdown can wait for them, and a tick that finds the previous
/// run of its job still going is skipped (a fallback run working off a backlog may take
/// longer than the 30 s between its ticks; two runs here would only double its
/// concurrency).
#[derive(Default)]
struct Running {
    count: AtomicUsize,
    ended: Notify,
    jobs: parking_lot::Mutex<std::collections::HashSet<&'static str>>,
}

impl Scheduler {
    /// Stops the schedule and waits (up to `grace`) for runs under way to end.
    pub async fn stop(mut self, grace: std::time::Duration) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "stopping the job scheduler failed");
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let ended = self.running.ended.notified();
            if self.running.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!("a job was still running at shutdown");
                return;
            }
        }
    }
}

/// Starts every job on its schedule.
pub async fn start(state: &AppState) -> Result<Scheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    let running = Arc::new(Running::default());
    for spec in JOBS.iter().copied() {
        let state_for_job = state.clone();
        let running_for_job = Arc::clone(&running);
        let job = Job::new_async((spec.schedule)(&state.settings), move |_id, _scheduler| {
            let state = state_for_job.clone();
            let running = Arc::clone(&running_for_job);
            Box::pin(async move {
                if !running.jobs.lock().insert(spec.name) {
                    tracing::debug!(job = spec.name, "the previous run is still going: tick skipped");
                    return;
                }
                running.count.fetch_add(1, Ordering::SeqCst);
                match spec.run_once(&state).await {
                    Ok(outcome) => tracing::debug!(job = spec.name, %outcome, "job ran"),
                    Err(e) => tracing::warn!(job = spec.name, error = %e, "job failed"),
                }
                running.jobs.lock().remove(spec.name);
                running.count.fetch_sub(1, Ordering::SeqCst);
                running.ended.notify_waiters();
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    Ok(Scheduler {
        inner: scheduler,
        running,
    })
}
