//! Tagging many customers as jobs: a bulk tagging by segment or definition
//! ([`kind::BULK_TAGGING`]) and a tag rule's backfill when it is saved
//! ([`kind::TAG_RULE_BACKFILL`]).
//!
//! Both find who matches now in this node's audience index, sort them, and change tags
//! in parts of [`PART`] customers, recording progress (customers done of all, and what
//! was added and removed) after each part, so the console's bar moves.
//!
//! At least once, and idempotent: a part's tags commit in a transaction of their own,
//! so a job taken again after its worker died tags the customers it had done again,
//! which changes nothing (a tag a customer has is not added twice; a removed one is not
//! removed twice). Only the figures of the progress message count what the last try
//! changed. A bulk tagging acts as the staff member who asked, with the data scope they
//! have when it runs (one who is no longer active: the job is dead, nothing tagged).

use serde::{Deserialize, Serialize};
use siyu_audience::Condition;
use siyu_domain::audience::{TagId, TagOrigin, TagRuleId, TaggingResult};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::TenantId;
use siyu_domain::jobs::kind;
use siyu_store::{StoreError, TenantScope};

use crate::acting::scope_of;
use crate::audience::{AudienceError, Audiences};
use crate::{JobContext, JobError, JobHandler, Services, handler_fn};

/// Customers tagged per part (one transaction each).
pub const PART: usize = 2_000;

/// What a bulk tagging job does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BulkTagging {
    /// Who: a saved segment (`{"segment": id}`) or a definition, in the JSON form.
    pub condition: Condition,
    pub add: Vec<TagId>,
    pub remove: Vec<TagId>,
    pub reason: Option<String>,
    pub origin: TagOrigin,
    /// Who asked: the job acts as them, within their data scope.
    pub actor: Actor,
}

/// What a tag rule's backfill does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleBackfill {
    pub rule_id: i64,
}

pub fn bulk_tagging(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::BULK_TAGGING, move |ctx| {
        let services = services.clone();
        async move {
            let job: BulkTagging = ctx.payload()?;
            let tenant = tenant_of(&ctx)?;
            let scope = scope_of(&services.store, tenant, &job.actor).await?;
            let members = matching(&services.audiences, &scope, &job.condition).await?;
            tag_in_parts(&ctx, &scope, &members, |scope, part| {
                let job = job.clone();
                async move {
                    scope
                        .change_tags(
                            &part,
                            &job.add,
                            &job.remove,
                            job.origin,
                            job.reason.as_deref(),
                            &job.actor,
                        )
                        .await
                }
            })
            .await
        }
    })
}

pub fn rule_backfill(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::TAG_RULE_BACKFILL, move |ctx| {
        let services = services.clone();
        async move {
            let job: RuleBackfill = ctx.payload()?;
            let tenant = tenant_of(&ctx)?;
            let scope = services.store.tenant(tenant);
            let rule = match scope.get_tag_rule(TagRuleId(job.rule_id)).await {
                Ok(rule) if rule.enabled => rule,
                // deleted or disabled since: nothing to apply
                Ok(_) | Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let condition: Condition = serde_json::from_value(rule.condition.clone())
                .map_err(|e| JobError::permanent(format!("the rule's condition: {e}")))?;
            let members = matching(&services.audiences, &scope, &condition).await?;
            let actor = Actor::system(format!("tag rule {}", rule.id.0));
            let reason = format!("tag rule {}", rule.name);
            tag_in_parts(&ctx, &scope, &members, |scope, part| {
                let (rule, actor, reason) = (rule.clone(), actor.clone(), reason.clone());
                async move {
                    scope
                        .change_tags(
                            &part,
                            &rule.add,
                            &rule.remove,
                            TagOrigin::Rule,
                            Some(&reason),
                            &actor,
                        )
                        .await
                }
            })
            .await
        }
    })
}

pub(crate) fn tenant_of(ctx: &JobContext) -> Result<TenantId, JobError> {
    ctx.job
        .tenant
        .ok_or_else(|| JobError::permanent("a tagging job belongs to a tenant"))
}

/// Who matches now, within the scope's reach, in order.
pub(crate) async fn matching(
    audiences: &Audiences,
    scope: &TenantScope<'_>,
    condition: &Condition,
) -> Result<Vec<CustomerId>, JobError> {
    let (members, audience) = audiences
        .evaluate(scope, condition)
        .await
        .map_err(|e| match e {
            AudienceError::Store(e) => JobError::from(e),
            // a segment deleted since, a tag renamed away: it will not get better
            other => JobError::permanent(other),
        })?;
    let mut ids = audience.read(scope).ids(&members, usize::MAX);
    ids.sort_unstable();
    Ok(ids.into_iter().map(CustomerId).collect())
}

async fn tag_in_parts<'s, F, Fut>(
    ctx: &JobContext,
    scope: &TenantScope<'s>,
    members: &[CustomerId],
    change: F,
) -> Result<(), JobError>
where
    F: Fn(TenantScope<'s>, Vec<CustomerId>) -> Fut,
    Fut: std::future::Future<Output = Result<TaggingResult, StoreError>>,
{
    let total = members.len() as i64;
    let (mut added, mut removed) = (0u64, 0u64);
    ctx.progress(0, Some(total), Some("started")).await?;
    let mut done = 0i64;
    for part in members.chunks(PART) {
        let result = change(scope.clone(), part.to_vec())
            .await
            .map_err(|e| match e {
                StoreError::Domain(_) => JobError::permanent(e),
                other => JobError::from(other),
            })?;
        added += result.added;
        removed += result.removed;
        done += part.len() as i64;
        ctx.progress(
            done,
            Some(total),
            Some(&format!("added {added}, removed {removed}")),
        )
        .await?;
    }
    Ok(())
}
