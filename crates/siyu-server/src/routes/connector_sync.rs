//! A connector's sync and what it brought: asking for a sync (a `wecom.sync` job, one
//! at a time per connector), where it stands (progress, counts, paused APIs) for the
//! Channels page, and the mapping of WeCom departments onto units that staff sync
//! follows, and the customer group chats it keeps.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::Permission;
use siyu_domain::connector::{
    CUSTOMER_SYNC, ConnectorKind, SyncScope, SyncState, WecomCounts, WecomDepartment,
    WecomGroupChat, WecomSyncPayload,
};
use siyu_domain::ids::{ConnectorId, JobId, UnitId};
use siyu_domain::jobs::{Job, kind};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, parse_json};

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// `all` (default), `staff` or `customers`.
    #[serde(default)]
    pub scope: SyncScope,
}

/// The sync's job; `created` is false when one was already waiting or running (the
/// answer names that one).
#[derive(Serialize, ToSchema)]
pub struct SyncQueued {
    pub job_id: JobId,
    pub created: bool,
}

/// Asks for a sync of the connector's staff (departments, members), corp tags and
/// customers (external contacts with their follow relations). It runs as a job, resumes
/// where it stopped if cut off, and only one runs per connector at a time.
#[utoipa::path(post, path = "/api/v1/connectors/{id}/sync", tag = "connectors",
    params(("id" = i64, Path)), request_body(content = Option<SyncBody>),
    responses((status = 202, body = SyncQueued), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn ask_sync(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SyncQueued>)> {
    // the body may be left out: a sync of everything
    let body: SyncBody = if body.iter().all(u8::is_ascii_whitespace) {
        SyncBody::default()
    } else {
        parse_json(&body)?
    };
    auth.require(Permission::SettingsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let id = ConnectorId(id);
    let connector = scope.get_connector(id).await?;
    let ConnectorKind::Wecom = connector.kind;
    let payload = serde_json::to_value(WecomSyncPayload {
        connector_id: id,
        scope: body.scope,
    })
    .map_err(|e| crate::error::ApiError::Internal(e.to_string()))?;
    let asked = scope
        .ask_connector_sync(
            id,
            kind::WECOM_SYNC,
            payload,
            auth.principal.staff_id(),
            &auth.actor(),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncQueued {
            job_id: asked.job,
            created: asked.created,
        }),
    ))
}

/// An API WeCom paused after answering 45009.
#[derive(Serialize, ToSchema)]
pub struct PausedApi {
    pub api: String,
    /// Calls wait until then.
    #[serde(serialize_with = "siyu_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: i64,
    /// Refusals in a row (each doubles the wait from 1 s to 60 s, then an hour).
    pub strikes: i64,
    pub reason: String,
}

/// Where a connector's sync stands, and what it holds.
#[derive(Serialize, ToSchema)]
pub struct SyncOverview {
    /// The customer sync's last (or current) run: its checkpoint and items so far.
    pub customers: Option<SyncState>,
    /// That run's job (its state, progress and last error).
    pub job: Option<Job>,
    pub counts: WecomCounts,
    /// APIs paused now or recently.
    pub paused: Vec<PausedApi>,
}

#[utoipa::path(get, path = "/api/v1/connectors/{id}/sync", tag = "connectors",
    params(("id" = i64, Path)),
    responses((status = 200, body = SyncOverview), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn sync_overview(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SyncOverview>> {
    auth.require(Permission::ConnectorsRead)?;
    let scope = auth.scope(&app.store).await?;
    let id = ConnectorId(id);
    let customers = scope.connector_sync(id, CUSTOMER_SYNC).await?;
    let job = match customers.as_ref().and_then(|s| s.job_id) {
        Some(job) => scope.get_job(job).await.ok(),
        None => None,
    };
    let counts = scope.wecom_counts(id).await?;
    let paused = scope
        .connector_api_pauses(id)
        .await?
        .into_iter()
        .map(|p| PausedApi {
            api: p.api,
            until: p.until,
            strikes: p.strikes,
            reason: p.reason,
        })
        .collect();
    Ok(Json(SyncOverview {
        customers,
        job,
        counts,
        paused,
    }))
}

/// The corp's departments as last synced, each with the unit its members join.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/departments", tag = "connectors",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<WecomDepartment>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_departments(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<WecomDepartment>>> {
    auth.require(Permission::ConnectorsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.wecom_departments(ConnectorId(id)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentMapping {
    /// The unit the department's members join; `null` unmaps it (its nearest mapped
    /// ancestor's unit, else the root).
    pub unit_id: Option<UnitId>,
}

/// Maps a department onto a unit; members synced after join it.
#[utoipa::path(patch, path = "/api/v1/connectors/{id}/departments/{department_id}",
    tag = "connectors",
    params(("id" = i64, Path), ("department_id" = i64, Path)), request_body = DepartmentMapping,
    responses((status = 200, body = WecomDepartment), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn map_department(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, department)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<DepartmentMapping>,
) -> ApiResult<Json<WecomDepartment>> {
    auth.require(Permission::SettingsWrite)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .map_wecom_department(ConnectorId(id), department, body.unit_id, &auth.actor())
            .await?,
    ))
}

/// The corp's customer group chats siyu keeps (synced, and current through WeCom's
/// callbacks), newest first, with how many staff and customers are in each now.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/group-chats", tag = "connectors",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<WecomGroupChat>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_group_chats(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<WecomGroupChat>>> {
    auth.require(Permission::ConnectorsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.wecom_group_chats(ConnectorId(id)).await?))
}
