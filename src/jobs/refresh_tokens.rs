//! `refresh_tokens`: access tokens are refreshed on use by default (the vault refreshes a
//! token with less than a minute left before the call that needs it). Ahead of time —
//! within the next 10 minutes — only the tokens of users with work waiting (slots to
//! push), so those pushes do not wait for a refresh; a few at a time. At 100 000 mostly
//! idle users this is a handful of refreshes a run instead of every token every hour.
//! The job also purges expired authorizations.

use chrono::Utc;
use futures::StreamExt;
use serde_json::json;

use super::{JobError, Outcome};
use crate::state::AppState;
use crate::store::{connections, oauth_states};
use crate::sync::backlog::TOKEN_REFRESH_AHEAD;

/// Refreshes at once.
const CONCURRENT_REFRESHES: usize = 8;

/// Runs once.
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let users = connections::expiring_tokens_with_work(&state.db, Utc::now() + TOKEN_REFRESH_AHEAD).await?;
    let results: Vec<bool> = futures::stream::iter(users)
        .map(|user| async move {
            match state.vault.refresh_expiring(user, TOKEN_REFRESH_AHEAD).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(user_id = %user, error = %e, "token refresh failed");
                    false
                }
            }
        })
        .buffer_unordered(CONCURRENT_REFRESHES)
        .collect()
        .await;
    let refreshed = results.iter().filter(|ok| **ok).count();
    let failed = results.len() - refreshed;
    let purged = oauth_states::purge_expired(&state.db, Utc::now()).await?;
    Ok(json!({ "refreshed": refreshed, "failed": failed, "authorizations_purged": purged }))
}
