//! The `wecom.contact_way` job: a channel code's WeCom contact way brought in line with
//! the code. A code made gets a single-member QR way carrying its `state` (siyu routes
//! by changing that member, since WeCom picks at random among the members of a
//! multi-member way); after each add through it, and when it is changed, the way gets
//! the member its routing chooses next (`siyu_domain::acquisition::routing`); a code deleted gets its way
//! deleted (WeCom's config_id is the only handle: the API's ways are not shown in the
//! WeCom admin). One job waits per code; a change made while it runs is seen when it
//! looks again before finishing. What WeCom said stays on the code (`contact_way`): its
//! config_id and QR image, or its refusal, shown until a try goes through.

use serde::Deserialize;
use siyu_connect::wecom::api::ContactWaySpec;
use siyu_connect::wecom::{WecomClient, WecomError};
use siyu_domain::acquisition::ChannelCode;
use siyu_domain::acquisition::routing::{LocalTime, Route, RouteInput, route};
use siyu_domain::ids::ChannelCodeId;
use siyu_store::{ContactWayUpdate, StoreError, TenantScope, WecomQrImage};

use super::StoreHost;
use super::sync::{client_for, job_error};
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// Looks at the code this many times at most in a try (each time it changed meanwhile).
const LOOKS: usize = 3;
/// WeCom's limit on a contact way's remark.
const REMARK_MAX_CHARS: usize = 30;

#[derive(Deserialize)]
struct Payload {
    code_id: ChannelCodeId,
}

/// The contact way job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_CONTACT_WAY, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx).await }
    })
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: Payload = ctx.payload()?;
    let tenant = ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("a contact way belongs to a tenant; this one to none")
    })?;
    let scope = services.store.tenant(tenant);
    for _ in 0..LOOKS {
        let (code, deleted_at) = match scope.channel_code_for_wecom(payload.code_id).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => {
                return Err(JobError::permanent(format!(
                    "channel code {} is gone",
                    payload.code_id.0
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(connector) = code.connector_id else {
            return Ok(()); // its connector was deleted, and its ways with it
        };
        let (client, _) = client_for(services, tenant, connector).await?;
        let config_id = code.contact_way.as_ref().and_then(|w| w.config_id.clone());
        if deleted_at.is_some() {
            if let Some(config_id) = config_id {
                match client.del_contact_way(&config_id).await {
                    // 41044: WeCom has no such way (deleted before)
                    Ok(()) | Err(WecomError::Call { errcode: 41044, .. }) => {}
                    Err(e) => return Err(job_error(e)),
                }
            }
            return Ok(());
        }
        let Some(chosen) = next_member(&scope, &code).await? else {
            return Err(JobError::permanent(format!(
                "channel code {} has no member to route to",
                code.id.0
            )));
        };
        let staff = chosen.staff_id;
        if let Some(way) = &code.contact_way
            && way.config_id.is_some()
            && way.error.is_none()
            && way.current_staff_id == Some(staff)
            && way.current_route == Some(chosen.reason)
            && way.synced_at.is_some_and(|at| at >= code.updated_at)
        {
            // WeCom has it as it should be; its QR image kept
            return keep_qr_image(&scope, &client, code.id, way.qr_code_url.as_deref()).await;
        }
        let Some(userid) = scope.wecom_userid_of(connector, staff).await? else {
            let error = format!("staff member {} is not a member of the WeCom corp", staff.0);
            scope
                .record_contact_way(code.id, &ContactWayUpdate::Failed(error.clone()))
                .await?;
            return Err(JobError::permanent(error));
        };
        let way = ContactWaySpec {
            remark: code.name.chars().take(REMARK_MAX_CHARS).collect(),
            skip_verify: code.skip_verify,
            state: code.state.clone(),
            userid,
        };
        let made = match &config_id {
            Some(config_id) => match client.update_contact_way(config_id, &way).await {
                Ok(()) => Ok((config_id.clone(), None)),
                // WeCom lost it (deleted in another tool): made anew
                Err(WecomError::Call { errcode: 41044, .. }) => client
                    .add_contact_way(&way)
                    .await
                    .map(|m| (m.config_id, m.qr_code)),
                Err(e) => Err(e),
            },
            None => client
                .add_contact_way(&way)
                .await
                .map(|m| (m.config_id, m.qr_code)),
        };
        let qr_code_url = match made {
            Ok((config_id, qr_code_url)) => {
                let kept_url = qr_code_url.clone().or_else(|| {
                    code.contact_way
                        .as_ref()
                        .and_then(|w| w.qr_code_url.clone())
                });
                scope
                    .record_contact_way(
                        code.id,
                        &ContactWayUpdate::Synced {
                            config_id,
                            qr_code_url,
                            current_staff_id: Some(staff),
                            route: Some(chosen.reason),
                        },
                    )
                    .await?;
                kept_url
            }
            Err(e) => {
                scope
                    .record_contact_way(code.id, &ContactWayUpdate::Failed(e.to_string()))
                    .await?;
                return Err(job_error(e));
            }
        };
        if !changed_since(&scope, &code).await? {
            return keep_qr_image(&scope, &client, code.id, qr_code_url.as_deref()).await;
        }
    }
    Err(JobError::retry(format!(
        "channel code {} changed during each of {LOOKS} looks",
        payload.code_id.0
    )))
}

/// Keeps WeCom's QR image of a code's way, and the text it encodes (read from the
/// image, so that siyu can draw it again as SVG or with the brand's logo): fetched when
/// WeCom gives a URL not fetched before. A failed fetch is retried with the job.
async fn keep_qr_image(
    scope: &TenantScope<'_>,
    client: &WecomClient<StoreHost>,
    code: ChannelCodeId,
    url: Option<&str>,
) -> Result<(), JobError> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    if scope.channel_code_image_source(code).await?.as_deref() == Some(url) {
        return Ok(());
    }
    let fetched = client.fetch_image(url).await.map_err(job_error)?;
    let encoded = siyu_qr::read(&fetched.bytes);
    if encoded.is_none() {
        tracing::warn!(
            code = code.0,
            "WeCom's QR image of a contact way did not read as a QR code"
        );
    }
    scope
        .keep_channel_code_image(
            code,
            &WecomQrImage {
                source_url: url,
                content_type: &fetched.content_type,
                image: &fetched.bytes,
                encoded: encoded.as_deref(),
            },
        )
        .await?;
    Ok(())
}

/// The member the way should hold now, by the code's routing: its members' adds today
/// (in the tenant's time zone) against their capacities, its working hours, and who the
/// latest add went to.
async fn next_member(
    scope: &TenantScope<'_>,
    code: &ChannelCode,
) -> Result<Option<Route>, JobError> {
    let zone = scope.time_zone().await?;
    let now = siyu_store::now_ms();
    let today = zone.start_of_day(zone.day_of(now));
    let adds_today = scope.channel_code_adds_since(code.id, today).await?;
    let last = scope.channel_code_last_add(code.id).await?;
    Ok(route(&RouteInput {
        members: &code.members,
        routing: &code.routing,
        last,
        adds_today: &adds_today,
        now: LocalTime::at(zone, now),
    }))
}

/// Whether the code was changed (or deleted) after `seen` was read.
async fn changed_since(scope: &TenantScope<'_>, seen: &ChannelCode) -> Result<bool, JobError> {
    let (now, deleted_at) = scope.channel_code_for_wecom(seen.id).await?;
    Ok(deleted_at.is_some() || now.updated_at != seen.updated_at)
}
