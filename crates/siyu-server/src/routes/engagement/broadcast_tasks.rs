//! Following a mass send (`/api/v1/broadcasts/{id}/…`): its batches (on WeCom, one
//! member's task each) with their results, its recipients one by one, reminding the
//! members who have not sent yet, and a person's decision on a batch whose lost call
//! siyu could not find for sure. The work is the jobs of `siyu_runtime::broadcasts`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_domain::access::Permission;
use siyu_domain::engagement::broadcast::{Broadcast, BroadcastChannel, BroadcastState};
use siyu_domain::engagement::member_tasks::{
    BatchResolution, BroadcastRecipient, BroadcastTask, RecipientStatus,
};
use siyu_domain::ids::{BroadcastId, JobId};
use siyu_domain::jobs::kind;
use siyu_domain::page::Page;
use siyu_runtime::broadcasts::remindable;
use siyu_store::NewJob;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

/// A send's batches with what became of their recipients: on WeCom each is one
/// member's task (its member, whether they sent it, reminders, results per status).
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}/tasks", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<BroadcastTask>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_broadcast_tasks(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<BroadcastTask>>> {
    auth.require(Permission::BroadcastsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.broadcast_tasks(BroadcastId(id)).await?))
}

/// Which recipients to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// Only recipients with this status.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// A send's recipients, by batch and customer, with what became of each (optionally
/// only those of one status).
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}/recipients", tag = "engagement",
    params(("id" = i64, Path), RecipientQuery),
    responses((status = 200, body = Page<BroadcastRecipient>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_broadcast_recipients(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<RecipientQuery>,
) -> ApiResult<Json<Page<BroadcastRecipient>>> {
    auth.require(Permission::BroadcastsRead)?;
    let status = q
        .status
        .as_deref()
        .map(|s| RecipientStatus::parse("status", s))
        .transpose()?;
    let page = siyu_domain::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .broadcast_recipients(BroadcastId(id), status, page)
            .await?,
    ))
}

/// A reminder on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemindQueued {
    pub job_id: JobId,
    /// Members who will be reminded (those with a task not sent, reminded fewer than 3
    /// times in the last 24 hours).
    pub members: i64,
}

/// Reminds the members who have not sent their task of a WeCom send, through WeCom
/// (`remind_groupmsg_send`, at most 3 times a task in 24 hours) and, when the connector
/// has an app, with an app message. 409 when no member can be reminded now, or a
/// reminder of the send is on its way. Audited.
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/remind", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 202, body = RemindQueued), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remind_broadcast(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<RemindQueued>)> {
    auth.require(Permission::BroadcastsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let id = BroadcastId(id);
    let send = scope.get_broadcast(id).await?;
    if send.channel != BroadcastChannel::Wecom || send.state == BroadcastState::Cancelled {
        return Err(ApiError::Conflict(
            "only a WeCom send that is not cancelled has members to remind".into(),
        ));
    }
    let state = scope.follow_state(id).await?;
    let members = remindable(&state.tasks, siyu_store::now_ms()).len() as i64;
    if members == 0 {
        return Err(ApiError::Conflict(
            "no member can be reminded now: every task was sent, or its member was reminded \
             3 times in the last 24 hours"
                .into(),
        ));
    }
    // one reminder on its way per send: WeCom's three a day are counted as they go
    let job = NewJob::new(
        kind::BROADCAST_REMIND,
        serde_json::json!({"broadcast_id": id.0}),
    )
    .unique_key(format!("broadcast:{}", id.0));
    let job = match auth.principal.staff_id() {
        Some(staff) => job.created_by(staff),
        None => job,
    };
    let Some(job_id) = scope.enqueue(&[job]).await?.into_iter().flatten().next() else {
        return Err(ApiError::Conflict(
            "a reminder of this send is already on its way".into(),
        ));
    };
    scope
        .audit(
            auth.actor(),
            siyu_domain::audit::AuditRecord::new(
                siyu_domain::audit::action::BROADCAST_REMINDED,
                "broadcast",
                id.0,
            )
            .with_details(serde_json::json!({"members": members})),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RemindQueued { job_id, members })))
}

/// Decides a batch that waits for a person: its call's answer was lost and WeCom lists
/// several messages that could each be it. `{"outcome": "sent", "msgid": …}` (WeCom
/// has it as that message, one of the candidates), `{"outcome": "send_again"}` (WeCom
/// has none of them) or `{"outcome": "not_sent"}`. 409 for a batch that does not wait.
/// Audited.
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/batches/{batch}/resolve",
    tag = "engagement", params(("id" = i64, Path), ("batch" = i64, Path)),
    request_body = BatchResolution,
    responses((status = 200, body = Broadcast), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn resolve_broadcast_batch(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath((id, batch)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<BatchResolution>,
) -> ApiResult<Json<Broadcast>> {
    auth.require(Permission::BroadcastsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let id = BroadcastId(id);
    scope.resolve_batch(id, batch, &body, &auth.actor()).await?;
    Ok(Json(scope.get_broadcast(id).await?))
}
