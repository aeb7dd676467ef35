//! The audit log, newest first.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::audit::AuditEntry;
use siyu_domain::page::{Page, PageRequest};
use siyu_store::AuditFilter;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An action (`auth.login_failed`) or a prefix ending in a dot (`auth.`).
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = ErrorBody)))]
pub async fn list_audit_log(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    auth.require(Permission::AuditRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let filter = AuditFilter {
        action: q.action,
        target_kind: q.target_kind,
        target_id: q.target_id,
    };
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .list_audit(page, &filter)
            .await?,
    ))
}
