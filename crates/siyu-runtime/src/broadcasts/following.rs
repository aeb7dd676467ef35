//! A WeCom send after its member tasks are made: following them, reminding members who
//! have not sent, and carrying out a cancel.
//!
//! - `broadcast.follow` (one waiting per send, enqueued with each task's answer and with
//!   a cancel) reads each waiting task (`get_groupmsg_task`): once its member sent it,
//!   every customer's result (`get_groupmsg_send_result`: sent, not a friend any more,
//!   over the receive cap; one the member left out is not sent) is recorded and final.
//!   A member who left the company has their part reported as `member_left`, not
//!   dropped; a task not sent after [`FOLLOW_FOR_MS`] is `expired`. A cancelled send's
//!   waiting tasks are stopped with `cancel_groupmsg_send` (what a member sent before
//!   stays sent). While anything waits it comes back after the node's poll interval
//!   ([`crate::wecom::WecomCalls::broadcast_poll`]), the try not counted.
//! - `broadcast.remind` reminds each member with a waiting task through WeCom
//!   (`remind_groupmsg_send`, at most [`REMINDERS_PER_DAY`] a task in 24 h: siyu counts
//!   them and never asks for a fourth) and, when the connector has an app, with an app
//!   message naming the send.

use serde::Deserialize;
use siyu_connect::wecom::WecomError;
use siyu_connect::wecom::mass::{REMINDERS_PER_DAY, STILL_DISPATCHING};
use siyu_domain::connector::{AppMessagePayload, AppMessageRecipient};
use siyu_domain::engagement::broadcast::BroadcastState;
use siyu_domain::engagement::member_tasks::{RecipientStatus, TaskState};
use siyu_domain::ids::BroadcastId;
use siyu_domain::jobs::kind;
use siyu_store::{NewJob, RecipientResult, StoreError, TaskToFollow};

use crate::tagging::tenant_of;
use crate::wecom::sync::{client_for, job_error};
use crate::{JobContext, JobError, JobHandler, Services, handler_fn};

/// How long siyu follows a task its member has not sent: then it is `expired`.
pub const FOLLOW_FOR_MS: i64 = 7 * 86_400_000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Deserialize)]
struct SendPayload {
    broadcast_id: i64,
}

pub fn following(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::BROADCAST_FOLLOW, move |ctx| {
        let services = services.clone();
        async move { follow(&services, ctx).await }
    })
}

pub fn reminding(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::BROADCAST_REMIND, move |ctx| {
        let services = services.clone();
        async move { remind(&services, ctx).await }
    })
}

/// Members of these tasks may be reminded now (fewer than [`REMINDERS_PER_DAY`] in the
/// last 24 h).
pub fn remindable(tasks: &[TaskToFollow], now: i64) -> Vec<&TaskToFollow> {
    tasks
        .iter()
        .filter(|t| !t.member_left)
        .filter(|t| t.reminders.iter().filter(|at| **at + DAY_MS > now).count() < REMINDERS_PER_DAY)
        .collect()
}

async fn follow(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: SendPayload = ctx.payload()?;
    let tenant = tenant_of(&ctx)?;
    let scope = services.store.tenant(tenant);
    let id = BroadcastId(payload.broadcast_id);
    let state = match scope.follow_state(id).await {
        Ok(state) => state,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(connector) = state.connector else {
        return Ok(());
    };
    let poll = services.wecom.broadcast_poll().as_millis() as i64;
    let mut waiting = 0;
    if !state.tasks.is_empty() {
        let (client, _) = client_for(services, tenant, connector).await?;
        let cancelled = state.state == BroadcastState::Cancelled;
        let now = siyu_store::now_ms();
        for task in &state.tasks {
            let tasks = match client.mass_tasks(&task.msgid).await {
                Ok(tasks) => tasks,
                Err(WecomError::Call { errcode, .. }) if errcode == STILL_DISPATCHING => {
                    waiting += 1;
                    continue;
                }
                Err(e) => return Err(job_error(e)),
            };
            let member = tasks.iter().find(|t| t.userid == task.userid);
            let sent_at = member
                .filter(|t| t.status == 2)
                .map(|t| t.send_time.saturating_mul(1000));
            if let Some(sent_at) = sent_at {
                let results = client
                    .mass_results(&task.msgid, &task.userid)
                    .await
                    .map_err(job_error)?;
                let results: Vec<RecipientResult> = results
                    .into_iter()
                    .filter_map(|r| {
                        let status = match RecipientStatus::of_wecom(r.status)? {
                            // the member sent the task without them
                            RecipientStatus::Waiting => RecipientStatus::NotSent,
                            other => other,
                        };
                        Some(RecipientResult {
                            external_userid: r.external_userid,
                            status,
                            at: if r.send_time > 0 {
                                r.send_time.saturating_mul(1000)
                            } else {
                                now
                            },
                        })
                    })
                    .collect();
                scope
                    .record_task_results(
                        id,
                        task.batch,
                        TaskState::Confirmed,
                        Some(sent_at),
                        &results,
                    )
                    .await?;
                continue;
            }
            let over = if cancelled {
                match client.cancel_mass_message(&task.msgid).await {
                    Ok(()) => {}
                    // WeCom no longer knows it: nothing to stop
                    Err(WecomError::Call { errcode: 41047, .. }) => {}
                    Err(e) => return Err(job_error(e)),
                }
                Some(TaskState::Cancelled)
            } else if task.member_left {
                Some(TaskState::MemberLeft)
            } else if now - task.answered_at > FOLLOW_FOR_MS {
                Some(TaskState::Expired)
            } else {
                None
            };
            match over {
                Some(over) => {
                    scope
                        .record_task_results(id, task.batch, over, None, &[])
                        .await?
                }
                None => waiting += 1,
            }
        }
        ctx.progress(
            (state.tasks.len() - waiting) as i64,
            Some(state.tasks.len() as i64),
            Some("following the members' tasks"),
        )
        .await?;
    }
    // batches still on their way get tasks to follow; a send whose batches all have an
    // answer and whose tasks are all over is done
    if waiting > 0 || (state.unanswered > 0 && state.state != BroadcastState::Cancelled) {
        return Err(JobError::Later {
            at: siyu_store::now_ms() + poll,
            reason: format!(
                "{waiting} member tasks wait, {} batches are not answered yet",
                state.unanswered
            ),
        });
    }
    Ok(())
}

async fn remind(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: SendPayload = ctx.payload()?;
    let tenant = tenant_of(&ctx)?;
    let scope = services.store.tenant(tenant);
    let id = BroadcastId(payload.broadcast_id);
    let send = match scope.get_broadcast(id).await {
        Ok(send) => send,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let state = scope.follow_state(id).await?;
    let Some(connector) = state.connector else {
        return Ok(());
    };
    if state.state == BroadcastState::Cancelled {
        return Ok(());
    }
    let (client, wecom) = client_for(services, tenant, connector).await?;
    let now = siyu_store::now_ms();
    let mut reminded = Vec::new();
    for task in remindable(&state.tasks, now) {
        match client.remind_mass_message(&task.msgid).await {
            Ok(()) => {}
            // WeCom counts reminders too: one it refuses is not recorded
            Err(WecomError::RateLimited { .. }) => continue,
            Err(e) => return Err(job_error(e)),
        }
        scope.record_reminder(id, task.batch, now).await?;
        if let Some(staff) = task.staff {
            reminded.push(AppMessageRecipient {
                userid: task.userid.clone(),
                staff_id: Some(staff),
            });
        }
    }
    if wecom.settings.agent_id.is_some() && !reminded.is_empty() {
        let text = format!(
            "请在企业微信「客户联系 → 群发助手」确认并发送群发「{}」。",
            send.name
        );
        let message = AppMessagePayload {
            connector_id: connector,
            recipients: reminded,
            text,
        };
        let job = NewJob::new(
            kind::WECOM_APP_MESSAGE,
            serde_json::to_value(&message).map_err(JobError::permanent)?,
        );
        scope.enqueue(&[job]).await?;
    }
    Ok(())
}
