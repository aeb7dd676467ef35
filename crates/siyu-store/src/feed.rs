//! The change feed: every transaction that changes something a segment can test
//! (traits, tags, owner, events, orders, consent, merges, erasure) writes the customers it
//! touched to `customer_changes` in the same transaction ([`note_changed`]), so each
//! server's audience index can replay them in commit order. Every concern may write to
//! the feed; the feed depends on none of them.

use std::collections::HashMap;

use siyu_domain::ids::{CustomerId, TenantId};

use crate::db::id_list;
use crate::db::{now_ms, on_db};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, Store};

/// Records that these customers changed, for the audience indexes to follow.
pub(crate) async fn note_changed(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[CustomerId],
) -> Result<()> {
    let now = now_ms();
    let mut ids: Vec<i64> = customers.iter().map(|c| c.0).collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(300) {
        let values: Vec<String> = chunk
            .iter()
            .map(|id| format!("({}, {id}, {now})", tenant.0))
            .collect();
        let sql = format!(
            "INSERT INTO customer_changes (tenant_id, customer_id, at) VALUES {}",
            values.join(",")
        );
        on_tx!(tx, |c| sqlx::query(&sql)
            .execute(&mut *c)
            .await?
            .rows_affected());
    }
    Ok(())
}

/// Records the sources customers' events came from: (tenant, customer, source) → the
/// earliest time seen here.
pub(crate) async fn note_sources(
    tx: &mut Tx,
    sources: &HashMap<(i64, i64, i64), i64>,
) -> Result<()> {
    let rows: Vec<_> = sources.iter().collect();
    for chunk in rows.chunks(300) {
        let values: Vec<String> = chunk
            .iter()
            .map(|((t, c, s), at)| format!("({t}, {c}, {s}, {at})"))
            .collect();
        let sql = format!(
            "INSERT INTO customer_sources (tenant_id, customer_id, source_id, first_at) VALUES {} \
             ON CONFLICT (tenant_id, customer_id, source_id) DO NOTHING",
            values.join(",")
        );
        on_tx!(tx, |c| sqlx::query(&sql)
            .execute(&mut *c)
            .await?
            .rows_affected());
    }
    Ok(())
}

/// Records the channel codes customers came through: (tenant, customer, code) → the
/// time first seen.
pub(crate) async fn note_channel_codes(
    tx: &mut Tx,
    codes: &HashMap<(i64, i64, String), i64>,
) -> Result<()> {
    let rows: Vec<(&(i64, i64, String), &i64)> = codes.iter().collect();
    for chunk in rows.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(4)).collect();
        let sql = format!(
            "INSERT INTO customer_channel_codes (tenant_id, customer_id, code, first_at) \
             VALUES {} ON CONFLICT (tenant_id, customer_id, code) DO UPDATE SET first_at = \
             CASE WHEN customer_channel_codes.first_at > excluded.first_at \
             THEN excluded.first_at ELSE customer_channel_codes.first_at END",
            values.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for ((tenant, customer, code), at) in chunk {
                query = query.bind(*tenant).bind(*customer).bind(code).bind(**at);
            }
            query.execute(&mut *c).await?;
        });
    }
    Ok(())
}

/// Recomputes the channel codes of these customers from their events (what a merge or
/// an undone merge leaves them with), each first seen at its earliest event.
pub(crate) async fn rebuild_channel_codes(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[CustomerId],
) -> Result<()> {
    for customer in customers {
        on_tx!(tx, |c| sqlx::query(
            "DELETE FROM customer_channel_codes WHERE tenant_id = $1 AND customer_id = $2"
        )
        .bind(tenant.0)
        .bind(customer.0)
        .execute(&mut *c)
        .await?
        .rows_affected());
        let rows: Vec<(String, i64)> = on_tx!(tx, |c| {
            sqlx::query_as(
            "SELECT properties, timestamp FROM events WHERE tenant_id = $1 AND customer_id = $2 \
             AND properties LIKE '%\"channel_code\"%'"
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_all(&mut *c)
        .await?
        });
        let mut codes: HashMap<(i64, i64, String), i64> = HashMap::new();
        for (properties, at) in rows {
            let properties = crate::db::parse_map(&properties);
            if let Some(code) = siyu_domain::tracking::channel_code_of(&properties) {
                let first = codes
                    .entry((tenant.0, customer.0, code.to_owned()))
                    .or_insert(at);
                *first = (*first).min(at);
            }
        }
        note_channel_codes(tx, &codes).await?;
    }
    Ok(())
}

/// A change to a customer, as the audience indexes follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerChange {
    pub seq: i64,
    pub tenant: TenantId,
    pub customer: CustomerId,
}

impl Store {
    /// Changes after `seq` (and those of `also`, sequence numbers seen missing before:
    /// on PostgreSQL a transaction may commit after a later one), oldest first.
    pub async fn customer_changes(
        &self,
        after: i64,
        also: &[i64],
        limit: i64,
    ) -> Result<Vec<CustomerChange>> {
        let extra = if also.is_empty() {
            String::new()
        } else {
            format!(" OR seq IN ({})", id_list(also))
        };
        let sql = format!(
            "SELECT seq, tenant_id, customer_id FROM customer_changes WHERE seq > $1{extra} ORDER BY seq LIMIT $2"
        );
        #[derive(sqlx::FromRow)]
        struct ChangeRow {
            seq: i64,
            tenant_id: i64,
            customer_id: i64,
        }
        let rows: Vec<ChangeRow> = on_db!(self, |db| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(limit)
                .fetch_all(db)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| CustomerChange {
                seq: r.seq,
                tenant: TenantId(r.tenant_id),
                customer: CustomerId(r.customer_id),
            })
            .collect())
    }

    /// The newest change's sequence number (0 when there is none).
    pub async fn last_customer_change(&self) -> Result<i64> {
        let seq: Option<i64> = on_db!(self, |db| {
            sqlx::query_scalar("SELECT MAX(seq) FROM customer_changes")
                .fetch_one(db)
                .await?
        });
        Ok(seq.unwrap_or(0))
    }

    /// Forgets changes older than `age_ms`.
    pub async fn prune_customer_changes(&self, age_ms: i64) -> Result<u64> {
        let before = now_ms() - age_ms;
        Ok(on_db!(self, |db| {
            sqlx::query("DELETE FROM customer_changes WHERE at < $1")
                .bind(before)
                .execute(db)
                .await?
                .rows_affected()
        }))
    }
}
