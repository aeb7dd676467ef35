//! Background jobs as the console shows them: the tenant's jobs with their state,
//! progress and last error (`jobs.read`), and cancelling a waiting one or retrying a dead
//! or cancelled one by hand (`jobs.manage`, audited). The store keeps every read and
//! change within the caller's tenant and reach: staff limited to some owners see only
//! the jobs their staff made, and another's job is not found.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::ids::JobId;
use siyu_domain::jobs::{Job, JobState};
use siyu_domain::page::{Page, PageRequest};
use siyu_store::{JobFilter, NewJob, TenantScope};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs of this kind (`import.csv` …).
    pub kind: Option<String>,
    /// Only jobs in this state.
    pub status: Option<JobState>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// The tenant's jobs within the caller's data scope, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, description = "newest first", body = Page<Job>),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_jobs(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Json<Page<Job>>> {
    auth.require(Permission::JobsRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let filter = JobFilter {
        state: q.status,
        kind: q.kind,
    };
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_jobs(page, &filter).await?))
}

/// A background job was made; `GET /api/v1/jobs/{id}` follows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JobQueued {
    pub job_id: JobId,
}

/// Enqueues a job of the caller's tenant asked for by this request: its payload the
/// kind's (serialized here), its creator the signed-in staff member (whose job it is to
/// follow), and answers its id.
pub async fn enqueue_asked(
    auth: &Auth,
    scope: &TenantScope<'_>,
    kind: &str,
    payload: impl serde::Serialize,
) -> ApiResult<JobId> {
    let payload = serde_json::to_value(payload).map_err(|e| ApiError::Internal(e.to_string()))?;
    let job = NewJob::new(kind, payload);
    let job = match auth.principal.staff_id() {
        Some(staff) => job.created_by(staff),
        None => job,
    };
    scope
        .enqueue(&[job])
        .await?
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| ApiError::Internal("the job was not made".into()))
}

/// One job. Without `jobs.read`, staff may still follow the jobs their own actions made
/// (a bulk tagging they started), as the console's progress bars do.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = Job), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Job>> {
    let scope = auth.scope(&app.store).await?;
    if auth.principal.can(Permission::JobsRead) {
        return Ok(Json(scope.get_job(JobId(id)).await?));
    }
    let job = scope.get_job(JobId(id)).await;
    match (job, auth.principal.staff_id()) {
        (Ok(job), Some(me)) if job.created_by_staff_id == Some(me) => Ok(Json(job)),
        _ => Err(ApiError::Forbidden(format!(
            "your role ({}) does not have the permission {}, and the job is not one you started",
            auth.principal.role,
            Permission::JobsRead
        ))),
    }
}

/// Cancels a waiting job: it will not run (audited).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, description = "the job, cancelled", body = Job),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the job is not waiting (running or finished)", body = ErrorBody)))]
pub async fn cancel_job(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Job>> {
    auth.require(Permission::JobsManage)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.cancel_job(JobId(id), &auth.actor()).await?))
}

/// Makes a dead or cancelled job wait again, its attempts counted from none (audited).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, description = "the job, waiting again", body = Job),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the job is waiting, running or done, or a live job holds its unique key", body = ErrorBody)))]
pub async fn retry_job(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Job>> {
    auth.require(Permission::JobsManage)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.retry_job(JobId(id), &auth.actor()).await?))
}
