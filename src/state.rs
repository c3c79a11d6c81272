//! What every request handler and background worker shares.

use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;
use uuid::Uuid;

use crate::api::rate_limit::InboundRateLimit;
use crate::sync::context::{SyncContext, SyncParts};

/// Shared application context: one reference-counted allocation, so the clone poem makes
/// for every request (`.data(state)`) is one counter increment. Its parts are reached
/// through `Deref` (`state.db`, `state.pulls`, …).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts`.
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What every request handler and background worker shares, behind [`AppState`]: the
/// engine's context, and what only the API uses. The engine's parts are reached through
/// `Deref` (`state.db`), the context itself as `state.sync`.
pub struct AppParts {
    /// What the sync engine needs.
    pub sync: SyncContext,
    /// The metrics recorder (shared by the process).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The outbox depth `GET /metrics` reports, read at most every `METRICS_CACHE_SECS`.
    pub outbox_depth: crate::observe::Throttled<crate::store::outbox::OutboxDepth>,
    /// The jobs' backlogs `GET /metrics` reports, read at most every `METRICS_CACHE_SECS`.
    pub job_backlogs: crate::observe::Throttled<Vec<crate::sync::backlog::JobBacklog>>,
    /// Limits how often a user may start an authorization.
    pub authorize_limiter: Arc<DefaultKeyedRateLimiter<Uuid>>,
    /// The inbound rate limit, and what it remembers about API tokens (the user scheme
    /// shares its caches).
    pub inbound_limit: InboundRateLimit,
}

impl std::ops::Deref for AppParts {
    type Target = SyncParts;

    fn deref(&self) -> &SyncParts {
        &self.sync
    }
}
