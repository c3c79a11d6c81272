//! Metrics (Prometheus text format at `GET /metrics`): one process-wide recorder, and one
//! function per thing measured so names and labels are spelled in one place.
//!
//! Every family, and every series whose labels are known in advance, is registered when
//! the recorder is installed, at zero: a dashboard or an alert on breaker trips or
//! conflicts has a series before the first one happens, and `increase()` counts that first
//! one (a series that appears at 1 has no earlier sample to increase from).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Histogram, SharedString,
    Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from 1 ms to 30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder (installed on first use, with every known series registered at
/// zero; every app in the process shares it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .expect("buckets are valid")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            register_known_series();
            handle
        })
        .clone()
}

/// Push outcomes (the `outcome` of `slotsync_pushes_total`).
const PUSH_OUTCOMES: [&str; 6] = ["pushed", "google_kept", "retrying", "failed", "paused", "skipped"];
/// Pull modes and results (`slotsync_pulls_total`).
const PULL_MODES: [&str; 2] = ["incremental", "full"];
const PULL_RESULTS: [&str; 4] = ["ok", "busy", "error", "not_connected"];
/// Why the webhook rejects a notification (the error codes it answers).
const REJECTED_REASONS: [&str; 7] = [
    "invalid_parameter",
    "invalid_channel_token",
    "not_found",
    "channel_stopped",
    "channel_expired",
    "resource_mismatch",
    "internal",
];
/// The Google operations the gateway calls (`op` of `slotsync_google_calls_total`).
const GOOGLE_OPS: [&str; 8] = [
    "events.insert",
    "events.get",
    "events.patch",
    "events.list",
    "events.watch",
    "events.delete",
    "channels.stop",
    "calendars.get",
];
/// The statuses registered in advance for each operation: success and those worth an alert
/// (revoked tokens, quota, Google unreachable). Others appear when first answered.
const GOOGLE_STATUSES: [&str; 6] = ["2xx", "401", "403", "429", "timeout", "transport"];
/// Breaker scopes (`slotsync_breaker_trips_total`).
const BREAKER_SCOPES: [&str; 2] = ["user", "slot"];
/// Conflict winners and where conflicts are found (`slotsync_conflicts_total`).
const CONFLICT_WINNERS: [&str; 2] = ["app", "google"];
const CONFLICT_FOUND_BY: [&str; 2] = ["push", "pull"];
/// Outbox states (`slotsync_outbox_slots`).
const OUTBOX_STATES: [&str; 5] = ["pending", "in_flight", "failed", "paused", "synced"];

/// Describes every family and registers each series whose labels are known, at zero.
fn register_known_series() {
    describe_counter!("slotsync_pushes_total", "Pushes to Google, by outcome.");
    describe_counter!(
        "slotsync_webhook_deliveries_total",
        "Outbound webhook attempts, by outcome (delivered, retrying, failed, gone)."
    );
    describe_histogram!(
        "slotsync_webhook_delivery_lag_seconds",
        Unit::Seconds,
        "From a change's commit to its webhook's delivery."
    );
    describe_counter!(
        "slotsync_webhook_endpoints_disabled_total",
        "Outbound webhook endpoints disabled (410, or failing too long)."
    );
    describe_histogram!("slotsync_push_duration_seconds", Unit::Seconds, "How long a push took.");
    describe_counter!("slotsync_pulls_total", "Pulls from Google, by mode and result.");
    describe_histogram!(
        "slotsync_pull_duration_seconds",
        Unit::Seconds,
        "How long a pull took, by mode."
    );
    describe_counter!(
        "slotsync_notifications_total",
        "Google push notifications, accepted or rejected, by reason."
    );
    describe_histogram!(
        "slotsync_webhook_duration_seconds",
        Unit::Seconds,
        "How long the webhook took to answer a notification."
    );
    describe_counter!(
        "slotsync_google_calls_total",
        "Google Calendar calls, by operation and status."
    );
    describe_histogram!(
        "slotsync_google_call_duration_seconds",
        Unit::Seconds,
        "How long a Google Calendar call took, by operation."
    );
    describe_counter!(
        "slotsync_breaker_trips_total",
        "Breakers tripped, by scope (user or slot)."
    );
    describe_counter!(
        "slotsync_conflicts_total",
        "Conflicts (both sides changed), by winner and where they were found."
    );
    describe_gauge!(
        "slotsync_outbox_slots",
        "Slots per outbox state across users (read from the database at most every METRICS_CACHE_SECS)."
    );
    describe_gauge!(
        "slotsync_job_due",
        "Items a periodic job has due and not done, across the fleet (read at most every METRICS_CACHE_SECS)."
    );
    describe_gauge!(
        "slotsync_job_oldest_overdue_seconds",
        Unit::Seconds,
        "How long the oldest item due for a periodic job has been due."
    );
    describe_gauge!(
        "slotsync_instances_live",
        "Instances with a heartbeat in the last 30 s, as this instance last counted them."
    );
    describe_gauge!(
        "slotsync_google_quota_share_per_minute",
        "This instance's share of the fleet's Google quota (project, or per user), calls per minute."
    );

    for outcome in PUSH_OUTCOMES {
        counter!("slotsync_pushes_total", "outcome" => outcome).increment(0);
    }
    // A histogram registered without samples renders with zero counts.
    let _ = histogram!("slotsync_push_duration_seconds");
    for mode in PULL_MODES {
        for result in PULL_RESULTS {
            counter!("slotsync_pulls_total", "mode" => mode, "result" => result).increment(0);
        }
        let _ = histogram!("slotsync_pull_duration_seconds", "mode" => mode);
    }
    for reason in ACCEPTED_REASONS {
        counter!("slotsync_notifications_total", "result" => "accepted", "reason" => reason).increment(0);
    }
    for reason in REJECTED_REASONS {
        counter!("slotsync_notifications_total", "result" => "rejected", "reason" => reason).increment(0);
    }
    let _ = histogram!("slotsync_webhook_duration_seconds");
    for op in GOOGLE_OPS {
        for status in GOOGLE_STATUSES {
            counter!("slotsync_google_calls_total", "op" => op, "status" => status).increment(0);
        }
        let _ = histogram!("slotsync_google_call_duration_seconds", "op" => op);
    }
    for scope in BREAKER_SCOPES {
        counter!("slotsync_breaker_trips_total", "scope" => scope).increment(0);
    }
    for winner in CONFLICT_WINNERS {
        for detected_by in CONFLICT_FOUND_BY {
            counter!("slotsync_conflicts_total", "winner" => winner, "detected_by" => detected_by).increment(0);
        }
    }
    for state in OUTBOX_STATES {
        gauge!("slotsync_outbox_slots", "state" => state).increment(0.0);
    }
    describe_gauge!(
        "slotsync_google_client_degraded",
        "1 while Google refuses this deployment's OAuth client (invalid_client / deleted_client): pushes and pulls wait."
    );
    gauge!("slotsync_google_client_degraded").set(0.0);
    describe_counter!(
        "slotsync_google_not_found_retries_total",
        "404s on events slotsync knows, asked again before they count as deletions, by operation."
    );
}

/// The text a scrape answers (runs the recorder's upkeep first).
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

/// One push ended with `outcome` (`pushed`, `google_kept`, `retrying`, `failed`, `paused`,
/// `skipped`) after `took`.
pub fn push(outcome: &'static str, took: Duration) {
    counter!("slotsync_pushes_total", "outcome" => outcome).increment(1);
    histogram!("slotsync_push_duration_seconds").record(took.as_secs_f64());
}

/// One pull in `mode` ended with `result` (`ok`, `busy`, `error`, `not_connected`).
pub fn pull(mode: &'static str, result: &'static str, took: Duration) {
    counter!("slotsync_pulls_total", "mode" => mode, "result" => result).increment(1);
    histogram!("slotsync_pull_duration_seconds", "mode" => mode).record(took.as_secs_f64());
}

/// Why notifications are accepted (the `reason` of `slotsync_notifications_total`).
const ACCEPTED_REASONS: [&str; 3] = ["pull_requested", "handshake", "duplicate"];

/// The webhook's metrics for accepted notifications, registered once: every notification
/// Google sends is counted without building and looking up a key.
struct AcceptedNotifications {
    counters: [Counter; ACCEPTED_REASONS.len()],
    duration: Histogram,
}

fn accepted_notifications() -> &'static AcceptedNotifications {
    static METRICS: OnceLock<AcceptedNotifications> = OnceLock::new();
    METRICS.get_or_init(|| {
        // Handles taken before the recorder is installed would count nowhere.
        handle();
        AcceptedNotifications {
            counters: ACCEPTED_REASONS
                .map(|reason| counter!("slotsync_notifications_total", "result" => "accepted", "reason" => reason)),
            duration: histogram!("slotsync_webhook_duration_seconds"),
        }
    })
}

/// One notification was `accepted` (reason: `pull_requested`, `handshake`, `duplicate`)
/// or `rejected` (reason: `missing_header`, `bad_token`, `unknown_channel`, …).
pub fn notification(result: &'static str, reason: impl Into<SharedString>, took: Duration) {
    let reason = reason.into();
    if result == "accepted" {
        if let Some(i) = ACCEPTED_REASONS.iter().position(|r| **r == *reason) {
            let metrics = accepted_notifications();
            metrics.counters[i].increment(1);
            metrics.duration.record(took.as_secs_f64());
            return;
        }
    }
    counter!("slotsync_notifications_total", "result" => result, "reason" => reason).increment(1);
    histogram!("slotsync_webhook_duration_seconds").record(took.as_secs_f64());
}

/// One Google call `op` answered `status` (an HTTP status, or `transport`/`timeout`/`token`).
pub fn google_call(op: &'static str, status: String, took: Duration) {
    counter!("slotsync_google_calls_total", "op" => op, "status" => status).increment(1);
    histogram!("slotsync_google_call_duration_seconds", "op" => op).record(took.as_secs_f64());
}

/// A breaker tripped (`scope`: `user` or `slot`).
pub fn breaker_trip(scope: &'static str) {
    counter!("slotsync_breaker_trips_total", "scope" => scope).increment(1);
}

/// A conflict was resolved in favour of `winner` (`app`/`google`), found by `detected_by`
/// (`push`/`pull`).
pub fn conflict(winner: &'static str, detected_by: &'static str) {
    counter!("slotsync_conflicts_total", "winner" => winner, "detected_by" => detected_by).increment(1);
}

/// An outbound webhook attempt ended with `outcome`; `lag` from the change's commit when
/// it was delivered.
pub fn webhook_delivery(outcome: &'static str, lag: Option<std::time::Duration>) {
    counter!("slotsync_webhook_deliveries_total", "outcome" => outcome).increment(1);
    if let Some(lag) = lag {
        histogram!("slotsync_webhook_delivery_lag_seconds").record(lag.as_secs_f64());
    }
}

/// An outbound webhook endpoint was disabled.
pub fn webhook_endpoint_disabled() {
    counter!("slotsync_webhook_endpoints_disabled_total").increment(1);
}

/// The number of slots in outbox state `state`, across users.
pub fn outbox_depth(state: &'static str, slots: u64) {
    gauge!("slotsync_outbox_slots", "state" => state).set(slots as f64);
}

/// A periodic job's due items and how long the oldest has been due.
pub fn job_backlog(job: &'static str, due: u64, oldest_overdue_secs: f64) {
    gauge!("slotsync_job_due", "job" => job).set(due as f64);
    gauge!("slotsync_job_oldest_overdue_seconds", "job" => job).set(oldest_overdue_secs);
}

/// Whether Google refuses this deployment's OAuth client (set when that changes, and at
/// every scrape from the app's own state: the recorder is process-wide).
pub fn google_client_degraded(degraded: bool) {
    gauge!("slotsync_google_client_degraded").set(if degraded { 1.0 } else { 0.0 });
}

/// A 404 on a known event asked again (`op`: the Google operation).
pub fn not_found_retry(op: &'static str) {
    counter!("slotsync_google_not_found_retries_total", "op" => op).increment(1);
}

/// The live instances and this instance's share of the Google quotas.
pub fn fleet_share(instances: u32, calls_per_minute: u32, user_calls_per_minute: u32) {
    gauge!("slotsync_instances_live").set(f64::from(instances));
    gauge!("slotsync_google_quota_share_per_minute", "quota" => "project").set(f64::from(calls_per_minute));
    gauge!("slotsync_google_quota_share_per_minute", "quota" => "user").set(f64::from(user_calls_per_minute));
}

/// A value read from somewhere costly (the database), reused for a while: callers within
/// `every` of the last read get the value it returned, and concurrent callers when a read
/// is due wait for one read instead of each making their own. A failed read is logged and
/// counts as a read (the previous value is kept), so a failing source is not asked again
/// sooner either.
pub struct Throttled<T> {
    last: tokio::sync::Mutex<Last<T>>,
    reads: AtomicU64,
}

struct Last<T> {
    attempted: Option<tokio::time::Instant>,
    value: Option<T>,
}

impl<T> Default for Throttled<T> {
    fn default() -> Self {
        Self {
            last: tokio::sync::Mutex::new(Last {
                attempted: None,
                value: None,
            }),
            reads: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> Throttled<T> {
    /// The value, read again with `read` if the last read is at least `every` old; `None`
    /// until a read has succeeded.
    pub async fn get<F, Fut, E>(&self, every: Duration, read: F) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut last = self.last.lock().await;
        let now = tokio::time::Instant::now();
        if last.attempted.is_none_or(|at| now.duration_since(at) >= every) {
            last.attempted = Some(now);
            self.reads.fetch_add(1, Ordering::Relaxed);
            match read().await {
                Ok(value) => last.value = Some(value),
                Err(e) => tracing::warn!(error = %e, "reading a metric's source failed; the previous value is kept"),
            }
        }
        last.value.clone()
    }

    /// How many reads were made (what tests and benchmarks check the throttle with).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(n: &AtomicU64) -> Result<u64, std::convert::Infallible> {
        Ok(n.fetch_add(1, Ordering::SeqCst) + 1)
    }

    #[tokio::test]
    async fn a_throttled_value_is_read_once_per_interval_even_by_concurrent_callers() {
        let source = AtomicU64::new(0);
        let cache = Throttled::default();
        let hour = Duration::from_secs(3600);
        let got = futures::future::join_all((0..8).map(|_| cache.get(hour, || count(&source)))).await;
        assert!(got.iter().all(|v| *v == Some(1)), "{got:?}");
        assert_eq!(cache.get(hour, || count(&source)).await, Some(1));
        assert_eq!(cache.reads(), 1);
        assert_eq!(source.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_throttled_value_is_read_again_once_the_interval_has_passed() {
        let source = AtomicU64::new(0);
        let cache = Throttled::default();
        for expected in 1..=3 {
            assert_eq!(cache.get(Duration::ZERO, || count(&source)).await, Some(expected));
        }
        assert_eq!(cache.reads(), 3);
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_previous_value_and_counts_as_a_read() {
        let cache = Throttled::default();
        let ok = cache.get(Duration::ZERO, || async { Ok::<_, String>(7) }).await;
        let failed = cache
            .get(Duration::ZERO, || async { Err::<u64, _>("down".to_owned()) })
            .await;
        assert_eq!((ok, failed), (Some(7), Some(7)));
        assert_eq!(cache.reads(), 2);
    }
}
