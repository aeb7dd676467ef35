//! Saved views: the signed-in staff member's own named searches of a list (the
//! customer list's search and filter), so that they follow them to any browser.
//! API tokens act for programs and keep none.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::ids::{SavedViewId, StaffId};
use siyu_domain::view::{NewView, SavedView, check_list};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

fn staff_of(auth: &Auth) -> ApiResult<StaffId> {
    auth.principal.staff_id().ok_or_else(|| {
        ApiError::Forbidden("saved views belong to staff members; API tokens keep none".into())
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewsQuery {
    /// The list: `customers`.
    pub list: String,
}

/// The signed-in staff member's saved views of a list, by name.
#[utoipa::path(get, path = "/api/v1/me/views", tag = "auth", params(ViewsQuery),
    responses((status = 200, body = Vec<SavedView>), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_views(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ViewsQuery>,
) -> ApiResult<Json<Vec<SavedView>>> {
    let staff = staff_of(&auth)?;
    check_list(&q.list)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .list_views(staff, &q.list)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewBody {
    /// The list: `customers`.
    pub list: String,
    /// Saving under a name one has already replaces that view.
    pub name: String,
    pub q: Option<String>,
    pub filter: Option<String>,
}

/// Saves a view of a list under a name (replacing the caller's view of that name).
#[utoipa::path(put, path = "/api/v1/me/views", tag = "auth", request_body = ViewBody,
    responses((status = 200, body = SavedView), (status = 403, body = ErrorBody),
        (status = 409, description = "50 views of the list already", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn save_view(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ViewBody>,
) -> ApiResult<Json<SavedView>> {
    let staff = staff_of(&auth)?;
    let view = NewView::parse(
        &body.list,
        &body.name,
        body.q.as_deref(),
        body.filter.as_deref(),
    )?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .save_view(staff, &view)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/me/views/{id}", tag = "auth", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, description = "not one of the caller's views", body = ErrorBody)))]
pub async fn delete_view(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    // a token keeps no views: none of its has this id
    let staff = staff_of(&auth).map_err(|_| ApiError::NotFound("view"))?;
    auth.scope(&app.store)
        .await?
        .delete_view(staff, SavedViewId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
