//! Group codes (`/api/v1/group-codes`, 群活码): a WeCom join way over a pool of the corp's
//! customer group chats, moved onto the chats with room as they fill
//! (`siyu_domain::acquisition::group_codes`; the way itself is the `wecom.join_way` job's
//! work), and what they brought, per code and per chat.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use siyu_domain::access::Permission;
use siyu_domain::acquisition::group_codes::{
    GroupCode, GroupCodeChange, GroupCodeReport, NewGroupCode,
};
use siyu_domain::acquisition::report::RangeQuery;
use siyu_domain::ids::GroupCodeId;
use siyu_domain::page::Page;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[utoipa::path(get, path = "/api/v1/group-codes", tag = "acquisition", params(PageParams),
    responses((status = 200, body = Page<GroupCode>), (status = 403, body = ErrorBody)))]
pub async fn list_group_codes(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<GroupCode>>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_group_codes(q.page()?).await?))
}

/// Makes a group code over live chats of a WeCom connector (as siyu mirrors them: sync
/// the connector's customers first); its join way follows in the background
/// (`join_way`). Audited.
#[utoipa::path(post, path = "/api/v1/group-codes", tag = "acquisition",
    request_body = NewGroupCode,
    responses((status = 201, body = GroupCode), (status = 403, body = ErrorBody),
        (status = 409, description = "a live group code has this state", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_group_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewGroupCode>,
) -> ApiResult<(StatusCode, Json<GroupCode>)> {
    auth.require(Permission::CampaignsWrite)?;
    let spec = body.check()?;
    let scope = auth.scope(&app.store).await?;
    let code = scope
        .create_group_code(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(code)))
}

#[utoipa::path(get, path = "/api/v1/group-codes/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 200, body = GroupCode), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_group_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<GroupCode>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_group_code(GroupCodeId(id)).await?))
}

/// Changes a group code (its state and connector stay); the join way follows. Audited.
#[utoipa::path(patch, path = "/api/v1/group-codes/{id}", tag = "acquisition",
    params(("id" = i64, Path)), request_body = GroupCodeChange,
    responses((status = 200, body = GroupCode), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_group_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<GroupCodeChange>,
) -> ApiResult<Json<GroupCode>> {
    auth.require(Permission::CampaignsWrite)?;
    let id = GroupCodeId(id);
    let scope = auth.scope(&app.store).await?;
    let spec = body.apply(&scope.get_group_code(id).await?)?;
    Ok(Json(
        scope.update_group_code(id, &spec, &auth.actor()).await?,
    ))
}

/// Deletes a group code: its join way is deleted on WeCom; who joined by it stays
/// attributed. Audited.
#[utoipa::path(delete, path = "/api/v1/group-codes/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_group_code(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::CampaignsWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .delete_group_code(GroupCodeId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the group codes within reach brought from `from` to `to` (local dates, both
/// included): customers who joined a chat by each code's QR and, of those, who left;
/// per code and per chat (members now, and whether it still takes people by QR).
#[utoipa::path(get, path = "/api/v1/group-codes/report", tag = "acquisition",
    params(RangeQuery),
    responses((status = 200, body = GroupCodeReport), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn group_code_report(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<GroupCodeReport>> {
    auth.require(Permission::CampaignsRead)?;
    let range = q.range()?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.group_code_report(range).await?))
}
