//! Operator routes: run a scheduled job once.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::auth::AdminAuth;
use super::error::{answers::*, ApiError, Fails};
use super::ApiTags;
use crate::jobs;
use crate::state::AppState;

/// What a job run did.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct JobRun {
    /// The job.
    pub job: String,
    /// Its report (counts of what it did; each job's own shape).
    pub outcome: serde_json::Value,
}

/// A scheduled job.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct JobInfo {
    /// Its name, for `POST /admin/jobs/{name}/run`.
    pub name: String,
    /// What it does.
    pub about: String,
}

/// Operator routes.
pub struct AdminApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// List scheduled jobs (admin)
    ///
    /// The scheduled jobs.
    #[oai(path = "/admin/jobs", method = "get", operation_id = "list_jobs")]
    async fn jobs(&self, _auth: AdminAuth) -> Result<Json<Vec<JobInfo>>, Fails<{ BEARER }>> {
        Ok(Json(
            jobs::JOBS
                .iter()
                .map(|j| JobInfo {
                    name: j.name.to_owned(),
                    about: j.about.to_owned(),
                })
                .collect(),
        ))
    }

    /// Run a job now (admin)
    ///
    /// Run one job once, now, and answer its outcome (the schedule is unaffected).
    #[oai(path = "/admin/jobs/:name/run", method = "post", operation_id = "run_job")]
    async fn run_job(
        &self,
        state: Data<&AppState>,
        _auth: AdminAuth,
        name: Path<String>,
    ) -> Result<Json<JobRun>, Fails<{ NOT_FOUND | UNAVAILABLE | AUTHENTICATED }>> {
        let Some(job) = jobs::find(&name.0) else {
            let known: Vec<&str> = jobs::JOBS.iter().map(|j| j.name).collect();
            return Err(Fails(ApiError::NotFound(Json(super::error::ErrorBody {
                code: "not_found".into(),
                message: format!("no job `{}`; the jobs are: {}", name.0, known.join(", ")),
                field: Some("name".into()),
            }))));
        };
        let outcome = job
            .run_once(&state)
            .await
            .map_err(|e| ApiError::unavailable(format!("job {} failed: {e}", job.name)))?;
        Ok(Json(JobRun {
            job: job.name.to_owned(),
            outcome,
        }))
    }
}
