//! Tag rules: a definition and the tags to add and remove when a customer matches it,
//! applied to every customer it matches when saved and then as data arrives. Rules tag
//! customers across the tenant, so changing them needs a data scope over all of it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::audience::{TagId, TagRule, TagRuleId};
use siyu_domain::ids::JobId;
use siyu_store::TenantScope;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::routes::conditions::condition_of;
use crate::routes::customer_scope::require_tenant_scope;

#[utoipa::path(get, path = "/api/v1/tag-rules", tag = "tags", responses((status = 200, body = Vec<TagRule>)))]
pub async fn list_tag_rules(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<TagRule>>> {
    auth.require(Permission::TagsRead)?;
    Ok(Json(auth.scope(&app.store).await?.tag_rules().await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTagRuleRequest {
    pub name: String,
    /// When a customer matches this (text form of the segment language) …
    pub definition: Option<String>,
    /// … or this (JSON form) …
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    /// … these tags are added …
    #[serde(default)]
    pub add: Vec<TagId>,
    /// … and these removed.
    #[serde(default)]
    pub remove: Vec<TagId>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SavedTagRule {
    pub rule: TagRule,
    /// The job applying an enabled rule to every customer it matches now (its progress
    /// says what it added and removed); null for a disabled rule.
    pub job_id: Option<JobId>,
}

/// The tags a condition tests, directly or through the saved segments it uses.
fn tested_tags(
    catalog: &siyu_audience::catalog::Catalog,
    condition: &siyu_audience::Condition,
) -> Vec<i64> {
    use siyu_audience::catalog::SavedSegment;
    let mut tags = Vec::new();
    let mut stack = vec![condition.clone()];
    let mut seen = std::collections::HashSet::new();
    while let Some(c) = stack.pop() {
        for name in c.tags() {
            if let Some(id) = catalog.tags.get(name) {
                tags.push(*id);
            }
        }
        for id in c.segments() {
            if seen.insert(id)
                && let Some(SavedSegment::Dynamic(inner)) = catalog.segments.get(&id)
            {
                stack.push(inner.clone());
            }
        }
    }
    tags
}

/// A rule may not change a tag that its own condition tests, nor take part in a circle
/// of rules that change what each other test: either would flip tags back and forth.
async fn check_rule(
    app: &AppState,
    scope: &TenantScope<'_>,
    rule: Option<TagRuleId>,
    name: &str,
    condition: &siyu_audience::Condition,
    add: &[TagId],
    remove: &[TagId],
) -> ApiResult<()> {
    let catalog = app.audiences.catalog(scope.id()).await?;
    catalog
        .check(condition)
        .map_err(crate::error::definition_error)?;
    if let Some(both) = add.iter().find(|t| remove.contains(t)) {
        return Err(ApiError::field(
            "remove",
            format!("tag {} is both added and removed", both.0),
        ));
    }
    // every enabled rule, with this one as it will be: (name, changes, tests)
    let mut rules: Vec<(String, Vec<i64>, Vec<i64>)> = Vec::new();
    for other in scope.tag_rules().await? {
        if Some(other.id) == rule || !other.enabled {
            continue;
        }
        let Ok(c) = serde_json::from_value::<siyu_audience::Condition>(other.condition.clone())
        else {
            continue;
        };
        let changes = other.add.iter().chain(&other.remove).map(|t| t.0).collect();
        rules.push((other.name.clone(), changes, tested_tags(&catalog, &c)));
    }
    let this = rules.len();
    rules.push((
        name.to_owned(),
        add.iter().chain(remove).map(|t| t.0).collect(),
        tested_tags(&catalog, condition),
    ));
    // a path of rules from this one back to itself: each changes a tag the next tests
    let feeds = |a: usize, b: usize| rules[a].1.iter().any(|t| rules[b].2.contains(t));
    let mut stack = vec![(this, vec![this])];
    let mut visited = std::collections::HashSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in 0..rules.len() {
            if !feeds(at, next) {
                continue;
            }
            if next == this {
                let names: Vec<&str> = path.iter().map(|i| rules[*i].0.as_str()).collect();
                return Err(ApiError::InvalidDefinition {
                    line: None,
                    column: None,
                    part: None,
                    message: if path.len() == 1 {
                        "the rule changes a tag that its own condition tests".into()
                    } else {
                        format!(
                            "the rules {} change tags that each other test, in a circle",
                            names.join(" → ")
                        )
                    },
                });
            }
            if visited.insert(next) {
                let mut longer = path.clone();
                longer.push(next);
                stack.push((next, longer));
            }
        }
    }
    Ok(())
}

/// Saves a tag rule and applies it at once to every customer it matches; from then on
/// it is applied as data arrives.
#[utoipa::path(post, path = "/api/v1/tag-rules", tag = "tags", request_body = NewTagRuleRequest,
    responses((status = 201, body = SavedTagRule), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tag_rule(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewTagRuleRequest>,
) -> ApiResult<(StatusCode, Json<SavedTagRule>)> {
    auth.require(Permission::TagsWrite)?;
    // a rule tags customers across the tenant
    let scope = auth.scope(&app.store).await?;
    require_tenant_scope(&scope)?;
    let condition = condition_of(&auth, body.definition.as_deref(), body.condition.as_ref())?;
    check_rule(
        &app,
        &scope,
        None,
        &body.name,
        &condition,
        &body.add,
        &body.remove,
    )
    .await?;
    let (rule, job_id) = auth
        .scope(&app.store)
        .await?
        .create_tag_rule(
            &siyu_store::NewTagRule {
                name: body.name,
                condition,
                add: body.add,
                remove: body.remove,
                enabled: body.enabled.unwrap_or(true),
            },
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(SavedTagRule { rule, job_id })))
}

#[utoipa::path(get, path = "/api/v1/tag-rules/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = TagRule), (status = 404, body = ErrorBody)))]
pub async fn get_tag_rule(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TagRule>> {
    auth.require(Permission::TagsRead)?;
    Ok(Json(
        auth.scope(&app.store)
            .await?
            .get_tag_rule(TagRuleId(id))
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRuleChange {
    pub name: Option<String>,
    pub definition: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    pub add: Option<Vec<TagId>>,
    pub remove: Option<Vec<TagId>>,
    pub enabled: Option<bool>,
}

/// Changes a tag rule; an enabled rule is applied again to every customer it matches.
#[utoipa::path(patch, path = "/api/v1/tag-rules/{id}", tag = "tags", params(("id" = i64, Path)),
    request_body = TagRuleChange,
    responses((status = 200, body = SavedTagRule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_tag_rule(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TagRuleChange>,
) -> ApiResult<Json<SavedTagRule>> {
    auth.require(Permission::TagsWrite)?;
    // a rule tags customers across the tenant
    let scope = auth.scope(&app.store).await?;
    require_tenant_scope(&scope)?;
    let scope = auth.scope(&app.store).await?;
    let current = scope.get_tag_rule(TagRuleId(id)).await?;
    let condition = if body.definition.is_some() || body.condition.is_some() {
        Some(condition_of(
            &auth,
            body.definition.as_deref(),
            body.condition.as_ref(),
        )?)
    } else {
        None
    };
    let effective = match &condition {
        Some(c) => c.clone(),
        None => serde_json::from_value(current.condition.clone())
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let add = body.add.clone().unwrap_or(current.add.clone());
    let remove = body.remove.clone().unwrap_or(current.remove.clone());
    let name = body.name.clone().unwrap_or(current.name.clone());
    check_rule(
        &app,
        &scope,
        Some(current.id),
        &name,
        &effective,
        &add,
        &remove,
    )
    .await?;
    let (rule, job_id) = scope
        .update_tag_rule(
            TagRuleId(id),
            body.name.as_deref(),
            condition.as_ref(),
            body.add.as_deref(),
            body.remove.as_deref(),
            body.enabled,
            &auth.actor(),
        )
        .await?;
    Ok(Json(SavedTagRule { rule, job_id }))
}

/// Deletes a tag rule; the tags it put on customers stay.
#[utoipa::path(delete, path = "/api/v1/tag-rules/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_tag_rule(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::TagsWrite)?;
    // a rule tags customers across the tenant
    let scope = auth.scope(&app.store).await?;
    require_tenant_scope(&scope)?;
    auth.scope(&app.store)
        .await?
        .delete_tag_rule(TagRuleId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
