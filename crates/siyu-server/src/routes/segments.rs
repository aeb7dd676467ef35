//! Segments: a live count (and sample) of an unsaved definition while it is typed,
//! saved segments (dynamic or static) with their members, CSV export and size over time,
//! and the score reports (RFM classes, lifecycle stages) and their settings.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use siyu_audience::Condition;
use siyu_audience::condition::{LifecycleStage, RfmClass};
use siyu_audience::index::{Period, period_of, period_start};
use siyu_audience::lifecycle::LifecycleSettings;
use siyu_audience::rfm::RfmSettings;
use siyu_domain::access::Permission;
use siyu_domain::audience::{Segment, SegmentEvent, SegmentId, SegmentKind, StageChange};
use siyu_domain::audit::{AuditRecord, action};
use siyu_domain::customer::{Customer, CustomerId, EXPORT_HEADER, export_row};
use siyu_domain::page::Page;
use siyu_store::{NewSegment, TenantScope};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::audience::{KOC_SETTINGS, LIFECYCLE_SETTINGS, RFM_SETTINGS, definition_error};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};
use crate::routes::customers::{visible_customer, visible_owners};

/// Reads a definition given as text or as JSON (exactly one), and refuses one that tests
/// personal data the caller may not see ([`require_reveal_for_personal`]).
pub(crate) fn condition_of(
    auth: &Auth,
    text: Option<&str>,
    json: Option<&Value>,
) -> ApiResult<Condition> {
    let condition = parse_condition(text, json)?;
    require_reveal_for_personal(auth, &condition)?;
    Ok(condition)
}

/// Refuses (403) a condition that compares a personal-data field (a phone or e-mail
/// trait, or event property, by its name: [`siyu_domain::personal::is_personal_key`])
/// unless the caller holds `customers.reveal`: a count that answers whether a masked
/// phone contains `1381` gives the number back a digit at a time. `exists` stays
/// allowed.
pub(crate) fn require_reveal_for_personal(auth: &Auth, condition: &Condition) -> ApiResult<()> {
    if auth.principal.can(Permission::CustomersReveal) {
        return Ok(());
    }
    match personal_test(condition) {
        None => Ok(()),
        Some(field) => Err(ApiError::Forbidden(format!(
            "testing {field} needs the permission {}, which your role ({}) does not have; \
             `exists` is allowed",
            Permission::CustomersReveal,
            auth.principal.role
        ))),
    }
}

/// The first personal-data field a condition compares, as the language writes it.
fn personal_test(condition: &Condition) -> Option<String> {
    use siyu_audience::condition::TraitOp;
    use siyu_domain::personal::is_personal_key;
    match condition {
        Condition::And(parts) | Condition::Or(parts) => parts.iter().find_map(personal_test),
        Condition::Not(inner) => personal_test(inner),
        Condition::Trait(test)
            if is_personal_key(&test.key) && !matches!(test.test, TraitOp::Exists) =>
        {
            Some(format!("trait.{}", test.key))
        }
        Condition::Performed(performed) => performed
            .filters
            .iter()
            .find(|f| is_personal_key(&f.property))
            .map(|f| format!("the event property {}", f.property)),
        _ => None,
    }
}

/// Reads a definition given as text or as JSON (exactly one).
fn parse_condition(text: Option<&str>, json: Option<&Value>) -> ApiResult<Condition> {
    match (text, json) {
        (Some(text), None) => siyu_audience::parse(text).map_err(|e| ApiError::InvalidDefinition {
            line: Some(e.line),
            column: Some(e.column),
            part: None,
            message: e.to_string(),
        }),
        (None, Some(json)) => {
            let condition: Condition = serde_path_to_error::deserialize(json).map_err(|e| {
                ApiError::InvalidDefinition {
                    line: None,
                    column: None,
                    part: Some(e.path().to_string()),
                    message: format!("condition.{}: {}", e.path(), e.inner()),
                }
            })?;
            // the same bounds the text form has
            siyu_audience::parse(&condition.to_string()).map_err(|e| {
                ApiError::InvalidDefinition {
                    line: None,
                    column: None,
                    part: None,
                    message: e.message,
                }
            })?;
            Ok(condition)
        }
        _ => Err(ApiError::field(
            "definition",
            "give the definition as text (definition) or as JSON (condition), one of them",
        )),
    }
}

/// Lists of customer ids across the tenant (entries, stage changes) and tenant-wide
/// rules need a data scope over all customers.
pub(crate) async fn require_tenant_scope(app: &AppState, auth: &Auth) -> ApiResult<()> {
    let scope = app.store.tenant(auth.principal.tenant_id);
    if visible_owners(auth, &scope).await?.is_some() {
        return Err(ApiError::Forbidden(
            "this needs a data scope over all customers".into(),
        ));
    }
    Ok(())
}

/// A saved segment as a condition (dynamic or static alike).
pub(crate) async fn segment_condition(
    scope: &TenantScope<'_>,
    id: SegmentId,
) -> ApiResult<Condition> {
    scope.get_segment(id).await?;
    Ok(Condition::Segment(id.0))
}

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
    let tenant = auth.principal.tenant_id;
    let scope = app.store.tenant(tenant);
    let owners = visible_owners(&auth, &scope).await?;
    let (members, audience) = app
        .audiences
        .evaluate(tenant, &condition, owners.as_deref())
        .await?;
    let sample_ids = {
        let index = audience.index.read().expect("not poisoned");
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

async fn view(app: &AppState, auth: &Auth, segment: Segment) -> ApiResult<SegmentView> {
    let tenant = auth.principal.tenant_id;
    let owners = visible_owners(auth, &app.store.tenant(tenant)).await?;
    match app
        .audiences
        .evaluate(tenant, &Condition::Segment(segment.id.0), owners.as_deref())
        .await
    {
        Ok((members, _)) => Ok(SegmentView {
            segment,
            count: members.len(),
            problem: None,
        }),
        // a definition that names what no longer exists (a deleted unit): the segment
        // is still listed, with why it cannot be counted
        Err(ApiError::InvalidDefinition { message, .. }) => Ok(SegmentView {
            segment,
            count: 0,
            problem: Some(message),
        }),
        Err(e) => Err(e),
    }
}

/// The segment's size over the whole tenant, for its size over time.
async fn record_count(
    app: &AppState,
    tenant: siyu_domain::ids::TenantId,
    id: SegmentId,
) -> ApiResult<()> {
    if let Ok((members, _)) = app
        .audiences
        .evaluate(tenant, &Condition::Segment(id.0), None)
        .await
    {
        app.store
            .tenant(tenant)
            .record_segment_count(id, members.len())
            .await?;
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
    let segments = app
        .store
        .tenant(auth.principal.tenant_id)
        .segments()
        .await?;
    let mut views = Vec::with_capacity(segments.len());
    for s in segments {
        views.push(view(&app, &auth, s).await?);
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
    let scope = app.store.tenant(tenant);
    let kind = SegmentKind::parse("kind", body.kind.as_deref().unwrap_or("dynamic"))?;
    if let Some(d) = &body.description
        && d.chars().count() > 500
    {
        return Err(ApiError::field("description", "at most 500 characters"));
    }
    let owners = visible_owners(&auth, &scope).await?;
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
                    found
                        .into_iter()
                        .filter(|c| {
                            owners
                                .as_ref()
                                .is_none_or(|o| c.owner_staff_id.is_some_and(|s| o.contains(&s)))
                        })
                        .map(|c| c.id)
                        .collect()
                }
                (None, true) => {
                    let condition =
                        condition_of(&auth, body.definition.as_deref(), body.condition.as_ref())?;
                    let (members, audience) = app
                        .audiences
                        .evaluate(tenant, &condition, owners.as_deref())
                        .await?;
                    let index = audience.index.read().expect("not poisoned");
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
    let view = view(&app, &auth, segment).await?;
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
    let segment = app
        .store
        .tenant(auth.principal.tenant_id)
        .get_segment(SegmentId(id))
        .await?;
    Ok(Json(view(&app, &auth, segment).await?))
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
    let scope = app.store.tenant(tenant);
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
    let view = view(&app, &auth, segment).await?;
    record_count(&app, tenant, id).await?;
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
    app.store
        .tenant(auth.principal.tenant_id)
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
    let tenant = auth.principal.tenant_id;
    let scope = app.store.tenant(tenant);
    let condition = segment_condition(&scope, SegmentId(id)).await?;
    let owners = visible_owners(&auth, &scope).await?;
    let (members, audience) = app
        .audiences
        .evaluate(tenant, &condition, owners.as_deref())
        .await?;
    Ok(Json(
        members_page(&scope, &audience, &members, page, owners.as_deref()).await?,
    ))
}

/// One page, in id order, of the customers of an evaluated set (a segment's members, a
/// filtered customer list), masked. The index may lag the database by a moment, so each
/// customer is checked against the caller's data scope again as read.
pub(crate) async fn members_page(
    scope: &TenantScope<'_>,
    audience: &crate::audience::TenantAudience,
    members: &roaring::RoaringBitmap,
    page: siyu_domain::page::PageRequest,
    owners: Option<&[siyu_domain::ids::StaffId]>,
) -> ApiResult<Page<Customer>> {
    let ids: Vec<i64> = {
        let index = audience.index.read().expect("not poisoned");
        index.ids_after(members, page.after_id(), page.fetch_limit() as usize)
    };
    let shown: Vec<CustomerId> = ids
        .iter()
        .take(page.limit as usize)
        .map(|id| CustomerId(*id))
        .collect();
    let customers = scope
        .customers_by_ids(&shown)
        .await?
        .into_iter()
        .filter(|c| owners.is_none_or(|o| c.owner_staff_id.is_some_and(|s| o.contains(&s))))
        .map(Customer::masked)
        .collect();
    Ok(Page::from_ids(customers, &ids, page))
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
    let tenant = auth.principal.tenant_id;
    let scope = app.store.tenant(tenant);
    let segment = scope.get_segment(SegmentId(id)).await?;
    let owners = visible_owners(&auth, &scope).await?;
    let (members, audience) = app
        .audiences
        .evaluate(tenant, &Condition::Segment(id), owners.as_deref())
        .await?;
    let ids: Vec<CustomerId> = {
        let index = audience.index.read().expect("not poisoned");
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
    let rows = futures_util::stream::iter(chunks).then(move |chunk| {
        let store = store.clone();
        async move {
            let customers = store
                .tenant(tenant)
                .customers_by_ids(&chunk)
                .await
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
    let scope = app.store.tenant(auth.principal.tenant_id);
    scope.get_segment(SegmentId(id)).await?;
    require_tenant_scope(&app, &auth).await?;
    let rows = scope.segment_counts(SegmentId(id)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(at, count)| SegmentCount { at, count })
            .collect(),
    ))
}

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
            app.store
                .tenant(tenant)
                .unit_catalog()
                .await?
                .remove(&unit)
                .ok_or(ApiError::NotFound("unit"))?,
        ),
        None => None,
    };
    let owners = visible_owners(&auth, &app.store.tenant(tenant)).await?;
    let audience = app.audiences.tenant(tenant).await?;
    let index = audience.index.read().expect("not poisoned");
    let among = owners.map(|o| index.owned_by(o.iter().map(|s| s.0)));
    let (cuts, report) = index.rfm_report(units.as_deref(), among.as_ref());
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
    let owners = visible_owners(&auth, &app.store.tenant(auth.principal.tenant_id)).await?;
    let audience = app.audiences.tenant(auth.principal.tenant_id).await?;
    let index = audience.index.read().expect("not poisoned");
    let among = owners.map(|o| index.owned_by(o.iter().map(|s| s.0)));
    // a cohort is named by its first day: the first of the month, or the Monday
    let period = if by_week { Period::Week } else { Period::Month };
    let cohorts = index.stage_cohorts(
        |day| period_start(period, period_of(period, day)),
        among.as_ref(),
    );
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
    require_tenant_scope(&app, &auth).await?;
    Ok(Json(
        app.store
            .tenant(auth.principal.tenant_id)
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
            app.store
                .tenant(tenant)
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
    let owners = visible_owners(&auth, &app.store.tenant(tenant)).await?;
    let audience = app.audiences.tenant(tenant).await?;
    let p = {
        let index = audience.index.read().expect("not poisoned");
        let among = owners.map(|o| index.owned_by(o.iter().map(|s| s.0)));
        index.pareto(units.as_deref(), days, among.as_ref())
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
    let scope = app.store.tenant(tenant);
    let customer = visible_customer(&auth, &scope, id).await?;
    let units = scope.unit_catalog().await?;
    let koc = app.audiences.koc_condition(tenant).await?;
    let koc = app
        .audiences
        .evaluate(tenant, &koc, None)
        .await
        .map(|(members, audience)| {
            let index = audience.index.read().expect("not poisoned");
            index.set_of([customer.id.0]).is_subset(&members)
                && !index.set_of([customer.id.0]).is_empty()
        })
        .unwrap_or(false);
    let audience = app.audiences.tenant(tenant).await?;
    let index = audience.index.read().expect("not poisoned");
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
    let audience = app.audiences.tenant(auth.principal.tenant_id).await?;
    let index = audience.index.read().expect("not poisoned");
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
    app.store
        .tenant(tenant)
        .put_setting(&key, &value, &auth.actor())
        .await?;
    app.audiences.rescore(tenant).await?;
    Ok(Json(value))
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
    require_tenant_scope(&app, &auth).await?;
    Ok(Json(
        app.store
            .tenant(auth.principal.tenant_id)
            .segment_events(SegmentId(id), params.page()?)
            .await?,
    ))
}
