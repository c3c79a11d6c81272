//! `fallback_sync`: an incremental pull of every active connection, because Google drops
//! some notifications (and channels are off without `PUBLIC_BASE_URL`). Pulls run a few at
//! a time, each under its user's rate limit, so quota is respected.

use futures::StreamExt;
use serde_json::json;

use super::{JobError, Outcome};
use crate::state::AppState;
use crate::store::connections;
use crate::sync::pull::PullMode;
use crate::sync::SyncError;

/// Pulls running at once.
const CONCURRENT_PULLS: usize = 4;

/// Runs once: pulls every active connection and sums up what the pulls did.
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let users = connections::active_users(&state.db).await?;
    let puller = state.pulls.puller();
    let results: Vec<_> = futures::stream::iter(users)
        .map(|user| async move { puller.pull(user, PullMode::Incremental).await })
        .buffer_unordered(CONCURRENT_PULLS)
        .collect()
        .await;
    let (mut pulled, mut busy, mut failed, mut events, mut applied) = (0, 0, 0, 0, 0);
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(report) => {
                pulled += 1;
                events += report.events;
                applied += report.applied + report.deleted + report.imported;
            }
            Err(SyncError::PullRunning) => busy += 1,
            Err(SyncError::NotConnected) => {}
            Err(e) => {
                failed += 1;
                errors.push(e.to_string());
            }
        }
    }
    Ok(
        json!({ "pulled": pulled, "busy": busy, "failed": failed, "events": events,
               "changes_applied": applied, "errors": errors }),
    )
}
