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
    /// Readiness: the database answers too (503 otherwise).
    #[oai(path = "/health/ready", method = "get", operation_id = "health_ready")]
    async fn ready(&self, state: Data<&AppState>) -> Result<Json<Health>, Fails<{ UNAVAILABLE }>> {
        match store::ping(&state.db).await {
            Ok(()) => Ok(Json(Health { status: "ready".into() })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check: database unavailable");
                Err(ApiError::unavailable("the database does not answer").into())
            }
        }
    }
}
