//! App messages to staff through a WeCom connector (reminders, tasks): the members are
//! named by their siyu staff id, the text checked, and the sending left to the
//! `wecom.app_message` job, which keeps within WeCom's per-member limits and records
//! each recipient's send.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::DomainError;
use siyu_domain::access::Permission;
use siyu_domain::connector::{
    AppMessagePayload, AppMessageRecipient, WecomConnector, check_app_message,
};
use siyu_domain::ids::{ConnectorId, StaffId};
use siyu_domain::jobs::kind;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::routes::jobs::{JobQueued, enqueue_asked};

/// The most members one request may message.
pub const MAX_RECIPIENTS: usize = 1_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMessageBody {
    /// Staff synced from this connector's corp (WeCom members still in it).
    pub staff_ids: Vec<StaffId>,
    /// Plain text, 1 to 2,048 bytes.
    pub text: String,
}

/// Sends a text from the brand's WeCom app to members; 202 with the job that sends it.
#[utoipa::path(post, path = "/api/v1/connectors/{id}/app-messages", tag = "connectors",
    params(("id" = i64, Path)), request_body = AppMessageBody,
    responses((status = 202, body = JobQueued), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_app_message(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AppMessageBody>,
) -> ApiResult<(StatusCode, Json<JobQueued>)> {
    auth.require(Permission::SettingsWrite)?;
    check_app_message(&body.text)?;
    if body.staff_ids.is_empty() || body.staff_ids.len() > MAX_RECIPIENTS {
        return Err(DomainError::invalid(
            "staff_ids",
            format!("must name 1 to {MAX_RECIPIENTS} staff"),
        )
        .into());
    }
    let scope = auth.scope(&app.store).await?;
    let id = ConnectorId(id);
    let opened = scope.connector_secrets(id).await?;
    let wecom = WecomConnector::read(&opened.connector.config, &opened.secrets)
        .map_err(ApiError::Internal)?;
    if wecom.settings.agent_id.is_none() {
        return Err(DomainError::invalid(
            "config.agent_id",
            "the connector has no agent_id: set the app's AgentId to send app messages",
        )
        .into());
    }
    let members = scope.wecom_members(id).await?;
    let mut recipients = Vec::with_capacity(body.staff_ids.len());
    for staff in &body.staff_ids {
        let member = members
            .iter()
            .find(|m| m.staff_id == staff.0 && m.left_at.is_none())
            .ok_or_else(|| {
                DomainError::invalid(
                    "staff_ids",
                    format!("staff {} is not a member of this connector's corp", staff.0),
                )
            })?;
        if !recipients
            .iter()
            .any(|r: &AppMessageRecipient| r.userid == member.userid)
        {
            recipients.push(AppMessageRecipient {
                userid: member.userid.clone(),
                staff_id: Some(*staff),
            });
        }
    }
    let payload = AppMessagePayload {
        connector_id: id,
        recipients,
        text: body.text,
    };
    let job_id = enqueue_asked(&auth, &scope, kind::WECOM_APP_MESSAGE, payload).await?;
    Ok((StatusCode::ACCEPTED, Json(JobQueued { job_id })))
}
