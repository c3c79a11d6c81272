//! `retry_pushes`: pushes every dirty slot that is due (retries whose time has come, and
//! slots a crashed instance left leased once their lease ran out). The push worker does the
//! same continuously; the job is the safety net and the on-demand handle.

use super::{JobError, Outcome};
use crate::state::AppState;

/// Runs once.
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let report = state.pusher.drain().await?;
    state.push_waker.wake();
    Ok(serde_json::to_value(report).expect("a report serialises"))
}
