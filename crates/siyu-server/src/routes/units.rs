//! The unit tree: a group with brands, subsidiaries and stores.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::ids::UnitId;
use siyu_domain::page::Page;
use siyu_domain::tenancy::{NewUnit, Unit, UnitChanges, UnitKind};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
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

#[utoipa::path(get, path = "/api/v1/units", tag = "units", params(PageParams),
    responses((status = 200, body = Page<Unit>), (status = 403, body = ErrorBody)))]
pub async fn list_units(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Unit>>> {
    auth.require(Permission::UnitsRead)?;
    let page = q.page()?;
    Ok(Json(
        app.store
            .tenant(auth.principal.tenant_id)
            .list_units(page)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/units", tag = "units", request_body = CreateUnit,
    responses((status = 201, body = Unit), (status = 403, body = ErrorBody),
        (status = 404, description = "no such parent unit", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateUnit>,
) -> ApiResult<(StatusCode, Json<Unit>)> {
    auth.require(Permission::UnitsWrite)?;
    let new = NewUnit::new(body.parent_id, body.kind, &body.name)?;
    let unit = app
        .store
        .tenant(auth.principal.tenant_id)
        .create_unit(&new, &auth.actor())
        .await?;
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
        app.store
            .tenant(auth.principal.tenant_id)
            .get_unit(UnitId(id))
            .await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)),
    request_body = UpdateUnit,
    responses((status = 200, body = Unit), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateUnit>,
) -> ApiResult<Json<Unit>> {
    auth.require(Permission::UnitsWrite)?;
    let changes = UnitChanges::new(body.name.as_deref(), body.parent_id)?;
    let unit = app
        .store
        .tenant(auth.principal.tenant_id)
        .update_unit(UnitId(id), &changes, &auth.actor())
        .await?;
    Ok(Json(unit))
}

/// Deletes a unit with nothing below it; the root unit cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody),
        (status = 409, description = "units or staff are below it, or it is the root", body = ErrorBody)))]
pub async fn delete_unit(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::UnitsWrite)?;
    app.store
        .tenant(auth.principal.tenant_id)
        .delete_unit(UnitId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
