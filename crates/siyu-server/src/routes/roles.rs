//! Roles: the six built-in ones and custom roles made from the permission set.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::{Permission, PermissionSet, Role, check_role_name};
use siyu_domain::ids::RoleId;
use siyu_domain::page::Page;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// An identifier: a-z, 0-9, `-` and `_`.
    pub name: String,
    pub description: Option<String>,
    /// Permission names, as listed by `GET /api/v1/permissions`.
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct PermissionInfo {
    pub name: String,
    pub description: String,
}

fn check_description(description: Option<&str>) -> ApiResult<Option<String>> {
    match description {
        Some(d) if d.chars().count() > 500 => Err(ApiError::field(
            "description",
            "must be at most 500 characters",
        )),
        Some(d) => Ok(Some(d.trim().to_owned())),
        None => Ok(None),
    }
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", params(PageParams),
    responses((status = 200, body = Page<Role>), (status = 403, body = ErrorBody)))]
pub async fn list_roles(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Role>>> {
    auth.require(Permission::RolesRead)?;
    Ok(Json(
        auth.scope(&app.store).await?.list_roles(q.page()?).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = CreateRole,
    responses((status = 201, body = Role), (status = 403, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_role(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateRole>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    auth.require(Permission::RolesWrite)?;
    let name = check_role_name("name", &body.name)?;
    let description = check_description(body.description.as_deref())?.unwrap_or_default();
    let permissions = PermissionSet::parse_names("permissions", &body.permissions)?;
    auth.require_all(&permissions)?;
    let role = auth
        .scope(&app.store)
        .await?
        .create_role(&name, &description, &permissions, &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(role)))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = i64, Path)),
    responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
pub async fn get_role(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Role>> {
    auth.require(Permission::RolesRead)?;
    Ok(Json(
        auth.scope(&app.store).await?.get_role(RoleId(id)).await?,
    ))
}

/// Changes a custom role; its holders' next request already uses the new permissions.
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = i64, Path)),
    request_body = UpdateRole,
    responses((status = 200, body = Role), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "built-in roles cannot be changed", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_role(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateRole>,
) -> ApiResult<Json<Role>> {
    auth.require(Permission::RolesWrite)?;
    let scope = auth.scope(&app.store).await?;
    let role = scope.get_role(RoleId(id)).await?;
    let description = check_description(body.description.as_deref())?;
    let permissions = body
        .permissions
        .as_ref()
        .map(|names| PermissionSet::parse_names("permissions", names))
        .transpose()?;
    if let Some(permissions) = &permissions {
        auth.require_all(permissions)?;
    }
    auth.require_all(&role.permissions)?;
    // changing the role one holds could lock oneself out or escalate: refuse
    if !role.builtin && auth.principal.role_id == role.id {
        return Err(ApiError::Forbidden(
            "you cannot change the role you hold".into(),
        ));
    }
    Ok(Json(
        scope
            .update_role(
                role.id,
                description.as_deref(),
                permissions.as_ref(),
                &auth.actor(),
            )
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody),
        (status = 409, description = "built-in, or still held by staff or tokens", body = ErrorBody)))]
pub async fn delete_role(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::RolesWrite)?;
    let scope = auth.scope(&app.store).await?;
    let role = scope.get_role(RoleId(id)).await?;
    if !role.builtin {
        auth.require_all(&role.permissions)?;
    }
    scope.delete_role(role.id, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every permission a role can hold.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "roles",
    responses((status = 200, body = Vec<PermissionInfo>), (status = 403, body = ErrorBody)))]
pub async fn list_permissions(auth: Auth) -> ApiResult<Json<Vec<PermissionInfo>>> {
    auth.require(Permission::RolesRead)?;
    Ok(Json(
        Permission::ALL
            .iter()
            .map(|p| PermissionInfo {
                name: p.as_str().to_owned(),
                description: p.description().to_owned(),
            })
            .collect(),
    ))
}
