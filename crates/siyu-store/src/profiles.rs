//! Profiles as ingestion, merges and imports write them: making a customer, loading and
//! saving a profile's traits and seen-times with the contact columns derived from them.

use serde_json::{Map, Value};
use siyu_domain::customer::{CustomerId, display_name};
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::ids::TenantId;

use crate::db::now_ms;
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError};

impl crate::TenantScope<'_> {
    /// The customer an identity names; a new profile with only that identity when there
    /// is none (an order or an import for someone not seen before).
    pub async fn ensure_customer(&self, identity: &Identity) -> Result<CustomerId> {
        for _ in 0..3 {
            let owner: Option<i64> = crate::on_db!(self.store, |db| {
                sqlx::query_scalar(
                    "SELECT customer_id FROM identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
                )
                .bind(self.tenant.0)
                .bind(identity.kind.as_str())
                .bind(&identity.value)
                .fetch_optional(db)
                .await?
            });
            if let Some(owner) = owner {
                return Ok(self.get_customer(CustomerId(owner)).await?.id);
            }
            let mut tx = self.store.begin().await?;
            let customer = create_customer(&mut tx, self.tenant, now_ms()).await?;
            if link_identity(&mut tx, self.tenant, customer, identity).await? {
                crate::feed::note_changed(&mut tx, self.tenant, &[customer]).await?;
                tx.commit().await?;
                return Ok(customer);
            }
            // linked to someone else meanwhile: drop the new profile and look again
        }
        Err(StoreError::Conflict(
            "the identity keeps changing owner; try again".into(),
        ))
    }

    /// Makes `count` customers at once, each named and with the `user_id` identity
    /// `{prefix}{id}`, for benchmarks and load tests (`siyu bench broadcast`): no
    /// events, no change-feed entries (an audience index built after sees them), a
    /// transaction per 10,000. Answers their ids in order.
    pub async fn seed_customers(&self, prefix: &str, count: usize) -> Result<Vec<CustomerId>> {
        const PART: usize = 10_000;
        const ROWS: usize = 1_000;
        let now = now_ms();
        let tenant = self.tenant.0;
        let mut made = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            let part = left.min(PART);
            let mut tx = self.store.begin_writing().await?;
            let mut ids: Vec<i64> = Vec::with_capacity(part);
            let mut rows_left = part;
            while rows_left > 0 {
                let rows = rows_left.min(ROWS);
                let values =
                    vec![format!("({tenant}, '{{}}', '{{}}', {now}, {now}, {now}, {now})"); rows]
                        .join(",");
                let sql = format!(
                    "INSERT INTO customers (tenant_id, traits, trait_times, first_seen_at, \
                     last_seen_at, created_at, updated_at) VALUES {values} RETURNING id"
                );
                let returned: Vec<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(&sql)
                    .fetch_all(&mut *c)
                    .await?);
                ids.extend(returned);
                rows_left -= rows;
            }
            ids.sort_unstable();
            for chunk in ids.chunks(ROWS) {
                // names and identities are made of the ids and a checked prefix
                let prefix = prefix.replace('\'', "");
                let identities: Vec<String> = chunk
                    .iter()
                    .map(|id| format!("({tenant}, {id}, 'user_id', '{prefix}{id}', {now})"))
                    .collect();
                let sql = format!(
                    "INSERT INTO identities (tenant_id, customer_id, kind, value, created_at) \
                     VALUES {}",
                    identities.join(",")
                );
                on_tx!(&mut tx, |c| {
                    sqlx::query(&sql).execute(&mut *c).await?;
                });
                let sql = format!(
                    "UPDATE customers SET name = '{prefix}' || id WHERE tenant_id = {tenant} \
                     AND id BETWEEN {} AND {}",
                    chunk[0],
                    chunk[chunk.len() - 1]
                );
                on_tx!(&mut tx, |c| {
                    sqlx::query(&sql).execute(&mut *c).await?;
                });
            }
            tx.commit().await?;
            made.extend(ids.into_iter().map(CustomerId));
            left -= part;
        }
        Ok(made)
    }
}

/// The live customer an id leads to in `tx` (a merged profile's id leads to its
/// survivor); not found when there is none.
pub(crate) async fn live_customer_in(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
) -> Result<CustomerId> {
    let mut id = id;
    for _ in 0..16 {
        let merged: Option<Option<i64>> = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "SELECT merged_into_id FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *c)
            .await?
        });
        match merged.ok_or(StoreError::NotFound("customer"))? {
            Some(survivor) => id = CustomerId(survivor),
            None => return Ok(id),
        }
    }
    Err(StoreError::Corrupt(format!(
        "customer {id} merges in a loop"
    )))
}

/// The customer an identity names, in `tx`; a new profile with only that identity when
/// there is none (an imported order for someone not seen before). The caller's
/// transaction holds the tenant's customer lock (`begin_changing_customers`).
pub(crate) async fn ensure_customer_in(
    tx: &mut Tx,
    tenant: TenantId,
    identity: &Identity,
) -> Result<CustomerId> {
    for _ in 0..3 {
        let owner: Option<i64> = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "SELECT customer_id FROM identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
            )
            .bind(tenant.0)
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .fetch_optional(&mut *c)
            .await?
        });
        if let Some(owner) = owner {
            return live_customer_in(tx, tenant, CustomerId(owner)).await;
        }
        let customer = create_customer(tx, tenant, now_ms()).await?;
        if link_identity(tx, tenant, customer, identity).await? {
            crate::feed::note_changed(tx, tenant, &[customer]).await?;
            return Ok(customer);
        }
        // linked to someone else meanwhile (by a writer outside the customer lock): the
        // new profile goes, and the identity's owner is looked up again
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(customer.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    Err(StoreError::Conflict(
        "the identity keeps changing owner; try again".into(),
    ))
}

/// Gives a new profile its first identity (and the contact column it fills); answers
/// false when the identity is someone else's already.
async fn link_identity(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    identity: &Identity,
) -> Result<bool> {
    let linked = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO identities (tenant_id, customer_id, kind, value, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, kind, value) DO NOTHING",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .bind(identity.kind.as_str())
        .bind(&identity.value)
        .bind(now_ms())
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    if linked != 1 {
        return Ok(false);
    }
    let column = match identity.kind.as_str() {
        IdentityKind::EMAIL => Some("email"),
        IdentityKind::PHONE => Some("phone"),
        _ => None,
    };
    if let Some(column) = column {
        let sql = format!("UPDATE customers SET {column} = $1 WHERE tenant_id = $2 AND id = $3");
        on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(&identity.value)
                .bind(tenant.0)
                .bind(customer.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    Ok(true)
}

pub(crate) async fn create_customer(
    tx: &mut Tx,
    tenant: TenantId,
    seen_at: i64,
) -> Result<CustomerId> {
    let now = now_ms();
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO customers (tenant_id, traits, trait_times, first_seen_at, last_seen_at, \
             created_at, updated_at) VALUES ($1, '{}', '{}', $2, $2, $3, $3) RETURNING id",
        )
        .bind(tenant.0)
        .bind(seen_at)
        .bind(now)
        .fetch_one(&mut *c)
        .await?
    });
    Ok(CustomerId(id))
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProfileRow {
    pub(crate) traits: String,
    pub(crate) trait_times: String,
    pub(crate) first_seen_at: i64,
    pub(crate) last_seen_at: i64,
}

pub(crate) async fn load_profile(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<ProfileRow> {
    let row: Option<ProfileRow> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT traits, trait_times, first_seen_at, last_seen_at FROM customers \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_optional(&mut *c)
        .await?
    });
    row.ok_or(StoreError::NotFound("customer"))
}

pub(crate) async fn save_profile(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    traits: &Map<String, Value>,
    times: &Map<String, Value>,
    first_seen: i64,
    last_seen: i64,
) -> Result<()> {
    let identities: Vec<(String, String)> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT kind, value FROM identities WHERE tenant_id = $1 AND customer_id = $2 \
             AND kind IN ('email', 'phone') ORDER BY id",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_all(&mut *c)
        .await?
    });
    let pick = |kind: &str| {
        identities
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, v)| v.clone())
    };
    let email = pick("email").or_else(|| {
        traits
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let phone = pick("phone");
    let name = display_name(traits);
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE customers SET traits = $1, trait_times = $2, first_seen_at = $3, \
             last_seen_at = $4, name = $5, email = $6, phone = $7, updated_at = $8 \
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(Value::Object(traits.clone()).to_string())
        .bind(Value::Object(times.clone()).to_string())
        .bind(first_seen)
        .bind(last_seen)
        .bind(&name)
        .bind(&email)
        .bind(&phone)
        .bind(now_ms())
        .bind(tenant.0)
        .bind(customer.0)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(())
}
