//! Customer transfers between WeCom members (客户继承), as two jobs:
//!
//! - `wecom.transfer` asks WeCom for the transfers recorded with it (`transfer_customer`,
//!   or `resigned/transfer_customer` for a member who left), 100 customers a call, and
//!   records each customer's errcode as soon as the call answers: 0 waiting (WeCom takes
//!   over 24 h later), 40128 refused (transferred twice in 90 days), the rest failed
//!   with words a person can act on. At least once: a try cut off between a call and its
//!   record is followed by one that first reads `transfer_result` and takes the
//!   customers WeCom lists as waiting for these members as started, so none is asked
//!   twice. A job that gives up fails the transfers it never asked for, so they neither
//!   block the customer nor count towards WeCom's limit.
//! - `wecom.transfer_result` follows them: it reads `transfer_result` until each is over
//!   (succeeded, refused by the customer, or the takeover at its limit) and comes back
//!   later ([`JobError::Later`], the try not counted) while any waits: after the node's
//!   poll interval (an hour by default, [`crate::wecom::WecomCalls::transfer_poll`]),
//!   or just after the earliest takeover time WeCom gave if that is sooner. A succeeded
//!   customer is read again with `get` and stored like a callback's (the new relation
//!   with its `Contact Added`, the handover's ended), then the owner moves to the
//!   takeover's staff (see `siyu-store`'s `wecom_transfers`). Idempotent: outcomes are
//!   recorded only on transfers still under way, and a `Contact Added` has one
//!   message id whoever stores it first, this job or the callback of the new relation.

use std::collections::HashMap;

use siyu_connect::wecom::WecomError;
use siyu_connect::wecom::api::{CUSTOMERS_PER_TRANSFER, TransferState};
use siyu_domain::audit::Actor;
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_domain::jobs::kind;
use siyu_domain::transfer::{
    TransferKind, TransferPayload, TransferResultPayload, TransferStatus, WecomTransfer,
    outcome_of_errcode,
};
use siyu_store::{NewJob, TenantScope, TransferOutcome};

use super::contacts::contact_records;
use super::sync::{client_for, job_error};
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// A transfer WeCom no longer lists this long after it was asked for is given up.
const FORGOTTEN_AFTER_MS: i64 = 7 * 86_400_000;

/// The `wecom.transfer` job's handler.
pub fn asking(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::WECOM_TRANSFER, move |ctx| {
        let services = services.clone();
        async move { ask(&services, ctx).await }
    })
}

/// The `wecom.transfer_result` job's handler.
pub fn following(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::WECOM_TRANSFER_RESULT, move |ctx| {
        let services = services.clone();
        async move { follow(&services, ctx).await }
    })
}

fn tenant_of(ctx: &JobContext) -> Result<TenantId, JobError> {
    ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("a WeCom transfer belongs to a tenant; this one to none")
    })
}

fn actor(id: ConnectorId) -> Actor {
    Actor::system(format!("WeCom connector {}", id.0))
}

async fn ask(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: TransferPayload = ctx.payload()?;
    let tenant = tenant_of(&ctx)?;
    let scope = services.store.tenant(tenant);
    let id = payload.connector_id;
    let result = ask_wecom(services, &ctx, &scope, tenant, &payload).await;
    let gives_up = match &result {
        Err(JobError::Permanent(_)) => true,
        Err(JobError::Retry(_)) => ctx.job.attempts >= ctx.job.max_attempts,
        _ => false,
    };
    if let (true, Err(e)) = (gives_up, &result) {
        let failed = scope
            .fail_asking_wecom_transfers(id, ctx.id(), &format!("siyu could not ask WeCom: {e}"))
            .await?;
        tracing::warn!(connector = id.0, job = ctx.id().0, failed, error = %e, "WeCom transfers given up");
    }
    result
}

async fn ask_wecom(
    services: &Services,
    ctx: &JobContext,
    scope: &TenantScope<'_>,
    tenant: TenantId,
    payload: &TransferPayload,
) -> Result<(), JobError> {
    let id = payload.connector_id;
    let actor = actor(id);
    let resigned = payload.kind == TransferKind::Resigned;
    let (handover, takeover) = (&payload.handover_userid, &payload.takeover_userid);
    let rows = scope.wecom_transfers_of_job(id, ctx.id()).await?;
    let mut asking: Vec<&WecomTransfer> = rows
        .iter()
        .filter(|t| t.status == TransferStatus::Asking)
        .collect();
    let total = rows.len() as i64;
    if asking.is_empty() {
        return follow_up(services, ctx, tenant, payload, &rows).await;
    }
    let (client, _) = client_for(services, tenant, id).await?;
    if ctx.job.attempts > 1 {
        // an earlier try may have started some and stopped before recording them
        let states = client
            .transfer_results(resigned, handover, takeover)
            .await
            .map_err(job_error)?;
        let started: HashMap<&str, &TransferState> = states
            .iter()
            .filter(|s| s.status == 2)
            .map(|s| (s.external_userid.as_str(), s))
            .collect();
        let outcomes: Vec<TransferOutcome> = asking
            .iter()
            .filter_map(|t| {
                let state = started.get(t.external_userid.as_str())?;
                Some(TransferOutcome {
                    id: t.id,
                    status: TransferStatus::Waiting,
                    errcode: None,
                    reason: None,
                    takeover_at: seconds(state.takeover_time),
                })
            })
            .collect();
        scope
            .record_wecom_transfer_outcomes(id, &outcomes, &actor)
            .await?;
        asking.retain(|t| !started.contains_key(t.external_userid.as_str()));
    }
    let mut done = total - asking.len() as i64;
    for chunk in asking.chunks(CUSTOMERS_PER_TRANSFER) {
        let external: Vec<String> = chunk.iter().map(|t| t.external_userid.clone()).collect();
        let answered = client
            .transfer_customers(
                resigned,
                handover,
                takeover,
                &external,
                payload.message.as_deref(),
            )
            .await;
        let codes: HashMap<String, i64> = match answered {
            Ok(answers) => answers
                .into_iter()
                .map(|a| (a.external_userid, a.errcode))
                .collect(),
            // refused as a whole (the handover has not left: 40097; an unknown member):
            // every customer of the call with that errcode
            Err(WecomError::Call { errcode, .. }) => {
                external.iter().map(|e| (e.clone(), errcode)).collect()
            }
            Err(e) => return Err(job_error(e)),
        };
        let outcomes: Vec<TransferOutcome> = chunk
            .iter()
            .map(|t| match codes.get(&t.external_userid) {
                Some(code) => {
                    let (status, reason) = outcome_of_errcode(*code);
                    TransferOutcome {
                        id: t.id,
                        status,
                        errcode: (*code != 0).then_some(*code),
                        reason,
                        takeover_at: None,
                    }
                }
                None => TransferOutcome {
                    id: t.id,
                    status: TransferStatus::Failed,
                    errcode: None,
                    reason: Some("WeCom did not answer for this customer".into()),
                    takeover_at: None,
                },
            })
            .collect();
        scope
            .record_wecom_transfer_outcomes(id, &outcomes, &actor)
            .await?;
        done += chunk.len() as i64;
        ctx.progress(
            done,
            Some(total),
            Some("asking WeCom to transfer customers"),
        )
        .await?;
    }
    let rows = scope.wecom_transfers_of_job(id, ctx.id()).await?;
    follow_up(services, ctx, tenant, payload, &rows).await
}

/// Enqueues the job that follows the transfers WeCom started (once per asking job).
async fn follow_up(
    services: &Services,
    ctx: &JobContext,
    tenant: TenantId,
    payload: &TransferPayload,
    rows: &[WecomTransfer],
) -> Result<(), JobError> {
    if !rows.iter().any(|t| t.status == TransferStatus::Waiting) {
        return Ok(());
    }
    let follow = TransferResultPayload {
        connector_id: payload.connector_id,
        transfer_job_id: ctx.id(),
        kind: payload.kind,
        handover_userid: payload.handover_userid.clone(),
        takeover_userid: payload.takeover_userid.clone(),
    };
    let follow = serde_json::to_value(&follow).map_err(JobError::permanent)?;
    let poll = services.wecom.transfer_poll();
    let mut job = NewJob::new(kind::WECOM_TRANSFER_RESULT, follow)
        .unique_key(format!("transfer-job:{}", ctx.id().0))
        .run_at(siyu_store::now_ms() + poll.as_millis() as i64);
    if let Some(staff) = rows.iter().find_map(|t| t.asked_by_staff_id) {
        job = job.created_by(staff);
    }
    services.store.tenant(tenant).enqueue(&[job]).await?;
    Ok(())
}

async fn follow(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: TransferResultPayload = ctx.payload()?;
    let tenant = tenant_of(&ctx)?;
    let scope = services.store.tenant(tenant);
    let id = payload.connector_id;
    let actor = actor(id);
    let rows = scope
        .wecom_transfers_of_job(id, payload.transfer_job_id)
        .await?;
    let waiting: Vec<&WecomTransfer> = rows
        .iter()
        .filter(|t| t.status == TransferStatus::Waiting)
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let (client, _) = client_for(services, tenant, id).await?;
    let resigned = payload.kind == TransferKind::Resigned;
    let states = client
        .transfer_results(resigned, &payload.handover_userid, &payload.takeover_userid)
        .await
        .map_err(job_error)?;
    // every transfer between the two members is listed, in the order they were
    // started; one under way (at most one per customer) is this job's
    let mut latest: HashMap<&str, &TransferState> = HashMap::new();
    for state in &states {
        let kept = latest
            .entry(state.external_userid.as_str())
            .or_insert(state);
        if kept.status != 2 {
            *kept = state;
        }
    }
    let now = siyu_store::now_ms();
    let mut outcomes = Vec::new();
    let mut succeeded = Vec::new();
    for t in &waiting {
        let Some(state) = latest.get(t.external_userid.as_str()) else {
            if now - t.asked_at > FORGOTTEN_AFTER_MS {
                outcomes.push(TransferOutcome {
                    id: t.id,
                    status: TransferStatus::Failed,
                    errcode: None,
                    reason: Some("WeCom no longer lists this transfer".into()),
                    takeover_at: None,
                });
            }
            continue;
        };
        let Some((status, reason)) = TransferStatus::of_result(state.status) else {
            tracing::warn!(
                connector = id.0,
                status = state.status,
                "a transfer status WeCom does not document"
            );
            continue;
        };
        let takeover_at = seconds(state.takeover_time);
        if status == TransferStatus::Waiting && takeover_at == t.takeover_at {
            continue;
        }
        let outcome = TransferOutcome {
            id: t.id,
            status,
            errcode: None,
            reason: reason.map(str::to_owned),
            takeover_at,
        };
        if status == TransferStatus::Succeeded {
            succeeded.push((*t, outcome));
        } else {
            outcomes.push(outcome);
        }
    }
    scope
        .record_wecom_transfer_outcomes(id, &outcomes, &actor)
        .await?;
    for (t, outcome) in succeeded {
        store_relations(&client, &scope, id, &t.external_userid, &actor).await?;
        scope
            .record_wecom_transfer_outcomes(id, std::slice::from_ref(&outcome), &actor)
            .await?;
    }
    let rows = scope
        .wecom_transfers_of_job(id, payload.transfer_job_id)
        .await?;
    let still: Vec<&WecomTransfer> = rows
        .iter()
        .filter(|t| t.status == TransferStatus::Waiting)
        .collect();
    let finished = rows.iter().filter(|t| !t.status.is_pending()).count() as i64;
    ctx.progress(
        finished,
        Some(rows.len() as i64),
        Some("waiting for WeCom's takeovers"),
    )
    .await?;
    if still.is_empty() {
        return Ok(());
    }
    let mut at = now + services.wecom.transfer_poll().as_millis() as i64;
    if let Some(first) = still
        .iter()
        .filter_map(|t| t.takeover_at)
        .filter(|t| *t > now)
        .min()
    {
        at = at.min(first + 60_000);
    }
    Err(JobError::Later {
        at,
        reason: format!(
            "{} of {} transfers wait for WeCom's takeover",
            still.len(),
            rows.len()
        ),
    })
}

/// Reads a transferred customer again and stores their relations as WeCom has them
/// now (the takeover's new, the handover's ended).
async fn store_relations(
    client: &siyu_connect::wecom::WecomClient<super::host::StoreHost>,
    scope: &TenantScope<'_>,
    id: ConnectorId,
    external: &str,
    actor: &Actor,
) -> Result<(), JobError> {
    let context = scope.wecom_context(id, actor).await?;
    // a read made stale by a tag marked meanwhile is read again
    for _ in 0..3 {
        let read_at = siyu_store::now_ms();
        let detail = match client.contact(external).await {
            Ok(detail) => detail,
            // no relation any more, or a customer WeCom forgot: the owner still moves
            Err(WecomError::Call { errcode, .. }) => {
                tracing::info!(
                    connector = id.0,
                    errcode,
                    "a transferred customer could not be read again"
                );
                return Ok(());
            }
            Err(e) => return Err(job_error(e)),
        };
        let read = scope
            .store_wecom_contact(
                id,
                &context,
                external,
                &contact_records(&detail),
                read_at,
                actor,
            )
            .await?;
        if read != siyu_store::ContactRead::Stale {
            return Ok(());
        }
    }
    Ok(())
}

/// WeCom's unix seconds as ms (0: none).
fn seconds(at: i64) -> Option<i64> {
    (at > 0).then(|| at.saturating_mul(1_000))
}
