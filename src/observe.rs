//! Metrics (Prometheus text format at `GET /metrics`): one process-wide recorder, and one
//! function per thing measured so names and labels are spelled in one place.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Histogram, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from 1 ms to 30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder (installed on first use; every app in the process shares it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .expect("buckets are valid")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
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

/// The number of slots in outbox state `state`, across users.
pub fn outbox_depth(state: &'static str, slots: u64) {
    gauge!("slotsync_outbox_slots", "state" => state).set(slots as f64);
}
