//! `SyncContext`: everything the sync engine needs, owned by `sync`. The API's state
//! (`AppState`, in the `state` module) wraps it with the parts only the API uses, so the engine never
//! names the API's types and the layers point one way: `api → sync → {google, store} →
//! domain`.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::channel_directory::ChannelDirectory;
use super::coalesce::PullCoordinator;
use super::fleet::Fleet;
use super::push::Pusher;
use super::PushWaker;
use crate::config::Settings;
use crate::crypto::Keys;
use crate::google::client_health::ClientHealth;
use crate::google::oauth::OAuthClient;
use crate::google::vault::TokenVault;
use crate::google::{CalendarGateway, GoogleEndpoints};
use crate::store::GroupCommit;

/// The engine's shared context: one reference-counted allocation, cheap to clone into a
/// background task. Its parts are reached through `Deref` (`ctx.db`, `ctx.pulls`, …).
#[derive(Clone)]
pub struct SyncContext(Arc<SyncParts>);

impl SyncContext {
    /// Shares `parts`.
    pub fn new(parts: SyncParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for SyncContext {
    type Target = SyncParts;

    fn deref(&self) -> &SyncParts {
        &self.0
    }
}

/// What the engine shares, behind [`SyncContext`].
pub struct SyncParts {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Hot writes (slot changes, push bookkeeping) go through here: batched on SQLite.
    pub writes: Arc<GroupCommit>,
    /// Validated settings (conflict policy, channel address and lifetimes, guards).
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
    /// This instance in the fleet: its heartbeat and its share of the Google quotas.
    pub fleet: Arc<Fleet>,
    /// Whether Google accepts the deployment's OAuth client (degraded while it does not):
    /// the one copy, which the OAuth client, the vault, the pusher and the puller share.
    pub client_health: Arc<ClientHealth>,
}
