//! Tracked links (`/api/v1/links`) and the destinations they may lead to
//! (`/api/v1/link-destinations`): short links with UTM parameters, personal links for
//! one customer, and what their clicks came to (`siyu_domain::acquisition::links`; the
//! public side is `link_redirect`).
//!
//! Registering a destination needs `settings.write` (it decides where siyu's short
//! links may send people); links need `campaigns.write`, and a caller whose data scope
//! is narrower than the tenant sees and changes the links staff within it made.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::Permission;
use siyu_domain::acquisition::links::{
    LinkDestination, LinkReport, NewLinkDestination, NewTrackedLink, TrackedLink,
    TrackedLinkChange, link_path,
};
use siyu_domain::acquisition::report::RangeQuery;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{LinkDestinationId, TrackedLinkId};
use siyu_domain::page::Page;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

/// The registered destinations.
#[utoipa::path(get, path = "/api/v1/link-destinations", tag = "acquisition",
    responses((status = 200, body = Vec<LinkDestination>), (status = 403, body = ErrorBody)))]
pub async fn list_link_destinations(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<LinkDestination>>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.link_destinations().await?))
}

/// Registers a destination: links may lead to it and under it. Audited.
#[utoipa::path(post, path = "/api/v1/link-destinations", tag = "acquisition",
    request_body = NewLinkDestination,
    responses((status = 201, body = LinkDestination), (status = 403, body = ErrorBody),
        (status = 409, description = "this destination is registered", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_link_destination(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewLinkDestination>,
) -> ApiResult<(StatusCode, Json<LinkDestination>)> {
    auth.require(Permission::SettingsWrite)?;
    let (prefix, note) = body.check()?;
    let scope = auth.scope(&app.store).await?;
    let destination = scope
        .add_link_destination(&prefix, &note, &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(destination)))
}

/// Removes a destination, unless live links lead only under it (409). Audited.
#[utoipa::path(delete, path = "/api/v1/link-destinations/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "live links lead only under it", body = ErrorBody)))]
pub async fn remove_link_destination(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::SettingsWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .remove_link_destination(LinkDestinationId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/links", tag = "acquisition", params(PageParams),
    responses((status = 200, body = Page<TrackedLink>), (status = 403, body = ErrorBody)))]
pub async fn list_links(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<TrackedLink>>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_tracked_links(q.page()?).await?))
}

/// Makes a link to a URL under a registered destination (422 otherwise), with UTM
/// parameters; it answers at `path` (`/l/{slug}`). Audited.
#[utoipa::path(post, path = "/api/v1/links", tag = "acquisition",
    request_body = NewTrackedLink,
    responses((status = 201, body = TrackedLink), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_link(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewTrackedLink>,
) -> ApiResult<(StatusCode, Json<TrackedLink>)> {
    auth.require(Permission::CampaignsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let spec = body.check(&scope.link_prefixes().await?)?;
    let link = scope
        .create_tracked_link(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(link)))
}

#[utoipa::path(get, path = "/api/v1/links/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 200, body = TrackedLink), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_link(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TrackedLink>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_tracked_link(TrackedLinkId(id)).await?))
}

/// Changes a link; fields left out stay (a UTM value `""` removes it). Audited.
#[utoipa::path(patch, path = "/api/v1/links/{id}", tag = "acquisition",
    params(("id" = i64, Path)), request_body = TrackedLinkChange,
    responses((status = 200, body = TrackedLink), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_link(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TrackedLinkChange>,
) -> ApiResult<Json<TrackedLink>> {
    auth.require(Permission::CampaignsWrite)?;
    let id = TrackedLinkId(id);
    let scope = auth.scope(&app.store).await?;
    let before = scope.get_tracked_link(id).await?;
    let spec = body.apply(&before, &scope.link_prefixes().await?)?;
    let link = scope.update_tracked_link(id, &spec, &auth.actor()).await?;
    app.kept_links.forget(&link.slug);
    Ok(Json(link))
}

/// Deletes a link: it answers 410 from then on; its figures stay. Audited.
#[utoipa::path(delete, path = "/api/v1/links/{id}", tag = "acquisition",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_link(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::CampaignsWrite)?;
    let id = TrackedLinkId(id);
    let scope = auth.scope(&app.store).await?;
    let before = scope.get_tracked_link(id).await?;
    scope.delete_tracked_link(id, &auth.actor()).await?;
    app.kept_links.forget(&before.slug);
    Ok(StatusCode::NO_CONTENT)
}

/// The customer a personal link is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalLinkRequest {
    pub customer_id: CustomerId,
}

/// A link made personal for one customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalLink {
    pub link_id: TrackedLinkId,
    pub customer_id: CustomerId,
    pub token: String,
    /// `/l/{slug}/{token}`, to put after the server's public address.
    pub path: String,
}

/// The personal link of a link for one customer within the caller's reach: its clicks
/// are that customer's. The same customer always gets the same token; nobody can make
/// one without siyu's key (sealed among the tenant's secrets; 409 when the server has no
/// secret key).
#[utoipa::path(post, path = "/api/v1/links/{id}/personal", tag = "acquisition",
    params(("id" = i64, Path)), request_body = PersonalLinkRequest,
    responses((status = 200, body = PersonalLink), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the server has no secret key", body = ErrorBody),
        (status = 422, description = "no such customer within reach", body = ErrorBody)))]
pub async fn personal_link(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PersonalLinkRequest>,
) -> ApiResult<Json<PersonalLink>> {
    auth.require(Permission::CampaignsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let link = scope.get_tracked_link(TrackedLinkId(id)).await?;
    let customer = scope
        .get_customer(body.customer_id)
        .await
        .map_err(|e| match e {
            siyu_store::StoreError::NotFound(_) => ApiError::from(
                siyu_domain::DomainError::invalid("customer_id", "no such customer"),
            ),
            e => e.into(),
        })?;
    let key = app
        .kept_links
        .key(&app, scope.id())
        .await?
        .ok_or(siyu_store::StoreError::NoSecretKey)?;
    let token = key.sign(link.id, customer.id);
    Ok(Json(PersonalLink {
        link_id: link.id,
        customer_id: customer.id,
        path: format!("{}/{token}", link_path(&link.slug)),
        token,
    }))
}

/// What the links within reach came to from `from` to `to`: clicks (personal ones
/// among them) and crawler fetches, per link, in total and day by day. A click counts
/// once its event is applied to the profile.
#[utoipa::path(get, path = "/api/v1/links/report", tag = "acquisition",
    params(RangeQuery),
    responses((status = 200, body = LinkReport), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn link_report(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<LinkReport>> {
    auth.require(Permission::CampaignsRead)?;
    let range = q.range()?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.tracked_link_report(range).await?))
}
