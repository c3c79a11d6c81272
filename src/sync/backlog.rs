//! What the periodic jobs have due and not done yet, for operators (`GET /admin/jobs`,
//! `GET /metrics`): per job, how many items are due and how long the oldest has been due.

use chrono::{DateTime, Duration, Utc};

use super::context::SyncContext;
use crate::store::{channels, connections, pull_schedule, StoreError};

/// Tokens expiring within this window are refreshed ahead of time (`refresh_tokens`).
pub const TOKEN_REFRESH_AHEAD: Duration = Duration::minutes(10);

/// One job's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobBacklog {
    /// The job.
    pub job: &'static str,
    /// Items due now (claimed by a run under way included).
    pub due: u64,
    /// How long the oldest of them has been due (0 when none is).
    pub oldest_overdue: Duration,
}

fn overdue(became_due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    became_due.map_or(Duration::zero(), |at| (now - at).max(Duration::zero()))
}

/// The backlogs of `fallback_sync`, `renew_channels` and `refresh_tokens`.
pub async fn job_backlogs(state: &SyncContext) -> Result<Vec<JobBacklog>, StoreError> {
    let now = Utc::now();
    let pulls = pull_schedule::backlog(&state.db, now).await?;
    let renew_before = Duration::seconds(i64::try_from(state.settings.channel_renew_before_secs).unwrap_or(86_400));
    let (channels_due, soonest_channel) = channels::renewal_backlog(&state.db, now + renew_before).await?;
    let (tokens_due, soonest_token) =
        connections::expiring_with_work_backlog(&state.db, now + TOKEN_REFRESH_AHEAD).await?;
    Ok(vec![
        JobBacklog {
            job: "fallback_sync",
            due: pulls.due,
            oldest_overdue: overdue(pulls.oldest_due, now),
        },
        JobBacklog {
            job: "renew_channels",
            due: channels_due,
            oldest_overdue: overdue(soonest_channel.map(|at| at - renew_before), now),
        },
        JobBacklog {
            job: "refresh_tokens",
            due: tokens_due,
            oldest_overdue: overdue(soonest_token.map(|at| at - TOKEN_REFRESH_AHEAD), now),
        },
    ])
}
