//! Orders in a currency the tenant has no exchange rate for are refused before a group
//! begins, so their message ids stay free for a resend once a rate is set.

use std::collections::HashMap;

use siyu_domain::DomainError;
use siyu_domain::currency::{CurrencySettings, ExchangeRate};
use siyu_domain::ids::TenantId;
use siyu_domain::order::Commerce;

use crate::tx::Tx;
use crate::{Result, Store, StoreError};

use crate::tracked::IngestItem;

/// Says, per item, why it would be refused: an order in a currency with no exchange
/// rate to the tenant currency (neither its own nor the tenant's, nor one it was
/// recorded with before). Also gives the currency settings of the tenants with orders.
/// The currency and rate of orders recorded before, by order id.
pub(super) type StoredCurrencies = HashMap<String, (String, ExchangeRate)>;

/// What [`currency_refusals`] finds: each tenant's currency settings, the orders
/// recorded before, and why each item would be refused.
pub(super) type CurrencyCheck = (
    HashMap<TenantId, CurrencySettings>,
    HashMap<TenantId, StoredCurrencies>,
    Vec<Option<String>>,
);

pub(super) async fn currency_refusals(tx: &mut Tx, items: &[IngestItem]) -> Result<CurrencyCheck> {
    // the currency and rate of orders recorded before, which keep their rate
    let mut order_ids: HashMap<TenantId, Vec<&str>> = HashMap::new();
    for item in items {
        if let Some(Commerce::Completed(order)) = &item.event.commerce {
            order_ids
                .entry(item.source.tenant)
                .or_default()
                .push(&order.order_id);
        }
    }
    let mut currencies = HashMap::new();
    let mut stored = HashMap::new();
    for (tenant, ids) in order_ids {
        let settings = crate::orders::currency_settings(tx, tenant).await?;
        currencies.insert(tenant, settings);
        stored.insert(
            tenant,
            crate::orders::stored_currencies(tx, tenant, &ids).await?,
        );
    }
    let mut refused = Vec::with_capacity(items.len());
    for item in items {
        let Some(Commerce::Completed(order)) = &item.event.commerce else {
            refused.push(None);
            continue;
        };
        let tenant = item.source.tenant;
        let settings = &currencies[&tenant];
        let was = stored.get(&tenant).and_then(|s| s.get(&order.order_id));
        refused.push(match crate::orders::currency_of(settings, order, was) {
            Ok(_) => None,
            Err(StoreError::Domain(DomainError::Invalid(f))) => {
                Some(format!("properties.{}: {}", f.field, f.message))
            }
            Err(e) => return Err(e),
        });
    }
    Ok((currencies, stored, refused))
}

impl Store {
    /// Says, per item, why applying it would refuse it: an order in a currency with no
    /// exchange rate. Tracking calls ask before logging, so that such an event is
    /// refused in the answer rather than after it (applying checks again: the rates may
    /// change in between).
    ///
    /// The tenant's rates alone settle nearly every order (read once per tenant and kept
    /// a few seconds, see `recent`); only an order they would refuse is looked up, since
    /// it may keep the rate it was recorded with before.
    pub async fn currency_refusals(&self, items: &[IngestItem]) -> Result<Vec<Option<String>>> {
        let mut settings: HashMap<TenantId, CurrencySettings> = HashMap::new();
        let mut doubtful = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let Some(Commerce::Completed(order)) = &item.event.commerce else {
                continue;
            };
            let tenant = item.source.tenant;
            let rates = match settings.entry(tenant) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                // read again when applied, in the applying transaction
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.tenant(tenant).currency_settings_kept().await?)
                }
            };
            if crate::orders::currency_of(rates, order, None).is_err() {
                doubtful.push(index);
            }
        }
        let mut refused = vec![None; items.len()];
        if doubtful.is_empty() {
            return Ok(refused);
        }
        let subset: Vec<IngestItem> = doubtful.iter().map(|i| items[*i].clone()).collect();
        let mut tx = self.begin().await?;
        let (_, _, answers) = currency_refusals(&mut tx, &subset).await?;
        drop(tx);
        for (index, answer) in doubtful.into_iter().zip(answers) {
            refused[index] = answer;
        }
        Ok(refused)
    }
}
