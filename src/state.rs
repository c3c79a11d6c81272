//! What every request handler and background worker shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::sync::PushWaker;

/// Shared application context; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Wakes the push worker after a local change commits.
    pub push_waker: PushWaker,
}
