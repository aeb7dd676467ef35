//! A WeCom send after its member tasks are made: following them, reminding members who
//! have not sent, and carrying out a cancel.
//!
//! - `broadcast.follow` (one waiting per send, enqueued with each task's answer and with
//!   a cancel) reads each waiting task (`get_groupmsg_task`): once its member sent it,
//!   every customer's result (`get_groupmsg_send_result`: sent, not a friend any more,
//!   over the receive cap; one the member left out is not sent) is recorded and final.
//!   A member who left the company has their part reported as `member_left`, not
//!   dropped; a task not sent after [`FOLLOW_FOR_MS`] is stopped in WeCom and
//!   `expired`. A cancelled send's waiting tasks are stopped with
//!   `cancel_groupmsg_send` and read once more (what a member sent before the stop stays
//!   sent, and counts). One task WeCom will not read does not hold up the others. While anything waits it comes back after the node's poll interval
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
use siyu_store::{NewJob, RecipientResult, StoreError, TaskToFollow, TenantScope};

use crate::tagging::tenant_of;
use crate::wecom::StoreHost;
use crate::wecom::sync::{client_for, job_error};
use crate::{JobContext, JobError, JobHandler, Services, handler_fn};

type Client = siyu_connect::wecom::WecomClient<StoreHost>;

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
    let now = siyu_store::now_ms();
    let mut waiting = 0;
    if !state.tasks.is_empty() {
        let (client, _) = client_for(services, tenant, connector).await?;
        let cancelled = state.state == BroadcastState::Cancelled;
        for task in &state.tasks {
            match follow_task(&client, &scope, id, task, cancelled, now).await {
                Ok(true) => {}
                Ok(false) => waiting += 1,
                // this task's own trouble (WeCom refusing one msgid): the rest go on,
                // and it is read again next time (until it expires)
                Err(WecomError::Call {
                    errcode, message, ..
                }) => {
                    tracing::warn!(
                        tenant = tenant.0,
                        broadcast = id.0,
                        batch = task.batch,
                        errcode,
                        message,
                        "a member task could not be read"
                    );
                    waiting += 1;
                }
                Err(e) => return Err(job_error(e)),
            }
        }
        ctx.progress(
            (state.tasks.len() - waiting) as i64,
            Some(state.tasks.len() as i64),
            Some("following the members' tasks"),
        )
        .await?;
    }
    // batches on their way (or waiting for a person) become tasks to follow; a send
    // whose tasks are all over and whose batches are all answered is done — and so is
    // one planned longer ago than tasks are followed, whose unanswered batches' jobs
    // gave up or whose person never decided
    let stale = state.planned_at.is_some_and(|at| now - at > FOLLOW_FOR_MS);
    let pending = state.in_flight + state.unresolved;
    let poll = services.wecom.broadcast_poll().as_millis() as i64;
    let later = |waiting: usize, pending: i64| JobError::Later {
        at: siyu_store::now_ms() + poll,
        reason: format!("{waiting} member tasks wait, {pending} batches are on their way"),
    };
    if waiting > 0 || (pending > 0 && !stale) {
        return Err(later(waiting, pending));
    }
    // a batch answered while this ran (its own follow job was not enqueued: this one
    // was running) is followed too
    let again = scope.follow_state(id).await?;
    if !again.tasks.is_empty() || (again.in_flight + again.unresolved > 0 && !stale) {
        return Err(later(again.tasks.len(), again.in_flight + again.unresolved));
    }
    if pending > 0 {
        tracing::warn!(
            tenant = tenant.0,
            broadcast = id.0,
            batches = pending,
            "a mass send's batches never reached WeCom: following it ends"
        );
    }
    Ok(())
}

/// Reads one waiting task and records what became of it; answers whether it is over.
async fn follow_task(
    client: &Client,
    scope: &TenantScope<'_>,
    id: BroadcastId,
    task: &TaskToFollow,
    cancelled: bool,
    now: i64,
) -> Result<bool, WecomError> {
    let expired = now - task.answered_at > FOLLOW_FOR_MS;
    // a task to close (cancelled, expired, its member gone) is closed even when WeCom
    // will not read or stop it any more
    let closing = cancelled || expired || task.member_left;
    let mut member = match read_task(client, task).await {
        Ok(Some(member)) => member,
        Ok(None) => return Ok(false),
        Err(e @ WecomError::Call { .. }) if closing => {
            tracing::warn!(batch = task.batch, error = %e, "a task to close could not be read");
            None
        }
        Err(e) => return Err(e),
    };
    if member != Some(2) {
        let over = if cancelled {
            TaskState::Cancelled
        } else if task.member_left {
            TaskState::MemberLeft
        } else if expired {
            TaskState::Expired
        } else {
            return Ok(false);
        };
        // stopped in WeCom, then read again: a member who sent meanwhile did send
        match client.cancel_mass_message(&task.msgid).await {
            Ok(()) => {}
            Err(e @ WecomError::Call { .. }) => {
                tracing::warn!(batch = task.batch, error = %e, "a task to close could not be stopped");
            }
            Err(e) => return Err(e),
        }
        if let Ok(Some(after)) = read_task(client, task).await {
            member = after;
        }
        if member != Some(2) {
            record(scope, id, task.batch, over, None, &[]).await?;
            return Ok(true);
        }
    }
    // the member sent it: every customer's result is final
    let results = client.mass_results(&task.msgid, &task.userid).await?;
    let sent_at = results
        .iter()
        .map(|r| r.send_time)
        .max()
        .filter(|t| *t > 0)
        .map_or(now, |t| t.saturating_mul(1000));
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
    record(
        scope,
        id,
        task.batch,
        TaskState::Confirmed,
        Some(sent_at),
        &results,
    )
    .await?;
    Ok(true)
}

/// The member's task status (0 not sent, 2 sent; `None` inside: WeCom lists no task of
/// theirs), or `None` while WeCom is still dispatching the message.
async fn read_task(
    client: &Client,
    task: &TaskToFollow,
) -> Result<Option<Option<i64>>, WecomError> {
    match client.mass_tasks(&task.msgid).await {
        Ok(tasks) => Ok(Some(
            tasks
                .iter()
                .find(|t| t.userid == task.userid)
                .map(|t| t.status),
        )),
        Err(WecomError::Call { errcode, .. }) if errcode == STILL_DISPATCHING => Ok(None),
        Err(e) => Err(e),
    }
}

async fn record(
    scope: &TenantScope<'_>,
    id: BroadcastId,
    batch: i64,
    state: TaskState,
    sent_at: Option<i64>,
    results: &[RecipientResult],
) -> Result<(), WecomError> {
    scope
        .record_task_results(id, batch, state, sent_at, results)
        .await
        .map_err(|e| WecomError::Host(e.to_string()))
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
    let now = siyu_store::now_ms();
    // a reminder (and its app message) is siyu's moment, not the member's
    super::wait_out_quiet_hours(&scope, now).await?;
    let (client, wecom) = client_for(services, tenant, connector).await?;
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
