//! Operator routes: the jobs and their backlogs, run a job once, the fleet of instances.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::auth::AdminAuth;
use super::error::{answers::*, ApiError, Fails};
use super::ApiTags;
use crate::jobs;
use crate::state::AppState;
use crate::store::instances;
use crate::sync::{backlog, fleet};

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
    /// Items due now and not done yet (pulls due, channels to renew, tokens to refresh
    /// ahead of time), claimed by a run under way included; absent for jobs that keep no
    /// due times.
    pub due: Option<u64>,
    /// How long the oldest due item has been due, in seconds (0 when none is).
    pub oldest_overdue_secs: Option<f64>,
}

/// A service instance sharing the database.
#[derive(Debug, Object)]
pub struct InstanceInfo {
    /// Its id (new at every start).
    pub id: uuid::Uuid,
    /// Host name and process id.
    pub host: String,
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Its last heartbeat (every 5 s; silent for 30 s, it no longer counts).
    pub heartbeat_at: chrono::DateTime<chrono::Utc>,
    /// Whether it is the instance answering.
    pub this_instance: bool,
}

/// The fleet and this instance's share of the Google quotas.
#[derive(Debug, Object)]
pub struct FleetInfo {
    /// Live instances (heartbeat within 30 s), oldest first.
    pub instances: Vec<InstanceInfo>,
    /// The instances the answering one divides the quotas by (as of its last heartbeat).
    pub share_of: u32,
    /// Google calls per minute the answering instance may make (`GOOGLE_CALLS_PER_MINUTE`
    /// divided by the live instances).
    pub calls_per_minute: u32,
    /// Google calls per user per minute the answering instance may make
    /// (`GOOGLE_USER_CALLS_PER_MINUTE` divided likewise).
    pub user_calls_per_minute: u32,
}

/// Operator routes.
pub struct AdminApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// List scheduled jobs (admin)
    ///
    /// The scheduled jobs, with what each has due and how overdue the oldest item is.
    #[oai(path = "/admin/jobs", method = "get", operation_id = "list_jobs")]
    async fn jobs(
        &self,
        state: Data<&AppState>,
        _auth: AdminAuth,
    ) -> Result<Json<Vec<JobInfo>>, Fails<{ AUTHENTICATED }>> {
        let backlogs = backlog::job_backlogs(&state.sync).await.map_err(ApiError::from)?;
        Ok(Json(
            jobs::JOBS
                .iter()
                .map(|j| {
                    let backlog = backlogs.iter().find(|b| b.job == j.name);
                    JobInfo {
                        name: j.name.to_owned(),
                        about: j.about.to_owned(),
                        due: backlog.map(|b| b.due),
                        oldest_overdue_secs: backlog.map(|b| b.oldest_overdue.num_milliseconds() as f64 / 1000.0),
                    }
                })
                .collect(),
        ))
    }

    /// List the instances (admin)
    ///
    /// The live instances sharing the database, and the answering instance's share of
    /// the Google quotas.
    #[oai(path = "/admin/instances", method = "get", operation_id = "list_instances")]
    async fn instances(
        &self,
        state: Data<&AppState>,
        _auth: AdminAuth,
    ) -> Result<Json<FleetInfo>, Fails<{ AUTHENTICATED }>> {
        let live = instances::live(&state.db, chrono::Utc::now() - fleet::STALE_AFTER)
            .await
            .map_err(ApiError::from)?;
        let share = state.fleet.share();
        Ok(Json(FleetInfo {
            instances: live
                .into_iter()
                .map(|i| InstanceInfo {
                    this_instance: i.id == state.fleet.id(),
                    id: i.id,
                    host: i.host,
                    started_at: i.started_at,
                    heartbeat_at: i.heartbeat_at,
                })
                .collect(),
            share_of: share.instances,
            calls_per_minute: share.calls_per_minute,
            user_calls_per_minute: share.user_calls_per_minute,
        }))
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
                reason: None,
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
