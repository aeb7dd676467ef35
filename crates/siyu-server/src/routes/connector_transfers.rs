//! Customer transfers between a WeCom corp's members (客户继承): asking for them (in
//! office, or from a member who left), following them, and the customers of members
//! who left that are not assigned yet.
//!
//! Moving a customer to another member changes who owns them, so it takes
//! `customers.write` (as handing customers over does) and the caller's data scope: every
//! customer named must be within reach (else 404, as for any customer) and so must the
//! takeover member's staff (else 403), so a store manager moves customers between their
//! store's members and no further. Reading transfers and unassigned customers takes
//! `customers.read`, within reach. The work with WeCom runs as jobs: the answer is 202
//! with the job and the customers siyu refused at once (a third in-office transfer in
//! 90 days, a customer the handover does not have, one already being transferred).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::Permission;
use siyu_domain::connector::ConnectorKind;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, JobId, StaffId};
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::transfer::{
    NewTransfers, TransferFields, TransferKind, TransferRefusal, TransferStatus,
    UnassignedCustomer, WecomTransfer,
};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

/// A transfer request: one handover and one takeover member (each by staff id or WeCom
/// userid), the customers (by customer id or external userid; at most 1,000).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// `in_office` (在职继承: the handover still works here; WeCom allows two transfers
    /// of a customer per 90 days) or `resigned` (离职继承: the handover left).
    pub kind: TransferKind,
    pub handover_staff_id: Option<StaffId>,
    pub handover_userid: Option<String>,
    pub takeover_staff_id: Option<StaffId>,
    pub takeover_userid: Option<String>,
    pub customer_ids: Option<Vec<CustomerId>>,
    pub external_userids: Option<Vec<String>>,
    /// What WeCom tells the customer when the takeover happens (at most 200
    /// characters; WeCom's default if left out).
    pub message: Option<String>,
}

/// What asking did: the job that asks WeCom (null when siyu refused every customer),
/// how many customer relations it asks for, and the customers refused with why.
#[derive(Serialize, ToSchema)]
pub struct TransfersQueued {
    pub job_id: Option<JobId>,
    pub asked: u64,
    pub refused: Vec<TransferRefusal>,
}

/// Asks WeCom to transfer customers from one member to another. WeCom moves each 24 h
/// later unless the customer refuses; `GET …/transfers` follows them, and a succeeded
/// transfer makes the takeover's staff the customer's owner (when the handover's staff
/// or nobody owned them).
#[utoipa::path(post, path = "/api/v1/connectors/{id}/transfers", tag = "connectors",
    params(("id" = i64, Path)), request_body = TransferBody,
    responses((status = 202, body = TransfersQueued),
        (status = 403, description = "the takeover member is outside your data scope", body = ErrorBody),
        (status = 404, description = "no such connector, staff member or customer (or one outside your data scope)", body = ErrorBody),
        (status = 409, description = "a transfer of one of these customers began meanwhile", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn ask_transfers(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TransferBody>,
) -> ApiResult<(StatusCode, Json<TransfersQueued>)> {
    auth.require(Permission::CustomersWrite)?;
    let scope = auth.scope(&app.store).await?;
    let id = ConnectorId(id);
    let ConnectorKind::Wecom = scope.get_connector(id).await?.kind;
    let new = NewTransfers::new(TransferFields {
        kind: body.kind,
        handover_staff_id: body.handover_staff_id,
        handover_userid: body.handover_userid,
        takeover_staff_id: body.takeover_staff_id,
        takeover_userid: body.takeover_userid,
        customer_ids: body.customer_ids,
        external_userids: body.external_userids,
        message: body.message,
    })?;
    let asked = scope
        .ask_wecom_transfers(id, &new, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TransfersQueued {
            job_id: asked.job,
            asked: asked.asked,
            refused: asked.refused,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    /// Only transfers in this state.
    pub status: Option<TransferStatus>,
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// The corp's customer transfers within your data scope, newest first.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/transfers", tag = "connectors",
    params(("id" = i64, Path), TransferQuery),
    responses((status = 200, body = Page<WecomTransfer>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_transfers(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<TransferQuery>,
) -> ApiResult<Json<Page<WecomTransfer>>> {
    auth.require(Permission::CustomersRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .list_wecom_transfers(ConnectorId(id), q.status, page)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResignedQuery {
    /// Only the customers of this member (a WeCom userid).
    pub handover_userid: Option<String>,
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// The customers of members who left the corp that are not assigned yet (no transfer
/// waiting), within your data scope, by customer: what a `resigned` transfer hands on.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/resigned", tag = "connectors",
    params(("id" = i64, Path), ResignedQuery),
    responses((status = 200, body = Page<UnassignedCustomer>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_resigned_customers(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ResignedQuery>,
) -> ApiResult<Json<Page<UnassignedCustomer>>> {
    auth.require(Permission::CustomersRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .unassigned_wecom_customers(ConnectorId(id), q.handover_userid.as_deref(), page)
            .await?,
    ))
}
