//! Staff members: who signs in to the console, in which unit, with which role and data
//! scope.
//!
//! Data scope applies to the staff list too: a staff member scoped to their unit subtree
//! sees the staff of that subtree, one scoped to their own customers sees only
//! themselves. Nobody can give a role with permissions they do not hold themselves.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::{DataScope, Permission};
use siyu_domain::ids::{StaffId, UnitId};
use siyu_domain::page::Page;
use siyu_domain::tenancy::{NewStaff, Staff, StaffChanges, StaffStatus};
use siyu_store::TenantScope;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};
use crate::routes::units::reachable_units;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub unit_id: UnitId,
    /// A role name: a built-in (`admin`, `operations`, `service`, `content`, `growth`,
    /// `analyst`) or a custom role.
    pub role: String,
    pub email: String,
    pub name: String,
    /// Leave out for staff who do not sign in with a password (yet).
    pub password: Option<String>,
    /// Default `unit_subtree`.
    pub data_scope: Option<DataScope>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaff {
    pub unit_id: Option<UnitId>,
    pub role: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub data_scope: Option<DataScope>,
    pub status: Option<StaffStatus>,
    /// A sign-in email: with a password, how an admin invites a member synced from WeCom.
    pub email: Option<String>,
}

/// Whether the caller's data scope covers this staff member (themselves always).
async fn check_staff_reach(auth: &Auth, scope: &TenantScope<'_>, staff: &Staff) -> ApiResult<()> {
    if auth.principal.staff_id() == Some(staff.id) {
        return Ok(());
    }
    match reachable_units(auth, scope).await? {
        Some(units) if !units.contains(&staff.unit_id) => Err(ApiError::NotFound("staff")),
        _ => Ok(()),
    }
}

/// How much of the tenant a data scope covers, for comparing scopes.
fn breadth(scope: DataScope) -> u8 {
    match scope {
        DataScope::Own => 0,
        DataScope::UnitSubtree => 1,
        DataScope::Tenant => 2,
    }
}

/// How a data scope at a unit would reach beyond the caller's own, if it would.
enum Wider {
    /// A broader data scope than the caller's.
    Scope { own: DataScope },
    /// A unit outside the caller's reach.
    Unit,
}

/// Whether a data scope at a unit (a staff member's, or one about to be given) reaches
/// beyond the caller's.
async fn reaches_wider(
    auth: &Auth,
    scope: &TenantScope<'_>,
    unit: UnitId,
    data_scope: DataScope,
) -> ApiResult<Option<Wider>> {
    let own = auth.principal.data_scope();
    if breadth(data_scope) > breadth(own) {
        return Ok(Some(Wider::Scope { own }));
    }
    Ok(match reachable_units(auth, scope).await? {
        Some(units) if !units.contains(&unit) => Some(Wider::Unit),
        _ => None,
    })
}

/// Refuses to place staff in a unit outside the caller's own scope, or to give them a
/// wider data scope than the caller has: either would let the caller see, through the
/// staff member they made, what they may not see themselves.
async fn check_scope_grant(
    auth: &Auth,
    scope: &TenantScope<'_>,
    unit: UnitId,
    data_scope: DataScope,
) -> ApiResult<()> {
    match reaches_wider(auth, scope, unit, data_scope).await? {
        None => Ok(()),
        Some(Wider::Scope { own }) => Err(ApiError::Forbidden(format!(
            "you cannot give the data scope {}, which is wider than your own ({})",
            data_scope.as_str(),
            own.as_str()
        ))),
        Some(Wider::Unit) => Err(ApiError::Forbidden(
            "that unit is outside your data scope".into(),
        )),
    }
}

/// Refuses (403) to act on a staff member whose data scope reaches wider than the
/// caller's: a tenant-wide member placed in a unit-scoped lead's store is visible to the
/// lead, but resetting their password would hand the lead the whole tenant.
async fn check_reaches_no_wider(
    auth: &Auth,
    scope: &TenantScope<'_>,
    staff: &Staff,
) -> ApiResult<()> {
    match reaches_wider(auth, scope, staff.unit_id, staff.data_scope).await? {
        None => Ok(()),
        Some(Wider::Scope { own }) => Err(ApiError::Forbidden(format!(
            "{} has the data scope {}, wider than your own ({})",
            staff.email.as_deref().unwrap_or(&staff.name),
            staff.data_scope.as_str(),
            own.as_str()
        ))),
        Some(Wider::Unit) => Err(ApiError::Forbidden(format!(
            "{} is in a unit outside your data scope",
            staff.email.as_deref().unwrap_or(&staff.name)
        ))),
    }
}

/// Refuses to hand out a role with permissions the caller lacks, or to act on a staff
/// member who holds such a role.
async fn check_grantable(auth: &Auth, scope: &TenantScope<'_>, role: &str) -> ApiResult<()> {
    auth.require_role_within(&scope.role_by_name(role).await?)
}

#[utoipa::path(get, path = "/api/v1/staff", tag = "staff", params(PageParams),
    responses((status = 200, body = Page<Staff>), (status = 403, body = ErrorBody)))]
pub async fn list_staff(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Staff>>> {
    auth.require(Permission::StaffRead)?;
    let page = q.page()?;
    let scope = auth.scope(&app.store).await?;
    let units = reachable_units(&auth, &scope).await?;
    let mut list = scope.list_staff(page, units.as_deref()).await?;
    if units.as_deref() == Some(&[]) && page.after.is_none() {
        // scoped to their own: the list is just themselves
        if let Some(me) = auth.principal.staff_id() {
            list.items = vec![scope.get_staff(me).await?];
        }
    }
    Ok(Json(list))
}

#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = CreateStaff,
    responses((status = 201, body = Staff), (status = 403, body = ErrorBody),
        (status = 404, description = "no such unit", body = ErrorBody),
        (status = 409, description = "the email is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_staff(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateStaff>,
) -> ApiResult<(StatusCode, Json<Staff>)> {
    auth.require(Permission::StaffWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope.get_unit(body.unit_id).await?;
    check_grantable(&auth, &scope, &body.role).await?;
    let data_scope = body.data_scope.unwrap_or(DataScope::UnitSubtree);
    check_scope_grant(&auth, &scope, body.unit_id, data_scope).await?;
    let new = tokio::task::spawn_blocking(move || {
        NewStaff::new(
            body.unit_id,
            &body.role,
            &body.email,
            &body.name,
            body.password.as_deref(),
            data_scope,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let staff = scope.create_staff(&new, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(staff)))
}

#[utoipa::path(get, path = "/api/v1/staff/{id}", tag = "staff", params(("id" = i64, Path)),
    responses((status = 200, body = Staff), (status = 404, body = ErrorBody)))]
pub async fn get_staff(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Staff>> {
    auth.require(Permission::StaffRead)?;
    let scope = auth.scope(&app.store).await?;
    let staff = scope.get_staff(StaffId(id)).await?;
    check_staff_reach(&auth, &scope, &staff).await?;
    Ok(Json(staff))
}

/// Changes a staff member. A new password, a new role or `status: disabled` ends their
/// sessions at once.
#[utoipa::path(patch, path = "/api/v1/staff/{id}", tag = "staff", params(("id" = i64, Path)),
    request_body = UpdateStaff,
    responses((status = 200, body = Staff), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_staff(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateStaff>,
) -> ApiResult<Json<Staff>> {
    auth.require(Permission::StaffWrite)?;
    let scope = auth.scope(&app.store).await?;
    let staff = scope.get_staff(StaffId(id)).await?;
    check_staff_reach(&auth, &scope, &staff).await?;
    let is_self = auth.principal.staff_id() == Some(staff.id);
    if is_self
        && (body.status == Some(StaffStatus::Disabled)
            || body.role.is_some()
            || body.data_scope.is_some()
            || body.unit_id.is_some())
    {
        return Err(ApiError::Forbidden(
            "you cannot disable yourself or change your own role, unit or data scope".into(),
        ));
    }
    if is_self && body.password.is_some() {
        return Err(ApiError::Forbidden(
            "change your own password with PUT /api/v1/me/password, which asks for the current one"
                .into(),
        ));
    }
    if is_self && body.email.is_some() {
        return Err(ApiError::Forbidden(
            "another administrator changes your sign-in email".into(),
        ));
    }
    // changing someone who holds more, or reaches wider, than you (their password, say)
    // would let you act as them: refused
    check_grantable(&auth, &scope, &staff.role).await?;
    if !is_self {
        check_reaches_no_wider(&auth, &scope, &staff).await?;
    }
    if let Some(role) = &body.role {
        check_grantable(&auth, &scope, role).await?;
    }
    if let Some(unit) = body.unit_id {
        scope.get_unit(unit).await?;
    }
    if body.unit_id.is_some() || body.data_scope.is_some() {
        check_scope_grant(
            &auth,
            &scope,
            body.unit_id.unwrap_or(staff.unit_id),
            body.data_scope.unwrap_or(staff.data_scope),
        )
        .await?;
    }
    let mut changes = StaffChanges {
        unit_id: body.unit_id,
        role: body.role.clone(),
        data_scope: body.data_scope,
        status: body.status,
        ..StaffChanges::default()
    };
    if let Some(name) = &body.name {
        changes.set_name(name)?;
    }
    if let Some(email) = &body.email {
        changes.set_email(email)?;
    }
    if let Some(password) = body.password.clone() {
        changes =
            tokio::task::spawn_blocking(move || changes.set_password(&password).map(|()| changes))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))??;
    }
    Ok(Json(
        scope
            .update_staff(staff.id, &changes, &auth.actor())
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/staff/{id}", tag = "staff", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_staff(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::StaffWrite)?;
    let scope = auth.scope(&app.store).await?;
    let staff = scope.get_staff(StaffId(id)).await?;
    check_staff_reach(&auth, &scope, &staff).await?;
    if auth.principal.staff_id() == Some(staff.id) {
        return Err(ApiError::Forbidden(
            "you cannot delete your own account".into(),
        ));
    }
    check_grantable(&auth, &scope, &staff.role).await?;
    check_reaches_no_wider(&auth, &scope, &staff).await?;
    scope.delete_staff(staff.id, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
