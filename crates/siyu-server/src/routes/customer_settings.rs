//! The tenant's customer settings: the limits on trait names and which identity kinds
//! name one person.

use axum::Json;
use axum::extract::State;
use siyu_domain::access::Permission;
use siyu_domain::identity::IdentitySettings;
use siyu_domain::traits::TraitLimits;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth};

/// The tenant's limits on trait names: how many new names one tracked event or import
/// row may bring (more is refused with `too_many_traits`), how many one profile or group
/// membership may hold (surplus new names are dropped where traits are applied, and
/// counted in the source's `traits_dropped`), and how many distinct names the tenant may
/// use (the same again for group traits).
#[utoipa::path(get, path = "/api/v1/settings/traits", tag = "customers",
    responses((status = 200, body = TraitLimits), (status = 403, body = ErrorBody)))]
pub async fn get_trait_limits(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<TraitLimits>> {
    auth.require(Permission::CustomersRead)?;
    Ok(Json(auth.scope(&app.store).await?.trait_limits().await?))
}

/// Sets the trait limits (each at least 1; at most 1,000 new names per event, 5,000 per
/// profile, 20,000 distinct). They apply to events answered from then on; traits kept
/// already stay. Needs `settings.write`; audited.
#[utoipa::path(put, path = "/api/v1/settings/traits", tag = "customers", request_body = TraitLimits,
    responses((status = 200, body = TraitLimits), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_trait_limits(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<TraitLimits>,
) -> ApiResult<Json<TraitLimits>> {
    auth.require(Permission::SettingsWrite)?;
    let limits = body.check()?;
    auth.scope(&app.store)
        .await?
        .set_trait_limits(&limits, &auth.actor())
        .await?;
    Ok(Json(limits))
}

/// Which identity kinds name one person in this tenant (by default `user_id`): a
/// profile holds at most one value of each, and profiles with different values of one
/// never merge. Ranked: the first kind's owner wins when an event's values disagree.
#[utoipa::path(get, path = "/api/v1/settings/identity", tag = "customers",
    responses((status = 200, body = IdentitySettings), (status = 403, body = ErrorBody)))]
pub async fn get_identity_settings(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<IdentitySettings>> {
    auth.require(Permission::CustomersRead)?;
    let stored = auth
        .scope(&app.store)
        .await?
        .setting(IdentitySettings::KEY)
        .await?;
    Ok(Json(
        stored
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
    ))
}

/// Sets the identifying kinds. It applies to events from now on: profiles that already
/// hold two values of a kind keep them. Needs `settings.write`; audited.
#[utoipa::path(put, path = "/api/v1/settings/identity", tag = "customers", request_body = IdentitySettings,
    responses((status = 200, body = IdentitySettings), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_identity_settings(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<IdentitySettings>,
) -> ApiResult<Json<IdentitySettings>> {
    auth.require(Permission::SettingsWrite)?;
    let settings = body.check()?;
    auth.scope(&app.store)
        .await?
        .put_setting(
            IdentitySettings::KEY,
            &serde_json::to_value(&settings).expect("serializable"),
            &auth.actor(),
        )
        .await?;
    Ok(Json(settings))
}
