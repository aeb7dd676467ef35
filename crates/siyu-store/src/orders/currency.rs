//! The tenant currency and exchange rates orders are counted in.

use std::collections::HashMap;

use siyu_domain::audit::Actor;
use siyu_domain::currency::{CurrencySettings, ExchangeRate};
use siyu_domain::ids::TenantId;
use siyu_domain::order::NewOrder;

use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// A tenant's currency and exchange rates (CNY and none, unless set).
pub(crate) async fn currency_settings(tx: &mut Tx, tenant: TenantId) -> Result<CurrencySettings> {
    let stored: Option<String> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.0)
            .bind(CurrencySettings::KEY)
            .fetch_optional(&mut *c)
            .await?
    });
    parse_currency_settings(tenant, stored)
}

fn parse_currency_settings(tenant: TenantId, stored: Option<String>) -> Result<CurrencySettings> {
    match stored {
        None => Ok(CurrencySettings::default()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("currency settings of tenant {tenant}: {e}"))),
    }
}

/// The currency an order is in and its rate to the tenant currency, given what was
/// recorded of it before (see `CurrencySettings::rate_of_order`): refused (invalid input)
/// when its currency has no rate or it would count for too much.
pub(crate) fn currency_of(
    settings: &CurrencySettings,
    order: &NewOrder,
    stored: Option<&(String, ExchangeRate)>,
) -> Result<(String, ExchangeRate)> {
    Ok(settings.rate_of_order(
        order.currency.as_deref(),
        order.exchange_rate,
        order.amount,
        stored.map(|(currency, rate)| (currency.as_str(), *rate)),
    )?)
}

#[derive(sqlx::FromRow)]
struct StoredCurrencyRow {
    order_id: String,
    currency: String,
    exchange_rate_micros: i64,
}

/// The currency and rate each of these orders was recorded at, by order id (those
/// recorded; one statement per few hundred).
pub(crate) async fn stored_currencies(
    tx: &mut Tx,
    tenant: TenantId,
    order_ids: &[&str],
) -> Result<HashMap<String, (String, ExchangeRate)>> {
    let mut found = HashMap::new();
    for chunk in order_ids.chunks(200) {
        let mut p = Placeholders::for_tx(tx);
        let tenant_p = p.next();
        let sql = format!(
            "SELECT order_id, currency, exchange_rate_micros FROM orders \
             WHERE tenant_id = {tenant_p} AND order_id IN {}",
            p.row(chunk.len())
        );
        let rows: Vec<StoredCurrencyRow> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql).bind(tenant.0);
            for id in chunk {
                query = query.bind(*id);
            }
            query.fetch_all(&mut *c).await?
        });
        for r in rows {
            let rate = ExchangeRate::from_micros(r.exchange_rate_micros);
            found.insert(r.order_id, (r.currency, rate));
        }
    }
    Ok(found)
}

/// Checks, before anything is written, that an order can be recorded at a rate.
pub(crate) async fn check_currency_of(
    tx: &mut Tx,
    tenant: TenantId,
    settings: &CurrencySettings,
    order: &NewOrder,
) -> Result<()> {
    let stored = stored_currencies(tx, tenant, &[order.order_id.as_str()]).await?;
    currency_of(settings, order, stored.get(&order.order_id)).map(|_| ())
}

impl TenantScope<'_> {
    /// The tenant's currency and exchange rates.
    pub async fn currency_settings(&self) -> Result<CurrencySettings> {
        let stored: Option<String> = crate::on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2",
            )
            .bind(self.tenant.0)
            .bind(CurrencySettings::KEY)
            .fetch_optional(db)
            .await?
        });
        parse_currency_settings(self.tenant, stored)
    }

    /// The tenant's currency and rates as read within the last few seconds (see
    /// `recent`): for checks that are made again where it matters.
    pub(crate) async fn currency_settings_kept(&self) -> Result<CurrencySettings> {
        if let Some(rates) = self.store.recent.currencies.get(&self.tenant) {
            return Ok(rates);
        }
        let rates = self.currency_settings().await?;
        self.store.recent.currencies.put(self.tenant, rates.clone());
        Ok(rates)
    }

    /// Sets the tenant's currency and exchange rates (checked by the caller). The
    /// currency cannot change once there are orders: their figures are kept in it.
    /// New rates apply to orders recorded from then on. Audited.
    pub async fn set_currency_settings(
        &self,
        settings: &CurrencySettings,
        actor: &Actor,
    ) -> Result<()> {
        // in turn with ingestion and order recording, so no order is recorded in the
        // old currency after the check below
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let current = currency_settings(&mut tx, self.tenant).await?;
        if current.currency != settings.currency {
            let orders: Option<i64> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar("SELECT id FROM orders WHERE tenant_id = $1 LIMIT 1")
                    .bind(self.tenant.0)
                    .fetch_optional(&mut *c)
                    .await?
            });
            if orders.is_some() {
                return Err(StoreError::Conflict(format!(
                    "the tenant's orders are kept in {}; its currency cannot change once there are orders",
                    current.currency
                )));
            }
        }
        let value = serde_json::to_value(settings)
            .map_err(|e| StoreError::Corrupt(format!("currency settings: {e}")))?;
        crate::settings::put_setting_tx(&mut tx, self.tenant, CurrencySettings::KEY, &value, actor)
            .await?;
        tx.commit().await?;
        self.store.recent.currencies.forget(&self.tenant);
        Ok(())
    }
}
