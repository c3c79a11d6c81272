//! `GET /metrics`: Prometheus text format.

use chrono::Utc;
use poem::web::Data;
use poem_openapi::payload::PlainText;
use poem_openapi::OpenApi;

use super::error::ApiError;
use super::ApiTags;
use crate::observe;
use crate::state::AppState;
use crate::store::outbox;

/// Metrics.
pub struct MetricsApi;

#[OpenApi(tag = "ApiTags::Health")]
impl MetricsApi {
    /// Metrics in Prometheus text format: pushes by outcome, pulls by mode and result,
    /// notifications accepted and rejected by reason, Google calls by operation and status,
    /// outbox depth by state, breaker trips, conflicts, and latency histograms of pushes,
    /// pulls, webhook handling and Google calls. Unauthenticated: expose it to your
    /// scraper only.
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self, state: Data<&AppState>) -> Result<PlainText<String>, ApiError> {
        let depth = outbox::depth_all(&state.db, Utc::now()).await?;
        observe::outbox_depth("pending", depth.dirty);
        observe::outbox_depth("in_flight", depth.in_flight);
        observe::outbox_depth("failed", depth.failed);
        observe::outbox_depth("paused", depth.paused);
        observe::outbox_depth("synced", depth.clean);
        Ok(PlainText(observe::render(&state.metrics)))
    }
}
