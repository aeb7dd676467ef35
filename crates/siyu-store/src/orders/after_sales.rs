//! After-sales (refunds, returns, exchanges): recorded against an order, they set its
//! refunded amount and status and the customer's figures.

use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::currency::ExchangeRate;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::TenantId;
use siyu_domain::order::{
    AfterSale, AfterSaleId, AfterSaleKind, AfterSaleStatus, Order, OrderRef, OrderStatus,
    status_after_refunds,
};

use super::{order_row_tx, refresh_order_stats};
use crate::db::now_ms;
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
pub(super) struct AfterSaleRow {
    id: i64,
    order_ref: i64,
    kind: String,
    status: String,
    amount: i64,
    reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

pub(super) const AFTER_SALE_COLUMNS: &str =
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

/// Sets an order's refunded amount and status from its completed refunds and returns,
/// then the customer's figures. Returns the order's customer.
pub(super) async fn apply_refunds(
    tx: &mut Tx,
    tenant: TenantId,
    order: OrderRef,
) -> Result<CustomerId> {
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

/// Checks an after-sale against its order: an exchange returns no money; money returned
/// never exceeds what was paid less what was refunded already.
pub(super) fn check_after_sale(
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

pub(super) async fn insert_after_sale(
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

impl TenantScope<'_> {
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
        self.get_order(order).await?;
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let current = order_row_tx(&mut tx, self.tenant, order).await?;
        check_after_sale(&current, kind, status, amount)?;
        let id =
            insert_after_sale(&mut tx, self.tenant, order, kind, status, amount, reason).await?;
        apply_refunds(&mut tx, self.tenant, order).await?;
        crate::audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::AFTER_SALE_RECORDED, "order", order).with_details(
                serde_json::json!({"after_sale": id.0, "kind": kind.as_str(),
                    "status": status.as_str(), "amount": amount}),
            ),
        )
        .await?;
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
        self.get_after_sale(id).await?;
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
        crate::audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::AFTER_SALE_UPDATED, "order", current.order)
                .with_details(serde_json::json!({"after_sale": id.0, "status": status.as_str()})),
        )
        .await?;
        let after_sale = after_sale_tx(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        Ok(after_sale)
    }

    /// An after-sale; one whose order's customer is outside the scope's reach is not
    /// found.
    pub async fn get_after_sale(&self, id: AfterSaleId) -> Result<AfterSale> {
        let mut tx = self.store.begin().await?;
        let after_sale = after_sale_tx(&mut tx, self.tenant, id).await?;
        let order = order_row_tx(&mut tx, self.tenant, after_sale.order).await?;
        tx.commit().await?;
        match self.check_order_reach(&order).await {
            Err(StoreError::NotFound(_)) => Err(StoreError::NotFound("after-sale")),
            other => other,
        }?;
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

pub(super) async fn after_sale_tx(
    tx: &mut Tx,
    tenant: TenantId,
    id: AfterSaleId,
) -> Result<AfterSale> {
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
