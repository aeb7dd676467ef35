//! Jobs that act for the person who asked: with the data scope that person has when
//! the job runs (narrowed since, the job does less; no longer active, it does nothing).

use siyu_domain::audit::{Actor, ActorKind};
use siyu_domain::ids::{StaffId, TenantId};
use siyu_store::{Store, StoreError, TenantScope};

use crate::JobError;

/// The scope the actor has now: a staff member's current data scope, else the tenant.
pub(crate) async fn scope_of<'s>(
    store: &'s Store,
    tenant: TenantId,
    actor: &Actor,
) -> Result<TenantScope<'s>, JobError> {
    match (actor.kind, actor.id) {
        (ActorKind::Staff, Some(staff)) => match store.scope_of_staff(tenant, StaffId(staff)).await
        {
            Ok(scope) => Ok(scope),
            Err(e @ (StoreError::NotFound(_) | StoreError::Conflict(_))) => {
                Err(JobError::permanent(e))
            }
            Err(e) => Err(e.into()),
        },
        _ => Ok(store.tenant(tenant)),
    }
}
