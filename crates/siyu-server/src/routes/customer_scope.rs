//! The caller's data scope over customers: whose customers they see (their own, those
//! of their unit subtree's staff, or the whole tenant), whether one customer is among
//! them, routes that need the whole tenant, and revealing personal data (audited).

use serde_json::json;
use siyu_domain::access::{DataScope, Permission, PrincipalKind};
use siyu_domain::audit::AuditRecord;
use siyu_domain::customer::{Customer, CustomerId};
use siyu_domain::ids::StaffId;
use siyu_domain::tenancy::unit_subtree;
use siyu_store::TenantScope;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;

/// The staff whose customers the caller sees; `None` for all.
pub(crate) async fn visible_owners(
    auth: &Auth,
    scope: &TenantScope<'_>,
) -> ApiResult<Option<Vec<StaffId>>> {
    match &auth.principal.kind {
        PrincipalKind::ApiToken { .. } => Ok(None),
        PrincipalKind::Staff {
            staff_id,
            unit_id,
            data_scope,
            ..
        } => match data_scope {
            DataScope::Tenant => Ok(None),
            DataScope::Own => Ok(Some(vec![*staff_id])),
            DataScope::UnitSubtree => {
                let units = unit_subtree(*unit_id, &scope.unit_parents().await?);
                Ok(Some(scope.staff_ids_in_units(&units).await?))
            }
        },
    }
}

/// Checks that the caller's data scope covers the customer (404 when it does not: the
/// customer is not theirs to know of).
pub(crate) async fn check_visible(
    auth: &Auth,
    scope: &TenantScope<'_>,
    customer: &Customer,
) -> ApiResult<()> {
    if let Some(owners) = visible_owners(auth, scope).await?
        && !customer.owner_staff_id.is_some_and(|o| owners.contains(&o))
    {
        return Err(ApiError::NotFound("customer"));
    }
    Ok(())
}

/// The customer at `id` if the caller's data scope covers it.
pub(crate) async fn visible_customer(
    auth: &Auth,
    scope: &TenantScope<'_>,
    id: i64,
) -> ApiResult<Customer> {
    let customer = scope.get_customer(CustomerId(id)).await?;
    check_visible(auth, scope, &customer).await?;
    Ok(customer)
}

/// Whether to show personal data in full: only when asked (`?reveal=true`), and then
/// only to roles with `customers.reveal`, audited against the customer with what was
/// shown (`fields`: `["phone", "email"]`, `["timeline"]`, `["order"]`).
pub(crate) async fn reveal_for(
    auth: &Auth,
    scope: &TenantScope<'_>,
    customer: CustomerId,
    reveal: Option<bool>,
    fields: &[&str],
) -> ApiResult<bool> {
    if !reveal.unwrap_or(false) {
        return Ok(false);
    }
    auth.require(Permission::CustomersReveal)?;
    scope
        .audit(
            auth.actor(),
            AuditRecord::new("customer.revealed", "customer", customer)
                .with_details(json!({"fields": fields})),
        )
        .await?;
    Ok(true)
}

/// Lists of customer ids across the tenant (entries, stage changes) and tenant-wide
/// rules need a data scope over all customers.
pub(crate) async fn require_tenant_scope(app: &AppState, auth: &Auth) -> ApiResult<()> {
    let scope = app.store.tenant(auth.principal.tenant_id);
    if visible_owners(auth, &scope).await?.is_some() {
        return Err(ApiError::Forbidden(
            "this needs a data scope over all customers".into(),
        ));
    }
    Ok(())
}
