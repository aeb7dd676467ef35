//! Connector accounts: the tenant's accounts on the channels siyu reaches customers and
//! staff through (a WeCom corp's self-built app). Admins create and change them
//! (`settings.write`, audited); `connectors.read` sees them with their health. Secrets
//! go in and never come out: answers carry the settings that may be shown, and the
//! callback URL to paste into the channel's admin console.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use siyu_domain::access::Permission;
use siyu_domain::connector::{Connector, ConnectorConfig, ConnectorKind};
use siyu_domain::ids::ConnectorId;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth};

/// A connector as shown, with where its channel sends callbacks.
#[derive(Serialize, ToSchema)]
pub struct ConnectorView {
    #[serde(flatten)]
    pub connector: Connector,
    /// The path of the callback URL (`/callbacks/wecom/{id}`): with the address siyu is
    /// reached at, what to paste into WeCom's admin (接收事件服务器 URL).
    pub callback_path: String,
}

fn view_of(connector: Connector) -> ConnectorView {
    let callback_path = match connector.kind {
        ConnectorKind::Wecom => format!("/callbacks/wecom/{}", connector.id),
    };
    ConnectorView {
        connector,
        callback_path,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnectorBody {
    /// `wecom`.
    pub kind: String,
    pub name: String,
    /// For WeCom: `corp_id`, `secret`, `token`, `encoding_aes_key` (required), and
    /// `agent_id`, `api_base_url` (default `https://qyapi.weixin.qq.com`), `welcome`,
    /// `member_role` (default `service`), `member_scope` (default `own`).
    #[schema(value_type = Object)]
    pub config: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorPatchBody {
    pub name: Option<String>,
    /// Settings and secrets to change; those left out keep their value.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

/// The tenant's connectors with their health.
#[utoipa::path(get, path = "/api/v1/connectors", tag = "connectors",
    responses((status = 200, body = Vec<ConnectorView>), (status = 403, body = ErrorBody)))]
pub async fn list_connectors(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ConnectorView>>> {
    auth.require(Permission::ConnectorsRead)?;
    let scope = auth.scope(&app.store).await?;
    let connectors = scope.list_connectors().await?;
    Ok(Json(connectors.into_iter().map(view_of).collect()))
}

/// Creates a connector; its secrets are sealed at rest (a server without a secret key
/// refuses with 409, naming `SIYU_SECRET_KEY`).
#[utoipa::path(post, path = "/api/v1/connectors", tag = "connectors",
    request_body = NewConnectorBody,
    responses((status = 201, body = ConnectorView), (status = 403, body = ErrorBody),
        (status = 409, description = "a connector of this name exists, or no secret key is set",
            body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_connector(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewConnectorBody>,
) -> ApiResult<(StatusCode, Json<ConnectorView>)> {
    auth.require(Permission::SettingsWrite)?;
    let config = ConnectorConfig::new(&body.kind, &body.name, &body.config)?;
    let scope = auth.scope(&app.store).await?;
    let connector = scope.create_connector(&config, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(view_of(connector))))
}

#[utoipa::path(get, path = "/api/v1/connectors/{id}", tag = "connectors",
    params(("id" = i64, Path)),
    responses((status = 200, body = ConnectorView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_connector(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ConnectorView>> {
    auth.require(Permission::ConnectorsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(view_of(scope.get_connector(ConnectorId(id)).await?)))
}

/// Changes a connector's name, settings or secrets (those left out stay).
#[utoipa::path(patch, path = "/api/v1/connectors/{id}", tag = "connectors",
    params(("id" = i64, Path)), request_body = ConnectorPatchBody,
    responses((status = 200, body = ConnectorView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_connector(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ConnectorPatchBody>,
) -> ApiResult<Json<ConnectorView>> {
    auth.require(Permission::SettingsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let stored = scope.connector_secrets(ConnectorId(id)).await?;
    let config = ConnectorConfig::changed(
        stored.connector.kind,
        &stored.connector.name,
        &stored.connector.config,
        &stored.secrets,
        body.name.as_deref(),
        body.config.as_ref(),
    )?;
    let connector = scope
        .update_connector(ConnectorId(id), &config, &auth.actor())
        .await?;
    Ok(Json(view_of(connector)))
}

/// Deletes a connector and what was mirrored through it (members' links, follow
/// relations); customers and staff stay. Its waiting jobs end with an error.
#[utoipa::path(delete, path = "/api/v1/connectors/{id}", tag = "connectors",
    params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_connector(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::SettingsWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .delete_connector(ConnectorId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
