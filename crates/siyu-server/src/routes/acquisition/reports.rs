//! Acquisition reports (`GET /api/v1/acquisition/report`): what channel codes brought
//! over a range of days, grouped by code, account, platform, unit or member, with the
//! daily trend; within the caller's data scope (`siyu_store`'s acquisition reports).

use axum::Json;
use axum::extract::State;
use siyu_domain::access::Permission;
use siyu_domain::acquisition::report::{AcquisitionReport, ReportBy, ReportQuery};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth};

/// What codes brought from `from` to `to` (local dates, both included, at most two
/// years): scans, adds, deletions by customer and by member, net adds, the customers
/// they brought first and those customers' first orders and GMV within 30 days of the
/// add; per group (`by`), in total and day by day. Adds of an unknown code's state are
/// the row of code 0.
#[utoipa::path(get, path = "/api/v1/acquisition/report", tag = "acquisition",
    params(ReportQuery),
    responses((status = 200, body = AcquisitionReport), (status = 403, body = ErrorBody)))]
pub async fn acquisition_report(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<AcquisitionReport>> {
    auth.require(Permission::CampaignsRead)?;
    let range = q.range()?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .acquisition_report(range, q.by.unwrap_or(ReportBy::Code))
            .await?,
    ))
}
