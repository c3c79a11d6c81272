//! `refresh_tokens`: refreshes access tokens that expire within the next 10 minutes, so
//! pushes and pulls rarely wait for a refresh; and purges expired authorizations.

use chrono::{Duration, Utc};
use serde_json::json;

use super::{JobError, Outcome};
use crate::state::AppState;
use crate::store::{connections, oauth_states};

/// Tokens expiring within this window are refreshed.
const AHEAD_MINUTES: i64 = 10;

/// Runs once.
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let users = connections::expiring_tokens(&state.db, Utc::now() + Duration::minutes(AHEAD_MINUTES)).await?;
    let (mut refreshed, mut failed) = (0, 0);
    for user in users {
        match state
            .vault
            .refresh_expiring(user, Duration::minutes(AHEAD_MINUTES))
            .await
        {
            Ok(()) => refreshed += 1,
            Err(e) => {
                failed += 1;
                tracing::warn!(user_id = %user, error = %e, "token refresh failed");
            }
        }
    }
    let purged = oauth_states::purge_expired(&state.db, Utc::now()).await?;
    Ok(json!({ "refreshed": refreshed, "failed": failed, "authorizations_purged": purged }))
}
