//! Scores: one customer's (RFM class, lifecycle stage, value tier, KOC, role per unit)
//! and the settings they are computed by (`rfm`, `lifecycle`, `koc`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};
use siyu_audience::condition::LifecycleStage;
use siyu_audience::lifecycle::LifecycleSettings;
use siyu_audience::rfm::RfmSettings;
use siyu_domain::access::Permission;
use siyu_domain::customer::CustomerId;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, definition_error};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::routes::conditions::condition_of;
use siyu_runtime::audience::{KOC_SETTINGS, LIFECYCLE_SETTINGS, RFM_SETTINGS};

#[derive(Serialize, ToSchema)]
pub struct CustomerScores {
    /// `{r, f, m, class, name}`, or null without an order in the RFM window.
    #[schema(value_type = Option<Object>)]
    pub rfm: Option<Value>,
    pub lifecycle: String,
    /// `key` (among the fewest who bring 80% of GMV, last 365 days), `important` (the
    /// next 15%), `regular` (other buyers) or `prospect` (no orders).
    pub value_tier: String,
    /// A seed user / KOC by the tenant's criteria (`/api/v1/score-settings/koc`).
    pub koc: bool,
    /// The customer's role in each unit they bought in: `new`, `repeat` or `key`.
    #[schema(value_type = Vec<Object>)]
    pub units: Vec<Value>,
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/scores", tag = "segments", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerScores), (status = 404, body = ErrorBody)))]
pub async fn customer_scores(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<CustomerScores>> {
    auth.require(Permission::CustomersRead)?;
    let tenant = auth.principal.tenant_id;
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    let units = scope.unit_catalog().await?;
    let koc = app.audiences.koc_condition(tenant).await?;
    let koc = app
        .audiences
        .evaluate(&scope, &koc)
        .await
        .map(|(members, audience)| {
            let index = audience.read(&scope);
            index.set_of([customer.id.0]).is_subset(&members)
                && !index.set_of([customer.id.0]).is_empty()
        })
        .unwrap_or(false);
    let audience = app.audiences.tenant(tenant).await?;
    let index = audience.read(&scope);
    let (rfm, stage) = index
        .scores_of(customer.id.0)
        .unwrap_or((None, LifecycleStage::Acquired));
    let tier = index.value_tier(customer.id.0, Some(365));
    let roles = index.unit_roles(customer.id.0, &units, Some(365));
    Ok(Json(CustomerScores {
        rfm: rfm.map(|s| json!({"r": s.r, "f": s.f, "m": s.m, "class": s.class.code(), "name": s.class.chinese()})),
        lifecycle: stage.code().into(),
        value_tier: serde_json::to_value(tier).expect("serializable").as_str().unwrap_or("").to_owned(),
        koc,
        units: roles
            .into_iter()
            .map(|r| json!({"unit_id": r.unit, "role": r.role, "orders": r.orders, "gmv": r.gmv as f64 / 100.0}))
            .collect(),
    }))
}

/// The score settings: `rfm` (window, fixed cut points, what counts as high),
/// `lifecycle` (the stage rules' thresholds) or `koc` (`{"definition": …}`: who counts
/// as a seed user / KOC, in the segment language).
#[utoipa::path(get, path = "/api/v1/score-settings/{key}", tag = "segments", params(("key" = String, Path, description = "`rfm`, `lifecycle` or `koc`")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_score_settings(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    auth.require(Permission::AnalyticsRead)?;
    if key == KOC_SETTINGS {
        let condition = app
            .audiences
            .koc_condition(auth.principal.tenant_id)
            .await?;
        return Ok(Json(json!({"definition": condition.to_string()})));
    }
    let scope = auth.scope(&app.store).await?;
    let audience = app.audiences.tenant(scope.id()).await?;
    let index = audience.read(&scope);
    let settings = index.settings();
    Ok(Json(match key.as_str() {
        RFM_SETTINGS => serde_json::to_value(&settings.rfm).expect("serializable"),
        LIFECYCLE_SETTINGS => serde_json::to_value(&settings.lifecycle).expect("serializable"),
        _ => return Err(ApiError::NotFound("settings")),
    }))
}

/// Changes score settings and rescores every customer. Audited.
#[utoipa::path(put, path = "/api/v1/score-settings/{key}", tag = "segments", params(("key" = String, Path, description = "`rfm`, `lifecycle` or `koc`")),
    request_body = Object,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_score_settings(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    auth.require(Permission::SettingsWrite)?;
    let invalid = |e: serde_json::Error| ApiError::field("settings", e.to_string());
    let value = match key.as_str() {
        RFM_SETTINGS => {
            let s: RfmSettings = serde_json::from_value(body).map_err(invalid)?;
            if !(1..=3650).contains(&s.window_days) {
                return Err(ApiError::field("window_days", "must be 1 to 3650"));
            }
            if !(1..=5).contains(&s.high_from) {
                return Err(ApiError::field("high_from", "must be 1 to 5"));
            }
            if let Some(f) = &s.fixed
                && (!f.recency_days.is_sorted()
                    || !f.frequency.is_sorted()
                    || !f.monetary.is_sorted())
            {
                return Err(ApiError::field(
                    "fixed",
                    "cut points must be in ascending order",
                ));
            }
            serde_json::to_value(&s).expect("serializable")
        }
        LIFECYCLE_SETTINGS => {
            let s: LifecycleSettings = serde_json::from_value(body).map_err(invalid)?;
            for (field, days) in [
                ("lapsed_after_days", s.lapsed_after_days),
                ("referral_window_days", s.referral_window_days),
                ("retained_after_days", s.retained_after_days),
            ] {
                if !(1..=3650).contains(&days) {
                    return Err(ApiError::field(field, "must be 1 to 3650 days"));
                }
            }
            serde_json::to_value(&s).expect("serializable")
        }
        KOC_SETTINGS => {
            let text = body
                .get("definition")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::field("definition", "give the criteria as a definition")
                })?;
            let condition = condition_of(&auth, Some(text), None)?;
            app.audiences
                .catalog(auth.principal.tenant_id)
                .await?
                .check(&condition)
                .map_err(definition_error)?;
            json!({"definition": condition.to_string()})
        }
        _ => return Err(ApiError::NotFound("settings")),
    };
    let tenant = auth.principal.tenant_id;
    auth.scope(&app.store)
        .await?
        .put_setting(&key, &value, &auth.actor())
        .await?;
    app.audiences.rescore(tenant).await?;
    Ok(Json(value))
}
