//! Tag groups, tags, and tags on customers (one at a time or in bulk — by a list, a
//! saved segment or a definition). Every change records who, when, how and why. Rules
//! that tag customers automatically are in `tag_rules.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use siyu_domain::access::Permission;
use siyu_domain::audience::{
    CustomerTag, SegmentId, Tag, TagChange, TagGroup, TagGroupId, TagId, TagOrigin,
};
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::UnitId;
use siyu_domain::jobs::kind;
use siyu_store::TenantScope;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, definition_error};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::routes::conditions::{condition_of, segment_condition};
use crate::routes::jobs::{JobQueued, enqueue_asked};
use crate::routes::units::reachable_units;

/// Refuses (403) a change to the tags of a group the caller does not reach: a tenant's
/// own tags (a group of no unit) are changed only by staff whose data scope is the whole
/// tenant, a unit's tags by staff who reach that unit. Renaming or deleting a tag
/// changes every customer who has it, including those outside a narrower scope.
async fn check_tag_reach(
    auth: &Auth,
    scope: &TenantScope<'_>,
    unit: Option<UnitId>,
) -> ApiResult<()> {
    match (unit, reachable_units(auth, scope).await?) {
        (_, None) => Ok(()),
        (Some(unit), Some(units)) if units.contains(&unit) => Ok(()),
        (None, Some(_)) => Err(ApiError::Forbidden(
            "the tenant's own tags are changed by staff whose data scope is the whole tenant"
                .into(),
        )),
        (Some(_), Some(_)) => Err(ApiError::Forbidden(
            "that tag group belongs to a unit outside your data scope".into(),
        )),
    }
}

/// Replaces tenant-wide customer counts with counts within the caller's data scope.
async fn count_within_scope(app: &AppState, auth: &Auth, tags: &mut [&mut Tag]) -> ApiResult<()> {
    let scope = auth.scope(&app.store).await?;
    if scope.reach().is_tenant_wide() {
        // the store's counts are the whole tenant's already (and the index is not
        // built only for this)
        return Ok(());
    }
    let audience = app.audiences.tenant(scope.id()).await?;
    let index = audience.read(&scope);
    for tag in tags {
        if let Some(count) = index.tag_count(tag.id.0) {
            tag.customers = count as i64;
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/tag-groups", tag = "tags",
    responses((status = 200, body = Vec<TagGroup>)))]
pub async fn list_tag_groups(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<TagGroup>>> {
    auth.require(Permission::TagsRead)?;
    let mut groups = auth.scope(&app.store).await?.tag_groups().await?;
    let mut tags: Vec<&mut Tag> = groups.iter_mut().flat_map(|g| g.tags.iter_mut()).collect();
    count_within_scope(&app, &auth, &mut tags).await?;
    Ok(Json(groups))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTagGroup {
    pub name: String,
    /// A brand's or store's own group; the whole tenant's when absent.
    pub unit_id: Option<UnitId>,
    pub position: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/tag-groups", tag = "tags", request_body = NewTagGroup,
    responses((status = 201, body = TagGroup), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tag_group(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewTagGroup>,
) -> ApiResult<(StatusCode, Json<TagGroup>)> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    if let Some(unit) = body.unit_id {
        scope.get_unit(unit).await?;
    }
    check_tag_reach(&auth, &scope, body.unit_id).await?;
    let group = scope
        .create_tag_group(
            &body.name,
            body.unit_id,
            body.position.unwrap_or(0),
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagGroupChange {
    pub name: Option<String>,
    pub position: Option<i64>,
}

#[utoipa::path(patch, path = "/api/v1/tag-groups/{id}", tag = "tags", params(("id" = i64, Path)),
    request_body = TagGroupChange,
    responses((status = 200, body = TagGroup), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_tag_group(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TagGroupChange>,
) -> ApiResult<Json<TagGroup>> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let group = scope.get_tag_group(TagGroupId(id)).await?;
    check_tag_reach(&auth, &scope, group.unit_id).await?;
    Ok(Json(
        scope
            .update_tag_group(
                TagGroupId(id),
                body.name.as_deref(),
                body.position,
                &auth.actor(),
            )
            .await?,
    ))
}

/// Deletes an empty tag group (409 while it has tags).
#[utoipa::path(delete, path = "/api/v1/tag-groups/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_tag_group(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let group = scope.get_tag_group(TagGroupId(id)).await?;
    check_tag_reach(&auth, &scope, group.unit_id).await?;
    scope
        .delete_tag_group(TagGroupId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/tags", tag = "tags", responses((status = 200, body = Vec<Tag>)))]
pub async fn list_tags(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<Tag>>> {
    auth.require(Permission::TagsRead)?;
    let mut tags = auth.scope(&app.store).await?.tags().await?;
    count_within_scope(&app, &auth, &mut tags.iter_mut().collect::<Vec<_>>()).await?;
    Ok(Json(tags))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    pub group_id: TagGroupId,
    /// Unique in the tenant: segments name tags.
    pub name: String,
    /// `#RRGGBB` (default `#1677ff`).
    pub colour: Option<String>,
    pub position: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = NewTag,
    responses((status = 201, body = Tag), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tag(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewTag>,
) -> ApiResult<(StatusCode, Json<Tag>)> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let group = scope.get_tag_group(body.group_id).await?;
    check_tag_reach(&auth, &scope, group.unit_id).await?;
    let tag = scope
        .create_tag(
            body.group_id,
            &body.name,
            body.colour.as_deref().unwrap_or("#1677ff"),
            body.position.unwrap_or(0),
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(tag)))
}

#[utoipa::path(get, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Tag), (status = 404, body = ErrorBody)))]
pub async fn get_tag(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Tag>> {
    auth.require(Permission::TagsRead)?;
    let mut tag = auth.scope(&app.store).await?.get_tag(TagId(id)).await?;
    count_within_scope(&app, &auth, &mut [&mut tag]).await?;
    Ok(Json(tag))
}

/// Checks that the caller reaches the tag's group (and the group it would move to).
async fn check_tag_change(
    auth: &Auth,
    scope: &TenantScope<'_>,
    tag: TagId,
    to_group: Option<TagGroupId>,
) -> ApiResult<()> {
    let tag = scope.get_tag(tag).await?;
    let group = scope.get_tag_group(tag.group_id).await?;
    check_tag_reach(auth, scope, group.unit_id).await?;
    if let Some(to) = to_group {
        let group = scope.get_tag_group(to).await?;
        check_tag_reach(auth, scope, group.unit_id).await?;
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagChangeRequest {
    /// A new name; segments that use the tag are rewritten to it.
    pub name: Option<String>,
    pub colour: Option<String>,
    pub group_id: Option<TagGroupId>,
    pub position: Option<i64>,
}

#[utoipa::path(patch, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    request_body = TagChangeRequest,
    responses((status = 200, body = Tag), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_tag(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TagChangeRequest>,
) -> ApiResult<Json<Tag>> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    check_tag_change(&auth, &scope, TagId(id), body.group_id).await?;
    Ok(Json(
        scope
            .update_tag(
                TagId(id),
                body.name.as_deref(),
                body.colour.as_deref(),
                body.group_id,
                body.position,
                &auth.actor(),
            )
            .await?,
    ))
}

/// Deletes a tag and takes it off every customer; 409 naming the segments that use it.
#[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "saved segments use the tag; the message names them", body = ErrorBody)))]
pub async fn delete_tag(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    check_tag_change(&auth, &scope, TagId(id), None).await?;
    scope.delete_tag(TagId(id), &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/tags", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<CustomerTag>), (status = 404, body = ErrorBody)))]
pub async fn customer_tags(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<CustomerTag>>> {
    auth.require(Permission::TagsRead)?;
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    Ok(Json(scope.customer_tags(customer.id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerTagChange {
    #[serde(default)]
    pub add: Vec<TagId>,
    #[serde(default)]
    pub remove: Vec<TagId>,
    /// Why (kept with each change; at most 200 characters).
    pub reason: Option<String>,
}

/// Adds and removes tags on one customer; answers with the customer's tags.
#[utoipa::path(post, path = "/api/v1/customers/{id}/tags", tag = "tags", params(("id" = i64, Path)),
    request_body = CustomerTagChange,
    responses((status = 200, body = Vec<CustomerTag>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_customer_tags(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CustomerTagChange>,
) -> ApiResult<Json<Vec<CustomerTag>>> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    if body.add.is_empty() && body.remove.is_empty() {
        return Err(ApiError::field("add", "name tags to add or remove"));
    }
    scope
        .change_tags(
            &[customer.id],
            &body.add,
            &body.remove,
            origin_of(&auth),
            body.reason.as_deref(),
            &auth.actor(),
        )
        .await?;
    Ok(Json(scope.customer_tags(customer.id).await?))
}

/// Staff tag by hand; programs through the API.
fn origin_of(auth: &Auth) -> TagOrigin {
    match auth.principal.kind {
        siyu_domain::access::PrincipalKind::ApiToken { .. } => TagOrigin::Api,
        _ => TagOrigin::Manual,
    }
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/tag-history", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<TagChange>), (status = 404, body = ErrorBody)))]
pub async fn tag_history(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<TagChange>>> {
    auth.require(Permission::TagsRead)?;
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    Ok(Json(scope.tag_history(customer.id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTagging {
    /// The customers: a list of ids …
    pub customer_ids: Option<Vec<CustomerId>>,
    /// … or the members of a saved segment …
    pub segment_id: Option<SegmentId>,
    /// … or those matching a definition (text form).
    pub definition: Option<String>,
    #[serde(default)]
    pub add: Vec<TagId>,
    #[serde(default)]
    pub remove: Vec<TagId>,
    pub reason: Option<String>,
    /// With `segment_id` or `definition`: tag only the matching customers after this id
    /// (in id order) — a part of a long tagging, continued from the last answer's
    /// `next_after_id`, so that a console can show how far it has come.
    pub after_id: Option<i64>,
    /// With `segment_id` or `definition`: tag at most this many customers (1–50,000).
    pub limit: Option<u32>,
}

/// What a bulk tagging did, and for one done in parts, how far it has come.
#[derive(Serialize, ToSchema)]
pub struct BulkTaggingResult {
    /// Tags put on customers who did not have them.
    pub added: u64,
    /// Tags taken off customers who had them.
    pub removed: u64,
    /// How many customers the tagging names now (in parts: the segment or definition's
    /// matches as this part found them; a tagging may change who matches).
    pub customers: u64,
    /// How many of them come after this part (0 when done).
    pub remaining: u64,
    /// Pass as `after_id` for the next part; null when none is left.
    pub next_after_id: Option<i64>,
}

/// The most customers one part of a bulk tagging may take.
const MAX_PART: u32 = 50_000;

/// The most customers one bulk tagging may name by list.
const MAX_LISTED: usize = 100_000;

/// Tags many customers at once: a list, a saved segment's members or a definition's
/// matches, within the caller's data scope. Concurrent taggings of the same customers
/// lose no tag. A segment or definition without `limit` or `after_id` is tagged by a
/// job (202 with its id; its progress counts customers done of all, and says what was
/// added and removed); with them, one part now (200), as by a list.
#[utoipa::path(post, path = "/api/v1/customers/bulk-tag", tag = "tags", request_body = BulkTagging,
    responses((status = 200, body = BulkTaggingResult), (status = 202, description = "a job tags them", body = JobQueued),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn bulk_tag(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<BulkTagging>,
) -> ApiResult<Response> {
    auth.require(Permission::TagsWrite)?;
    let scope = auth.scope(&app.store).await?;
    if body.add.is_empty() && body.remove.is_empty() {
        return Err(ApiError::field("add", "name tags to add or remove"));
    }
    let chosen = [
        body.customer_ids.is_some(),
        body.segment_id.is_some(),
        body.definition.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if chosen != 1 {
        return Err(ApiError::field(
            "customer_ids",
            "name the customers one way: customer_ids, segment_id or definition",
        ));
    }
    if let Some(limit) = body.limit
        && !(1..=MAX_PART).contains(&limit)
    {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_PART}"),
        ));
    }
    let in_parts = body.after_id.is_some() || body.limit.is_some();
    if in_parts && body.customer_ids.is_some() {
        return Err(ApiError::field(
            "after_id",
            "a tagging by list is done whole; parts are for segments and definitions",
        ));
    }
    let mut progress = None;
    let customers: Vec<CustomerId> = if let Some(ids) = body.customer_ids {
        if ids.len() > MAX_LISTED {
            return Err(ApiError::field(
                "customer_ids",
                format!("at most {MAX_LISTED} customers; tag a segment for more"),
            ));
        }
        // those the caller can reach (the store skips the others anyway)
        scope.reachable(&ids).await?
    } else {
        let condition = match (body.segment_id, body.definition) {
            (Some(id), _) => segment_condition(&scope, id).await?,
            (_, Some(text)) => condition_of(&auth, Some(&text), None)?,
            _ => unreachable!("one was chosen"),
        };
        if !in_parts {
            // checked now, so a bad request is a 422 and not a dead job
            app.audiences
                .catalog(scope.id())
                .await?
                .check(&condition)
                .map_err(definition_error)?;
            siyu_domain::audience::check_reason(body.reason.as_deref())?;
            scope.check_tags_known(&body.add, &body.remove).await?;
            let actor = auth.actor();
            let job = siyu_runtime::tagging::BulkTagging {
                condition,
                add: body.add,
                remove: body.remove,
                reason: body.reason,
                origin: origin_of(&auth),
                actor,
            };
            let job_id = enqueue_asked(&auth, &scope, kind::BULK_TAGGING, job).await?;
            return Ok((StatusCode::ACCEPTED, Json(JobQueued { job_id })).into_response());
        }
        let (members, audience) = app.audiences.evaluate(&scope, &condition).await?;
        let index = audience.read(&scope);
        let mut all = index.ids(&members, usize::MAX);
        {
            all.sort_unstable();
            let after = body.after_id.unwrap_or(0);
            let start = all.partition_point(|id| *id <= after);
            let end = (start + body.limit.unwrap_or(MAX_PART) as usize).min(all.len());
            let next = (end < all.len()).then(|| all[end - 1]);
            progress = Some((all.len() as u64, (all.len() - end) as u64, next));
            all[start..end].iter().copied().map(CustomerId).collect()
        }
    };
    let named = customers.len() as u64;
    let result = scope
        .change_tags(
            &customers,
            &body.add,
            &body.remove,
            origin_of(&auth),
            body.reason.as_deref(),
            &auth.actor(),
        )
        .await?;
    let (customers, remaining, next_after_id) = progress.unwrap_or((named, 0, None));
    Ok(Json(BulkTaggingResult {
        added: result.added,
        removed: result.removed,
        customers,
        remaining,
        next_after_id,
    })
    .into_response())
}
