//! What is kept about one customer besides the profile: the timeline (events, orders,
//! notes, merges), event activity by name, notes, and consent per channel.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::consent::{Consent, ConsentChannel, ConsentStatus};
use siyu_domain::customer::{CustomerId, EventActivity, Note, TimelineEntry};
use siyu_domain::page::Page;
use siyu_domain::tracking::parse_time;
use siyu_store::ConsentChange;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::routes::customer_scope::reveal_for;

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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
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
    let scope = auth.scope(&app.store).await?;
    let customer = scope.get_customer(CustomerId(id)).await?;
    Ok(Json(
        scope
            .record_consent(customer.id, &change, &auth.actor())
            .await?,
    ))
}
