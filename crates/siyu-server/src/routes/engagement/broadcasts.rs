//! Mass sends (`/api/v1/broadcasts`): a preview of who would receive one and why the
//! rest would not, a file of customers read into a list for one, making one (now or at a time), changing it before its time,
//! cancelling it, and following it. Planning and sending are jobs
//! (`siyu_runtime::broadcasts`); staff see and send within their own reach.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use siyu_audience::Condition;
use siyu_domain::access::Permission;
use siyu_domain::engagement::audience_file::{self, AudienceFromFile};
use siyu_domain::engagement::broadcast::{
    Broadcast, BroadcastAudience, BroadcastChange, BroadcastChannel, BroadcastSpec, Exclusion,
    FrequencyCap, NewBroadcast, Plan, check_attachments,
};
use siyu_domain::engagement::content::{BroadcastAttachment, ContentKind, MAX_ATTACHMENTS};
use siyu_domain::engagement::template::MessageTemplate;
use siyu_domain::ids::{BroadcastId, ConnectorId, ContentItemId, MessageTemplateId};
use siyu_domain::page::Page;
use siyu_runtime::broadcasts::{PlanTarget, plan_now};
use siyu_store::TenantScope;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageParams, PublicOrigin};

/// Who a send would reach.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastPreviewRequest {
    pub audience: BroadcastAudience,
    #[serde(default)]
    pub channel: Option<BroadcastChannel>,
    /// A WeCom send's connector; the tenant's only one when absent.
    #[serde(default)]
    pub connector_id: Option<ConnectorId>,
    /// Default: the days of the month, as WeCom.
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
}

/// How many a send would reach now, and how many of the audience it would not, by
/// reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastPreview {
    pub recipients: i64,
    pub excluded: HashMap<Exclusion, i64>,
}

impl From<&Plan> for BroadcastPreview {
    fn from(plan: &Plan) -> Self {
        Self {
            recipients: plan.recipients.len() as i64,
            excluded: plan.excluded.clone(),
        }
    }
}

/// A condition audience must read as the segment language's JSON form.
fn check_audience(audience: &BroadcastAudience) -> ApiResult<()> {
    if let BroadcastAudience::Condition(value) = audience {
        serde_json::from_value::<Condition>(value.clone()).map_err(|e| {
            ApiError::field("audience", format!("the condition does not read: {e}"))
        })?;
    }
    Ok(())
}

async fn preview_of(
    app: &AppState,
    scope: &TenantScope<'_>,
    target: &PlanTarget<'_>,
) -> ApiResult<Plan> {
    check_audience(target.audience)?;
    Ok(
        plan_now(&app.audiences, scope, target, siyu_store::now_ms())
            .await?
            .plan,
    )
}

/// The live template a send names, if any (`None` for an unknown one: the send's
/// check says so, 422 on `template_id`); sending one needs `content.read`.
async fn template_named(
    auth: &Auth,
    scope: &TenantScope<'_>,
    id: Option<MessageTemplateId>,
) -> ApiResult<Option<MessageTemplate>> {
    let Some(id) = id else {
        return Ok(None);
    };
    // a template's body is content: whoever sends one may read it
    auth.require(Permission::ContentRead)?;
    match scope.get_message_template(id).await {
        Ok(template) => Ok(Some(template)),
        Err(siyu_store::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The library items a send names, as it carries them (422 for an unknown one, or
/// what a send may not carry).
async fn attachments_named(
    auth: &Auth,
    scope: &TenantScope<'_>,
    channel: BroadcastChannel,
    ids: &[ContentItemId],
) -> ApiResult<Vec<BroadcastAttachment>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    auth.require(Permission::ContentRead)?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids.iter().take(MAX_ATTACHMENTS + 1) {
        match scope.get_content_item(*id).await {
            Ok(item) => items.push(BroadcastAttachment::of(&item)),
            Err(siyu_store::StoreError::NotFound(_)) => {
                return Err(ApiError::field(
                    "content_ids",
                    format!("no content item {}", id.0),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // more than a message carries were named: the first 10 read are refused below
    check_attachments(channel, &items)?;
    Ok(items)
}

/// Gives the link cards whose URL lies under a registered destination a short link of
/// their own on siyu's public address (`public_url`, else the address this request
/// came to), so that their clicks are counted; the others go as they are. Without a
/// known address (no `public_url` and no `Host`) every card goes as it is.
async fn track_cards(
    scope: &TenantScope<'_>,
    origin: Option<PublicOrigin>,
    items: &mut [BroadcastAttachment],
) -> ApiResult<()> {
    let Some(PublicOrigin(origin)) = origin else {
        return Ok(());
    };
    if !items.iter().any(|i| i.kind == ContentKind::Link) {
        return Ok(());
    }
    let registered = scope.link_prefixes().await?;
    for item in items {
        item.track(&origin, &registered);
    }
    Ok(())
}

fn target_of(spec: &BroadcastSpec) -> PlanTarget<'_> {
    PlanTarget {
        audience: &spec.audience,
        channel: spec.channel,
        connector: spec.connector,
        cap: spec.frequency_cap,
    }
}

/// Refuses a send that would reach no one now, saying why.
fn check_reaches_someone(plan: &Plan) -> ApiResult<()> {
    if !plan.recipients.is_empty() {
        return Ok(());
    }
    let mut reasons: Vec<String> = plan
        .excluded
        .iter()
        .map(|(why, n)| format!("{n} {}", why.as_str()))
        .collect();
    reasons.sort();
    Err(ApiError::field(
        "audience",
        if reasons.is_empty() {
            "the audience is empty: no customer within your reach matches".to_owned()
        } else {
            format!(
                "no one in the audience may receive it now ({})",
                reasons.join(", ")
            )
        },
    ))
}

/// Who a send would reach now and why the rest would not (opted out, over the
/// frequency cap, named twice, not found), without making it.
#[utoipa::path(post, path = "/api/v1/broadcasts/preview", tag = "engagement",
    request_body = BroadcastPreviewRequest,
    responses((status = 200, body = BroadcastPreview), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn preview_broadcast(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<BroadcastPreviewRequest>,
) -> ApiResult<Json<BroadcastPreview>> {
    auth.require(Permission::BroadcastsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let channel = body.channel.unwrap_or(BroadcastChannel::Sandbox);
    let target = PlanTarget {
        audience: &body.audience,
        channel,
        connector: scope.connector_of_send(channel, body.connector_id).await?,
        cap: body.frequency_cap.unwrap_or(FrequencyCap::DaysInMonth),
    };
    let plan = preview_of(&app, &scope, &target).await?;
    Ok(Json(BroadcastPreview::from(&plan)))
}

/// Reads a CSV of customers for a send's audience: the body is the file (UTF-8, at most
/// 10 MiB and 100,000 rows), whose first row names its columns: `customer_id`, or any
/// identity kind (`phone`/`手机号`, `email`, `user_id`, `wecom_external_userid`,
/// `identity:member_no`, …); other columns are ignored. Each row leads to the first
/// customer one of its names finds within the caller's reach. Answers the customers,
/// once each in the file's order, for a send's audience (`{"customers": […]}`), and
/// what became of every row. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/broadcasts/audience-file", tag = "engagement",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = AudienceFromFile), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "not a CSV that names customers (`validation_failed`, \
            field `file`)", body = ErrorBody)))]
pub async fn read_audience_file(
    State(app): State<AppState>,
    auth: Auth,
    body: Body,
) -> ApiResult<Json<AudienceFromFile>> {
    auth.require(Permission::BroadcastsWrite)?;
    let bytes = axum::body::to_bytes(body, audience_file::FILE_MAX_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(audience_file::FILE_MAX_BYTES))?;
    let file = audience_file::read(&bytes)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.audience_from_file(&file).await?))
}

#[utoipa::path(get, path = "/api/v1/broadcasts", tag = "engagement", params(PageParams),
    responses((status = 200, body = Page<Broadcast>), (status = 403, body = ErrorBody)))]
pub async fn list_broadcasts(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Broadcast>>> {
    auth.require(Permission::BroadcastsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_broadcasts(q.page()?).await?))
}

/// Makes a send, now or at `send_at`, of a `text` or a message template
/// (`template_id`: rendered for each customer on the sandbox, once per member task on
/// WeCom; kept as it is now). It is planned at its time (consent, the frequency cap,
/// one message per person) and sent in batches. Refused (422) when it would reach no
/// one now, or has no text and no template (or both). Audited.
#[utoipa::path(post, path = "/api/v1/broadcasts", tag = "engagement",
    request_body = NewBroadcast,
    responses((status = 201, body = Broadcast), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_broadcast(
    State(app): State<AppState>,
    auth: Auth,
    origin: Option<PublicOrigin>,
    ApiJson(body): ApiJson<NewBroadcast>,
) -> ApiResult<(StatusCode, Json<Broadcast>)> {
    auth.require(Permission::BroadcastsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let template = template_named(&auth, &scope, body.template_id).await?;
    let mut attachments = attachments_named(&auth, &scope, body.channel, &body.content_ids).await?;
    track_cards(&scope, origin, &mut attachments).await?;
    let mut spec = body.check(siyu_store::now_ms(), template.as_ref())?;
    spec.attachments = attachments;
    spec.connector = scope
        .connector_of_send(spec.channel, spec.connector)
        .await?;
    let plan = preview_of(&app, &scope, &target_of(&spec)).await?;
    check_reaches_someone(&plan)?;
    let send = scope
        .create_broadcast(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(send)))
}

#[utoipa::path(get, path = "/api/v1/broadcasts/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = Broadcast), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_broadcast(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Broadcast>> {
    auth.require(Permission::BroadcastsRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_broadcast(BroadcastId(id)).await?))
}

/// Changes a send that waits for its time; fields left out stay. 409 once its time
/// has come (or it was cancelled). Audited.
#[utoipa::path(patch, path = "/api/v1/broadcasts/{id}", tag = "engagement",
    params(("id" = i64, Path)), request_body = BroadcastChange,
    responses((status = 200, body = Broadcast), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_broadcast(
    State(app): State<AppState>,
    auth: Auth,
    origin: Option<PublicOrigin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BroadcastChange>,
) -> ApiResult<Json<Broadcast>> {
    auth.require(Permission::BroadcastsWrite)?;
    let id = BroadcastId(id);
    let scope = auth.scope(&app.store).await?;
    let changing_audience = body.audience.is_some();
    let before = scope.get_broadcast(id).await?;
    let kept = scope.broadcast_template(id).await?;
    let template = template_named(&auth, &scope, body.template_id).await?;
    let attachments = match &body.content_ids {
        Some(ids) => {
            let mut items = attachments_named(&auth, &scope, before.channel, ids).await?;
            track_cards(&scope, origin, &mut items).await?;
            items
        }
        None => before.attachments.clone(),
    };
    let mut spec = body.apply(&before, siyu_store::now_ms(), kept, template.as_ref())?;
    spec.attachments = attachments;
    if changing_audience {
        let plan = preview_of(&app, &scope, &target_of(&spec)).await?;
        check_reaches_someone(&plan)?;
    }
    let changed = scope
        .update_broadcast(&before, &spec, &auth.actor())
        .await?;
    // the send's short links were renamed (UTM) or retired: this node forgets what it
    // kept of them at once (others within the kept links' time)
    for link in before
        .attachments
        .iter()
        .filter_map(|a| a.tracked_link.as_ref())
    {
        app.kept_links.forget(&link.slug);
    }
    Ok(Json(changed))
}

/// Cancels a send: batches not yet handed to the channel are never sent; on WeCom,
/// member tasks not yet sent are stopped (`cancel_groupmsg_send`). 409 for a send
/// already sent (on WeCom: every member sent) or cancelled. Audited.
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/cancel", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = Broadcast), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_broadcast(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Broadcast>> {
    auth.require(Permission::BroadcastsWrite)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .cancel_broadcast(BroadcastId(id), &auth.actor())
            .await?,
    ))
}
