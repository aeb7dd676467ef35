//! The operations dashboard (数据看板): one call for its customer and sales figures over a
//! date range, optionally for one unit. The figures are computed by the audience index
//! ([`siyu_audience::index::AudienceIndex::dashboard`], where the definitions are); this
//! handler resolves the filter and turns minor units into major ones and day numbers into dates.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use siyu_audience::facts::{date_day, format_day};
use siyu_audience::index::{BuyerFigures, DashboardQuery, Period};
use siyu_domain::access::Permission;
use siyu_domain::acquisition::report::{ReportBy, ReportRange};
use siyu_domain::ids::UnitId;
use siyu_domain::order::{DomainClass, SalesChannel};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth};

/// The longest range one call may cover.
const MAX_DAYS: i32 = 731;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// First day, `YYYY-MM-DD` (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today, UTC).
    pub to: Option<String>,
    /// One unit and the units beneath it: customers who bought there or are looked after
    /// by its staff, and orders placed there.
    pub unit_id: Option<i64>,
    /// Retention periods: `week` (default) or `month`.
    pub period: Option<String>,
    /// Retention cohorts of one acquisition channel only (a source's name, or `none`).
    pub channel: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DashboardReport {
    pub from: String,
    pub to: String,
    pub period: String,
    /// Customers added and lost per day and acquisition channel (days with neither are
    /// left out). A customer is acquired on the day first seen, through the first source
    /// they came from (its name; `none` without one), and lost on the day they lapse
    /// (the lifecycle's lapse window after their last event or order).
    pub growth: Vec<GrowthRow>,
    /// How far the customers acquired in the range got.
    pub funnel: FunnelRow,
    /// Cohorts by acquisition period, oldest first.
    pub retention: Vec<CohortRow>,
    /// Private-domain customers (from a WeCom, mini-program, official-account, app or
    /// website source, or looked after by staff) against the others, in the range.
    pub repurchase: RepurchaseRow,
    pub sales: SalesRow,
    /// The acquisition channels that appear, for the console's filters.
    pub channels: Vec<String>,
    /// What channel codes brought in the range (the unit's codes when one is given:
    /// its subtree), for callers who may see codes (`campaigns.read`); none otherwise.
    pub acquisition: Option<AcquisitionSection>,
}

/// The dashboard's acquisition section. The relations lost here are WeCom friendships
/// ended (by the customer or the member) of customers codes brought: apart from the
/// customers the growth figures count as lost, who lapsed (stopped coming back)
/// whether or not they are still friends.
#[derive(Serialize, ToSchema)]
pub struct AcquisitionSection {
    /// Landing page visits by people.
    pub scans: i64,
    pub adds: i64,
    pub relations_lost_by_customer: i64,
    pub relations_lost_by_member: i64,
    pub net_adds: i64,
    /// Customers brought first by a code who ordered within the window after the add.
    pub first_orders: i64,
    /// What they ordered in that window (tenant currency, major units).
    pub first_order_gmv: f64,
    /// The codes that brought the most adds (at most 5), by name.
    pub top_codes: Vec<TopCode>,
}

#[derive(Serialize, ToSchema)]
pub struct TopCode {
    pub name: String,
    pub adds: i64,
    pub net_adds: i64,
}

#[derive(Serialize, ToSchema)]
pub struct GrowthRow {
    pub date: String,
    pub channel: String,
    pub added: u64,
    pub lost: u64,
    pub net: i64,
}

#[derive(Serialize, ToSchema)]
pub struct FunnelRow {
    pub acquired: u64,
    pub activated: u64,
    pub retained: u64,
    pub revenue: u64,
    pub referral: u64,
    pub lapsed: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CohortRow {
    /// The first day of the acquisition week (Monday) or month.
    pub start: String,
    pub customers: u64,
    /// Customers active in each period from the acquisition period (index 0) to now.
    pub active: Vec<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct RepurchaseRow {
    pub private_domain: BuyerRow,
    pub others: BuyerRow,
}

#[derive(Serialize, ToSchema)]
pub struct BuyerRow {
    /// All of them (within the unit and the caller's data scope), whenever acquired.
    pub customers: u64,
    /// Those with an order in the range.
    pub buyers: u64,
    pub repeat_buyers: u64,
    pub orders: u64,
    /// In the tenant currency (major units).
    pub gmv: f64,
    /// repeat_buyers / buyers (0–1).
    pub repurchase_rate: f64,
    /// orders / buyers.
    pub frequency: f64,
}

#[derive(Serialize, ToSchema)]
pub struct SalesRow {
    /// Orders net of refunds, in the tenant currency.
    pub gmv: f64,
    pub orders: u64,
    pub private_gmv: f64,
    pub private_orders: u64,
    /// private_gmv / gmv (0–1).
    pub private_share: f64,
    /// In the tenant currency (major units).
    pub average_order_value: f64,
    pub by_channel: Vec<ChannelSales>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelSales {
    pub channel: String,
    pub private_domain: bool,
    pub gmv: f64,
}

/// The operations dashboard's figures for a date range.
#[utoipa::path(get, path = "/api/v1/reports/dashboard", tag = "reports", params(DashboardParams),
    responses((status = 200, body = DashboardReport), (status = 422, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn dashboard(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<DashboardParams>,
) -> ApiResult<Json<DashboardReport>> {
    auth.require(Permission::AnalyticsRead)?;
    let tenant = auth.principal.tenant_id;
    let scope = auth.scope(&app.store).await?;
    let audience = app.audiences.tenant(tenant).await?;
    let to = match &q.to {
        Some(s) => parse_date("to", s)?,
        None => audience.today(),
    };
    let from = match &q.from {
        Some(s) => parse_date("from", s)?,
        None => to - 29,
    };
    if from > to {
        return Err(ApiError::field("from", "must not be after `to`"));
    }
    if to - from + 1 > MAX_DAYS {
        return Err(ApiError::field(
            "from",
            format!("the range may cover at most {MAX_DAYS} days"),
        ));
    }
    let period = match q.period.as_deref() {
        None | Some("week") => Period::Week,
        Some("month") => Period::Month,
        Some(_) => return Err(ApiError::field("period", "must be week or month")),
    };
    let units = match q.unit_id {
        Some(unit) => Some(
            scope
                .unit_catalog()
                .await?
                .remove(&unit)
                .ok_or(ApiError::NotFound("unit"))?,
        ),
        None => None,
    };
    let unit_staff = match &units {
        Some(units) => {
            let ids: Vec<UnitId> = units.iter().map(|u| UnitId(*u)).collect();
            Some(scope.staff_ids_in_units(&ids).await?)
        }
        None => None,
    };
    let mut source_channels = HashMap::new();
    let mut private_sources = HashSet::new();
    for (id, name, kind) in scope.source_kinds().await? {
        source_channels.insert(id, name);
        if kind.sales_channel().domain_class() == DomainClass::Private {
            private_sources.insert(id);
        }
    }
    let private_order_channels: Vec<String> = SalesChannel::ALL
        .iter()
        .filter(|c| c.domain_class() == DomainClass::Private)
        .map(|c| c.as_str().to_owned())
        .collect();

    let dash = {
        let index = audience.read(&scope);
        let customers = match (&units, &unit_staff) {
            (Some(units), Some(staff)) => {
                let staff: Vec<i64> = staff.iter().map(|s| s.0).collect();
                Some(index.of_units(units, &staff))
            }
            _ => None,
        };
        index.dashboard(&DashboardQuery {
            from,
            to,
            customers: customers.as_ref(),
            units: units.as_deref(),
            source_channels: &source_channels,
            private_sources: &private_sources,
            private_order_channels: &private_order_channels,
            period,
            retention_channel: q.channel.as_deref(),
        })
    };

    let acquisition = if auth.principal.can(Permission::CampaignsRead) {
        Some(acquisition_section(&scope, from, to, q.unit_id).await?)
    } else {
        None
    };
    let mut channels: Vec<String> = dash.growth.iter().map(|g| g.channel.clone()).collect();
    channels.sort();
    channels.dedup();
    let yuan = |fen: i64| fen as f64 / 100.0;
    let buyers = |b: BuyerFigures| BuyerRow {
        customers: b.customers,
        buyers: b.buyers,
        repeat_buyers: b.repeat_buyers,
        orders: b.orders,
        gmv: yuan(b.gmv),
        repurchase_rate: b.repurchase_rate,
        frequency: b.frequency,
    };
    Ok(Json(DashboardReport {
        from: format_day(from),
        to: format_day(to),
        period: match period {
            Period::Week => "week",
            Period::Month => "month",
        }
        .into(),
        growth: dash
            .growth
            .into_iter()
            .map(|g| GrowthRow {
                date: format_day(g.day),
                net: g.added as i64 - g.lost as i64,
                channel: g.channel,
                added: g.added,
                lost: g.lost,
            })
            .collect(),
        funnel: FunnelRow {
            acquired: dash.funnel.acquired,
            activated: dash.funnel.activated,
            retained: dash.funnel.retained,
            revenue: dash.funnel.revenue,
            referral: dash.funnel.referral,
            lapsed: dash.funnel.lapsed,
        },
        retention: dash
            .retention
            .into_iter()
            .map(|c| CohortRow {
                start: format_day(c.start),
                customers: c.customers,
                active: c.active,
            })
            .collect(),
        repurchase: RepurchaseRow {
            private_domain: buyers(dash.repurchase.private_domain),
            others: buyers(dash.repurchase.others),
        },
        sales: SalesRow {
            gmv: yuan(dash.sales.gmv),
            orders: dash.sales.orders,
            private_gmv: yuan(dash.sales.private_gmv),
            private_orders: dash.sales.private_orders,
            private_share: dash.sales.private_share,
            average_order_value: yuan(dash.sales.average_order_value),
            by_channel: dash
                .sales
                .by_channel
                .into_iter()
                .map(|(channel, gmv)| ChannelSales {
                    private_domain: private_order_channels.contains(&channel),
                    channel,
                    gmv: yuan(gmv),
                })
                .collect(),
        },
        channels,
        acquisition,
    }))
}

/// What codes brought from `from` to `to` (day numbers), in total or for one unit's
/// subtree, within the caller's reach.
async fn acquisition_section(
    scope: &siyu_store::TenantScope<'_>,
    from: i32,
    to: i32,
    unit: Option<i64>,
) -> ApiResult<AcquisitionSection> {
    let range = ReportRange {
        first_day: i64::from(from),
        last_day: i64::from(to),
    };
    let by_code = scope.acquisition_report(range, ReportBy::Code).await?;
    let figures = match unit {
        Some(unit) => scope
            .acquisition_report(range, ReportBy::Unit)
            .await?
            .rows
            .into_iter()
            .find(|r| r.id == Some(unit))
            .map(|r| r.figures)
            .unwrap_or_default(),
        None => by_code.total,
    };
    Ok(AcquisitionSection {
        scans: figures.scans,
        adds: figures.adds,
        relations_lost_by_customer: figures.deleted_by_customer,
        relations_lost_by_member: figures.deleted_by_member,
        net_adds: figures.net_adds,
        first_orders: figures.first_orders,
        first_order_gmv: figures.gmv as f64 / 100.0,
        // a unit's view keeps to its total; the top codes are the tenant's within reach
        top_codes: by_code
            .rows
            .into_iter()
            .filter(|r| r.figures.adds > 0)
            .take(5)
            .map(|r| TopCode {
                name: r.name,
                adds: r.figures.adds,
                net_adds: r.figures.net_adds,
            })
            .collect(),
    })
}

/// A `YYYY-MM-DD` date as a day number, or a field error.
fn parse_date(field: &str, s: &str) -> ApiResult<i32> {
    let bad = || ApiError::field(field, format!("`{s}` is not a date like 2026-11-29"));
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d) = match (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) {
        (Ok(y), Ok(m), Ok(d)) if (1970..=9999).contains(&y) && (1..=12).contains(&m) => (y, m, d),
        _ => return Err(bad()),
    };
    // 2026-02-30 is no date
    date_day(y, m, d).ok_or_else(bad)
}
