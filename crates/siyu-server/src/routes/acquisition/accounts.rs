//! Channel accounts (`/api/v1/channel-accounts`): the brand's accounts on the platforms
//! it acquires from, so acquisition is reported per platform and per account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use siyu_domain::access::Permission;
use siyu_domain::acquisition::{ChannelAccount, ChannelAccountChange, NewChannelAccount};
use siyu_domain::ids::ChannelAccountId;
use siyu_domain::page::Page;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[utoipa::path(get, path = "/api/v1/channel-accounts", tag = "acquisition", params(PageParams),
    responses((status = 200, body = Page<ChannelAccount>), (status = 403, body = ErrorBody)))]
pub async fn list_channel_accounts(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ChannelAccount>>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_channel_accounts(q.page()?).await?))
}

/// Adds an account; `domain_class` defaults to the platform's usual one. Audited.
#[utoipa::path(post, path = "/api/v1/channel-accounts", tag = "acquisition",
    request_body = NewChannelAccount,
    responses((status = 201, body = ChannelAccount), (status = 403, body = ErrorBody),
        (status = 409, description = "the platform has an account of this name", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_channel_account(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewChannelAccount>,
) -> ApiResult<(StatusCode, Json<ChannelAccount>)> {
    auth.require(Permission::CampaignsWrite)?;
    let spec = body.check()?;
    let scope = auth.scope(&app.store).await?;
    let account = scope.create_channel_account(&spec, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

#[utoipa::path(get, path = "/api/v1/channel-accounts/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 200, body = ChannelAccount), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_channel_account(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ChannelAccount>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_channel_account(ChannelAccountId(id)).await?))
}

/// Changes an account; fields left out stay. Audited.
#[utoipa::path(patch, path = "/api/v1/channel-accounts/{id}", tag = "acquisition",
    params(("id" = i64, Path)), request_body = ChannelAccountChange,
    responses((status = 200, body = ChannelAccount), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_channel_account(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ChannelAccountChange>,
) -> ApiResult<Json<ChannelAccount>> {
    auth.require(Permission::CampaignsWrite)?;
    let id = ChannelAccountId(id);
    let scope = auth.scope(&app.store).await?;
    let spec = body.apply(&scope.get_channel_account(id).await?)?;
    Ok(Json(
        scope
            .update_channel_account(id, &spec, &auth.actor())
            .await?,
    ))
}

/// Deletes an account no channel code names (409 otherwise). Audited.
#[utoipa::path(delete, path = "/api/v1/channel-accounts/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete_channel_account(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::CampaignsWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .delete_channel_account(ChannelAccountId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
