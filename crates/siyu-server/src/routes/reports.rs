//! The score reports: customers, GMV and orders per RFM class, the lifecycle funnel
//! (overall and per acquisition cohort) with the customers moving between stages, and
//! the 80/20 (Pareto) view of who brings the GMV. The operations dashboard is in
//! `dashboard.rs`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use siyu_audience::condition::{LifecycleStage, RfmClass};
use siyu_audience::index::{Period, period_of, period_start};
use siyu_domain::access::Permission;
use siyu_domain::audience::StageChange;
use siyu_domain::page::Page;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, PageParams};
use crate::routes::customer_scope::require_tenant_scope;

#[derive(Serialize, ToSchema)]
pub struct RfmClassFigures {
    /// The class code (`important_value` …).
    pub class: String,
    /// Its Chinese name (重要价值 …).
    pub name: String,
    pub customers: u64,
    /// Their net order total in the window, in the tenant currency.
    pub gmv: f64,
    pub orders: u64,
    /// GMV per order, in the tenant currency.
    pub average_order_value: f64,
}

#[derive(Serialize, ToSchema)]
pub struct RfmReport {
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The cut points in force: recency in days, frequency in orders, monetary in the tenant currency.
    #[schema(value_type = Object)]
    pub cut_points: Value,
    pub classes: Vec<RfmClassFigures>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    /// One unit and the units beneath it (scored against their own quintiles).
    pub unit_id: Option<i64>,
}

/// Customers, GMV, orders and average order value per RFM class.
#[utoipa::path(get, path = "/api/v1/rfm", tag = "segments", params(UnitQuery),
    responses((status = 200, body = RfmReport), (status = 404, body = ErrorBody)))]
pub async fn rfm_report(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<UnitQuery>,
) -> ApiResult<Json<RfmReport>> {
    auth.require(Permission::AnalyticsRead)?;
    let tenant = auth.principal.tenant_id;
    let units = match q.unit_id {
        Some(unit) => Some(
            auth.scope(&app.store)
                .await?
                .unit_catalog()
                .await?
                .remove(&unit)
                .ok_or(ApiError::NotFound("unit"))?,
        ),
        None => None,
    };
    let scope = auth.scope(&app.store).await?;
    let audience = app.audiences.tenant(tenant).await?;
    let index = audience.read(&scope);
    let (cuts, report) = index.rfm_report(units.as_deref());
    let classes = RfmClass::ALL
        .iter()
        .map(|class| {
            let f = report.get(class).copied().unwrap_or_default();
            RfmClassFigures {
                class: class.code().into(),
                name: class.chinese().into(),
                customers: f.customers,
                gmv: f.gmv as f64 / 100.0,
                orders: f.orders,
                average_order_value: if f.orders > 0 {
                    (f.gmv as f64 / f.orders as f64).round() / 100.0
                } else {
                    0.0
                },
            }
        })
        .collect();
    Ok(Json(RfmReport {
        settings: serde_json::to_value(&index.settings().rfm).expect("serializable"),
        cut_points: json!({
            "recency_days": cuts.recency_days,
            "frequency": cuts.frequency,
            "monetary": cuts.monetary.map(|m| m as f64 / 100.0),
        }),
        classes,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct StageFigures {
    pub stage: String,
    pub name: String,
    pub customers: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CohortFigures {
    /// The acquisition cohort: `2026-11` (by month) or the Monday `2026-11-23` (by week).
    pub cohort: String,
    pub customers: u64,
    /// Customers of the cohort per stage code.
    #[schema(value_type = Object)]
    pub stages: Value,
}

#[derive(Serialize, ToSchema)]
pub struct LifecycleReport {
    /// Customers per stage, in funnel order.
    pub stages: Vec<StageFigures>,
    /// The same per acquisition cohort (when customers were first seen), oldest first.
    pub cohorts: Vec<CohortFigures>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CohortQuery {
    /// `month` (default) or `week`.
    pub cohort: Option<String>,
}

/// Customers per lifecycle stage (the AARRR funnel), overall and per acquisition cohort.
#[utoipa::path(get, path = "/api/v1/lifecycle", tag = "segments", params(CohortQuery),
    responses((status = 200, body = LifecycleReport), (status = 422, body = ErrorBody)))]
pub async fn lifecycle_report(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<CohortQuery>,
) -> ApiResult<Json<LifecycleReport>> {
    auth.require(Permission::AnalyticsRead)?;
    let by_week = match q.cohort.as_deref().unwrap_or("month") {
        "month" => false,
        "week" => true,
        _ => return Err(ApiError::field("cohort", "must be month or week")),
    };
    let scope = auth.scope(&app.store).await?;
    let audience = app.audiences.tenant(auth.principal.tenant_id).await?;
    let index = audience.read(&scope);
    // a cohort is named by its first day: the first of the month, or the Monday
    let period = if by_week { Period::Week } else { Period::Month };
    let cohorts = index.stage_cohorts(|day| period_start(period, period_of(period, day)));
    let mut totals = std::collections::HashMap::new();
    let cohorts = cohorts
        .into_iter()
        .map(|(first_day, per_stage)| {
            let date = siyu_audience::facts::format_day(first_day);
            let mut stages = serde_json::Map::new();
            let mut customers = 0;
            for stage in LifecycleStage::ALL {
                let n = per_stage.get(stage).copied().unwrap_or(0);
                *totals.entry(*stage).or_insert(0u64) += n;
                customers += n;
                stages.insert(stage.code().into(), json!(n));
            }
            CohortFigures {
                cohort: if by_week { date } else { date[..7].to_owned() },
                customers,
                stages: Value::Object(stages),
            }
        })
        .collect();
    Ok(Json(LifecycleReport {
        stages: LifecycleStage::ALL
            .iter()
            .map(|stage| StageFigures {
                stage: stage.code().into(),
                name: stage.chinese().into(),
                customers: totals.get(stage).copied().unwrap_or(0),
            })
            .collect(),
        cohorts,
    }))
}

/// Customers moving between lifecycle stages, oldest first (what journeys start from).
#[utoipa::path(get, path = "/api/v1/lifecycle/changes", tag = "segments", params(PageParams),
    responses((status = 200, body = Page<StageChange>)))]
pub async fn stage_changes(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<StageChange>>> {
    auth.require(Permission::AnalyticsRead)?;
    let scope = auth.scope(&app.store).await?;
    require_tenant_scope(&scope)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .stage_changes(params.page()?)
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ParetoReport {
    /// Customers with at least one order in the window.
    pub buyers: u64,
    /// Their net order total, in the tenant currency.
    pub gmv: f64,
    /// The fewest buyers who bring 80% of it: the key customers.
    pub key_customers: u64,
    /// Key customers as a share of buyers (0–1).
    pub key_customer_share: f64,
    /// The share of GMV (0–1) the top 20% of buyers bring.
    pub top_fifth_gmv_share: f64,
    /// The least a key customer spent, in the tenant currency.
    pub key_threshold: f64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParetoQuery {
    /// One unit and the units beneath it.
    pub unit_id: Option<i64>,
    /// Orders of the last N days (default 365; 0 for all time).
    pub days: Option<u32>,
}

/// The 80/20 view: what share of customers brings 80% of GMV, for the tenant or a unit.
#[utoipa::path(get, path = "/api/v1/reports/pareto", tag = "segments", params(ParetoQuery),
    responses((status = 200, body = ParetoReport), (status = 404, body = ErrorBody)))]
pub async fn pareto_report(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ParetoQuery>,
) -> ApiResult<Json<ParetoReport>> {
    auth.require(Permission::AnalyticsRead)?;
    let tenant = auth.principal.tenant_id;
    let units = match q.unit_id {
        Some(unit) => Some(
            auth.scope(&app.store)
                .await?
                .unit_catalog()
                .await?
                .remove(&unit)
                .ok_or(ApiError::NotFound("unit"))?,
        ),
        None => None,
    };
    let days = match q.days.unwrap_or(365) {
        0 => None,
        d if d > 3650 => return Err(ApiError::field("days", "at most 3650")),
        d => Some(d),
    };
    let scope = auth.scope(&app.store).await?;
    let audience = app.audiences.tenant(tenant).await?;
    let p = {
        let index = audience.read(&scope);
        index.pareto(units.as_deref(), days)
    };
    Ok(Json(ParetoReport {
        buyers: p.buyers,
        gmv: p.gmv as f64 / 100.0,
        key_customers: p.key_customers,
        key_customer_share: p.key_share,
        top_fifth_gmv_share: p.top_fifth_gmv_share,
        key_threshold: p.key_threshold as f64 / 100.0,
    }))
}
