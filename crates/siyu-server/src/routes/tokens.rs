//! Bearer API tokens for programs. The secret is shown once, at creation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::{ApiToken, DataScope, Permission};
use siyu_domain::error::check_name;
use siyu_domain::ids::ApiTokenId;
use siyu_domain::page::Page;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, such as `mini-program backend`.
    pub name: String,
    /// The role the token acts with.
    pub role: String,
    /// Days until the token stops working (1 to 3650); leave out for no expiry.
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub token: ApiToken,
    /// The bearer secret. It is not stored and cannot be shown again.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/v1/api-tokens", tag = "api-tokens", params(PageParams),
    responses((status = 200, body = Page<ApiToken>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ApiToken>>> {
    auth.require(Permission::TokensRead)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .list_api_tokens(q.page()?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/api-tokens", tag = "api-tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    auth.require(Permission::TokensWrite)?;
    if auth.principal.data_scope() != DataScope::Tenant {
        // a token sees the whole tenant; only someone who does may make one
        return Err(ApiError::Forbidden(
            "API tokens see the whole tenant; only staff with the tenant data scope can create them"
                .into(),
        ));
    }
    let name = check_name("name", &body.name, 100)?;
    let expires_at = match body.expires_in_days {
        Some(days) if !(1..=3650).contains(&days) => {
            return Err(ApiError::field(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
        }
        Some(days) => Some(siyu_store::now_ms() + i64::from(days) * 24 * 3600 * 1000),
        None => None,
    };
    let scope = auth.scope(&app.store).await?;
    let role = scope.role_by_name(&body.role).await?;
    auth.require_role_within(&role)?;
    let (token, secret) = scope
        .create_api_token(
            &name,
            &role,
            expires_at,
            auth.principal.staff_id(),
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

#[utoipa::path(get, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = i64, Path)),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ApiToken>> {
    auth.require(Permission::TokensRead)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .get_api_token(ApiTokenId(id))
            .await?,
    ))
}

/// Revokes a token: its next request is refused.
#[utoipa::path(delete, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = i64, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::TokensWrite)?;
    let scope = auth.scope(&app.store).await?;
    let token = scope.get_api_token(ApiTokenId(id)).await?;
    auth.require_role_within(&scope.get_role(token.role_id).await?)?;
    scope.revoke_api_token(token.id, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
