//! `renew_channels`: replaces notification channels that expire within
//! `CHANNEL_RENEW_BEFORE_SECS` — the new channel first, then the old one stopped, so no
//! change goes unnotified. Each channel is claimed by a lease: one instance renews it.

use serde_json::json;

use super::{JobError, Outcome};
use crate::state::AppState;
use crate::sync::channels;

/// Runs once.
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let r = channels::renew_expiring(&state.sync).await?;
    Ok(
        json!({ "channels_off": r.off, "renewed": r.renewed, "retired": r.retired,
               "skipped": r.skipped, "failed": r.failed }),
    )
}
