//! Customer profiles: the list and search (optionally narrowed by a segment
//! definition), one profile, lookup by identity, changing traits and owner, handing
//! customers to other staff, erasure, and undoing a merge.
//!
//! Phone numbers and emails are masked (`138****1680`) unless the caller asks for them
//! with `?reveal=true`, which needs the `customers.reveal` permission and is written to
//! the audit log. Staff see the customers their data scope covers
//! ([`crate::routes::customer_scope`]): their own, those of their unit subtree's staff,
//! or the whole tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::customer::{Customer, CustomerId};
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::ids::StaffId;
use siyu_domain::page::{Page, PageRequest};
use siyu_store::TenantScope;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::routes::conditions::{condition_of, members_page};
use crate::routes::customer_scope::reveal_for;

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

/// Checks the data scope, then masks or (audited) reveals.
async fn present(
    auth: &Auth,
    scope: &TenantScope<'_>,
    customer: Customer,
    reveal: bool,
) -> ApiResult<Customer> {
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
    let scope = auth.scope(&app.store).await?;
    let Some(filter) = q.filter.as_deref().filter(|f| !f.trim().is_empty()) else {
        let list = scope.list_customers(page, q.q.as_deref()).await?;
        return Ok(Json(list.map(Customer::masked)));
    };
    let condition = condition_of(&auth, Some(filter), None)?;
    let (members, audience) = app.audiences.evaluate(&scope, &condition).await?;
    if let Some(search) = q.q.as_deref().filter(|q| !q.trim().is_empty()) {
        let found = search_within(&scope, search, &audience, &members, page).await?;
        return Ok(Json(found.map(Customer::masked)));
    }
    Ok(Json(members_page(&scope, &audience, &members, page).await?))
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
    audience: &siyu_runtime::audience::TenantAudience,
    members: &roaring::RoaringBitmap,
    page: PageRequest,
) -> ApiResult<Page<Customer>> {
    // one more than the page, to know whether another follows
    let (mut kept, mut next) = matching_search_ids(
        scope,
        search,
        audience,
        members,
        page.after.unwrap_or(i64::MAX),
        page.limit as usize + 1,
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
pub(crate) async fn matching_search_ids(
    scope: &TenantScope<'_>,
    search: &str,
    audience: &siyu_runtime::audience::TenantAudience,
    members: &roaring::RoaringBitmap,
    mut before: i64,
    limit: usize,
) -> ApiResult<(Vec<i64>, Option<i64>)> {
    let mut kept = Vec::new();
    for _ in 0..SEARCH_STEPS {
        let found = scope
            .search_customer_ids(Some(search), before, SEARCH_STEP)
            .await?;
        let exhausted = (found.len() as i64) < SEARCH_STEP;
        {
            let index = audience.read(scope);
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
    let scope = auth.scope(&app.store).await?;
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.lookup_customer(&identity).await?;
    Ok(Json(
        present(&auth, &scope, customer, q.reveal.unwrap_or(false)).await?,
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    // events tracked before the request must not bring the person back once applied
    if !app
        .ingestor
        .wait_until_applied(&app.store, ERASE_WAIT)
        .await?
    {
        return Err(ApiError::Unavailable(
            "events tracked before this request are still being applied to profiles; retry shortly"
                .into(),
        ));
    }
    scope.erase_customer(customer.id, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long an erasure waits for events tracked before it to reach profiles.
const ERASE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

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
    let scope = auth.scope(&app.store).await?;
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
    let scope = auth.scope(&app.store).await?;
    let ids: Vec<CustomerId> = body.customer_ids.iter().map(|id| CustomerId(*id)).collect();
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
    let scope = auth.scope(&app.store).await?;
    let (survivor, restored) = scope.undo_merge(id, &auth.actor()).await?;
    Ok(Json(UndoneMerge {
        survivor: scope.get_customer(survivor).await?.masked(),
        restored: scope.get_customer(restored).await?.masked(),
    }))
}
