//! A WeCom connector's members as siyu keeps them, each the staff member they became,
//! and each member's welcome message: what a customer who adds them is sent, before the
//! connector's `welcome` and the built-in greeting. An admin (`settings.write`) sets
//! anyone's; a member may set their own.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use siyu_domain::access::Permission;
use siyu_domain::connector::{WecomMember, read_welcome};
use siyu_domain::ids::ConnectorId;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};

/// The corp's members synced so far (and those who left), by userid.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/members", tag = "connectors",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<WecomMember>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<WecomMember>>> {
    auth.require(Permission::ConnectorsRead)?;
    let scope = auth.scope(&app.store).await?;
    let members = scope.wecom_members(ConnectorId(id)).await?;
    Ok(Json(members.into_iter().map(WecomMember::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChange {
    /// The member's welcome message (at most 4,000 bytes, WeCom's limit); `null` or
    /// blank: the connector's.
    #[schema(value_type = Option<String>)]
    pub welcome: Value,
}

/// Sets a member's welcome message. Audited.
#[utoipa::path(patch, path = "/api/v1/connectors/{id}/members/{userid}", tag = "connectors",
    params(("id" = i64, Path), ("userid" = String, Path)), request_body = MemberChange,
    responses((status = 200, body = WecomMember), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_member(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, userid)): ApiPath<(i64, String)>,
    ApiJson(body): ApiJson<MemberChange>,
) -> ApiResult<Json<WecomMember>> {
    let id = ConnectorId(id);
    let welcome = read_welcome("welcome", &body.welcome)?;
    let scope = auth.scope(&app.store).await?;
    if !auth.principal.can(Permission::SettingsWrite) {
        // without settings.write, only one's own welcome
        let own = scope
            .wecom_member(id, &userid)
            .await?
            .is_some_and(|m| Some(m.staff_id) == auth.principal.staff_id().map(|s| s.0));
        if !own {
            return Err(ApiError::Forbidden(format!(
                "your role ({}) may set only your own welcome message; others' need {}",
                auth.principal.role,
                Permission::SettingsWrite
            )));
        }
    }
    Ok(Json(
        scope
            .set_wecom_member_welcome(id, &userid, welcome.as_deref(), &auth.actor())
            .await?,
    ))
}
