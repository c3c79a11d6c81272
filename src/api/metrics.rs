//! `GET /metrics`: Prometheus text format, behind `METRICS_TOKEN` when it is set. A scrape
//! reads the outbox depth from the database at most once every `METRICS_CACHE_SECS`
//! (`AppState::outbox_depth`), so scraping often, or by several scrapers, or by someone
//! hammering the route, costs no query over the slots table each time.

use std::time::Duration;

use chrono::Utc;
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::payload::PlainText;
use poem_openapi::{OpenApi, SecurityScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{answers::*, ApiError, Fails};
use super::ApiTags;
use crate::observe;
use crate::state::AppState;
use crate::store::outbox;

/// The shortest `METRICS_TOKEN` accepted (as for `ADMIN_TOKEN`).
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// `Authorization: Bearer <METRICS_TOKEN>`, needed when `METRICS_TOKEN` is set.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct MetricsToken(Bearer);

/// The metrics route's credentials: the metrics token, or none (enough only while
/// `METRICS_TOKEN` is not set).
#[derive(SecurityScheme)]
pub enum MetricsAuth {
    /// A bearer token was given.
    Token(MetricsToken),
    /// No usable `Authorization` header.
    #[oai(fallback)]
    Anonymous,
}

/// Metrics.
pub struct MetricsApi;

#[OpenApi(tag = "ApiTags::Health")]
impl MetricsApi {
    /// Prometheus metrics
    ///
    /// Metrics in Prometheus text format: pushes by outcome, pulls by mode and result,
    /// notifications accepted and rejected by reason, Google calls by operation and status,
    /// outbox depth by state and each periodic job's due backlog and oldest overdue age
    /// (read from the database at most every `METRICS_CACHE_SECS`), the live instances and
    /// this instance's share of the Google quotas,
    /// breaker trips, conflicts, and latency histograms of pushes, pulls, webhook handling
    /// and Google calls. Needs `Authorization: Bearer <METRICS_TOKEN>` when `METRICS_TOKEN`
    /// is set; open otherwise (then expose it to your scraper only).
    #[oai(path = "/metrics", method = "get", operation_id = "get_metrics")]
    async fn metrics(
        &self,
        state: Data<&AppState>,
        auth: MetricsAuth,
    ) -> Result<PlainText<String>, Fails<{ UNAUTHORIZED | INTERNAL }>> {
        authorize(&state, &auth)?;
        let every = Duration::from_secs(state.settings.metrics_cache_secs);
        let depth = state
            .outbox_depth
            .get(every, || outbox::depth_all(&state.db, Utc::now()))
            .await;
        // Set at every scrape from this app's own state: the recorder is process-wide.
        observe::google_client_degraded(state.client_health.is_degraded());
        if let Some(depth) = depth {
            observe::outbox_depth("pending", depth.dirty);
            observe::outbox_depth("in_flight", depth.in_flight);
            observe::outbox_depth("failed", depth.failed);
            observe::outbox_depth("paused", depth.paused);
            observe::outbox_depth("synced", depth.clean);
        }
        let backlogs = state
            .job_backlogs
            .get(every, || crate::sync::backlog::job_backlogs(&state.sync))
            .await;
        for b in backlogs.unwrap_or_default() {
            observe::job_backlog(b.job, b.due, b.oldest_overdue.num_milliseconds() as f64 / 1000.0);
        }
        let share = state.fleet.share();
        observe::fleet_share(share.instances, share.calls_per_minute, share.user_calls_per_minute);
        Ok(PlainText(observe::render(&state.metrics)))
    }
}

/// Lets the scrape through when no `METRICS_TOKEN` is set, or when the bearer token is it
/// (compared in constant time, through their digests so the length is not revealed either).
fn authorize(state: &AppState, auth: &MetricsAuth) -> Result<(), ApiError> {
    let Some(expected) = state.settings.metrics_token.as_deref() else {
        return Ok(());
    };
    let MetricsAuth::Token(MetricsToken(given)) = auth else {
        return Err(ApiError::unauthorized(
            "this route needs the metrics token (METRICS_TOKEN)",
        ));
    };
    let given = Sha256::digest(given.token.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "this route needs the metrics token (METRICS_TOKEN)",
        ))
    }
}

/// Parses `METRICS_TOKEN` (clap's value parser): at least [`MIN_METRICS_TOKEN_CHARS`]
/// characters, so a placeholder does not pass for protection.
pub fn parse_metrics_token(value: &str) -> Result<String, String> {
    if value.chars().count() < MIN_METRICS_TOKEN_CHARS {
        return Err(format!(
            "expected a random string of at least {MIN_METRICS_TOKEN_CHARS} characters (unset it to leave /metrics open)"
        ));
    }
    Ok(value.to_owned())
}
