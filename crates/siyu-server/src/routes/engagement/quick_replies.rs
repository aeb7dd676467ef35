//! Quick replies (`/api/v1/quick-replies`) and their groups
//! (`/api/v1/quick-reply-groups`): the tenant's library and each member of staff's
//! personal one. Everyone with `content.read` reads the tenant's and keeps a personal
//! one; `content.write` changes the tenant's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::engagement::quick_reply::{
    NewQuickReply, NewQuickReplyGroup, QuickReply, QuickReplyChange, QuickReplyGroup,
    QuickReplyGroupChange, QuickReplyLibrary,
};
use siyu_domain::ids::{QuickReplyGroupId, QuickReplyId};
use siyu_domain::page::{Page, PageRequest};
use siyu_store::QuickReplyFilter;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

/// Which replies to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuickReplyQuery {
    /// Words to search for, in Chinese or not: the best matches first (at most 50, on
    /// one page). Without it, replies come newest first, page by page.
    pub q: Option<String>,
    pub library: Option<QuickReplyLibrary>,
    pub group_id: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// Changing the tenant's library takes `content.write`; a personal one is the caller's.
fn require_write(auth: &Auth, library: QuickReplyLibrary) -> ApiResult<()> {
    auth.require(Permission::ContentRead)?;
    if library == QuickReplyLibrary::Tenant {
        auth.require(Permission::ContentWrite)?;
    }
    Ok(())
}

/// The replies the caller sees (the tenant's and their own), searched or listed.
#[utoipa::path(get, path = "/api/v1/quick-replies", tag = "engagement", params(QuickReplyQuery),
    responses((status = 200, body = Page<QuickReply>), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_quick_replies(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<QuickReplyQuery>,
) -> ApiResult<Json<Page<QuickReply>>> {
    auth.require(Permission::ContentRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let filter = QuickReplyFilter {
        library: q.library,
        group_id: q.group_id.map(QuickReplyGroupId),
    };
    let me = auth.principal.staff_id();
    let scope = auth.scope(&app.store).await?;
    match q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(words) => {
            let items = scope
                .search_quick_replies(&filter, words, me, page.limit as usize)
                .await?;
            Ok(Json(Page {
                items,
                next_cursor: None,
            }))
        }
        None => Ok(Json(scope.list_quick_replies(&filter, me, page).await?)),
    }
}

/// Adds a reply to the caller's personal library (the default) or the tenant's
/// (`content.write`). Adding to the tenant's is audited.
#[utoipa::path(post, path = "/api/v1/quick-replies", tag = "engagement",
    request_body = NewQuickReply,
    responses((status = 201, body = QuickReply), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_quick_reply(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewQuickReply>,
) -> ApiResult<(StatusCode, Json<QuickReply>)> {
    let spec = body.check()?;
    require_write(&auth, spec.library)?;
    let scope = auth.scope(&app.store).await?;
    let reply = scope
        .create_quick_reply(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(reply)))
}

#[utoipa::path(get, path = "/api/v1/quick-replies/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = QuickReply), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_quick_reply(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<QuickReply>> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .get_quick_reply(QuickReplyId(id), auth.principal.staff_id())
            .await?,
    ))
}

/// Changes a reply; fields left out stay, and its library stays. 409 when it was
/// changed since it was read.
#[utoipa::path(patch, path = "/api/v1/quick-replies/{id}", tag = "engagement",
    params(("id" = i64, Path)), request_body = QuickReplyChange,
    responses((status = 200, body = QuickReply), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_quick_reply(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<QuickReplyChange>,
) -> ApiResult<Json<QuickReply>> {
    auth.require(Permission::ContentRead)?;
    let me = auth.principal.staff_id();
    let scope = auth.scope(&app.store).await?;
    let before = scope.get_quick_reply(QuickReplyId(id), me).await?;
    require_write(&auth, before.library)?;
    let spec = body.apply(&before)?;
    Ok(Json(
        scope
            .update_quick_reply(&before, &spec, me, &auth.actor())
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/quick-replies/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_quick_reply(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    let reply = scope
        .get_quick_reply(QuickReplyId(id), auth.principal.staff_id())
        .await?;
    require_write(&auth, reply.library)?;
    scope.delete_quick_reply(&reply, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts a use of a reply by the caller (the console calls it when the reply is
/// copied to send); answers the reply with its count.
#[utoipa::path(post, path = "/api/v1/quick-replies/{id}/uses", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = QuickReply), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn use_quick_reply(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<QuickReply>> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .record_quick_reply_use(QuickReplyId(id), auth.principal.staff_id())
            .await?,
    ))
}

/// The groups the caller sees: the tenant's first, then their own, by position.
#[utoipa::path(get, path = "/api/v1/quick-reply-groups", tag = "engagement",
    responses((status = 200, body = Vec<QuickReplyGroup>), (status = 403, body = ErrorBody)))]
pub async fn list_quick_reply_groups(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<QuickReplyGroup>>> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .list_quick_reply_groups(auth.principal.staff_id())
            .await?,
    ))
}

/// Adds a group to the caller's personal library (the default) or the tenant's
/// (`content.write`). Names are unique in a library (409).
#[utoipa::path(post, path = "/api/v1/quick-reply-groups", tag = "engagement",
    request_body = NewQuickReplyGroup,
    responses((status = 201, body = QuickReplyGroup), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_quick_reply_group(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewQuickReplyGroup>,
) -> ApiResult<(StatusCode, Json<QuickReplyGroup>)> {
    let spec = body.check()?;
    require_write(&auth, spec.library)?;
    let scope = auth.scope(&app.store).await?;
    let group = scope
        .create_quick_reply_group(&spec, auth.principal.staff_id())
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Renames or moves a group.
#[utoipa::path(patch, path = "/api/v1/quick-reply-groups/{id}", tag = "engagement",
    params(("id" = i64, Path)), request_body = QuickReplyGroupChange,
    responses((status = 200, body = QuickReplyGroup), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_quick_reply_group(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<QuickReplyGroupChange>,
) -> ApiResult<Json<QuickReplyGroup>> {
    auth.require(Permission::ContentRead)?;
    let me = auth.principal.staff_id();
    let scope = auth.scope(&app.store).await?;
    let before = scope
        .get_quick_reply_group(QuickReplyGroupId(id), me)
        .await?;
    require_write(&auth, before.library)?;
    let spec = body.apply(&before)?;
    Ok(Json(
        scope.update_quick_reply_group(&before, &spec, me).await?,
    ))
}

/// Deletes an empty group (409 while it holds replies).
#[utoipa::path(delete, path = "/api/v1/quick-reply-groups/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete_quick_reply_group(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    let group = scope
        .get_quick_reply_group(QuickReplyGroupId(id), auth.principal.staff_id())
        .await?;
    require_write(&auth, group.library)?;
    scope.delete_quick_reply_group(&group).await?;
    Ok(StatusCode::NO_CONTENT)
}
