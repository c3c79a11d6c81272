//! What every request handler and background worker shares.

use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::api::rate_limit::InboundRateLimit;
use crate::config::Settings;
use crate::crypto::Keys;
use crate::google::oauth::OAuthClient;
use crate::google::vault::TokenVault;
use crate::google::{CalendarGateway, GoogleEndpoints};
use crate::store::GroupCommit;
use crate::sync::channel_directory::ChannelDirectory;
use crate::sync::coalesce::PullCoordinator;
use crate::sync::push::Pusher;
use crate::sync::PushWaker;

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

/// What every request handler and background worker shares, behind [`AppState`].
pub struct AppParts {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Hot writes (slot changes, push bookkeeping) go through here: batched on SQLite.
    pub writes: Arc<GroupCommit>,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Wakes the push worker after a local change commits.
    pub push_waker: PushWaker,
    /// Keys derived from `SECRET_KEY`.
    pub keys: Keys,
    /// Google's endpoints (or the emulator's).
    pub endpoints: GoogleEndpoints,
    /// The OAuth client, or the name of the setting that is missing.
    pub oauth: Result<OAuthClient, &'static str>,
    /// Users' Google tokens.
    pub vault: Arc<TokenVault>,
    /// Google Calendar, rate-limited and classified.
    pub gateway: Arc<dyn CalendarGateway>,
    /// Pushes outbox slots to Google (the worker runs it; jobs and tests may drain it).
    pub pusher: Arc<Pusher>,
    /// Requests coalesced pulls (webhook, triggers, jobs).
    pub pulls: PullCoordinator,
    /// The channels this app knows, and their message marks (the webhook's checks).
    pub channel_directory: ChannelDirectory,
    /// The metrics recorder (shared by the process).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The outbox depth `GET /metrics` reports, read at most every `METRICS_CACHE_SECS`.
    pub outbox_depth: crate::observe::Throttled<crate::store::outbox::OutboxDepth>,
    /// Limits how often a user may start an authorization.
    pub authorize_limiter: Arc<DefaultKeyedRateLimiter<Uuid>>,
    /// The inbound rate limit, and what it remembers about API tokens (the user scheme
    /// shares its caches).
    pub inbound_limit: InboundRateLimit,
}
