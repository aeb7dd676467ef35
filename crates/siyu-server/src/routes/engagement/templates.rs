//! Message templates (`/api/v1/message-templates`): texts with personalisation and a
//! fallback for every value, and their preview for a chosen customer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::DomainError;
use siyu_domain::access::Permission;
use siyu_domain::engagement::template::{
    MessageTemplate, MessageTemplateChange, NewMessageTemplate, Rendered,
};
use siyu_domain::ids::{CustomerId, MessageTemplateId, StaffId};
use siyu_domain::page::Page;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams};

#[utoipa::path(get, path = "/api/v1/message-templates", tag = "engagement", params(PageParams),
    responses((status = 200, body = Page<MessageTemplate>), (status = 403, body = ErrorBody)))]
pub async fn list_message_templates(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<MessageTemplate>>> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_message_templates(q.page()?).await?))
}

/// Adds a template. Every variable the body names needs a fallback, and the body must
/// render with them (422 otherwise, saying why). Audited.
#[utoipa::path(post, path = "/api/v1/message-templates", tag = "engagement",
    request_body = NewMessageTemplate,
    responses((status = 201, body = MessageTemplate), (status = 403, body = ErrorBody),
        (status = 409, description = "a template of this name exists", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_message_template(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewMessageTemplate>,
) -> ApiResult<(StatusCode, Json<MessageTemplate>)> {
    auth.require(Permission::ContentWrite)?;
    let spec = body.check()?;
    let scope = auth.scope(&app.store).await?;
    let template = scope
        .create_message_template(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(template)))
}

#[utoipa::path(get, path = "/api/v1/message-templates/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = MessageTemplate), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_message_template(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MessageTemplate>> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope.get_message_template(MessageTemplateId(id)).await?,
    ))
}

/// Changes a template; fields left out stay (`fallbacks`, when given, replaces them
/// all). Audited.
#[utoipa::path(patch, path = "/api/v1/message-templates/{id}", tag = "engagement",
    params(("id" = i64, Path)), request_body = MessageTemplateChange,
    responses((status = 200, body = MessageTemplate), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_message_template(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<MessageTemplateChange>,
) -> ApiResult<Json<MessageTemplate>> {
    auth.require(Permission::ContentWrite)?;
    let id = MessageTemplateId(id);
    let scope = auth.scope(&app.store).await?;
    let spec = body.apply(&scope.get_message_template(id).await?)?;
    Ok(Json(
        scope
            .update_message_template(id, &spec, &auth.actor())
            .await?,
    ))
}

/// Deletes a template from the library (what used it keeps it). Audited.
#[utoipa::path(delete, path = "/api/v1/message-templates/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_message_template(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::ContentWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .delete_message_template(MessageTemplateId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whom a preview is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePreviewRequest {
    /// A customer within the caller's reach.
    pub customer_id: CustomerId,
    /// The member who sends (default: the customer's owner).
    pub member_id: Option<StaffId>,
    /// Rendered once for many customers, as a WeCom mass send's member task is: values
    /// that differ per customer render their fallbacks (default false).
    #[serde(default)]
    pub shared: bool,
}

/// The text a template renders for a customer, with each value and whether its
/// fallback stood in.
#[utoipa::path(post, path = "/api/v1/message-templates/{id}/preview", tag = "engagement",
    params(("id" = i64, Path)), request_body = TemplatePreviewRequest,
    responses((status = 200, body = Rendered), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview_message_template(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TemplatePreviewRequest>,
) -> ApiResult<Json<Rendered>> {
    auth.require(Permission::ContentRead)?;
    auth.require(Permission::CustomersRead)?;
    let scope = auth.scope(&app.store).await?;
    let template = scope.get_message_template(MessageTemplateId(id)).await?;
    let values = scope
        .template_values(body.customer_id, body.member_id)
        .await?;
    let rendered = if body.shared {
        template.render_shared(|v| values.value(v))
    } else {
        template.render(|v| values.value(v))
    };
    rendered
        .map(Json)
        .map_err(|e| ApiError::from(DomainError::invalid("template", e.to_string())))
}
