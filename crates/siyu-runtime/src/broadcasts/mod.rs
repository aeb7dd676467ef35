//! Mass sends as jobs: one plans a send at its time ([`kind::BROADCAST_PLAN`]), one per
//! batch sends it ([`kind::BROADCAST_BATCH`]); never a job per message. On WeCom a
//! batch is one member's task (`wecom`), followed until the member sends it, reminded
//! and cancelled by the jobs of `following`.
//!
//! **Planning** takes the audience within the reach its maker has now (a segment or
//! definition through this node's audience index, or a list led to the survivors of
//! merges), the opt-outs in force, and what each customer received in the frequency
//! cap's window, lets `siyu_domain::engagement::broadcast::plan` decide, and stores
//! the plan whole in one transaction with a job per batch. Planning twice plans once.
//!
//! **Sending** is exactly once per batch: the intent commits before the channel is
//! called and the answer after. A batch found with its intent but no answer may be
//! with the channel already; the sandbox keys deliveries by batch, so asking it again
//! answers what it has and delivers nothing. WeCom's `add_msg_template` has no such
//! key: its batches reconcile against `get_groupmsg_list_v2` before sending again (see
//! `wecom`).
//!
//! The sandbox rehearses a WeCom send, so WeCom's consent applies to it.

mod following;
mod media;
mod wecom;

pub use following::{following, remindable, reminding};

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;
use siyu_audience::Condition;
use siyu_domain::consent::ConsentChannel;
use siyu_domain::engagement::broadcast::{
    BroadcastAudience, BroadcastChannel, BroadcastState, FrequencyCap, Plan, PlanInput,
    SANDBOX_BATCH, plan,
};
use siyu_domain::engagement::member_tasks::{MemberTask, assign_members};
use siyu_domain::engagement::template::TemplateSnapshot;
use siyu_domain::ids::{BroadcastId, ConnectorId};
use siyu_domain::jobs::kind;
use siyu_domain::time::TimeZone;
use siyu_store::{PlannedBatches, StoreError, TemplateValues, TenantScope};

use crate::audience::{AudienceError, Audiences};
use crate::runner::uncancelled;
use crate::tagging::tenant_of;
use crate::{JobContext, JobError, JobHandler, Services, handler_fn};

/// A planning job's payload.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanPayload {
    pub broadcast_id: i64,
}

/// A batch job's payload.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchPayload {
    pub broadcast_id: i64,
    pub batch: i64,
}

/// The consent a channel's sends respect.
pub fn consent_channel(channel: BroadcastChannel) -> ConsentChannel {
    match channel {
        BroadcastChannel::Sandbox | BroadcastChannel::Wecom => ConsentChannel::Wecom,
    }
}

pub fn planning(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::BROADCAST_PLAN, move |ctx| {
        let services = services.clone();
        async move { plan_send(&services, ctx).await }
    })
}

pub fn sending(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::BROADCAST_BATCH, move |ctx| {
        let services = services.clone();
        async move { send_batch(&services, ctx).await }
    })
}

async fn plan_send(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: PlanPayload = ctx.payload()?;
    let tenant = tenant_of(&ctx)?;
    let id = BroadcastId(payload.broadcast_id);
    ctx.progress(0, None, Some("planning")).await?;
    // another send planned while this one read its caps: read again (a few times)
    for _ in 0..5 {
        let system = services.store.tenant(tenant);
        let read_at = siyu_store::now_ms();
        let send = match system.get_broadcast(id).await {
            Ok(send) => send,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // planned already, cancelled, or moved later (a job waits for the new time)
        if send.state != BroadcastState::Scheduled || send.send_at > read_at {
            return Ok(());
        }
        // the maker's reach now: narrowed since, the send reaches fewer
        let scope = match send.created_by {
            Some(staff) => match services.store.scope_of_staff(tenant, staff).await {
                Ok(scope) => scope,
                Err(e @ (StoreError::NotFound(_) | StoreError::Conflict(_))) => {
                    return Err(JobError::permanent(format!(
                        "the staff member who made this send can no longer send: {e}"
                    )));
                }
                Err(e) => return Err(e.into()),
            },
            None => system.clone(),
        };
        let target = PlanTarget {
            audience: &send.audience,
            channel: send.channel,
            connector: send.connector_id,
            cap: send.frequency_cap,
        };
        let mut planned = plan_now(&services.audiences, &scope, &target, read_at)
            .await
            .map_err(|e| match e {
                AudienceError::Store(e) => JobError::from(e),
                // a segment deleted since, a tag renamed away: it will not get better
                other => JobError::permanent(other),
            })?;
        if let (Some(template), Some(connector)) = (
            system.broadcast_template(id).await?,
            send.connector_id
                .filter(|_| send.channel == BroadcastChannel::Wecom),
        ) {
            render_member_tasks(&system, connector, &template, &mut planned.tasks).await?;
        }
        let total = planned.plan.recipients.len() as i64;
        let store = services.store.clone();
        let stored = uncancelled(async move {
            let batches = match send.channel {
                BroadcastChannel::Sandbox => PlannedBatches::Ranges(SANDBOX_BATCH),
                BroadcastChannel::Wecom => PlannedBatches::MemberTasks(&planned.tasks),
            };
            store
                .tenant(tenant)
                .store_plan(&send, read_at, &planned.plan, batches)
                .await
        })
        .await?;
        match stored {
            Ok(planned) => {
                let message = if planned {
                    "planned"
                } else {
                    "planned before, or changed"
                };
                ctx.progress(total, Some(total), Some(message)).await?;
                return Ok(());
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(JobError::retry("other sends kept being planned meanwhile"))
}

/// Renders a template once per member task: the member's name and the brand's, the
/// customers' values their fallbacks (one text for many customers).
async fn render_member_tasks(
    scope: &TenantScope<'_>,
    connector: ConnectorId,
    template: &TemplateSnapshot,
    tasks: &mut [MemberTask],
) -> Result<(), JobError> {
    let template = template
        .template()
        .map_err(|e| JobError::permanent(format!("the send's template: {e}")))?;
    let names: HashMap<String, String> = scope
        .wecom_members(connector)
        .await?
        .into_iter()
        .map(|m| (m.userid, m.name))
        .collect();
    let brand = scope.get().await?.name;
    for task in tasks {
        let values = TemplateValues {
            member_name: names.get(&task.userid).cloned(),
            brand_name: Some(brand.clone()),
            ..TemplateValues::default()
        };
        let text = template.render_text(|v| {
            if v.per_customer() {
                None
            } else {
                values.value(v)
            }
        });
        task.text = Some(text.ok_or_else(|| {
            JobError::permanent("the send's template renders no text a customer may receive")
        })?);
    }
    Ok(())
}

/// What a send is planned for.
#[derive(Debug, Clone, Copy)]
pub struct PlanTarget<'a> {
    pub audience: &'a BroadcastAudience,
    pub channel: BroadcastChannel,
    /// A WeCom send's connector.
    pub connector: Option<ConnectorId>,
    pub cap: FrequencyCap,
}

/// A plan, and on WeCom its member tasks (a batch each).
#[derive(Debug, Clone, Default)]
pub struct Planned {
    pub plan: Plan,
    pub tasks: Vec<MemberTask>,
}

/// Who a send would reach now, and why the rest would not: what planning stores, and
/// what the console previews before a send is made. On WeCom each recipient is led to
/// one member who has them (`assign_members`); those no member can reach are left out.
pub async fn plan_now(
    audiences: &Audiences,
    scope: &TenantScope<'_>,
    target: &PlanTarget<'_>,
    now: i64,
) -> Result<Planned, AudienceError> {
    let (audience, not_found) = match target.audience {
        BroadcastAudience::Everyone => {
            let (members, index) = audiences.everyone(scope).await?;
            (index.read(scope).ids(&members, usize::MAX), 0)
        }
        BroadcastAudience::Condition(value) => {
            let condition: Condition = serde_json::from_value(value.clone())
                .map_err(|e| AudienceError::Evaluation(format!("the audience's condition: {e}")))?;
            let (members, index) = audiences.evaluate(scope, &condition).await?;
            (index.read(scope).ids(&members, usize::MAX), 0)
        }
        BroadcastAudience::Customers(ids) => scope.resolve_listed(ids).await?,
    };
    let opted_out = scope.opted_out_of(consent_channel(target.channel)).await?;
    let zone = TimeZone::of_stored(&scope.get().await?.time_zone);
    let (from, limit) = target.cap.window(zone, now);
    let received = scope.received_since(target.channel, from).await?;
    let mut plan = plan(&PlanInput {
        audience: &audience,
        not_found,
        opted_out: &opted_out,
        received: &received,
        limit,
    });
    let tasks = match (target.channel, target.connector) {
        (BroadcastChannel::Sandbox, _) => Vec::new(),
        (BroadcastChannel::Wecom, Some(connector)) => {
            let routes = scope.wecom_routes(connector).await?;
            assign_members(&mut plan, &routes)
        }
        (BroadcastChannel::Wecom, None) => {
            return Err(AudienceError::Evaluation(
                "a WeCom send needs a WeCom connector".into(),
            ));
        }
    };
    Ok(Planned { plan, tasks })
}

async fn send_batch(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: BatchPayload = ctx.payload()?;
    let tenant = tenant_of(&ctx)?;
    let scope = services.store.tenant(tenant);
    let (id, number) = (BroadcastId(payload.broadcast_id), payload.batch);
    let Some(batch) = scope.batch_to_send(id, number).await? else {
        return Ok(());
    };
    match batch.channel {
        BroadcastChannel::Wecom => wecom::send_batch(services, tenant, id, number, batch).await,
        BroadcastChannel::Sandbox => send_to_sandbox(services, tenant, id, number, batch).await,
    }
}

/// The sandbox keys deliveries by batch: a batch asked for again is delivered once.
async fn send_to_sandbox(
    services: &Services,
    tenant: siyu_domain::ids::TenantId,
    id: BroadcastId,
    number: i64,
    batch: siyu_store::BatchToSend,
) -> Result<(), JobError> {
    let scope = services.store.tenant(tenant);
    // siyu picks the moment a sandbox message arrives: never within quiet hours
    if !batch.cancelled {
        wait_out_quiet_hours(&scope, siyu_store::now_ms()).await?;
    }
    // a template is rendered before the intent: one that cannot render sends nothing
    let texts = match (&batch.template, batch.cancelled) {
        (Some(template), false) => Some(render_each(&scope, template, &batch.recipients).await?),
        _ => None,
    };
    if !batch.intent_recorded && !scope.record_batch_intent(id, number).await? {
        // cancelled (or answered) between the read and the intent
        return Ok(());
    }
    let store = services.store.clone();
    uncancelled(async move {
        let scope = store.tenant(tenant);
        let answer = if batch.cancelled {
            // cancelled after the intent: only ask what the channel has
            match scope.sandbox_delivered(id, number).await? {
                Some(answer) => answer,
                None => return scope.cancel_batch(id, number).await,
            }
        } else {
            scope
                .sandbox_deliver(id, number, &batch.text, &batch.recipients, texts.as_deref())
                .await?
        };
        let record = json!({
            "messages": answer.messages,
            "delivered_at": answer.delivered_at,
            "asked_again": answer.again,
        });
        scope
            .record_batch_answer(id, number, answer.messages, &record)
            .await
    })
    .await??;
    Ok(())
}

/// Holds work until the tenant's quiet hours end (`JobError::Later`, no try counted)
/// when `now` is within them.
pub(crate) async fn wait_out_quiet_hours(
    scope: &TenantScope<'_>,
    now: i64,
) -> Result<(), JobError> {
    let hours = scope.quiet_hours().await?;
    if !hours.enabled {
        return Ok(());
    }
    let zone = TimeZone::of_stored(&scope.get().await?.time_zone);
    match hours.resume_at(zone, now) {
        Some(at) => Err(JobError::Later {
            at,
            reason: format!("quiet hours ({} to {})", hours.start, hours.end),
        }),
        None => Ok(()),
    }
}

/// Renders a template for each recipient with their own values (missing ones: the
/// fallbacks), in the order of `recipients`.
async fn render_each(
    scope: &TenantScope<'_>,
    template: &TemplateSnapshot,
    recipients: &[i64],
) -> Result<Vec<String>, JobError> {
    let unrenderable =
        || JobError::permanent("the send's template renders no text a customer may receive");
    let template = template.template().map_err(|_| unrenderable())?;
    let values = scope.template_values_of(recipients).await?;
    let none = TemplateValues::default();
    recipients
        .iter()
        .map(|c| {
            let values = values.get(c).unwrap_or(&none);
            template
                .render_text(|v| values.value(v))
                .ok_or_else(unrenderable)
        })
        .collect()
}
