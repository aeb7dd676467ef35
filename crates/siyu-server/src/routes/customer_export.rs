//! Customer exports: the list (all the caller sees, or a search's and a definition's
//! matches) as CSV, streamed page by page, and everything held about one customer as
//! JSON (a data-subject access request). Both audited.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu_domain::access::Permission;
use siyu_domain::audit::{AuditRecord, action};
use siyu_domain::customer::{Customer, CustomerId, EXPORT_HEADER, export_row};
use siyu_domain::ids::JobId;
use siyu_domain::jobs::kind;
use siyu_domain::page::PageRequest;
use siyu_domain::personal::mask_personal_in_text;
use siyu_store::TenantScope;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody, definition_error};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::routes::conditions::condition_of;
use crate::routes::customers::matching_search_ids;
use crate::routes::jobs::{JobQueued, enqueue_asked};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Export only the customers this search finds (as in the list).
    pub q: Option<String>,
    /// Export only the customers this segment definition matches (as in the list).
    pub filter: Option<String>,
    /// Phone and email in full (needs `customers.reveal`).
    pub reveal: Option<bool>,
}

/// The customers the caller sees (all, or those `q` finds and `filter` matches) as CSV,
/// streamed page by page: id, name, phone, email, identities, owner, seen times, order
/// figures and traits. Needs `customers.export`; audited, with whether it was revealed.
#[utoipa::path(get, path = "/api/v1/customers/export", tag = "customers", params(ExportQuery),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 403, body = ErrorBody)))]
pub async fn export_customers(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    auth.require(Permission::CustomersExport)?;
    let reveal = q.reveal.unwrap_or(false);
    if reveal {
        auth.require(Permission::CustomersReveal)?;
    }
    let scope = auth.scope(&app.store).await?;
    let filter = q.filter.as_deref().filter(|f| !f.trim().is_empty());
    // who the filter matches is fixed now; the rows are read as the client reads
    let matching = match filter {
        Some(filter) => {
            let condition = condition_of(&auth, Some(filter), None)?;
            let (members, audience) = app.audiences.evaluate(&scope, &condition).await?;
            let mut ids = audience.read(&scope).ids(&members, usize::MAX);
            ids.sort_unstable_by_key(|id| std::cmp::Reverse(*id));
            Some(Arc::new(Matching {
                members,
                audience,
                ids,
            }))
        }
        None => None,
    };
    scope
        .audit(
            auth.actor(),
            AuditRecord::new(action::CUSTOMERS_EXPORTED, "customer", "*")
                // a search term may be someone's phone or e-mail: the audit log keeps it
                // masked, so erasing that person leaves nothing of them here
                .with_details(json!({"q": q.q.as_deref().map(mask_personal_in_text),
                    "filter": filter.map(mask_personal_in_text), "revealed": reveal})),
        )
        .await?;
    let store = app.store.clone();
    let principal = auth.principal.clone();
    let search = q.q.clone().filter(|q| !q.trim().is_empty());
    // each step writes the customers below an id, newest first; the first also writes
    // the header
    let pages = futures_util::stream::unfold(Some((i64::MAX, true)), move |state| {
        let store = store.clone();
        let search = search.clone();
        let principal = principal.clone();
        let matching = matching.clone();
        async move {
            let (before, first) = state?;
            // each step reads through the caller's own scope again
            let step = match store.scope_for(&principal).await {
                Ok(scope) => {
                    export_step(&scope, search.as_deref(), matching.as_deref(), before).await
                }
                Err(e) => Err(e.into()),
            };
            let (items, next) = match step {
                Ok(step) => step,
                Err(e) => {
                    tracing::error!(error = ?e, "customer export stopped");
                    return Some((Err(std::io::Error::other("the export stopped")), None));
                }
            };
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            if first {
                let _ = writer.write_record(EXPORT_HEADER);
            }
            for customer in items {
                let customer = if reveal { customer } else { customer.masked() };
                let _ = writer.write_record(export_row(&customer));
            }
            let bytes = writer.into_inner().unwrap_or_default();
            Some((Ok::<_, std::io::Error>(bytes), next.map(|n| (n, false))))
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"customers.csv\"",
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

/// What a large export takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Only the customers this segment definition matches; everyone the caller sees
    /// when absent.
    pub filter: Option<String>,
    /// Phone and email in full (needs `customers.reveal`).
    pub reveal: Option<bool>,
}

/// Exports customers in the background: a job writes the CSV of `GET
/// /api/v1/customers/export` (all the caller sees, or a definition's matches) to a file
/// any node serves, and `GET /api/v1/customers/exports/{job_id}/file` downloads it once
/// the job is done. Needs `customers.export`; audited when asked, with whether it is
/// revealed.
#[utoipa::path(post, path = "/api/v1/customers/exports", tag = "customers", request_body = ExportRequest,
    responses((status = 202, description = "a job writes the file", body = JobQueued),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_export(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ExportRequest>,
) -> ApiResult<(StatusCode, Json<JobQueued>)> {
    auth.require(Permission::CustomersExport)?;
    let reveal = body.reveal.unwrap_or(false);
    if reveal {
        auth.require(Permission::CustomersReveal)?;
    }
    let scope = auth.scope(&app.store).await?;
    let filter = body.filter.as_deref().filter(|f| !f.trim().is_empty());
    let condition = match filter {
        Some(text) => {
            let condition = condition_of(&auth, Some(text), None)?;
            // checked now, so a bad definition is a 422 and not a dead job
            app.audiences
                .catalog(scope.id())
                .await?
                .check(&condition)
                .map_err(definition_error)?;
            Some(condition)
        }
        None => None,
    };
    let job = siyu_runtime::exports::CustomerExport {
        condition,
        reveal,
        actor: auth.actor(),
    };
    let job_id = enqueue_asked(&auth, &scope, kind::CUSTOMER_EXPORT, job).await?;
    scope
        .audit(
            auth.actor(),
            AuditRecord::new(action::CUSTOMERS_EXPORTED, "customer", "*").with_details(
                json!({"filter": filter.map(mask_personal_in_text), "revealed": reveal,
                    "job_id": job_id}),
            ),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobQueued { job_id })))
}

/// The CSV an export job wrote, once it is done (404 before, and after a week).
#[utoipa::path(get, path = "/api/v1/customers/exports/{job_id}/file", tag = "customers",
    params(("job_id" = i64, Path)),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export_file(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Response> {
    auth.require(Permission::CustomersExport)?;
    let scope = auth.scope(&app.store).await?;
    let (file, bytes) = scope.export_file(JobId(job_id)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file.name),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Who an export's filter matched: the members, and their ids newest first.
struct Matching {
    members: roaring::RoaringBitmap,
    audience: Arc<siyu_runtime::audience::TenantAudience>,
    ids: Vec<i64>,
}

/// Customers exported per step.
const EXPORT_STEP: usize = 500;

/// One step of an export: the customers below the id `before` (newest first) that the
/// search finds and the filter matched, and the id the next step starts below.
async fn export_step(
    scope: &TenantScope<'_>,
    search: Option<&str>,
    matching: Option<&Matching>,
    before: i64,
) -> ApiResult<(Vec<Customer>, Option<i64>)> {
    let (ids, next) = match (matching, search) {
        (None, _) => {
            let page = PageRequest {
                after: (before != i64::MAX).then_some(before),
                after_pair: None,
                limit: EXPORT_STEP as u32,
            };
            let list = scope.list_customers(page, search).await?;
            let next = list
                .next_cursor
                .is_some()
                .then(|| list.items.last().map(|c| c.id.0))
                .flatten();
            return Ok((list.items, next));
        }
        (Some(m), Some(search)) => {
            matching_search_ids(scope, search, &m.audience, &m.members, before, EXPORT_STEP).await?
        }
        (Some(m), None) => {
            let start = m.ids.partition_point(|id| *id >= before);
            let end = (start + EXPORT_STEP).min(m.ids.len());
            let next = (end < m.ids.len()).then(|| m.ids[end - 1]);
            (m.ids[start..end].to_vec(), next)
        }
    };
    let ids: Vec<CustomerId> = ids.into_iter().map(CustomerId).collect();
    let mut customers = scope.customers_by_ids(&ids).await?;
    customers.sort_by_key(|c| std::cmp::Reverse(c.id.0));
    Ok((customers, next))
}

/// Everything held about the customer, unmasked, as one JSON document: profile,
/// identities, traits, event counts, consent history, notes, orders with after-sales,
/// and every event (a data-subject access request under PIPL). Needs `customers.export`
/// and `customers.reveal`; audited.
#[utoipa::path(get, path = "/api/v1/customers/{id}/data", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export_customer_data(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    auth.require(Permission::CustomersExport)?;
    auth.require(Permission::CustomersReveal)?;
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    Ok(Json(
        scope
            .export_customer_data(customer.id, &auth.actor())
            .await?,
    ))
}
