//! Segment definitions as requests give them: read from the text or the JSON form,
//! refused when they test personal data the caller may not see, a saved segment as a
//! condition, and one page of the customers an evaluated definition matches. Every route
//! that takes a definition (segments, the customer list and export, tag rules, bulk
//! tagging, score settings) reads it here.

use serde_json::Value;
use siyu_audience::Condition;
use siyu_domain::access::Permission;
use siyu_domain::audience::SegmentId;
use siyu_domain::customer::{Customer, CustomerId};
use siyu_domain::page::Page;
use siyu_store::TenantScope;

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;

/// Reads a definition given as text or as JSON (exactly one), and refuses one that tests
/// personal data the caller may not see ([`require_reveal_for_personal`]).
pub(crate) fn condition_of(
    auth: &Auth,
    text: Option<&str>,
    json: Option<&Value>,
) -> ApiResult<Condition> {
    let condition = parse_condition(text, json)?;
    require_reveal_for_personal(auth, &condition)?;
    Ok(condition)
}

/// Refuses (403) a condition that compares a personal-data field (a phone or e-mail
/// trait, or event property, by its name: [`siyu_domain::personal::is_personal_key`])
/// unless the caller holds `customers.reveal`: a count that answers whether a masked
/// phone contains `1381` gives the number back a digit at a time. `exists` stays
/// allowed.
pub(crate) fn require_reveal_for_personal(auth: &Auth, condition: &Condition) -> ApiResult<()> {
    if auth.principal.can(Permission::CustomersReveal) {
        return Ok(());
    }
    match personal_test(condition) {
        None => Ok(()),
        Some(field) => Err(ApiError::Forbidden(format!(
            "testing {field} needs the permission {}, which your role ({}) does not have; \
             `exists` is allowed",
            Permission::CustomersReveal,
            auth.principal.role
        ))),
    }
}

/// The first personal-data field a condition compares, as the language writes it.
fn personal_test(condition: &Condition) -> Option<String> {
    use siyu_audience::condition::TraitOp;
    use siyu_domain::personal::is_personal_key;
    match condition {
        Condition::And(parts) | Condition::Or(parts) => parts.iter().find_map(personal_test),
        Condition::Not(inner) => personal_test(inner),
        Condition::Trait(test)
            if is_personal_key(&test.key) && !matches!(test.test, TraitOp::Exists) =>
        {
            Some(format!("trait.{}", test.key))
        }
        Condition::Performed(performed) => performed
            .filters
            .iter()
            .find(|f| is_personal_key(&f.property))
            .map(|f| format!("the event property {}", f.property)),
        _ => None,
    }
}

/// Reads a definition given as text or as JSON (exactly one).
fn parse_condition(text: Option<&str>, json: Option<&Value>) -> ApiResult<Condition> {
    match (text, json) {
        (Some(text), None) => siyu_audience::parse(text).map_err(|e| ApiError::InvalidDefinition {
            line: Some(e.line),
            column: Some(e.column),
            part: None,
            message: e.to_string(),
        }),
        (None, Some(json)) => {
            let condition: Condition = serde_path_to_error::deserialize(json).map_err(|e| {
                ApiError::InvalidDefinition {
                    line: None,
                    column: None,
                    part: Some(e.path().to_string()),
                    message: format!("condition.{}: {}", e.path(), e.inner()),
                }
            })?;
            // the same bounds the text form has
            siyu_audience::parse(&condition.to_string()).map_err(|e| {
                ApiError::InvalidDefinition {
                    line: None,
                    column: None,
                    part: None,
                    message: e.message,
                }
            })?;
            Ok(condition)
        }
        _ => Err(ApiError::field(
            "definition",
            "give the definition as text (definition) or as JSON (condition), one of them",
        )),
    }
}

/// A saved segment as a condition (dynamic or static alike).
pub(crate) async fn segment_condition(
    scope: &TenantScope<'_>,
    id: SegmentId,
) -> ApiResult<Condition> {
    scope.get_segment(id).await?;
    Ok(Condition::Segment(id.0))
}

/// One page, in id order, of the customers of an evaluated set (a segment's members, a
/// filtered customer list), masked. The index may lag the database by a moment, so each
/// customer is checked against the caller's data scope again as read.
pub(crate) async fn members_page(
    scope: &TenantScope<'_>,
    audience: &siyu_runtime::audience::TenantAudience,
    members: &roaring::RoaringBitmap,
    page: siyu_domain::page::PageRequest,
) -> ApiResult<Page<Customer>> {
    let ids: Vec<i64> = {
        let index = audience.read(scope);
        index.ids_after(members, page.after_id(), page.fetch_limit() as usize)
    };
    let shown: Vec<CustomerId> = ids
        .iter()
        .take(page.limit as usize)
        .map(|id| CustomerId(*id))
        .collect();
    let customers = scope
        .customers_by_ids(&shown)
        .await?
        .into_iter()
        .map(Customer::masked)
        .collect();
    Ok(Page::from_ids(customers, &ids, page))
}
