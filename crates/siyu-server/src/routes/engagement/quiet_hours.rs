//! The tenant's quiet hours (`/api/v1/settings/quiet-hours`): when the sandbox channel
//! (later e-mail and SMS) and reminders to members wait
//! (`siyu_domain::engagement::quiet_hours`).

use axum::Json;
use axum::extract::State;
use siyu_domain::access::Permission;
use siyu_domain::engagement::quiet_hours::QuietHours;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth};

/// The tenant's quiet hours (off until set).
#[utoipa::path(get, path = "/api/v1/settings/quiet-hours", tag = "engagement",
    responses((status = 200, body = QuietHours), (status = 403, body = ErrorBody)))]
pub async fn get_quiet_hours(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<QuietHours>> {
    auth.require(Permission::BroadcastsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.quiet_hours().await?))
}

/// Sets the quiet hours, read in the tenant's time zone: sandbox batches and reminders
/// due within them wait until they end; WeCom members pick their own moment. Needs
/// `settings.write`; audited.
#[utoipa::path(put, path = "/api/v1/settings/quiet-hours", tag = "engagement",
    request_body = QuietHours,
    responses((status = 200, body = QuietHours), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_quiet_hours(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<QuietHours>,
) -> ApiResult<Json<QuietHours>> {
    auth.require(Permission::SettingsWrite)?;
    let hours = body.check()?;
    let scope = auth.scope(&app.store).await?;
    scope.set_quiet_hours(&hours, &auth.actor()).await?;
    Ok(Json(hours))
}
