//! The day-by-day figures acquisition reports sum (migration 29; per month and per
//! tenant-day, migration 32), kept in the
//! transaction of what changes them: an add through a code, a relation it brought
//! ended, a landing page visited, a customer's orders changed. What a report reads is
//! described in `siyu_domain::acquisition::report`.
//!
//! Changes are the report's own figures as differences (`AcquisitionFigures`; its
//! `net_adds` is not stored, reports work it out), gathered in a [`Rollup`] and written
//! once per (code, day) and (member, day) touched, so a sync page of a hundred adds costs a handful of statements. The
//! first touch of a customer (the first code an add of theirs came through, by WeCom's
//! add time, so an older add synced later takes it over) carries what they ordered in
//! the window after it; when their orders change the difference moves the figures of
//! the day of that add.

use std::collections::HashMap;

use siyu_domain::acquisition::report::{AcquisitionFigures, ORDER_WINDOW_DAYS, month_of_day};
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::TenantId;
use siyu_domain::order::OrderStatus;
use siyu_domain::time::TimeZone;

use crate::Result;
use crate::db::id_list;
use crate::tx::{Tx, on_tx};

const WINDOW_MS: i64 = ORDER_WINDOW_DAYS * 86_400_000;

/// Who ended a relation a code brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationEnd {
    /// The customer deleted the member.
    ByCustomer,
    /// The member deleted the customer.
    ByMember,
    /// WeCom moved the customer to another member: not a loss.
    Transferred,
    /// The relation was gone when the contact was read again, with no event saying who
    /// ended it: not counted either way.
    Unseen,
}

impl RelationEnd {
    /// Who ended it, as `wecom_follows.ended_by` keeps it (none: found gone).
    pub fn ended_by(self) -> Option<&'static str> {
        match self {
            Self::ByCustomer => Some("customer"),
            Self::ByMember => Some("member"),
            Self::Transferred => Some("transfer"),
            Self::Unseen => None,
        }
    }
}

/// Changes gathered for one transaction.
#[derive(Debug, Default)]
pub(crate) struct Rollup {
    codes: HashMap<(i64, i64), AcquisitionFigures>,
    members: HashMap<(i64, i64), AcquisitionFigures>,
}

impl Rollup {
    pub fn code(&mut self, code: i64, day: i64, change: AcquisitionFigures) {
        self.codes.entry((code, day)).or_default().add(&change);
    }

    pub fn member(&mut self, staff: Option<i64>, day: i64, change: AcquisitionFigures) {
        if let Some(staff) = staff {
            self.members.entry((staff, day)).or_default().add(&change);
        }
    }

    /// Both: a change of a code's that is also its member's.
    pub fn both(&mut self, code: i64, staff: Option<i64>, day: i64, change: AcquisitionFigures) {
        self.code(code, day, change);
        self.member(staff, day, change);
    }

    /// Writes the gathered changes, many rows to a statement: each code's day and
    /// month, each member's day, and the tenant's day (all codes together).
    pub async fn write(self, tx: &mut Tx, tenant: TenantId) -> Result<()> {
        let mut months: HashMap<(i64, i64), AcquisitionFigures> = HashMap::new();
        let mut totals: HashMap<(i64, i64), AcquisitionFigures> = HashMap::new();
        for ((code, day), change) in &self.codes {
            months
                .entry((*code, month_of_day(*day)))
                .or_default()
                .add(change);
            totals.entry((0, *day)).or_default().add(change);
        }
        add_to_days(tx, tenant, DayTable::Codes, &self.codes).await?;
        add_to_days(tx, tenant, DayTable::CodeMonths, &months).await?;
        add_to_days(tx, tenant, DayTable::TenantDays, &totals).await?;
        add_to_days(tx, tenant, DayTable::Members, &self.members).await
    }
}

/// The tables of figures, the same columns each: per code and day, per code and month,
/// per member and day, per tenant and day (its key always 0, not written).
#[derive(Debug, Clone, Copy)]
enum DayTable {
    Codes,
    CodeMonths,
    Members,
    TenantDays,
}

impl DayTable {
    /// The statement that adds changes to rows (`values`: one tuple each of the
    /// tenant, the key unless the table has none, the day or month and the figures),
    /// making them when missing.
    fn upsert(self, values: &str) -> String {
        let (table, key, period) = self.columns();
        let sums = FIGURE_COLUMNS
            .iter()
            .map(|f| format!("{f} = {table}.{f} + excluded.{f}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (key_column, conflict) = match key {
            Some(key) => (format!("{key}, "), format!("{period}, {key}")),
            None => (String::new(), period.to_owned()),
        };
        format!(
            "INSERT INTO {table} (tenant_id, {key_column}{period}, {}) VALUES {values} \
             ON CONFLICT (tenant_id, {conflict}) DO UPDATE SET {sums}",
            FIGURE_COLUMNS.join(", ")
        )
    }

    /// The table, its key column (if any) and its period column.
    fn columns(self) -> (&'static str, Option<&'static str>, &'static str) {
        match self {
            DayTable::Codes => ("channel_code_days", Some("code_id"), "day"),
            DayTable::CodeMonths => ("channel_code_months", Some("code_id"), "month"),
            DayTable::Members => ("channel_member_days", Some("staff_id"), "day"),
            DayTable::TenantDays => ("channel_tenant_days", None, "day"),
        }
    }
}

/// The figure columns of both day tables, in the order [`add_to_days`] writes them.
const FIGURE_COLUMNS: [&str; 8] = [
    "scans",
    "crawler_fetches",
    "adds",
    "deleted_by_customer",
    "deleted_by_member",
    "customers",
    "first_orders",
    "gmv",
];

/// Adds changes to the rows of a table of figures (made when missing), keyed by (code,
/// member or 0, day or month). The figures are integers written into the statement.
async fn add_to_days(
    tx: &mut Tx,
    tenant: TenantId,
    table: DayTable,
    changes: &HashMap<(i64, i64), AcquisitionFigures>,
) -> Result<()> {
    let rows: Vec<String> = changes
        .iter()
        .filter(|(_, c)| **c != AcquisitionFigures::default())
        .map(|((key, day), c)| {
            let key = match table.columns().1 {
                Some(_) => format!("{key}, "),
                None => String::new(),
            };
            format!(
                "({}, {key}{day}, {}, {}, {}, {}, {}, {}, {}, {})",
                tenant.0,
                c.scans,
                c.crawler_fetches,
                c.adds,
                c.deleted_by_customer,
                c.deleted_by_member,
                c.customers,
                c.first_orders,
                c.gmv
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        let sql = table.upsert(&chunk.join(","));
        on_tx!(tx, |conn| {
            sqlx::query(&sql).execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// The tenant's time zone, read in the transaction.
pub(crate) async fn zone_in(tx: &mut Tx, tenant: TenantId) -> Result<TimeZone> {
    let name: Option<String> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT time_zone FROM tenants WHERE id = $1")
            .bind(tenant.0)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(name
        .as_deref()
        .map(TimeZone::of_stored)
        .unwrap_or(TimeZone::UTC))
}

/// An add that may be a customer's first touch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Touch {
    pub customer: CustomerId,
    pub code: i64,
    pub staff: Option<i64>,
    pub added_at: i64,
}

#[derive(sqlx::FromRow)]
struct FirstTouchRow {
    customer_id: i64,
    code_id: i64,
    staff_id: Option<i64>,
    added_at: i64,
    day: i64,
    first_order_at: Option<i64>,
    gmv: i64,
}

impl FirstTouchRow {
    /// What the row adds to its day's figures.
    fn contribution(&self) -> AcquisitionFigures {
        AcquisitionFigures {
            customers: 1,
            first_orders: i64::from(self.first_order_at.is_some()),
            gmv: self.gmv,
            ..Default::default()
        }
    }
}

async fn first_touch_rows(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[i64],
) -> Result<Vec<FirstTouchRow>> {
    let mut rows = Vec::new();
    for chunk in customers.chunks(500) {
        let sql = format!(
            "SELECT customer_id, code_id, staff_id, added_at, day, first_order_at, gmv \
             FROM channel_first_touch WHERE tenant_id = $1 AND customer_id IN ({})",
            id_list(chunk)
        );
        let found: Vec<FirstTouchRow> = on_tx!(tx, |c| {
            sqlx::query_as(&sql)
                .bind(tenant.0)
                .fetch_all(&mut *c)
                .await?
        });
        rows.extend(found);
    }
    Ok(rows)
}

/// Makes each add the customer's first touch when it is their first (or older than
/// the one kept), moving the figures to its code and day, then counts their orders in
/// the window after it.
pub(crate) async fn touch_first(
    tx: &mut Tx,
    tenant: TenantId,
    zone: TimeZone,
    touches: &[Touch],
    rollup: &mut Rollup,
) -> Result<()> {
    if touches.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = touches.iter().map(|t| t.customer.0).collect();
    let mut kept: HashMap<i64, FirstTouchRow> = first_touch_rows(tx, tenant, &ids)
        .await?
        .into_iter()
        .map(|r| (r.customer_id, r))
        .collect();
    let mut changed = Vec::new();
    for touch in touches {
        if let Some(old) = kept.get(&touch.customer.0) {
            if old.added_at <= touch.added_at {
                continue;
            }
            rollup.both(
                old.code_id,
                old.staff_id,
                old.day,
                old.contribution().negated(),
            );
        }
        let row = FirstTouchRow {
            customer_id: touch.customer.0,
            code_id: touch.code,
            staff_id: touch.staff,
            added_at: touch.added_at,
            day: zone.day_of(touch.added_at),
            first_order_at: None,
            gmv: 0,
        };
        rollup.both(row.code_id, row.staff_id, row.day, row.contribution());
        changed.push(row.customer_id);
        kept.insert(row.customer_id, row);
    }
    changed.sort_unstable();
    changed.dedup();
    let rows: Vec<&FirstTouchRow> = changed.iter().filter_map(|c| kept.get(c)).collect();
    for chunk in rows.chunks(200) {
        let mut p = crate::tx::Placeholders::for_tx(tx);
        let values: Vec<String> = chunk
            .iter()
            .map(|_| {
                let row = p.row(6);
                format!("{}, NULL, 0)", &row[..row.len() - 1])
            })
            .collect();
        let sql = format!(
            "INSERT INTO channel_first_touch (tenant_id, customer_id, code_id, staff_id, \
             added_at, day, first_order_at, gmv) VALUES {} \
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET code_id = excluded.code_id, \
             staff_id = excluded.staff_id, added_at = excluded.added_at, day = excluded.day, \
             first_order_at = NULL, gmv = 0",
            values.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(tenant.0)
                    .bind(row.customer_id)
                    .bind(row.code_id)
                    .bind(row.staff_id)
                    .bind(row.added_at)
                    .bind(row.day);
            }
            query.execute(&mut *c).await?;
        });
    }
    first_touch_orders(tx, tenant, &changed, rollup).await
}

#[derive(sqlx::FromRow)]
struct WindowRow {
    customer_id: i64,
    first_order_at: Option<i64>,
    gmv: Option<i64>,
}

/// Recounts what customers with a first touch ordered in the window after it, and
/// moves the difference onto the figures of the day of that add. Every change to a
/// customer's orders passes here (`refresh_order_stats_of`).
pub(crate) async fn first_touch_orders(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[i64],
    rollup: &mut Rollup,
) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let rows = first_touch_rows(tx, tenant, customers).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.customer_id).collect();
    let counting = OrderStatus::COUNTING_SQL;
    let mut windows: HashMap<i64, WindowRow> = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT f.customer_id, MIN(o.ordered_at) AS first_order_at, \
             CAST(SUM(o.net_tenant_amount) AS BIGINT) AS gmv FROM channel_first_touch f \
             JOIN orders o ON o.tenant_id = f.tenant_id AND o.customer_id = f.customer_id \
             AND o.ordered_at >= f.added_at AND o.ordered_at < f.added_at + {WINDOW_MS} \
             AND o.status IN {counting} \
             WHERE f.tenant_id = $1 AND f.customer_id IN ({}) GROUP BY f.customer_id",
            id_list(chunk)
        );
        let found: Vec<WindowRow> = on_tx!(tx, |c| {
            sqlx::query_as(&sql)
                .bind(tenant.0)
                .fetch_all(&mut *c)
                .await?
        });
        windows.extend(found.into_iter().map(|w| (w.customer_id, w)));
    }
    for old in rows {
        let (first_order_at, gmv) = windows
            .get(&old.customer_id)
            .map(|w| (w.first_order_at, w.gmv.unwrap_or(0)))
            .unwrap_or((None, 0));
        if first_order_at == old.first_order_at && gmv == old.gmv {
            continue;
        }
        let before = old.contribution();
        let new = FirstTouchRow {
            first_order_at,
            gmv,
            ..old
        };
        let mut change = new.contribution();
        change.add(&before.negated());
        rollup.both(new.code_id, new.staff_id, new.day, change);
        on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE channel_first_touch SET first_order_at = $1, gmv = $2 \
                 WHERE tenant_id = $3 AND customer_id = $4",
            )
            .bind(new.first_order_at)
            .bind(new.gmv)
            .bind(tenant.0)
            .bind(new.customer_id)
            .execute(&mut *c)
            .await?;
        });
    }
    Ok(())
}
