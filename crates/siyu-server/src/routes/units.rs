//! The unit tree: a group with brands, subsidiaries and stores.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::{DataScope, Permission, PrincipalKind};
use siyu_domain::ids::UnitId;
use siyu_domain::page::Page;
use siyu_domain::tenancy::{NewUnit, Unit, UnitChanges, UnitKind, unit_subtree};
use siyu_store::TenantScope;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUnit {
    /// The unit to place it under.
    pub parent_id: UnitId,
    pub kind: UnitKind,
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUnit {
    pub name: Option<String>,
    /// Move the unit (and everything below it) under another unit.
    pub parent_id: Option<UnitId>,
}

/// The units the caller reaches, or `None` for all: a staff member scoped to a unit
/// subtree reaches that subtree, one scoped to their own customers no unit, a
/// tenant-wide member or an API token every unit. Staff and unit changes stay inside it.
pub(crate) async fn reachable_units(
    auth: &Auth,
    scope: &TenantScope<'_>,
) -> ApiResult<Option<Vec<UnitId>>> {
    match &auth.principal.kind {
        PrincipalKind::ApiToken { .. } => Ok(None),
        PrincipalKind::Staff {
            data_scope,
            unit_id,
            ..
        } => match data_scope {
            DataScope::Tenant => Ok(None),
            DataScope::UnitSubtree => {
                Ok(Some(unit_subtree(*unit_id, &scope.unit_parents().await?)))
            }
            DataScope::Own => Ok(Some(vec![])),
        },
    }
}

/// Refuses (403) a change to a unit outside the caller's reach. Every unit is visible
/// to whoever may read units (the tree is needed to pick one), so this is a refusal,
/// not a 404.
async fn check_reach(auth: &Auth, scope: &TenantScope<'_>, unit: UnitId) -> ApiResult<()> {
    match reachable_units(auth, scope).await? {
        Some(units) if !units.contains(&unit) => Err(ApiError::Forbidden(format!(
            "unit {} is outside your data scope",
            unit.0
        ))),
        _ => Ok(()),
    }
}

#[utoipa::path(get, path = "/api/v1/units", tag = "units", params(PageParams),
    responses((status = 200, body = Page<Unit>), (status = 403, body = ErrorBody)))]
pub async fn list_units(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Unit>>> {
    auth.require(Permission::UnitsRead)?;
    let page = q.page()?;
    Ok(Json(auth.scope(&app.store).await?.list_units(page).await?))
}

#[utoipa::path(post, path = "/api/v1/units", tag = "units", request_body = CreateUnit,
    responses((status = 201, body = Unit),
        (status = 403, description = "no permission, or the parent is outside your data scope", body = ErrorBody),
        (status = 404, description = "no such parent unit", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateUnit>,
) -> ApiResult<(StatusCode, Json<Unit>)> {
    auth.require(Permission::UnitsWrite)?;
    let new = NewUnit::new(body.parent_id, body.kind, &body.name)?;
    let scope = auth.scope(&app.store).await?;
    scope.get_unit(body.parent_id).await?;
    check_reach(&auth, &scope, body.parent_id).await?;
    let unit = scope.create_unit(&new, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(unit)))
}

#[utoipa::path(get, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)),
    responses((status = 200, body = Unit), (status = 404, body = ErrorBody)))]
pub async fn get_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Unit>> {
    auth.require(Permission::UnitsRead)?;
    Ok(Json(
        auth.scope(&app.store).await?.get_unit(UnitId(id)).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)),
    request_body = UpdateUnit,
    responses((status = 200, body = Unit),
        (status = 403, description = "no permission, or the unit or its new parent is outside your data scope", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateUnit>,
) -> ApiResult<Json<Unit>> {
    auth.require(Permission::UnitsWrite)?;
    let changes = UnitChanges::new(body.name.as_deref(), body.parent_id)?;
    let scope = auth.scope(&app.store).await?;
    scope.get_unit(UnitId(id)).await?;
    check_reach(&auth, &scope, UnitId(id)).await?;
    if let Some(parent) = body.parent_id {
        scope.get_unit(parent).await?;
        check_reach(&auth, &scope, parent).await?;
    }
    let unit = scope
        .update_unit(UnitId(id), &changes, &auth.actor())
        .await?;
    Ok(Json(unit))
}

/// Deletes a unit with nothing below it; the root unit cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"),
        (status = 403, description = "no permission, or the unit is outside your data scope", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "units or staff are below it, or it is the root", body = ErrorBody)))]
pub async fn delete_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::UnitsWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope.get_unit(UnitId(id)).await?;
    check_reach(&auth, &scope, UnitId(id)).await?;
    scope.delete_unit(UnitId(id), &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
