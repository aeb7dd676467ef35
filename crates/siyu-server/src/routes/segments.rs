//! Segments: a live count (and sample) of an unsaved definition while it is typed,
//! saved segments (dynamic or static) with their members, CSV export, size over time and
//! the customers entering and leaving them.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use siyu_audience::Condition;
use siyu_domain::access::Permission;
use siyu_domain::audience::{Segment, SegmentEvent, SegmentId, SegmentKind};
use siyu_domain::audit::{AuditRecord, action};
use siyu_domain::customer::{Customer, CustomerId, EXPORT_HEADER, export_row};
use siyu_domain::page::Page;
use siyu_store::{NewSegment, TenantScope};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::definition_error;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};
use crate::routes::conditions::{condition_of, members_page, segment_condition};
use crate::routes::customer_scope::require_tenant_scope;
use siyu_runtime::audience::AudienceError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The definition in the text form, e.g. `tag("高净值") and orders.count(last 90d) >= 2`.
    pub definition: Option<String>,
    /// Or the same in the JSON form.
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Value>,
    /// How many matching customers to show (0 to 50, default 10).
    pub sample: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Preview {
    /// How many customers match (within the caller's data scope).
    pub count: u64,
    /// Some of them, masked.
    pub sample: Vec<Customer>,
    /// The definition in the text form, as siyu prints it.
    pub definition: String,
    /// The same in the JSON form.
    #[schema(value_type = Object)]
    pub condition: Value,
    /// How long the count took, in milliseconds.
    pub took_ms: f64,
}

/// Counts the customers an unsaved definition matches, with a sample, fast enough to
/// call on every keystroke. A definition that does not parse or names what the tenant
/// lacks answers 422 with `details.line`/`details.column` or `details.part`.
#[utoipa::path(post, path = "/api/v1/segments/preview", tag = "segments", request_body = PreviewRequest,
    responses((status = 200, body = Preview), (status = 422, body = ErrorBody)))]
pub async fn preview(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    auth.require(Permission::SegmentsRead)?;
    let started = std::time::Instant::now();
    let condition = condition_of(&auth, body.definition.as_deref(), body.condition.as_ref())?;
    let scope = auth.scope(&app.store).await?;
    let (members, audience) = app.audiences.evaluate(&scope, &condition).await?;
    let sample_ids = {
        let index = audience.read(&scope);
        index.ids(&members, body.sample.unwrap_or(10).min(50))
    };
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    let ids: Vec<CustomerId> = sample_ids.into_iter().map(CustomerId).collect();
    let sample = scope
        .customers_by_ids(&ids)
        .await?
        .into_iter()
        .map(Customer::masked)
        .collect();
    Ok(Json(Preview {
        count: members.len(),
        sample,
        definition: condition.to_string(),
        condition: serde_json::to_value(&condition).expect("serializable"),
        took_ms,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    #[serde(flatten)]
    pub segment: Segment,
    /// Members now (within the caller's data scope).
    pub count: u64,
    /// Why the segment cannot be counted, when its definition names what no longer
    /// exists.
    pub problem: Option<String>,
}

async fn view(app: &AppState, scope: &TenantScope<'_>, segment: Segment) -> ApiResult<SegmentView> {
    match app
        .audiences
        .evaluate(scope, &Condition::Segment(segment.id.0))
        .await
    {
        Ok((members, _)) => Ok(SegmentView {
            segment,
            count: members.len(),
            problem: None,
        }),
        // a definition that names what no longer exists (a deleted unit): the segment
        // is still listed, with why it cannot be counted
        Err(AudienceError::Definition(e)) => Ok(SegmentView {
            segment,
            count: 0,
            problem: Some(e.message),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The segment's size over the whole tenant, for its size over time.
async fn record_count(app: &AppState, scope: &TenantScope<'_>, id: SegmentId) -> ApiResult<()> {
    // the size over time is the segment's, whoever saved it: counted tenant-wide
    let whole = scope.whole_tenant();
    if let Ok((members, _)) = app
        .audiences
        .evaluate(&whole, &Condition::Segment(id.0))
        .await
    {
        whole.record_segment_count(id, members.len()).await?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/segments", tag = "segments",
    responses((status = 200, body = Vec<SegmentView>)))]
pub async fn list_segments(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<SegmentView>>> {
    auth.require(Permission::SegmentsRead)?;
    let scope = auth.scope(&app.store).await?;
    let segments = scope.segments().await?;
    let mut views = Vec::with_capacity(segments.len());
    for s in segments {
        views.push(view(&app, &scope, s).await?);
    }
    Ok(Json(views))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSegmentRequest {
    pub name: String,
    pub description: Option<String>,
    /// `dynamic` (default: membership follows the definition) or `static` (the
    /// definition's matches now, or `customer_ids`, frozen).
    pub kind: Option<String>,
    pub definition: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Value>,
    /// The members of a static segment, instead of a definition.
    pub customer_ids: Option<Vec<CustomerId>>,
}

#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = NewSegmentRequest,
    responses((status = 201, body = SegmentView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_segment(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewSegmentRequest>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    auth.require(Permission::SegmentsWrite)?;
    let tenant = auth.principal.tenant_id;
    let scope = auth.scope(&app.store).await?;
    let kind = SegmentKind::parse("kind", body.kind.as_deref().unwrap_or("dynamic"))?;
    if let Some(d) = &body.description
        && d.chars().count() > 500
    {
        return Err(ApiError::field("description", "at most 500 characters"));
    }
    let new = match kind {
        SegmentKind::Dynamic => {
            if body.customer_ids.is_some() {
                return Err(ApiError::field(
                    "customer_ids",
                    "a dynamic segment has a definition, not a list",
                ));
            }
            let condition =
                condition_of(&auth, body.definition.as_deref(), body.condition.as_ref())?;
            app.audiences
                .catalog(tenant)
                .await?
                .check(&condition)
                .map_err(definition_error)?;
            // its members now are recorded with it, so entering it later is an event
            let members = app.audiences.members_now(tenant, &condition).await?;
            NewSegment {
                name: body.name,
                description: body.description,
                condition: Some(condition),
                members: members.into_iter().map(CustomerId).collect(),
            }
        }
        SegmentKind::Static => {
            let members = match (
                &body.customer_ids,
                body.definition.is_some() || body.condition.is_some(),
            ) {
                (Some(ids), false) => {
                    let found = scope.customers_by_ids(ids).await?;
                    found.into_iter().map(|c| c.id).collect()
                }
                (None, true) => {
                    let condition =
                        condition_of(&auth, body.definition.as_deref(), body.condition.as_ref())?;
                    let (members, audience) = app.audiences.evaluate(&scope, &condition).await?;
                    let index = audience.read(&scope);
                    index
                        .ids(&members, usize::MAX)
                        .into_iter()
                        .map(CustomerId)
                        .collect()
                }
                _ => {
                    return Err(ApiError::field(
                        "customer_ids",
                        "a static segment is a list (customer_ids) or a definition's matches now, one of them",
                    ));
                }
            };
            NewSegment {
                name: body.name,
                description: body.description,
                condition: None,
                members,
            }
        }
    };
    let segment = scope.create_segment(&new, &auth.actor()).await?;
    let view = view(&app, &scope, segment).await?;
    scope
        .record_segment_count(view.segment.id, view.count)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    responses((status = 200, body = SegmentView), (status = 404, body = ErrorBody)))]
pub async fn get_segment(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SegmentView>> {
    auth.require(Permission::SegmentsRead)?;
    let scope = auth.scope(&app.store).await?;
    let segment = scope.get_segment(SegmentId(id)).await?;
    Ok(Json(view(&app, &scope, segment).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentChange {
    pub name: Option<String>,
    /// A new description; null clears it.
    #[serde(default, with = "serde_with_null")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub definition: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Value>,
}

/// `Some(None)` for an explicit null, `None` when absent.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

#[utoipa::path(patch, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    request_body = SegmentChange,
    responses((status = 200, body = SegmentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_segment(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SegmentChange>,
) -> ApiResult<Json<SegmentView>> {
    auth.require(Permission::SegmentsWrite)?;
    let tenant = auth.principal.tenant_id;
    let scope = auth.scope(&app.store).await?;
    let id = SegmentId(id);
    scope.get_segment(id).await?;
    let condition = if body.definition.is_some() || body.condition.is_some() {
        let condition = condition_of(&auth, body.definition.as_deref(), body.condition.as_ref())?;
        let catalog = app.audiences.catalog(tenant).await?;
        if catalog.would_loop(id.0, &condition) {
            return Err(ApiError::InvalidDefinition {
                line: None,
                column: None,
                part: Some(format!("segment({})", id.0)),
                message: "the definition would make the segment refer to itself".into(),
            });
        }
        catalog.check(&condition).map_err(definition_error)?;
        Some(condition)
    } else {
        None
    };
    if let Some(Some(d)) = &body.description
        && d.chars().count() > 500
    {
        return Err(ApiError::field("description", "at most 500 characters"));
    }
    let segment = scope
        .update_segment(
            id,
            body.name.as_deref(),
            body.description.as_ref().map(|d| d.as_deref()),
            condition.as_ref(),
            &auth.actor(),
        )
        .await?;
    if let Some(condition) = &condition {
        // who came in and who left with the new definition
        app.audiences.sync_segment(tenant, id, condition).await?;
    }
    let view = view(&app, &scope, segment).await?;
    record_count(&app, &scope, id).await?;
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "other segments use it; the message names them", body = ErrorBody)))]
pub async fn delete_segment(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::SegmentsWrite)?;
    auth.scope(&app.store)
        .await?
        .delete_segment(SegmentId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A segment's members now, in id order, masked.
#[utoipa::path(get, path = "/api/v1/segments/{id}/members", tag = "segments",
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<Customer>), (status = 404, body = ErrorBody)))]
pub async fn segment_members(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Customer>>> {
    auth.require(Permission::SegmentsRead)?;
    let page = params.page()?;
    let scope = auth.scope(&app.store).await?;
    let condition = segment_condition(&scope, SegmentId(id)).await?;
    let (members, audience) = app.audiences.evaluate(&scope, &condition).await?;
    Ok(Json(members_page(&scope, &audience, &members, page).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Phone and email in full (needs `customers.reveal`).
    pub reveal: Option<bool>,
}

/// A segment's members as CSV (the columns of the customer export). Needs
/// `customers.export`; audited.
#[utoipa::path(get, path = "/api/v1/segments/{id}/export", tag = "segments",
    params(("id" = i64, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
pub async fn export_segment(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    auth.require(Permission::SegmentsRead)?;
    auth.require(Permission::CustomersExport)?;
    let reveal = q.reveal.unwrap_or(false);
    if reveal {
        auth.require(Permission::CustomersReveal)?;
    }
    let scope = auth.scope(&app.store).await?;
    let segment = scope.get_segment(SegmentId(id)).await?;
    let (members, audience) = app
        .audiences
        .evaluate(&scope, &Condition::Segment(id))
        .await?;
    let ids: Vec<CustomerId> = {
        let index = audience.read(&scope);
        index
            .ids(&members, usize::MAX)
            .into_iter()
            .map(CustomerId)
            .collect()
    };
    scope
        .audit(
            auth.actor(),
            AuditRecord::new(action::SEGMENT_EXPORTED, "segment", id).with_details(
                json!({"name": segment.name, "customers": ids.len(), "revealed": reveal}),
            ),
        )
        .await?;
    // members fixed now; their rows written 500 at a time as the client reads
    let store = app.store.clone();
    let chunks: Vec<Vec<CustomerId>> = ids.chunks(500).map(<[CustomerId]>::to_vec).collect();
    let header = {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let _ = writer.write_record(EXPORT_HEADER);
        writer.into_inner().unwrap_or_default()
    };
    let principal = auth.principal.clone();
    let rows = futures_util::stream::iter(chunks).then(move |chunk| {
        let store = store.clone();
        let principal = principal.clone();
        async move {
            // each part is read through the caller's own scope again
            let customers = match store.scope_for(&principal).await {
                Ok(scope) => scope.customers_by_ids(&chunk).await,
                Err(e) => Err(e),
            }
            .map_err(|e| {
                tracing::error!(error = %e, "segment export stopped");
                std::io::Error::other(e.to_string())
            })?;
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            for customer in customers {
                let customer = if reveal { customer } else { customer.masked() };
                let _ = writer.write_record(export_row(&customer));
            }
            Ok::<_, std::io::Error>(writer.into_inner().unwrap_or_default())
        }
    });
    let body =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(header) }).chain(rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"segment-{id}.csv\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SegmentCount {
    #[serde(serialize_with = "siyu_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub count: i64,
}

/// A segment's size over time (recorded when it is saved or changed, and hourly). The
/// sizes are of the whole tenant, so only staff whose data scope is the whole tenant see
/// them (403 for others, who see the segment's size within their scope on the segment).
#[utoipa::path(get, path = "/api/v1/segments/{id}/counts", tag = "segments", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<SegmentCount>),
        (status = 403, description = "your data scope is narrower than the tenant", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn segment_counts(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<SegmentCount>>> {
    auth.require(Permission::SegmentsRead)?;
    let scope = auth.scope(&app.store).await?;
    scope.get_segment(SegmentId(id)).await?;
    let scope = auth.scope(&app.store).await?;
    require_tenant_scope(&scope)?;
    let rows = scope.segment_counts(SegmentId(id)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(at, count)| SegmentCount { at, count })
            .collect(),
    ))
}

/// Customers entering and leaving a dynamic segment, oldest first: what journeys start
/// from. Recorded within seconds of the change that moved them.
#[utoipa::path(get, path = "/api/v1/segments/{id}/events", tag = "segments",
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<SegmentEvent>), (status = 404, body = ErrorBody)))]
pub async fn segment_events(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<SegmentEvent>>> {
    auth.require(Permission::SegmentsRead)?;
    let scope = auth.scope(&app.store).await?;
    require_tenant_scope(&scope)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .segment_events(SegmentId(id), params.page()?)
            .await?,
    ))
}
