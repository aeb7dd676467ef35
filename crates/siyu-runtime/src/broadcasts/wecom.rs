//! A WeCom batch: one member's task, made by one `add_msg_template` call naming its
//! customers by `external_userid`, exactly once.
//!
//! The batch is claimed (its intent recorded and committed) before the call and
//! answered after (the msgid, the `fail_list` per recipient). `add_msg_template` has no
//! idempotency key, so a try that finds the intent of an earlier one without its answer
//! (a crash, a lost answer) cannot know whether WeCom made the task. It waits until the
//! earlier call is surely over ([`crate::wecom::WecomCalls::broadcast_claim`], longer
//! than the HTTP client's timeout), then reconciles: it lists the corp's messages since
//! the intent (`get_groupmsg_list_v2`, `filter_type` 0; API-made ones carry no
//! `creator`), keeps those of the batch's text that no batch recorded, and reads each
//! one's member tasks and that member's customers. When exactly one is the batch (only
//! its member, customers among its own) it is recorded; when none is, the batch is
//! claimed anew and sent; when several could be, the batch stops and waits for a person
//! (`POST /api/v1/broadcasts/{id}/batches/{batch}/resolve`). It never sends twice.
//! While WeCom is still dispatching a message its reads answer 41063: the try comes back
//! later. Two nodes racing for a batch meet at the claim: only one calls.
//!
//! WeCom refusing the call as a whole (an errcode) makes nothing, so the claim is given
//! back for a frequency limit or a configuration error (tried again later), and is the
//! batch's answer for anything else (every recipient refused, never retried as if
//! transient; a member no longer in the corp: `member_left`). A call that ends without
//! an answer (the network, a timeout, WeCom busy past the retries) keeps its claim: the
//! next try reconciles.

use std::collections::HashSet;

use serde_json::json;
use siyu_connect::wecom::WecomError;
use siyu_connect::wecom::mass::{LIST_WINDOW_S, STILL_DISPATCHING};
use siyu_domain::engagement::member_tasks::{LostCallCandidate, Reconciled, Unresolved, reconcile};
use siyu_domain::ids::{BroadcastId, TenantId};
use siyu_store::BatchToSend;

use crate::runner::uncancelled;
use crate::wecom::StoreHost;
use crate::wecom::sync::client_for;
use crate::{JobError, Services};

type Client = siyu_connect::wecom::WecomClient<StoreHost>;

/// How long a try waits for WeCom to finish dispatching a message it reads.
const DISPATCH_WAIT_MS: i64 = 5_000;
/// How far before an intent reconciling looks (clocks of siyu and WeCom differ).
const CLOCK_SLACK_S: i64 = 120;
/// errcodes that say the member is not (or no longer) in the corp.
const MEMBER_GONE: [i64; 2] = [60111, 40003];

pub(super) async fn send_batch(
    services: &Services,
    tenant: TenantId,
    id: BroadcastId,
    number: i64,
    batch: BatchToSend,
) -> Result<(), JobError> {
    let scope = services.store.tenant(tenant);
    let (Some(connector), Some(sender)) = (batch.connector, batch.sender.clone()) else {
        return Err(JobError::permanent(
            "a WeCom batch without its connector or member: planned before WeCom sends existed",
        ));
    };
    let claim_ms = services.wecom.broadcast_claim().as_millis() as i64;
    // the files go up just before the claim (its window covers the one call, see
    // `media`), and only where a call follows: never before reconciling a lost call,
    // nor for a cancelled batch
    let attachments;
    let intent_at = if batch.intent_recorded {
        let seen = batch.intent_at.unwrap_or(0);
        let now = siyu_store::now_ms();
        if now < seen + claim_ms {
            return Err(JobError::Later {
                at: seen + claim_ms,
                reason: "an earlier try's call may still be under way: reconciling after it".into(),
            });
        }
        let (client, _) = client_for(services, tenant, connector).await?;
        let (found, candidates) = find_lost_call(&client, &scope, &batch, &sender, seen).await?;
        match found {
            Reconciled::Message { msgid } => {
                // the batch's customers WeCom's task lacks were in the lost fail_list
                let kept = candidates
                    .iter()
                    .find(|c| c.msgid == msgid)
                    .map(|c| c.customers.clone())
                    .unwrap_or_default();
                let fail_list: Vec<String> = batch
                    .external_userids
                    .iter()
                    .filter(|e| !kept.contains(*e))
                    .cloned()
                    .collect();
                let store = services.store.clone();
                let answer = json!({"msgid": msgid, "fail_list": fail_list, "reconciled": true});
                uncancelled(async move {
                    store
                        .tenant(tenant)
                        .record_member_task(id, number, &msgid, &fail_list, &answer)
                        .await
                })
                .await??;
                return Ok(());
            }
            Reconciled::Unclear { msgids } => {
                let unresolved = Unresolved {
                    reason: format!(
                        "the call for this batch lost its answer, and WeCom lists {} messages \
                         that could each be it: tell siyu which one WeCom has, or that none is",
                        msgids.len()
                    ),
                    msgids,
                };
                tracing::warn!(
                    tenant = tenant.0,
                    broadcast = id.0,
                    batch = number,
                    "a mass send's batch waits for a person: its lost call is unclear"
                );
                scope
                    .mark_batch_unresolved(id, number, seen, &unresolved)
                    .await?;
                return Ok(());
            }
            Reconciled::Nothing if batch.cancelled => {
                scope.cancel_batch(id, number).await?;
                return Ok(());
            }
            Reconciled::Nothing => {
                attachments = attachments_of(services, &scope, connector, &batch).await?;
                match scope.renew_batch_intent(id, number, seen).await? {
                    Some(at) => at,
                    None => {
                        // cancelled meanwhile (WeCom has nothing of it): never sent; else
                        // another try took it
                        let now = scope.batch_to_send(id, number).await?;
                        if now.is_some_and(|b| b.cancelled && b.intent_at == Some(seen)) {
                            scope.cancel_batch(id, number).await?;
                        }
                        return Ok(());
                    }
                }
            }
        }
    } else {
        // a cancelled send's batches are never claimed (claim_batch refuses them too)
        if batch.cancelled {
            return Ok(());
        }
        attachments = attachments_of(services, &scope, connector, &batch).await?;
        match scope.claim_batch(id, number).await? {
            Some(at) => at,
            None => return Ok(()),
        }
    };
    let (client, _) = client_for(services, tenant, connector).await?;
    let made = client
        .add_mass_message(&sender, &batch.external_userids, &batch.text, &attachments)
        .await;
    let store = services.store.clone();
    match made {
        Ok(made) => {
            let answer = json!({"msgid": made.msgid, "fail_list": made.fail_list});
            uncancelled(async move {
                store
                    .tenant(tenant)
                    .record_member_task(id, number, &made.msgid, &made.fail_list, &answer)
                    .await
            })
            .await??;
            Ok(())
        }
        Err(WecomError::RateLimited { api, until_ms }) => {
            scope.release_batch_intent(id, number, intent_at).await?;
            Err(JobError::Later {
                at: until_ms,
                reason: format!("WeCom paused {api} (45009): waiting until the pause ends"),
            })
        }
        Err(e @ WecomError::Configuration { .. }) => {
            scope.release_batch_intent(id, number, intent_at).await?;
            Err(JobError::retry(e))
        }
        Err(WecomError::Call {
            errcode, message, ..
        }) => {
            let member_left = MEMBER_GONE.contains(&errcode);
            let answer = json!({"errcode": errcode, "errmsg": message});
            uncancelled(async move {
                store
                    .tenant(tenant)
                    .record_member_task_refused(id, number, member_left, &answer)
                    .await
            })
            .await??;
            Ok(())
        }
        // no answer: WeCom may have made it; the next try reconciles after the claim
        Err(e @ (WecomError::Transient(_) | WecomError::Host(_))) => Err(JobError::Later {
            at: intent_at + claim_ms,
            reason: format!("the call ended without WeCom's answer ({e}): reconciling next"),
        }),
    }
}

/// The batch's library items as WeCom attachments, their files uploaded as needed.
async fn attachments_of(
    services: &Services,
    scope: &siyu_store::TenantScope<'_>,
    connector: siyu_domain::ids::ConnectorId,
    batch: &BatchToSend,
) -> Result<Vec<siyu_connect::wecom::mass::MassAttachment>, JobError> {
    if batch.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let (client, _) = client_for(services, scope.id(), connector).await?;
    super::media::mass_attachments(&client, scope, connector, &batch.attachments).await
}

/// Looks among WeCom's messages for the batch's call whose answer was lost.
async fn find_lost_call(
    client: &Client,
    scope: &siyu_store::TenantScope<'_>,
    batch: &BatchToSend,
    sender: &str,
    intent_at: i64,
) -> Result<(Reconciled, Vec<LostCallCandidate>), JobError> {
    let start = intent_at / 1000 - CLOCK_SLACK_S;
    let end = (siyu_store::now_ms() / 1000 + CLOCK_SLACK_S).min(start + LIST_WINDOW_S);
    let listed = client
        .corp_mass_messages(start, end)
        .await
        .map_err(read_error)?;
    // read after the list: a batch answered meanwhile is left out too
    let recorded = scope.recorded_msgids(intent_at - 86_400_000).await?;
    let ours: HashSet<String> = batch.external_userids.iter().cloned().collect();
    let mut candidates = Vec::new();
    for message in listed
        .iter()
        .filter(|m| m.creator.is_none() && m.text == batch.text && !recorded.contains(&m.msgid))
    {
        let tasks = client
            .mass_tasks(&message.msgid)
            .await
            .map_err(read_error)?;
        let members: Vec<String> = tasks.into_iter().map(|t| t.userid).collect();
        let customers = if members.iter().any(|m| m == sender) {
            client
                .mass_results(&message.msgid, sender)
                .await
                .map_err(read_error)?
                .into_iter()
                .map(|r| r.external_userid)
                .collect()
        } else {
            HashSet::new()
        };
        candidates.push(LostCallCandidate {
            msgid: message.msgid.clone(),
            members,
            customers,
        });
    }
    Ok((reconcile(sender, &ours, &candidates), candidates))
}

/// A read WeCom answered 41063 to comes back in a moment; others as any call's.
fn read_error(e: WecomError) -> JobError {
    match e {
        WecomError::Call { errcode, .. } if errcode == STILL_DISPATCHING => JobError::Later {
            at: siyu_store::now_ms() + DISPATCH_WAIT_MS,
            reason: "WeCom is still dispatching a mass message (41063)".into(),
        },
        e => crate::wecom::sync::job_error(e),
    }
}
