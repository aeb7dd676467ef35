//! The `wecom.personal_tags` job: the personal tags (type 2) of a connector's contacts,
//! read in the background. `batch/get_by_user` carries corp tags only, so a minute after
//! a customer sync this job reads, with `get`, every contact whose personal tags were
//! never read or were read more than a week ago, [`BATCH`] contacts a turn and one turn
//! every [`PACE`]: 500 reads a minute, a tenth of WeCom's per-API minute limit, leaving
//! the rest to callbacks and profiles opened (which read at once). Between turns the job
//! waits without counting a try, so a corp of any size is read to the end; a restart
//! picks up the contacts still unread. A contact WeCom relates to no member any more
//! has its relations ended.

use std::time::Duration;

use serde::Deserialize;
use siyu_domain::audit::Actor;
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_store::NewJob;

use super::contacts::{ContactReading, read_contact};
use super::sync::client_for;
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// Contacts read in one turn.
pub const BATCH: i64 = 100;
/// The wait between turns.
pub const PACE: Duration = Duration::from_secs(12);
/// Personal tags older than this are read again.
pub const READ_AGAIN_AFTER_MS: i64 = 7 * 86_400_000;

#[derive(Deserialize)]
struct Payload {
    connector_id: ConnectorId,
}

/// The sweep's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    paced(services, PACE)
}

/// The sweep's handler with another wait between turns (tests).
pub fn paced(services: &Services, pace: Duration) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_PERSONAL_TAGS, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx, pace).await }
    })
}

/// How long after a sync its sweep starts: the sync has just used WeCom's limits hard,
/// and callbacks and profiles opened go first.
pub const AFTER_SYNC: Duration = Duration::from_secs(60);

/// Asks for a sweep of the connector's contacts `after` from now (one waits or runs at
/// a time), after the jobs that answer customers.
pub fn sweep_job(tenant: TenantId, id: ConnectorId, after: Duration) -> NewJob {
    NewJob::new(
        siyu_domain::jobs::kind::WECOM_PERSONAL_TAGS,
        serde_json::json!({ "connector_id": id.0 }),
    )
    .for_tenant(tenant)
    .with_priority(-1)
    .run_at(siyu_store::now_ms() + after.as_millis() as i64)
    .unique_key(format!("personal_tags:{}", id.0))
}

/// One turn of the sweep; `pace` is the wait before the next.
async fn run(services: &Services, ctx: JobContext, pace: Duration) -> Result<(), JobError> {
    let payload: Payload = ctx.payload()?;
    let tenant = ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("a personal tags sweep belongs to a tenant; this one to none")
    })?;
    let id = payload.connector_id;
    let (client, _) = client_for(services, tenant, id).await?;
    let scope = services.store.tenant(tenant);
    let actor = Actor::system(format!("WeCom connector {}", id.0));
    let read_before = siyu_store::now_ms() - READ_AGAIN_AFTER_MS;
    let (next, left) = scope.wecom_contacts_to_read(id, read_before, BATCH).await?;
    if next.is_empty() {
        return Ok(());
    }
    let context = scope.wecom_context(id, &actor).await?;
    for external in &next {
        if let ContactReading::Gone =
            read_contact(&client, &scope, id, &context, external, &actor).await?
        {
            // nobody in the corp has them any more: their relations end
            scope
                .store_wecom_contact(id, &context, external, &[], siyu_store::now_ms(), &actor)
                .await?;
        }
    }
    let left = left - next.len() as i64;
    if left <= 0 {
        return Ok(());
    }
    Err(JobError::Later {
        at: siyu_store::now_ms() + pace.as_millis() as i64,
        reason: format!("paced under WeCom's limits: {left} contacts' personal tags left to read"),
    })
}
