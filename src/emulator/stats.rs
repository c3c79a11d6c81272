//! Request and notification counters served at `GET /_emulator/stats`.

use serde::Serialize;
use std::collections::BTreeMap;

/// Push notification counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotificationStats {
    /// Notifications accepted by the receiver (2xx or 102), duplicates included.
    pub sent: u64,
    /// Notifications given up on (non-retryable status, retries exhausted, or channel
    /// gone before a retry).
    pub failed: u64,
    /// Notifications dropped by fault injection.
    pub dropped: u64,
    /// Extra copies sent by fault injection.
    pub duplicated: u64,
    /// Retries after a 500/502/503/504 answer or a connection error.
    pub retried: u64,
    /// Delivery attempts of any outcome.
    pub attempts: u64,
    /// Notifications not sent because their channel expired or was stopped first.
    pub suppressed: u64,
    /// Changes folded into an already open notification batch (`batch_ms`).
    pub batched: u64,
}

/// Every counter.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Requests by operation name (`events.insert`, `oauth.token`,
    /// `oauth.token.refresh_token`, …) then by answered status (`"200"`, `"409"`, …).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Injected faults by operation, then by fault (`"503"`, `"lost_response"`).
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
    /// Push notification counters.
    pub notifications: NotificationStats,
    /// Writes recorded with their `sendUpdates` (`all`, `externalOnly`, `none`; omitted
    /// counts as `none`); details at `GET /_emulator/sent-updates`.
    pub send_updates: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one answered request.
    pub fn record(&mut self, op: &str, status: u16) {
        *self
            .requests
            .entry(op.to_owned())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
    }

    /// Counts one injected fault.
    pub fn record_fault(&mut self, op: &str, fault: &str) {
        *self
            .faults
            .entry(op.to_owned())
            .or_default()
            .entry(fault.to_owned())
            .or_default() += 1;
    }
}
