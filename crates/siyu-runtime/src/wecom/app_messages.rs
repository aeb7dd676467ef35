//! The `wecom.app_message` job: texts from the brand's app to members (reminders,
//! tasks) with `message/send`, one member per call, within WeCom's per-member limits.
//!
//! WeCom takes at most 30 messages a minute and 1,000 an hour for one member and drops
//! the rest **silently** (the call still succeeds), so siyu counts them itself, per
//! member in the store (every node together), against half those limits per fixed
//! window ([`PER_MEMBER`]: two windows side by side stay within WeCom's, however it
//! counts). A member whose window is spent postpones the job to the window's end, the
//! try not counted. Each recipient's send is recorded with the job, so a try after a
//! crash skips those done; one cut off between the call and its record is caught by
//! WeCom's duplicate check (same text, same member, 30 minutes).

use std::collections::HashSet;

use siyu_connect::wecom::WecomError;
use siyu_domain::connector::{AppMessagePayload, SendStatus};
use siyu_store::{CallBudget, CallLimits, NewConnectorSend};

use super::sync::{client_for, job_error};
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// Messages to one member per fixed window: half of WeCom's 30 a minute and 1,000 an
/// hour.
pub const PER_MEMBER: CallLimits = CallLimits {
    per_minute: 15,
    per_hour: 500,
};
/// The kind of an app message send in `connector_sends`.
pub const APP_MESSAGE_SEND: &str = "app_message";

/// The app message job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_APP_MESSAGE, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx).await }
    })
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: AppMessagePayload = ctx.payload()?;
    let tenant = ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("an app message belongs to a tenant; this one to none")
    })?;
    let id = payload.connector_id;
    let scope = services.store.tenant(tenant);
    let (client, wecom) = client_for(services, tenant, id).await?;
    let agent_id = wecom.settings.agent_id.ok_or_else(|| {
        JobError::permanent(format!(
            "connector {} has no agent_id: app messages need one",
            id.0
        ))
    })?;
    let done: HashSet<String> = scope
        .connector_recipients_of_job(id, ctx.id())
        .await?
        .into_iter()
        .collect();
    let total = payload.recipients.len() as i64;
    let mut sent = done.len() as i64;
    for recipient in payload
        .recipients
        .iter()
        .filter(|r| !done.contains(&r.userid))
    {
        let quota = format!("message/send@{}", recipient.userid);
        match scope
            .reserve_connector_calls(id, &quota, 1, PER_MEMBER)
            .await?
        {
            CallBudget::Granted { .. } => {}
            CallBudget::WaitUntil { at, .. } => {
                return Err(JobError::Later {
                    at,
                    reason: format!(
                        "{} has had as many app messages as WeCom delivers for now: the rest wait",
                        recipient.userid
                    ),
                });
            }
        }
        let mut send = NewConnectorSend {
            connector: id,
            kind: APP_MESSAGE_SEND.into(),
            customer: None,
            staff: recipient.staff_id,
            recipient: recipient.userid.clone(),
            status: SendStatus::Sent,
            detail: None,
            job: Some(ctx.id()),
        };
        match client
            .send_app_text(agent_id, &recipient.userid, &payload.text)
            .await
        {
            Ok(answer) if answer.refused(&recipient.userid) => {
                send.status = SendStatus::Failed;
                send.detail = Some("WeCom refused the receiver (invaliduser)".into());
            }
            Ok(_) => {}
            Err(WecomError::Call {
                errcode, message, ..
            }) => {
                send.status = SendStatus::Failed;
                send.detail = Some(format!("{errcode} {message}"));
            }
            Err(e) => return Err(job_error(e)),
        }
        scope.record_connector_send(&send).await?;
        sent += 1;
        ctx.progress(sent, Some(total), Some("sending app messages"))
            .await?;
    }
    Ok(())
}
