//! What a handler adds to the data scope the store already applies (`Auth::scope`):
//! routes that need the whole tenant, and revealing personal data (audited).

use serde_json::json;
use siyu_domain::access::Permission;
use siyu_domain::audit::{AuditRecord, action};
use siyu_domain::customer::CustomerId;
use siyu_store::TenantScope;

use crate::error::ApiResult;
use crate::extract::Auth;

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
            AuditRecord::new(action::CUSTOMER_REVEALED, "customer", customer)
                .with_details(json!({"fields": fields})),
        )
        .await?;
    Ok(true)
}

/// Lists of customer ids across the tenant (entries, stage changes) and tenant-wide
/// rules need a data scope over all customers.
pub(crate) fn require_tenant_scope(scope: &TenantScope<'_>) -> ApiResult<()> {
    Ok(scope.check_tenant_wide("this")?)
}
