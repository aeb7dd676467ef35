//! Sources of events and their write keys. A write key is shown once, when the source
//! is created or its key rotated.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::Permission;
use siyu_domain::customer::{Source, SourceId, SourceKind, check_source_name};
use siyu_domain::page::Page;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    pub name: String,
    /// Default `other`.
    pub kind: Option<SourceKind>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SourceWithKey {
    pub source: Source,
    /// The write key for the tracking API. It is not stored and cannot be shown again.
    pub write_key: String,
}

#[utoipa::path(get, path = "/api/v1/sources", tag = "sources", params(PageParams),
    responses((status = 200, body = Page<Source>), (status = 403, body = ErrorBody)))]
pub async fn list_sources(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Source>>> {
    auth.require(Permission::SourcesRead)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .list_sources(q.page()?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", request_body = CreateSource,
    responses((status = 201, body = SourceWithKey), (status = 403, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_source(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateSource>,
) -> ApiResult<(StatusCode, Json<SourceWithKey>)> {
    auth.require(Permission::SourcesWrite)?;
    let name = check_source_name(&body.name)?;
    let (source, write_key) = auth
        .scope(&app.store)
        .await?
        .create_source(&name, body.kind.unwrap_or(SourceKind::Other), &auth.actor())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SourceWithKey { source, write_key }),
    ))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", params(("id" = i64, Path)),
    responses((status = 200, body = Source), (status = 404, body = ErrorBody)))]
pub async fn get_source(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Source>> {
    auth.require(Permission::SourcesRead)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .get_source(SourceId(id))
            .await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/sources/{id}", tag = "sources", params(("id" = i64, Path)),
    request_body = UpdateSource,
    responses((status = 200, body = Source), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_source(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateSource>,
) -> ApiResult<Json<Source>> {
    auth.require(Permission::SourcesWrite)?;
    let scope = auth.scope(&app.store).await?;
    let source = match body.name {
        Some(name) => {
            scope
                .rename_source(SourceId(id), &check_source_name(&name)?, &auth.actor())
                .await?
        }
        None => scope.get_source(SourceId(id)).await?,
    };
    Ok(Json(source))
}

/// Replaces the write key; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/sources/{id}/rotate-key", tag = "sources", params(("id" = i64, Path)),
    responses((status = 200, body = SourceWithKey), (status = 404, body = ErrorBody)))]
pub async fn rotate_key(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SourceWithKey>> {
    auth.require(Permission::SourcesWrite)?;
    let (source, write_key) = auth
        .scope(&app.store)
        .await?
        .rotate_write_key(SourceId(id), &auth.actor())
        .await?;
    Ok(Json(SourceWithKey { source, write_key }))
}
