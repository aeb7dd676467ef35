//! Customer profiles: search, one profile, lookup by identity, the timeline.
//!
//! Phone numbers and emails are masked (`138****1680`) unless the caller asks for them
//! with `?reveal=true`, which needs the `customers.reveal` permission and is written to
//! the audit log. Staff see the customers their data scope covers: their own, those of
//! their unit subtree's staff, or the whole tenant.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu_domain::access::{DataScope, Permission, PrincipalKind};
use siyu_domain::audit::{AuditRecord, action};
use siyu_domain::consent::{Consent, ConsentChannel, ConsentStatus};
use siyu_domain::customer::{
    Customer, CustomerId, EXPORT_HEADER, EventActivity, Note, TimelineEntry, export_row,
};
use siyu_domain::identity::{Identity, IdentityKind, IdentitySettings};
use siyu_domain::ids::StaffId;
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::personal::mask_personal_in_text;
use siyu_domain::tenancy::unit_subtree;
use siyu_domain::tracking::parse_time;
use siyu_domain::traits::TraitLimits;
use siyu_store::ConsentChange;
use siyu_store::TenantScope;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A name (or part of one), a phone, an email or any identity value.
    pub q: Option<String>,
    /// Only customers a segment definition matches, in the segment language
    /// (`tag("高净值") and orders.count(last 90d) >= 2`); with `q`, those of the search
    /// it matches.
    pub filter: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevealQuery {
    /// Show phone and email in full (needs `customers.reveal`; audited).
    pub reveal: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// `user_id`, `anonymous_id`, `email`, `phone`, `wecom_external_userid`,
    /// `wechat_unionid`, `wechat_openid` or a custom kind.
    pub kind: String,
    pub value: String,
    pub reveal: Option<bool>,
}

/// The staff whose customers the caller sees; `None` for all.
pub(crate) async fn visible_owners(
    auth: &Auth,
    scope: &TenantScope<'_>,
) -> ApiResult<Option<Vec<StaffId>>> {
    match &auth.principal.kind {
        PrincipalKind::ApiToken { .. } => Ok(None),
        PrincipalKind::Staff {
            staff_id,
            unit_id,
            data_scope,
            ..
        } => match data_scope {
            DataScope::Tenant => Ok(None),
            DataScope::Own => Ok(Some(vec![*staff_id])),
            DataScope::UnitSubtree => {
                let units = unit_subtree(*unit_id, &scope.unit_parents().await?);
                Ok(Some(scope.staff_ids_in_units(&units).await?))
            }
        },
    }
}

/// Checks that the caller's data scope covers the customer (404 when it does not: the
/// customer is not theirs to know of).
pub(crate) async fn check_visible(
    auth: &Auth,
    scope: &TenantScope<'_>,
    customer: &Customer,
) -> ApiResult<()> {
    if let Some(owners) = visible_owners(auth, scope).await?
        && !customer.owner_staff_id.is_some_and(|o| owners.contains(&o))
    {
        return Err(ApiError::NotFound("customer"));
    }
    Ok(())
}

/// The customer at `id` if the caller's data scope covers it.
pub(crate) async fn visible_customer(
    auth: &Auth,
    scope: &TenantScope<'_>,
    id: i64,
) -> ApiResult<Customer> {
    let customer = scope.get_customer(CustomerId(id)).await?;
    check_visible(auth, scope, &customer).await?;
    Ok(customer)
}

/// Whether to show personal data in full: only when asked (`?reveal=true`), and then
/// only to roles with `customers.reveal`, audited against the customer with what was
/// shown (`fields`: `["phone", "email"]`, `["timeline"]`, `["order"]`).
pub(crate) async fn reveal_for(
    auth: &Auth,
    scope: &TenantScope<'_>,
    customer: CustomerId,
    reveal: Option<bool>,
    fields: &[&str],
) -> ApiResult<bool> {
    if !reveal.unwrap_or(false) {
        return Ok(false);
    }
    auth.require(Permission::CustomersReveal)?;
    scope
        .audit(
            auth.actor(),
            AuditRecord::new(action::CUSTOMER_REVEALED, "customer", customer)
                .with_details(json!({"fields": fields})),
        )
        .await?;
    Ok(true)
}

/// Checks the data scope, then masks or (audited) reveals.
async fn present(
    auth: &Auth,
    scope: &TenantScope<'_>,
    customer: Customer,
    reveal: bool,
) -> ApiResult<Customer> {
    check_visible(auth, scope, &customer).await?;
    if reveal_for(auth, scope, customer.id, Some(reveal), &["phone", "email"]).await? {
        Ok(customer)
    } else {
        Ok(customer.masked())
    }
}

#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(ListQuery),
    responses((status = 200, description = "profiles, newest first, phone and email masked", body = Page<Customer>),
        (status = 403, body = ErrorBody)))]
pub async fn list_customers(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Customer>>> {
    auth.require(Permission::CustomersRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let owners = visible_owners(&auth, &scope).await?;
    let Some(filter) = q.filter.as_deref().filter(|f| !f.trim().is_empty()) else {
        let list = scope
            .list_customers(page, q.q.as_deref(), owners.as_deref())
            .await?;
        return Ok(Json(list.map(Customer::masked)));
    };
    let condition = crate::routes::segments::condition_of(&auth, Some(filter), None)?;
    let tenant = auth.principal.tenant_id;
    let (members, audience) = app
        .audiences
        .evaluate(tenant, &condition, owners.as_deref())
        .await?;
    if let Some(search) = q.q.as_deref().filter(|q| !q.trim().is_empty()) {
        let found =
            search_within(&scope, search, &audience, &members, page, owners.as_deref()).await?;
        return Ok(Json(found.map(Customer::masked)));
    }
    Ok(Json(
        crate::routes::segments::members_page(&scope, &audience, &members, page, owners.as_deref())
            .await?,
    ))
}

/// Ids of a search read per step when it is narrowed by a filter.
const SEARCH_STEP: i64 = 2000;
/// Steps one page of a filtered search reads at most before it answers (with a cursor
/// to go on): a search that finds many customers the filter mostly refuses answers in
/// parts rather than reading every one at once.
const SEARCH_STEPS: usize = 25;

/// A search narrowed by a filter: the ids the search finds (newest first), kept where
/// the filter holds, until a page is full; then those profiles.
async fn search_within(
    scope: &TenantScope<'_>,
    search: &str,
    audience: &crate::audience::TenantAudience,
    members: &roaring::RoaringBitmap,
    page: PageRequest,
    owners: Option<&[StaffId]>,
) -> ApiResult<Page<Customer>> {
    // one more than the page, to know whether another follows
    let (mut kept, mut next) = matching_search_ids(
        scope,
        search,
        audience,
        members,
        page.after.unwrap_or(i64::MAX),
        page.limit as usize + 1,
        owners,
    )
    .await?;
    if kept.len() > page.limit as usize {
        kept.truncate(page.limit as usize);
        next = kept.last().copied();
    }
    let ids: Vec<CustomerId> = kept.iter().map(|id| CustomerId(*id)).collect();
    let mut customers = scope.customers_by_ids(&ids).await?;
    customers.sort_by_key(|c| std::cmp::Reverse(c.id.0));
    Ok(Page::continuing_after(customers, next))
}

/// Up to `limit` ids a search finds below `before` that are among `members`, newest
/// first, and the id to go on below (none when the search has no more).
async fn matching_search_ids(
    scope: &TenantScope<'_>,
    search: &str,
    audience: &crate::audience::TenantAudience,
    members: &roaring::RoaringBitmap,
    mut before: i64,
    limit: usize,
    owners: Option<&[StaffId]>,
) -> ApiResult<(Vec<i64>, Option<i64>)> {
    let mut kept = Vec::new();
    for _ in 0..SEARCH_STEPS {
        let found = scope
            .search_customer_ids(Some(search), before, SEARCH_STEP, owners)
            .await?;
        let exhausted = (found.len() as i64) < SEARCH_STEP;
        {
            let index = audience.index.read().expect("not poisoned");
            for id in &found {
                if index.contains(members, *id) {
                    kept.push(*id);
                    if kept.len() == limit {
                        // the page is full: go on below its last
                        return Ok((kept, Some(*id)));
                    }
                }
            }
        }
        match found.last() {
            Some(last) if !exhausted => before = *last,
            _ => return Ok((kept, None)),
        }
    }
    Ok((kept, Some(before)))
}

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
    let tenant = auth.principal.tenant_id;
    let scope = app.store.tenant(tenant);
    let owners = visible_owners(&auth, &scope).await?;
    let filter = q.filter.as_deref().filter(|f| !f.trim().is_empty());
    // who the filter matches is fixed now; the rows are read as the client reads
    let matching = match filter {
        Some(filter) => {
            let condition = crate::routes::segments::condition_of(&auth, Some(filter), None)?;
            let (members, audience) = app
                .audiences
                .evaluate(tenant, &condition, owners.as_deref())
                .await?;
            let mut ids = audience
                .index
                .read()
                .expect("not poisoned")
                .ids(&members, usize::MAX);
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
    let search = q.q.clone().filter(|q| !q.trim().is_empty());
    // each step writes the customers below an id, newest first; the first also writes
    // the header
    let pages = futures_util::stream::unfold(Some((i64::MAX, true)), move |state| {
        let store = store.clone();
        let search = search.clone();
        let owners = owners.clone();
        let matching = matching.clone();
        async move {
            let (before, first) = state?;
            let scope = store.tenant(tenant);
            let (items, next) = match export_step(
                &scope,
                search.as_deref(),
                matching.as_deref(),
                before,
                owners.as_deref(),
            )
            .await
            {
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

/// Who an export's filter matched: the members, and their ids newest first.
struct Matching {
    members: roaring::RoaringBitmap,
    audience: Arc<crate::audience::TenantAudience>,
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
    owners: Option<&[StaffId]>,
) -> ApiResult<(Vec<Customer>, Option<i64>)> {
    let (ids, next) = match (matching, search) {
        (None, _) => {
            let page = PageRequest {
                after: (before != i64::MAX).then_some(before),
                after_pair: None,
                limit: EXPORT_STEP as u32,
            };
            let list = scope.list_customers(page, search, owners).await?;
            let next = list
                .next_cursor
                .is_some()
                .then(|| list.items.last().map(|c| c.id.0))
                .flatten();
            return Ok((list.items, next));
        }
        (Some(m), Some(search)) => {
            matching_search_ids(
                scope,
                search,
                &m.audience,
                &m.members,
                before,
                EXPORT_STEP,
                owners,
            )
            .await?
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

#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path), RevealQuery),
    responses((status = 200, description = "the profile; a merged id leads to the survivor", body = Customer),
        (status = 403, description = "reveal without customers.reveal", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_customer(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<RevealQuery>,
) -> ApiResult<Json<Customer>> {
    auth.require(Permission::CustomersRead)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = scope.get_customer(CustomerId(id)).await?;
    Ok(Json(
        present(&auth, &scope, customer, q.reveal.unwrap_or(false)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/customers/lookup", tag = "customers", params(LookupQuery),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn lookup_customer(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> ApiResult<Json<Customer>> {
    auth.require(Permission::CustomersRead)?;
    let identity = Identity::new(IdentityKind::parse(&q.kind)?, &q.value)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = scope.lookup_customer(&identity).await?;
    Ok(Json(
        present(&auth, &scope, customer, q.reveal.unwrap_or(false)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Show phone numbers and e-mails in event and order properties and notes in full
    /// (needs `customers.reveal`; audited).
    pub reveal: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/timeline", tag = "customers",
    params(("id" = i64, Path), TimelineQuery),
    responses((status = 200, description = "events, orders, notes and merges, newest first; personal data in properties masked", body = Page<TimelineEntry>),
        (status = 403, description = "reveal without customers.reveal", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn customer_timeline(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<TimelineQuery>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    auth.require(Permission::CustomersRead)?;
    let page = siyu_domain::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    let reveal = reveal_for(&auth, &scope, customer.id, q.reveal, &["timeline"]).await?;
    let timeline = scope.customer_timeline(customer.id, page).await?;
    Ok(Json(if reveal {
        timeline
    } else {
        timeline.map(TimelineEntry::masked)
    }))
}

/// The customer's event counts by name: all time, the last 7, 30 and 90 days, and the
/// last time of each.
#[utoipa::path(get, path = "/api/v1/customers/{id}/activity", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<EventActivity>), (status = 404, body = ErrorBody)))]
pub async fn customer_activity(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<EventActivity>>> {
    auth.require(Permission::CustomersRead)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    Ok(Json(scope.customer_activity(customer.id).await?))
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/notes", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, description = "newest first", body = Vec<Note>), (status = 404, body = ErrorBody)))]
pub async fn list_notes(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Note>>> {
    auth.require(Permission::CustomersRead)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    Ok(Json(scope.customer_notes(customer.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// 1 to 5,000 characters.
    pub body: String,
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/notes", tag = "customers",
    params(("id" = i64, Path)), request_body = NewNote,
    responses((status = 201, body = Note), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_note(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewNote>,
) -> ApiResult<(StatusCode, Json<Note>)> {
    auth.require(Permission::CustomersWrite)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    let note = scope
        .add_note(customer.id, &body.body, &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// The consents in force, one per channel that has any. Senders check these: an
/// opt-out on a channel, or on `all`, means do not contact.
#[utoipa::path(get, path = "/api/v1/customers/{id}/consent", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Consent>), (status = 404, body = ErrorBody)))]
pub async fn get_consent(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Consent>>> {
    auth.require(Permission::CustomersRead)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    Ok(Json(scope.consents(customer.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsent {
    /// `all`, `wecom`, `sms`, `email`, `phone`, `official_account`, `mini_program` or
    /// `app_push`.
    pub channel: String,
    /// `opt_in` or `opt_out`.
    pub status: String,
    /// Where it came from (`api` when absent): `console`, `import`, a form, a channel.
    pub source: Option<String>,
    pub note: Option<String>,
    /// When the customer gave or withdrew it (RFC 3339); now when absent.
    pub at: Option<String>,
}

/// Records a consent change (audited); answers with the consents in force.
#[utoipa::path(post, path = "/api/v1/customers/{id}/consent", tag = "customers",
    params(("id" = i64, Path)), request_body = NewConsent,
    responses((status = 200, body = Vec<Consent>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record_consent(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewConsent>,
) -> ApiResult<Json<Vec<Consent>>> {
    auth.require(Permission::CustomersWrite)?;
    let now = siyu_store::now_ms();
    let at =
        match &body.at {
            Some(text) => Some(parse_time(text).filter(|t| *t <= now + 60_000).ok_or_else(
                || ApiError::field("at", "must be an RFC 3339 time, not in the future"),
            )?),
            None => None,
        };
    let source = body.source.clone().unwrap_or_else(|| "api".into());
    if source.trim().is_empty() || source.chars().count() > 100 {
        return Err(ApiError::field("source", "must be 1 to 100 characters"));
    }
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::field("note", "at most 500 characters"));
    }
    let change = ConsentChange {
        channel: ConsentChannel::parse("channel", &body.channel)?,
        status: ConsentStatus::parse("status", &body.status)?,
        source,
        note: body.note.clone(),
        at,
    };
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    Ok(Json(
        scope
            .record_consent(customer.id, &change, &auth.actor())
            .await?,
    ))
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
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    Ok(Json(
        scope
            .export_customer_data(customer.id, &auth.actor())
            .await?,
    ))
}

/// Erases the customer's personal data on request (identities, traits, notes, event and
/// order properties), keeping anonymous figures. Audited.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 204, description = "erased"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, description = "events tracked before the request are still being applied; retry", body = ErrorBody)))]
pub async fn erase_customer(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::CustomersDelete)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = visible_customer(&auth, &scope, id).await?;
    // events tracked before the request must not bring the person back once applied
    app.ingestor
        .wait_until_applied(&app.store, ERASE_WAIT)
        .await?;
    scope.erase_customer(customer.id, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long an erasure waits for events tracked before it to reach profiles.
const ERASE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

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
    Ok(Json(
        app.store
            .tenant(auth.principal.tenant_id)
            .trait_limits()
            .await?,
    ))
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
    app.store
        .tenant(auth.principal.tenant_id)
        .set_trait_limits(&limits, &auth.actor())
        .await?;
    Ok(Json(limits))
}

/// Changes to a profile made by staff.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    /// Traits to set (a null removes the trait); others stay.
    #[schema(value_type = Option<Object>)]
    pub traits: Option<serde_json::Map<String, serde_json::Value>>,
    /// The staff member who owns the customer; null clears it.
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    pub owner_staff_id: Option<Option<i64>>,
}

/// Tells a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn present_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Sets traits and the owner of a customer by hand.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path)), request_body = UpdateCustomer,
    responses((status = 200, body = Customer), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_customer(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateCustomer>,
) -> ApiResult<Json<Customer>> {
    auth.require(Permission::CustomersWrite)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    let customer = scope.get_customer(CustomerId(id)).await?;
    present(&auth, &scope, customer.clone(), false).await?;
    if let Some(traits) = &body.traits {
        if traits.len() > 100 {
            return Err(ApiError::field("traits", "at most 100 traits at a time"));
        }
        if let Some(key) = traits
            .keys()
            .find(|k| k.is_empty() || k.chars().count() > 100)
        {
            return Err(ApiError::field(
                format!("traits.{key}"),
                "a trait name is 1 to 100 characters",
            ));
        }
    }
    if let Some(Some(owner)) = body.owner_staff_id
        && let Some(owners) = visible_owners(&auth, &scope).await?
        && !owners.contains(&StaffId(owner))
    {
        return Err(ApiError::Forbidden(
            "that staff member is outside your data scope".into(),
        ));
    }
    let updated = scope
        .update_customer(
            customer.id,
            body.traits.as_ref(),
            body.owner_staff_id.map(|o| o.map(StaffId)),
            &auth.actor(),
        )
        .await?;
    Ok(Json(updated.masked()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCustomers {
    /// The customers to hand over (at most 100,000).
    pub customer_ids: Vec<i64>,
    /// The staff member who looks after them from now on; null takes them from whoever had
    /// them.
    pub owner_staff_id: Option<i64>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Assigned {
    /// Customers whose owner changed (others already had that owner, or are not yours to
    /// hand over).
    pub assigned: u64,
}

/// Hands customers to a staff member (分配客户), as when a store guide leaves and their
/// customers go to a colleague (离职继承). Staff with a narrower data scope hand over only
/// customers they see, and only to staff within it. Audited with the customers moved.
#[utoipa::path(post, path = "/api/v1/customers/assign", tag = "customers",
    request_body = AssignCustomers,
    responses((status = 200, body = Assigned), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign_customers(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<AssignCustomers>,
) -> ApiResult<Json<Assigned>> {
    auth.require(Permission::CustomersWrite)?;
    if body.customer_ids.is_empty() || body.customer_ids.len() > 100_000 {
        return Err(ApiError::field(
            "customer_ids",
            "name 1 to 100,000 customers",
        ));
    }
    let scope = app.store.tenant(auth.principal.tenant_id);
    let mut ids: Vec<CustomerId> = body.customer_ids.iter().map(|id| CustomerId(*id)).collect();
    if let Some(owners) = visible_owners(&auth, &scope).await? {
        if let Some(owner) = body.owner_staff_id
            && !owners.contains(&StaffId(owner))
        {
            return Err(ApiError::Forbidden(
                "that staff member is outside your data scope".into(),
            ));
        }
        let mut visible = Vec::with_capacity(ids.len());
        for part in ids.chunks(1000) {
            visible.extend(
                scope
                    .customers_by_ids(part)
                    .await?
                    .into_iter()
                    .filter(|c| c.owner_staff_id.is_some_and(|o| owners.contains(&o)))
                    .map(|c| c.id),
            );
        }
        ids = visible;
    }
    let assigned = scope
        .assign_owner(&ids, body.owner_staff_id.map(StaffId), &auth.actor())
        .await?;
    Ok(Json(Assigned { assigned }))
}

/// The two profiles after an undone merge.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UndoneMerge {
    pub survivor: Customer,
    /// The profile that had been merged, its own person again.
    pub restored: Customer,
}

/// Undoes a merge of two profiles (for one that was wrong, such as a shared phone):
/// the merged profile comes back with its identities, events, orders, notes and
/// consent, and the two are never merged again automatically. Audited.
#[utoipa::path(post, path = "/api/v1/customer-merges/{id}/undo", tag = "customers",
    params(("id" = i64, Path, description = "the merge, as the survivor's timeline shows it")),
    responses((status = 200, body = UndoneMerge), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "undone already, or the survivor was merged or erased since", body = ErrorBody)))]
pub async fn undo_merge(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<UndoneMerge>> {
    auth.require(Permission::CustomersMerge)?;
    let scope = app.store.tenant(auth.principal.tenant_id);
    if visible_owners(&auth, &scope).await?.is_some() {
        // both profiles come back: one may lie outside the caller's data scope
        return Err(ApiError::Forbidden(
            "undoing a merge needs a data scope over all customers".into(),
        ));
    }
    let (survivor, restored) = scope.undo_merge(id, &auth.actor()).await?;
    Ok(Json(UndoneMerge {
        survivor: scope.get_customer(survivor).await?.masked(),
        restored: scope.get_customer(restored).await?.masked(),
    }))
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
    let stored = app
        .store
        .tenant(auth.principal.tenant_id)
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
    app.store
        .tenant(auth.principal.tenant_id)
        .put_setting(
            IdentitySettings::KEY,
            &serde_json::to_value(&settings).expect("serializable"),
            &auth.actor(),
        )
        .await?;
    Ok(Json(settings))
}
