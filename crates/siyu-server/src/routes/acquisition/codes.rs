//! Channel codes (`/api/v1/channel-codes`, 渠道活码): a `state` that attributes who
//! comes through it, the members it routes them to, the tags and welcome it gives them.
//! A code with a WeCom connector is a contact way there, made, changed and deleted with
//! it by a `wecom.contact_way` job (the answer shows on the code as `contact_way`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use siyu_domain::access::Permission;
use siyu_domain::acquisition::{ChannelCode, ChannelCodeChange, NewChannelCode};
use siyu_domain::ids::ChannelCodeId;
use siyu_domain::page::Page;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

/// The live codes within the caller's data scope (made by, or routing to, staff they
/// reach).
#[utoipa::path(get, path = "/api/v1/channel-codes", tag = "acquisition", params(PageParams),
    responses((status = 200, body = Page<ChannelCode>), (status = 403, body = ErrorBody)))]
pub async fn list_channel_codes(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ChannelCode>>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_channel_codes(q.page()?).await?))
}

/// Makes a code: only `name` and `state` are required; members must be within the
/// caller's reach (and, with a connector, members of its WeCom corp). Audited.
#[utoipa::path(post, path = "/api/v1/channel-codes", tag = "acquisition",
    request_body = NewChannelCode,
    responses((status = 201, body = ChannelCode), (status = 403, body = ErrorBody),
        (status = 409, description = "a live code has this state", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_channel_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewChannelCode>,
) -> ApiResult<(StatusCode, Json<ChannelCode>)> {
    auth.require(Permission::CampaignsWrite)?;
    let spec = body.check()?;
    let scope = auth.scope(&app.store).await?;
    let code = scope
        .create_channel_code(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    app.store.notify_jobs();
    Ok((StatusCode::CREATED, Json(code)))
}

#[utoipa::path(get, path = "/api/v1/channel-codes/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 200, body = ChannelCode), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_channel_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ChannelCode>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_channel_code(ChannelCodeId(id)).await?))
}

/// Changes a code; fields left out stay. Audited.
#[utoipa::path(patch, path = "/api/v1/channel-codes/{id}", tag = "acquisition",
    params(("id" = i64, Path)), request_body = ChannelCodeChange,
    responses((status = 200, body = ChannelCode), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_channel_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ChannelCodeChange>,
) -> ApiResult<Json<ChannelCode>> {
    auth.require(Permission::CampaignsWrite)?;
    let id = ChannelCodeId(id);
    let scope = auth.scope(&app.store).await?;
    let spec = body.apply(&scope.get_channel_code(id).await?)?;
    let code = scope.update_channel_code(id, &spec, &auth.actor()).await?;
    app.store.notify_jobs();
    Ok(Json(code))
}

/// Deletes a code: it stops routing and its WeCom contact way is deleted, but what it
/// brought stays attributed to it. Audited.
#[utoipa::path(delete, path = "/api/v1/channel-codes/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_channel_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::CampaignsWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .delete_channel_code(ChannelCodeId(id), &auth.actor())
        .await?;
    app.store.notify_jobs();
    Ok(StatusCode::NO_CONTENT)
}
