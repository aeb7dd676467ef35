//! Orders and after-sales, and the per-customer purchase figures they keep current.
//!
//! An order is keyed by the brand's order id: recording it again (an API retry, the
//! `Order Completed` event of an order already posted, a re-import) updates it instead of
//! adding a second one. Refunds are after-sales; the order's refunded amount and status
//! follow from its completed refunds and returns. After every change the customer's
//! figures (`order_count`, `order_total`, first and last order time) are recomputed from
//! their orders in the same transaction, so they can never drift from the orders.

use serde_json::{Map, Value};
use siyu_domain::DomainError;
use siyu_domain::currency::{CurrencySettings, ExchangeRate};
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::Identity;
use siyu_domain::ids::{TenantId, UnitId};
use siyu_domain::order::{
    NewOrder, Order, OrderItem, OrderRef, OrderStatus, SalesChannel, status_after_refunds,
};
use siyu_domain::page::{Page, PageRequest};

use crate::db::now_ms;
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

mod after_sales;
mod currency;

pub(crate) use after_sales::refund_order;
pub(crate) use currency::{check_currency_of, currency_of, currency_settings, stored_currencies};

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

/// Item JSON as stored: prices in minor units (the API shows major units).
pub(super) fn items_json(items: &[OrderItem]) -> String {
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

/// An order as recorded, as far as recording it again needs.
#[derive(sqlx::FromRow)]
struct ExistingOrder {
    id: i64,
    customer_id: i64,
    refunded_amount: i64,
    currency: String,
    exchange_rate_micros: i64,
}

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
    existing: ExistingOrder,
    items: &str,
    properties: &str,
) -> Result<(OrderRef, bool)> {
    let ExistingOrder {
        id,
        customer_id: owner,
        refunded_amount: refunded,
        currency: was_currency,
        exchange_rate_micros: was_rate,
    } = existing;
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
    crate::feed::note_changed(tx, tenant, &customers).await?;
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
    // what customers a channel code brought ordered in the window after their add
    let ids: Vec<i64> = customers.iter().map(|c| c.0).collect();
    let mut rollup = crate::acquisition::Rollup::default();
    crate::acquisition::first_touch_orders(tx, tenant, &ids, &mut rollup).await?;
    rollup.write(tx, tenant).await?;
    Ok(())
}

pub(super) async fn order_row_tx(tx: &mut Tx, tenant: TenantId, order: OrderRef) -> Result<Order> {
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
        // it may name, or make, a customer outside a narrower reach
        self.check_tenant_wide("recording an order for an identity (pass the customer's id)")?;
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

    /// An order; one whose customer is outside the scope's reach is not found.
    pub async fn get_order(&self, id: OrderRef) -> Result<Order> {
        let mut tx = self.store.begin().await?;
        let order = order_row_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        self.check_order_reach(&order).await?;
        Ok(order)
    }

    /// `NotFound("order")` when the order's customer is outside the scope's reach.
    pub(crate) async fn check_order_reach(&self, order: &Order) -> Result<()> {
        match self.check_reach(&[order.customer_id]).await {
            Err(StoreError::NotFound(_)) => Err(StoreError::NotFound("order")),
            other => other,
        }
    }

    /// Orders, newest first (by internal id), filtered; only those of customers within
    /// the scope's reach.
    pub async fn list_orders(
        &self,
        filter: &OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        if filter.customer.is_none() {
            self.check_tenant_wide("listing every order (pass a customer's id)")?;
        }
        let before = page.after.unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id < $2 \
             AND ($3 IS NULL OR customer_id = $3) AND ($4 IS NULL OR unit_id = $4) \
             AND ($5 IS NULL OR channel = $5) AND ($6 IS NULL OR status = $6){} \
             ORDER BY id DESC LIMIT $7",
            self.within_reach("customer_id")
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
}
