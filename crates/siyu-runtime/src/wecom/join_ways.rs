//! The `wecom.join_way` job: a group code's WeCom join way brought in line with the code
//! and its chats' fill (`siyu_domain::acquisition::group_codes`). A code made gets a QR
//! join way carrying its `state` over the first chats of its pool with room; when a
//! chat is stored after a callback (a join, a leave, a dismissal, a room WeCom opened
//! for the code), the job looks again: rooms WeCom opened are adopted into the pool,
//! and the way is moved onto the chats with room when they differ from what it holds;
//! a code deleted gets its way deleted. One job waits per code. What WeCom said stays
//! on the code (`join_way`): its config_id, chats and QR image URL, or its refusal.

use serde::Deserialize;
use siyu_connect::wecom::WecomError;
use siyu_connect::wecom::api::JoinWaySpec;
use siyu_domain::acquisition::group_codes::way_chats;
use siyu_domain::ids::GroupCodeId;
use siyu_store::{JoinWayUpdate, StoreError};

use super::sync::{client_for, job_error};
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// WeCom's limit on a join way's remark.
const REMARK_MAX_CHARS: usize = 30;

#[derive(Deserialize)]
struct Payload {
    code_id: GroupCodeId,
}

/// The join way job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_JOIN_WAY, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx).await }
    })
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: Payload = ctx.payload()?;
    let tenant = ctx
        .job
        .tenant
        .ok_or_else(|| JobError::permanent("a join way belongs to a tenant; this one to none"))?;
    let scope = services.store.tenant(tenant);
    let (code, deleted_at) = match scope.group_code_for_wecom(payload.code_id).await {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => {
            return Err(JobError::permanent(format!(
                "group code {} is gone",
                payload.code_id.0
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let (client, _) = client_for(services, tenant, code.connector_id).await?;
    let config_id = code.join_way.as_ref().and_then(|w| w.config_id.clone());
    if deleted_at.is_some() {
        if let Some(config_id) = config_id {
            match client.del_join_way(&config_id).await {
                // 41044: WeCom has no such way (deleted before)
                Ok(()) | Err(WecomError::Call { errcode: 41044, .. }) => {}
                Err(e) => return Err(job_error(e)),
            }
        }
        return Ok(());
    }
    let pool = scope.adopt_group_code_rooms(&code).await?;
    let fills = scope.chat_fills(code.connector_id, &pool).await?;
    let chats = way_chats(&fills);
    if chats.is_empty() {
        let error = "every chat of the code's pool is dismissed or unknown".to_owned();
        scope
            .record_join_way(code.id, &JoinWayUpdate::Failed(error.clone()))
            .await?;
        return Err(JobError::permanent(error));
    }
    if let Some(way) = &code.join_way
        && way.config_id.is_some()
        && way.error.is_none()
        && way.chat_ids == chats
        && way.synced_at.is_some_and(|at| at >= code.updated_at)
    {
        return Ok(()); // WeCom has it as it should be
    }
    let spec = JoinWaySpec {
        remark: code.name.chars().take(REMARK_MAX_CHARS).collect(),
        auto_create_room: code.auto_create_room,
        room_base_name: code.room_base_name.clone(),
        room_base_id: code.room_base_id,
        chat_ids: chats.clone(),
        state: code.state.clone(),
    };
    let made = match &config_id {
        Some(config_id) => match client.update_join_way(config_id, &spec).await {
            Ok(()) => Ok(config_id.clone()),
            // WeCom lost it (deleted in another tool): made anew
            Err(WecomError::Call { errcode: 41044, .. }) => client.add_join_way(&spec).await,
            Err(e) => Err(e),
        },
        None => client.add_join_way(&spec).await,
    };
    let config_id = match made {
        Ok(config_id) => config_id,
        Err(e) => {
            scope
                .record_join_way(code.id, &JoinWayUpdate::Failed(e.to_string()))
                .await?;
            return Err(job_error(e));
        }
    };
    // the QR image's URL: WeCom gives it only when asked for the way
    let qr_code_url = client
        .join_way(&config_id)
        .await
        .map_err(job_error)?
        .qr_code
        .filter(|u| !u.is_empty());
    scope
        .record_join_way(
            code.id,
            &JoinWayUpdate::Synced {
                config_id,
                chat_ids: chats,
                qr_code_url,
            },
        )
        .await?;
    Ok(())
}
