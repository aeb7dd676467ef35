//! Orders and after-sales, and the per-customer purchase figures they keep current.
//!
//! An order is keyed by the brand's order id: recording it again (an API retry, the
//! `Order Completed` event of an order already posted, a re-import) updates it instead of
//! adding a second one. Refunds are after-sales; the order's refunded amount and status
//! follow from its completed refunds and returns. After every change the customer's
//! figures (`order_count`, `order_total`, first and last order time) are recomputed from
//! their orders in the same transaction, so they can never drift from the orders.

use std::collections::HashMap;

use serde_json::{Map, Value};
use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, AuditRecord};
use siyu_domain::currency::{CurrencySettings, ExchangeRate};
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::Identity;
use siyu_domain::ids::{TenantId, UnitId};
use siyu_domain::order::{
    AfterSale, AfterSaleId, AfterSaleKind, AfterSaleStatus, NewOrder, Order, OrderItem, OrderRef,
    OrderStatus, SalesChannel, status_after_refunds,
};
use siyu_domain::page::{Page, PageRequest};

use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError, TenantScope, insert_audit, now_ms};

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    order_id: String,
    customer_id: i64,
    unit_id: Option<i64>,
    channel: String,
    status: String,
    currency: String,
    exchange_rate_micros: i64,
    amount: i64,
    refunded_amount: i64,
    items: String,
    properties: String,
    ordered_at: i64,
    paid_at: Option<i64>,
    refunded_at: Option<i64>,
    origin: String,
    created_at: i64,
    updated_at: i64,
}

pub(crate) const ORDER_COLUMNS: &str = "id, order_id, customer_id, unit_id, channel, status, \
     currency, exchange_rate_micros, amount, refunded_amount, items, properties, ordered_at, paid_at, refunded_at, \
     origin, created_at, updated_at";

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;

    fn try_from(r: OrderRow) -> Result<Order> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("order {}: {what}", r.id));
        let channel = SalesChannel::parse("channel", &r.channel).map_err(|_| corrupt("channel"))?;
        Ok(Order {
            id: OrderRef(r.id),
            customer_id: CustomerId(r.customer_id),
            unit_id: r.unit_id.map(UnitId),
            channel,
            domain_class: channel.domain_class(),
            status: OrderStatus::parse("status", &r.status).map_err(|_| corrupt("status"))?,
            currency: r.currency,
            exchange_rate: ExchangeRate::from_micros(r.exchange_rate_micros),
            amount: r.amount,
            refunded_amount: r.refunded_amount,
            items: serde_json::from_str::<Vec<OrderItem>>(&r.items)
                .map_err(|_| corrupt("items"))?,
            properties: serde_json::from_str::<Map<String, Value>>(&r.properties)
                .unwrap_or_default(),
            ordered_at: r.ordered_at,
            paid_at: r.paid_at,
            refunded_at: r.refunded_at,
            origin: r.origin,
            created_at: r.created_at,
            updated_at: r.updated_at,
            order_id: r.order_id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AfterSaleRow {
    id: i64,
    order_ref: i64,
    kind: String,
    status: String,
    amount: i64,
    reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const AFTER_SALE_COLUMNS: &str =
    "id, order_ref, kind, status, amount, reason, created_at, updated_at";

impl TryFrom<AfterSaleRow> for AfterSale {
    type Error = StoreError;

    fn try_from(r: AfterSaleRow) -> Result<AfterSale> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("after-sale {}: {what}", r.id));
        Ok(AfterSale {
            id: AfterSaleId(r.id),
            order: OrderRef(r.order_ref),
            kind: AfterSaleKind::parse("kind", &r.kind).map_err(|_| corrupt("kind"))?,
            status: AfterSaleStatus::parse("status", &r.status).map_err(|_| corrupt("status"))?,
            amount: r.amount,
            reason: r.reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Item JSON as stored: prices in minor units (the API shows major units).
fn items_json(items: &[OrderItem]) -> String {
    Value::Array(
        items
            .iter()
            .map(|i| {
                serde_json::json!({"sku": i.sku, "name": i.name, "category": i.category,
                    "price": i.price, "quantity": i.quantity})
            })
            .collect(),
    )
    .to_string()
}

/// Records an order (or updates the one with its order id) for `customer`, and
/// recomputes the customer's figures. Returns its id and whether it is new. An order id
/// already used for another customer is a conflict; a unit that does not exist is
/// invalid input.
pub(crate) async fn upsert_order(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    order: &NewOrder,
    origin: &str,
) -> Result<(OrderRef, bool)> {
    let settings = currency_settings(tx, tenant).await?;
    let recorded = upsert_order_row(tx, tenant, customer, order, &settings, origin).await?;
    refresh_order_stats(tx, tenant, customer).await?;
    Ok(recorded)
}

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
        let rows: Vec<(String, String, i64)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql).bind(tenant.0);
            for id in chunk {
                query = query.bind(*id);
            }
            query.fetch_all(&mut *c).await?
        });
        for (order_id, currency, micros) in rows {
            found.insert(order_id, (currency, ExchangeRate::from_micros(micros)));
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

/// [`upsert_order`] without recomputing the figures (ingestion does that once per
/// group for every customer who bought).
pub(crate) async fn upsert_order_row(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    order: &NewOrder,
    settings: &CurrencySettings,
    origin: &str,
) -> Result<(OrderRef, bool)> {
    if let Some(unit) = order.unit_id {
        let found: Option<i64> = on_tx!(tx, |c| {
            sqlx::query_scalar("SELECT id FROM units WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(unit.0)
                .fetch_optional(&mut *c)
                .await?
        });
        if found.is_none() {
            return Err(DomainError::invalid("unit_id", "no such unit").into());
        }
    }
    let now = now_ms();
    let items = items_json(&order.items);
    let properties = Value::Object(order.properties.clone()).to_string();
    let existing = existing_order(tx, tenant, &order.order_id).await?;
    if let Some(existing) = existing {
        return update_order_row(
            tx,
            tenant,
            customer,
            order,
            settings,
            existing,
            &items,
            &properties,
        )
        .await;
    }
    let (currency, rate) = currency_of(settings, order, None)?;
    let inserted: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO orders (tenant_id, order_id, customer_id, unit_id, channel, status, \
             currency, amount, items, properties, ordered_at, paid_at, origin, created_at, updated_at, \
             exchange_rate_micros, net_tenant_amount) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16) \
             ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING id",
        )
        .bind(tenant.0)
        .bind(&order.order_id)
        .bind(customer.0)
        .bind(order.unit_id.map(|u| u.0))
        .bind(order.channel.as_str())
        .bind(order.status.as_str())
        .bind(&currency)
        .bind(order.amount)
        .bind(&items)
        .bind(&properties)
        .bind(order.ordered_at)
        .bind(order.paid_at)
        .bind(origin)
        .bind(now)
        .bind(rate.micros())
        .bind(rate.convert(order.amount))
        .fetch_optional(&mut *c)
        .await?
    });
    if let Some(id) = inserted {
        return Ok((OrderRef(id), true));
    }
    // recorded meanwhile by another transaction
    let existing = existing_order(tx, tenant, &order.order_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("order {} vanished", order.order_id)))?;
    update_order_row(
        tx,
        tenant,
        customer,
        order,
        settings,
        existing,
        &items,
        &properties,
    )
    .await
}

/// Inserts orders not recorded before, many to a statement (ingestion records the
/// orders of a group of events so); says, per order, whether it was inserted. An order
/// not inserted (recorded meanwhile, or refused for its currency) is for
/// [`upsert_order_row`] to record or refuse. Orders naming a unit go there too, since
/// the unit must be checked.
pub(crate) async fn insert_new_orders(
    tx: &mut Tx,
    tenant: TenantId,
    orders: &[(CustomerId, &NewOrder)],
    settings: &CurrencySettings,
    origin: &str,
) -> Result<Vec<bool>> {
    /// Columns bound per order.
    const COLUMNS: usize = 16;
    let now = now_ms();
    let mut inserted = vec![false; orders.len()];
    // the orders that can go in as they are, with their currency and rate
    let ready: Vec<(usize, String, ExchangeRate)> = orders
        .iter()
        .enumerate()
        .filter(|(_, (_, order))| order.unit_id.is_none())
        .filter_map(|(at, (_, order))| {
            currency_of(settings, order, None)
                .ok()
                .map(|(currency, rate)| (at, currency, rate))
        })
        .collect();
    for chunk in ready.chunks(MULTI_ROW_ORDERS) {
        let mut p = Placeholders::for_tx(tx);
        let rows: Vec<String> = chunk.iter().map(|_| p.row(COLUMNS)).collect();
        let sql = format!(
            "INSERT INTO orders (tenant_id, order_id, customer_id, channel, status, currency, \
             amount, items, properties, ordered_at, paid_at, origin, created_at, updated_at, \
             exchange_rate_micros, net_tenant_amount) VALUES {} \
             ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING order_id",
            rows.join(",")
        );
        let got: Vec<String> = on_tx!(tx, |c| {
            let mut query = sqlx::query_scalar(&sql);
            for (at, currency, rate) in chunk {
                let (customer, order) = orders[*at];
                query = query
                    .bind(tenant.0)
                    .bind(&order.order_id)
                    .bind(customer.0)
                    .bind(order.channel.as_str())
                    .bind(order.status.as_str())
                    .bind(currency)
                    .bind(order.amount)
                    .bind(items_json(&order.items))
                    .bind(Value::Object(order.properties.clone()).to_string())
                    .bind(order.ordered_at)
                    .bind(order.paid_at)
                    .bind(origin)
                    .bind(now)
                    .bind(now)
                    .bind(rate.micros())
                    .bind(rate.convert(order.amount));
            }
            query.fetch_all(&mut *c).await?
        });
        let got: std::collections::HashSet<String> = got.into_iter().collect();
        for (at, _, _) in chunk {
            inserted[*at] = got.contains(&orders[*at].1.order_id);
        }
    }
    Ok(inserted)
}

/// Orders inserted by one multi-row statement at most.
const MULTI_ROW_ORDERS: usize = 200;

/// An order as recorded: id, customer, refunded amount, currency, rate.
type ExistingOrder = (i64, i64, i64, String, i64);

async fn existing_order(
    tx: &mut Tx,
    tenant: TenantId,
    order_id: &str,
) -> Result<Option<ExistingOrder>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, customer_id, refunded_amount, currency, exchange_rate_micros FROM orders \
             WHERE tenant_id = $1 AND order_id = $2",
        )
        .bind(tenant.0)
        .bind(order_id)
        .fetch_optional(&mut *c)
        .await?
    }))
}

/// Updates a recorded order to what was sent again; its rate stays as recorded unless
/// the order brings its own or changes currency.
#[allow(clippy::too_many_arguments)]
async fn update_order_row(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    order: &NewOrder,
    settings: &CurrencySettings,
    (id, owner, refunded, was_currency, was_rate): ExistingOrder,
    items: &str,
    properties: &str,
) -> Result<(OrderRef, bool)> {
    if owner != customer.0 {
        return Err(StoreError::Conflict(format!(
            "order {} belongs to another customer",
            order.order_id
        )));
    }
    let stored = (was_currency, ExchangeRate::from_micros(was_rate));
    let (currency, rate) = currency_of(settings, order, Some(&stored))?;
    let status = status_after_refunds(order.status, order.amount, refunded);
    let now = now_ms();
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE orders SET unit_id = $1, channel = $2, status = $3, currency = $4, amount = $5, \
             items = $6, properties = $7, ordered_at = $8, paid_at = $9, updated_at = $10, \
             exchange_rate_micros = $13, net_tenant_amount = $14 \
             WHERE tenant_id = $11 AND id = $12",
        )
        .bind(order.unit_id.map(|u| u.0))
        .bind(order.channel.as_str())
        .bind(status.as_str())
        .bind(&currency)
        .bind(order.amount)
        .bind(items)
        .bind(properties)
        .bind(order.ordered_at)
        .bind(order.paid_at)
        .bind(now)
        .bind(tenant.0)
        .bind(id)
        .bind(rate.micros())
        .bind(rate.convert(order.amount - refunded))
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok((OrderRef(id), false))
}

/// Recomputes a customer's purchase figures from their orders.
pub(crate) async fn refresh_order_stats(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<()> {
    refresh_order_stats_of(tx, tenant, &[customer]).await
}

/// Recomputes the purchase figures of several customers from their orders, in one
/// statement per few hundred customers.
pub(crate) async fn refresh_order_stats_of(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[CustomerId],
) -> Result<()> {
    let mut customers = customers.to_vec();
    customers.sort();
    customers.dedup();
    // every order change passes here: the audience indexes follow it
    crate::audiences::note_changed(tx, tenant, &customers).await?;
    let counting = OrderStatus::COUNTING_SQL;
    let of = |what: &str| {
        format!(
            "(SELECT {what} FROM orders o WHERE o.tenant_id = customers.tenant_id \
             AND o.customer_id = customers.id AND o.status IN {counting})"
        )
    };
    for chunk in customers.chunks(200) {
        // ids are our own integers: inlined
        let list = chunk
            .iter()
            .map(|c| c.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "UPDATE customers SET order_count = {}, order_total = {}, first_order_at = {}, \
             last_order_at = {} WHERE tenant_id = $1 AND id IN ({list})",
            of("COUNT(*)"),
            // in the tenant currency: each order's amount less refunds, converted
            of("COALESCE(SUM(o.net_tenant_amount), 0)"),
            of("MIN(o.ordered_at)"),
            of("MAX(o.ordered_at)"),
        );
        on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(tenant.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    Ok(())
}

/// Sets an order's refunded amount and status from its completed refunds and returns,
/// then the customer's figures. Returns the order's customer.
async fn apply_refunds(tx: &mut Tx, tenant: TenantId, order: OrderRef) -> Result<CustomerId> {
    let (customer, amount, status, refunded_at, rate): (i64, i64, String, Option<i64>, i64) =
        on_tx!(tx, |c| {
            sqlx::query_as(
                "SELECT customer_id, amount, status, refunded_at, exchange_rate_micros FROM orders \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(order.0)
            .fetch_one(&mut *c)
            .await?
        });
    let refunded: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM after_sales WHERE tenant_id = $1 AND order_ref = $2 \
             AND status = 'completed' AND kind IN ('refund', 'return')",
        )
        .bind(tenant.0)
        .bind(order.0)
        .fetch_one(&mut *c)
        .await?
    });
    let status = OrderStatus::parse("status", &status)
        .map_err(|_| StoreError::Corrupt(format!("order {order}: status")))?;
    let new_status = status_after_refunds(status, amount, refunded);
    let refunded_at = if refunded > 0 {
        Some(refunded_at.unwrap_or_else(now_ms))
    } else {
        None
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE orders SET refunded_amount = $1, status = $2, refunded_at = $3, updated_at = $4, \
             net_tenant_amount = $7 WHERE tenant_id = $5 AND id = $6",
        )
        .bind(refunded)
        .bind(new_status.as_str())
        .bind(refunded_at)
        .bind(now_ms())
        .bind(tenant.0)
        .bind(order.0)
        .bind(ExchangeRate::from_micros(rate).convert(amount - refunded))
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    refresh_order_stats(tx, tenant, CustomerId(customer)).await?;
    Ok(CustomerId(customer))
}

async fn order_row_tx(tx: &mut Tx, tenant: TenantId, order: OrderRef) -> Result<Order> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2");
    let row: Option<OrderRow> = on_tx!(tx, |c| {
        sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(order.0)
            .fetch_optional(&mut *c)
            .await?
    });
    row.ok_or(StoreError::NotFound("order"))?.try_into()
}

/// Checks an after-sale against its order: an exchange returns no money; money returned
/// never exceeds what was paid less what was refunded already.
fn check_after_sale(
    order: &Order,
    kind: AfterSaleKind,
    status: AfterSaleStatus,
    amount: i64,
) -> Result<()> {
    if kind == AfterSaleKind::Exchange && amount != 0 {
        return Err(DomainError::invalid("amount", "an exchange returns no money; use 0").into());
    }
    if amount > 0 && !order.status.counts() {
        return Err(DomainError::invalid(
            "amount",
            format!(
                "the order is {}: there is no payment to return",
                order.status.as_str()
            ),
        )
        .into());
    }
    if status == AfterSaleStatus::Completed && amount > order.amount - order.refunded_amount {
        return Err(DomainError::invalid(
            "amount",
            format!(
                "is more than the {:.2} left to refund",
                (order.amount - order.refunded_amount) as f64 / 100.0
            ),
        )
        .into());
    }
    Ok(())
}

async fn insert_after_sale(
    tx: &mut Tx,
    tenant: TenantId,
    order: OrderRef,
    kind: AfterSaleKind,
    status: AfterSaleStatus,
    amount: i64,
    reason: Option<&str>,
) -> Result<AfterSaleId> {
    let now = now_ms();
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO after_sales (tenant_id, order_ref, kind, status, amount, reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(tenant.0)
        .bind(order.0)
        .bind(kind.as_str())
        .bind(status.as_str())
        .bind(amount)
        .bind(reason)
        .bind(now)
        .fetch_one(&mut *c)
        .await?
    });
    Ok(AfterSaleId(id))
}

/// An `Order Refunded` event of `customer`: a completed refund of `amount` (all that is
/// left when absent) on their order with this order id. An unknown order, another
/// customer's order (a tracking source may not touch it), an unpaid one, or one fully
/// refunded already, changes nothing.
pub(crate) async fn refund_order(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    order_id: &str,
    amount: Option<i64>,
    reason: Option<&str>,
) -> Result<()> {
    let found: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT id FROM orders WHERE tenant_id = $1 AND order_id = $2")
            .bind(tenant.0)
            .bind(order_id)
            .fetch_optional(&mut *c)
            .await?
    });
    let Some(id) = found else { return Ok(()) };
    let order = order_row_tx(tx, tenant, OrderRef(id)).await?;
    if order.customer_id != customer || !order.status.counts() {
        return Ok(());
    }
    let left = order.amount - order.refunded_amount;
    let amount = amount.unwrap_or(left).min(left);
    if amount <= 0 {
        return Ok(());
    }
    insert_after_sale(
        tx,
        tenant,
        order.id,
        AfterSaleKind::Refund,
        AfterSaleStatus::Completed,
        amount,
        reason,
    )
    .await?;
    apply_refunds(tx, tenant, order.id).await?;
    Ok(())
}

/// Moves a merged profile's orders to the survivor and recomputes its figures.
pub(crate) async fn move_orders(
    tx: &mut Tx,
    tenant: TenantId,
    from: CustomerId,
    to: CustomerId,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE orders SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3")
            .bind(to.0)
            .bind(tenant.0)
            .bind(from.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    refresh_order_stats(tx, tenant, from).await?;
    refresh_order_stats(tx, tenant, to).await
}

/// Which orders to list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub customer: Option<CustomerId>,
    pub unit: Option<UnitId>,
    pub channel: Option<SalesChannel>,
    pub status: Option<OrderStatus>,
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
        crate::audiences::put_setting_tx(
            &mut tx,
            self.tenant,
            CurrencySettings::KEY,
            &value,
            actor,
        )
        .await?;
        tx.commit().await?;
        self.store.recent.currencies.forget(&self.tenant);
        Ok(())
    }

    /// Records an order for a customer (a merged profile's id leads to the survivor).
    /// Returns the order and whether it is new.
    pub async fn record_order(
        &self,
        customer: CustomerId,
        order: &NewOrder,
        origin: &str,
    ) -> Result<(Order, bool)> {
        let customer = self.get_customer(customer).await?.id;
        // in turn with ingestion and currency changes, which read what it changes
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let (id, created) = upsert_order(&mut tx, self.tenant, customer, order, origin).await?;
        let order = order_row_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        Ok((order, created))
    }

    /// Records an order for the customer an identity names, making a profile with that
    /// identity if there is none yet.
    pub async fn record_order_for(
        &self,
        identity: &Identity,
        order: &NewOrder,
        origin: &str,
    ) -> Result<(Order, bool)> {
        // an order that will be refused makes no profile
        let mut tx = self.store.begin().await?;
        let settings = currency_settings(&mut tx, self.tenant).await?;
        check_currency_of(&mut tx, self.tenant, &settings, order).await?;
        tx.commit().await?;
        let customer = self.ensure_customer(identity).await?;
        self.record_order(customer, order, origin).await
    }

    /// Orders by internal id (ids from this tenant's own rows).
    pub(crate) async fn orders_by_ids(&self, ids: &[i64]) -> Result<Vec<Order>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql =
            format!("SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id IN ({list})");
        let rows: Vec<OrderRow> = crate::on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(Order::try_from).collect()
    }

    pub async fn get_order(&self, id: OrderRef) -> Result<Order> {
        let mut tx = self.store.begin().await?;
        let order = order_row_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Orders, newest first (by internal id), filtered.
    pub async fn list_orders(
        &self,
        filter: &OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        let before = page.after.unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id < $2 \
             AND ($3 IS NULL OR customer_id = $3) AND ($4 IS NULL OR unit_id = $4) \
             AND ($5 IS NULL OR channel = $5) AND ($6 IS NULL OR status = $6) \
             ORDER BY id DESC LIMIT $7"
        );
        let rows: Vec<OrderRow> = crate::on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(before)
                .bind(filter.customer.map(|c| c.0))
                .bind(filter.unit.map(|u| u.0))
                .bind(filter.channel.map(|c| c.as_str()))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let orders = rows
            .into_iter()
            .map(Order::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(orders, page, |o| o.id.0))
    }

    /// Records an after-sale against an order; a completed refund or return changes the
    /// order's refunded amount and status and the customer's figures. Audited.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_after_sale(
        &self,
        order: OrderRef,
        kind: AfterSaleKind,
        status: AfterSaleStatus,
        amount: i64,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<AfterSale> {
        // in turn with ingestion and orders: it changes the customer's figures from what
        // it reads (a deferred SQLite transaction that reads first would be refused the
        // write lock as "database is locked" under concurrency)
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let current = order_row_tx(&mut tx, self.tenant, order).await?;
        check_after_sale(&current, kind, status, amount)?;
        let id =
            insert_after_sale(&mut tx, self.tenant, order, kind, status, amount, reason).await?;
        apply_refunds(&mut tx, self.tenant, order).await?;
        on_tx!(&mut tx, |c| {
            insert_audit!(
                &mut *c,
                self.tenant,
                actor,
                AuditRecord::new("after_sale.recorded", "order", order).with_details(
                    serde_json::json!({"after_sale": id.0, "kind": kind.as_str(),
                        "status": status.as_str(), "amount": amount})
                )
            )?
            .rows_affected()
        });
        let after_sale = after_sale_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        Ok(after_sale)
    }

    /// Moves an after-sale on (requested → completed or rejected). Audited.
    pub async fn update_after_sale(
        &self,
        id: AfterSaleId,
        status: AfterSaleStatus,
        actor: &Actor,
    ) -> Result<AfterSale> {
        // in turn with ingestion and orders, as record_after_sale
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let current = after_sale_tx(&mut tx, self.tenant, id).await?;
        if current.status != AfterSaleStatus::Requested && current.status != status {
            return Err(StoreError::Conflict(format!(
                "the after-sale is {} already",
                current.status.as_str()
            )));
        }
        let order = order_row_tx(&mut tx, self.tenant, current.order).await?;
        if current.status != status {
            check_after_sale(&order, current.kind, status, current.amount)?;
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE after_sales SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(status.as_str())
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        apply_refunds(&mut tx, self.tenant, current.order).await?;
        on_tx!(&mut tx, |c| {
            insert_audit!(
                &mut *c,
                self.tenant,
                actor,
                AuditRecord::new("after_sale.updated", "order", current.order).with_details(
                    serde_json::json!({"after_sale": id.0, "status": status.as_str()})
                )
            )?
            .rows_affected()
        });
        let after_sale = after_sale_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        Ok(after_sale)
    }

    pub async fn get_after_sale(&self, id: AfterSaleId) -> Result<AfterSale> {
        let mut tx = self.store.begin().await?;
        let after_sale = after_sale_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        Ok(after_sale)
    }

    pub async fn list_after_sales(&self, order: OrderRef) -> Result<Vec<AfterSale>> {
        self.get_order(order).await?;
        let sql = format!(
            "SELECT {AFTER_SALE_COLUMNS} FROM after_sales WHERE tenant_id = $1 AND order_ref = $2 ORDER BY id"
        );
        let rows: Vec<AfterSaleRow> = crate::on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(order.0)
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(AfterSale::try_from).collect()
    }
}

async fn after_sale_tx(tx: &mut Tx, tenant: TenantId, id: AfterSaleId) -> Result<AfterSale> {
    let sql =
        format!("SELECT {AFTER_SALE_COLUMNS} FROM after_sales WHERE tenant_id = $1 AND id = $2");
    let row: Option<AfterSaleRow> = on_tx!(tx, |c| {
        sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *c)
            .await?
    });
    row.ok_or(StoreError::NotFound("after-sale"))?.try_into()
}
