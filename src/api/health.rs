//! Liveness and readiness.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::error::{answers::*, ApiError, Fails};
use super::ApiTags;
use crate::state::AppState;
use crate::store;

/// A health answer.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Health {
    /// `ok` when the process is up; `ready` when it can serve requests.
    pub status: String,
}

/// Health checks for load balancers and orchestrators.
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// Liveness: the process answers.
    #[oai(path = "/health/live", method = "get", operation_id = "health_live")]
    async fn live(&self) -> Json<Health> {
        Json(Health { status: "ok".into() })
    }

    /// Readiness
    ///
    /// Readiness: the database answers, and Google accepts this deployment's OAuth client.
    /// 503 otherwise, with the reason: `unavailable` (the database), or
    /// `google_client_degraded` while Google answers `invalid_client` / `deleted_client`
    /// to token requests (pushes and pulls wait; they resume by themselves once a probe
    /// finds the client accepted again).
    #[oai(path = "/health/ready", method = "get", operation_id = "health_ready")]
    async fn ready(&self, state: Data<&AppState>) -> Result<Json<Health>, Fails<{ UNAVAILABLE }>> {
        if let Some(degraded) = state.client_health.degraded() {
            return Err(ApiError::google_client_degraded(&degraded).into());
        }
        match store::ping(&state.db).await {
            Ok(()) => Ok(Json(Health { status: "ready".into() })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check: database unavailable");
                Err(ApiError::unavailable("the database does not answer").into())
            }
        }
    }
}
