//! The `wecom.mark_tags` job: marks on WeCom the mirrored corp tags put on or taken off
//! customers in siyu (see `siyu-store`'s `wecom_marks` for the outbox and why a waiting
//! mark wins over what WeCom says). Each mark is made on every live follow relation of
//! its customer with `mark_tag`, then recorded; a try cut off redoes only unrecorded
//! marks, and marking a tag twice changes nothing on WeCom.

use serde::Deserialize;
use siyu_connect::wecom::WecomError;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::ConnectorId;

use super::sync::{client_for, job_error};
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// Marks read at once.
const MARKS_AT_ONCE: i64 = 200;

#[derive(Deserialize)]
struct Payload {
    connector_id: ConnectorId,
}

/// The mark job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_MARK_TAGS, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx).await }
    })
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: Payload = ctx.payload()?;
    let tenant = ctx
        .job
        .tenant
        .ok_or_else(|| JobError::permanent("a tag mark belongs to a tenant; this one to none"))?;
    let id = payload.connector_id;
    let scope = services.store.tenant(tenant);
    let (client, _) = client_for(services, tenant, id).await?;
    let mut done = 0;
    loop {
        let marks = scope.wecom_marks(id, MARKS_AT_ONCE).await?;
        if marks.is_empty() {
            return Ok(());
        }
        for mark in &marks {
            let relations = scope
                .wecom_relations_of(id, CustomerId(mark.customer_id))
                .await?;
            let (add, remove) = if mark.action == "add" {
                (vec![mark.wecom_tag_id.clone()], Vec::new())
            } else {
                (Vec::new(), vec![mark.wecom_tag_id.clone()])
            };
            let mut gone = false;
            for relation in &relations {
                match client
                    .mark_tags(&relation.userid, &relation.external_userid, &add, &remove)
                    .await
                {
                    Ok(()) => {}
                    // the relation ended meanwhile: nothing to mark on it
                    Err(WecomError::Call { errcode: 84061, .. }) => {}
                    // the tag is gone in WeCom: the next mirror unpairs it
                    Err(WecomError::Call { errcode: 40068, .. }) => gone = true,
                    Err(e) => return Err(job_error(e)),
                }
            }
            if gone {
                scope.drop_wecom_mark(id, mark).await?;
            } else {
                scope.applied_wecom_mark(id, mark, &relations).await?;
            }
            done += 1;
        }
        ctx.progress(done, None, Some("marking corp tags on WeCom"))
            .await?;
    }
}
