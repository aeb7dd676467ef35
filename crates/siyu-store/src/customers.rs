//! Reading customer profiles: by id, by identity, a search, and the timeline.

use serde_json::{Map, Value};
use siyu_domain::customer::{Customer, CustomerId, SourceId, TimelineEvent};
use siyu_domain::identity::{Identity, IdentityKind, normalize_phone};
use siyu_domain::ids::StaffId;
use siyu_domain::page::{Page, PageRequest};

use crate::{Result, StoreError, TenantScope, on_db};

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: i64,
    merged_into_id: Option<i64>,
    owner_staff_id: Option<i64>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    traits: String,
    first_seen_at: i64,
    last_seen_at: i64,
    created_at: i64,
    updated_at: i64,
}

const CUSTOMER_COLUMNS: &str = "id, merged_into_id, owner_staff_id, name, email, phone, traits, \
     first_seen_at, last_seen_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    #[sqlx(rename = "type")]
    event_type: String,
    name: String,
    properties: String,
    source_id: i64,
    message_id: String,
    timestamp: i64,
    received_at: i64,
}

impl TenantScope<'_> {
    async fn customer_row(&self, id: CustomerId) -> Result<Option<CustomerRow>> {
        let sql =
            format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND id = $2");
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        }))
    }

    async fn identities_of(&self, id: CustomerId) -> Result<Vec<Identity>> {
        let rows: Vec<(String, String)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT kind, value FROM identities WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(kind, value)| {
                IdentityKind::parse(&kind)
                    .ok()
                    .map(|kind| Identity { kind, value })
            })
            .collect())
    }

    async fn customer_from_row(&self, row: CustomerRow) -> Result<Customer> {
        let id = CustomerId(row.id);
        Ok(Customer {
            id,
            name: row.name,
            email: row.email,
            phone: row.phone,
            traits: serde_json::from_str::<Map<String, Value>>(&row.traits).unwrap_or_default(),
            identities: self.identities_of(id).await?,
            owner_staff_id: row.owner_staff_id.map(StaffId),
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            revealed: true,
        })
    }

    /// A customer by id. The id of a profile that was merged leads to the survivor.
    pub async fn get_customer(&self, id: CustomerId) -> Result<Customer> {
        let mut id = id;
        for _ in 0..16 {
            let row = self
                .customer_row(id)
                .await?
                .ok_or(StoreError::NotFound("customer"))?;
            match row.merged_into_id {
                Some(survivor) => id = CustomerId(survivor),
                None => return self.customer_from_row(row).await,
            }
        }
        Err(StoreError::Corrupt(format!(
            "customer {id} merges in a loop"
        )))
    }

    /// The customer an identity names.
    pub async fn lookup_customer(&self, identity: &Identity) -> Result<Customer> {
        let owner: Option<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT customer_id FROM identities WHERE tenant_id = $1 AND kind = $2 AND value = $3")
                .bind(self.tenant.0)
                .bind(identity.kind.as_str())
                .bind(&identity.value)
                .fetch_optional(db)
                .await?
        });
        self.get_customer(CustomerId(owner.ok_or(StoreError::NotFound("customer"))?))
            .await
    }

    /// Live profiles, newest first; `q` searches names (contains), and emails, phones and
    /// identity values (exact, normalised).
    /// `owners` limits the list to customers those staff own (a data scope).
    pub async fn list_customers(
        &self,
        page: PageRequest,
        q: Option<&str>,
        owners: Option<&[StaffId]>,
    ) -> Result<Page<Customer>> {
        let before = page.after.unwrap_or(i64::MAX);
        // staff ids are integers from our own tables: inlined, one statement for both
        let owner_filter = match owners {
            Some([]) => return Ok(Page::from_rows(vec![], page, |c: &Customer| c.id.0)),
            Some(ids) => format!(
                " AND owner_staff_id IN ({})",
                ids.iter()
                    .map(|i| i.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => String::new(),
        };
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        let pattern = q.map(|q| format!("%{}%", q.replace(['%', '_'], "")));
        let exact = q.map(|q| {
            if q.contains('@') {
                q.to_lowercase()
            } else if let Ok(phone) = normalize_phone(q) {
                phone
            } else {
                q.to_owned()
            }
        });
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE tenant_id = $1 AND merged_into_id IS NULL \
             AND id < $2 AND ($3 IS NULL OR name LIKE $3 OR email = $4 OR phone = $4 OR EXISTS ( \
               SELECT 1 FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id \
               AND i.value = $4)){owner_filter} \
             ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<CustomerRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(before)
                .bind(&pattern)
                .bind(&exact)
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let mut customers = Vec::with_capacity(rows.len());
        for row in rows {
            customers.push(self.customer_from_row(row).await?);
        }
        Ok(Page::from_rows(customers, page, |c| c.id.0))
    }

    /// A customer's events, newest first.
    pub async fn customer_timeline(
        &self,
        id: CustomerId,
        page: PageRequest,
    ) -> Result<Page<TimelineEvent>> {
        let customer = self.get_customer(id).await?;
        let before = page.after.unwrap_or(i64::MAX);
        let rows: Vec<EventRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, type, name, properties, source_id, message_id, timestamp, received_at \
                 FROM events WHERE tenant_id = $1 AND customer_id = $2 AND id < $3 \
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .bind(before)
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
        });
        let events = rows
            .into_iter()
            .map(|r| TimelineEvent {
                id: r.id,
                event_type: r.event_type,
                name: r.name,
                properties: serde_json::from_str(&r.properties).unwrap_or_default(),
                source_id: SourceId(r.source_id),
                message_id: r.message_id,
                timestamp: r.timestamp,
                received_at: r.received_at,
            })
            .collect();
        Ok(Page::from_rows(events, page, |e| e.id))
    }

    /// Changes a profile by hand: traits (a null removes one) set now, and the owner
    /// (`Some(None)` clears it). Returns the profile.
    pub async fn update_customer(
        &self,
        id: CustomerId,
        traits: Option<&Map<String, Value>>,
        owner: Option<Option<StaffId>>,
        actor: &siyu_domain::audit::Actor,
    ) -> Result<Customer> {
        let customer = self.get_customer(id).await?;
        if let Some(Some(staff)) = owner {
            self.get_staff(staff).await?;
        }
        let now = crate::now_ms();
        let row: (String, String) = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT traits, trait_times FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .fetch_one(db)
            .await?
        });
        let mut current: Map<String, Value> = serde_json::from_str(&row.0).unwrap_or_default();
        let mut times: Map<String, Value> = serde_json::from_str(&row.1).unwrap_or_default();
        if let Some(traits) = traits {
            for (key, value) in traits {
                if value.is_null() {
                    current.remove(key);
                } else {
                    current.insert(key.clone(), value.clone());
                }
                times.insert(key.clone(), Value::from(now));
            }
        }
        let name = siyu_domain::customer::display_name(&current);
        let owner_id = match owner {
            Some(o) => o.map(|s| s.0),
            None => customer.owner_staff_id.map(|s| s.0),
        };
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            sqlx::query(
                "UPDATE customers SET traits = $1, trait_times = $2, name = $3, owner_staff_id = $4, \
                 updated_at = $5 WHERE tenant_id = $6 AND id = $7",
            )
            .bind(Value::Object(current.clone()).to_string())
            .bind(Value::Object(times).to_string())
            .bind(&name)
            .bind(owner_id)
            .bind(now)
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .execute(&mut *tx)
            .await?;
            let mut details = serde_json::Map::new();
            if let Some(traits) = traits {
                details.insert(
                    "traits".into(),
                    Value::from(traits.keys().cloned().collect::<Vec<_>>()),
                );
            }
            if owner.is_some() {
                details.insert("owner_staff_id".into(), Value::from(owner_id));
            }
            crate::insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                siyu_domain::audit::AuditRecord::new("customer.updated", "customer", customer.id)
                    .with_details(Value::Object(details))
            )?;
            tx.commit().await?;
        });
        self.get_customer(customer.id).await
    }

    /// The staff of these units (a unit-subtree data scope's owners).
    pub async fn staff_ids_in_units(
        &self,
        units: &[siyu_domain::ids::UnitId],
    ) -> Result<Vec<StaffId>> {
        if units.is_empty() {
            return Ok(vec![]);
        }
        let list = units
            .iter()
            .map(|u| u.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT id FROM staff WHERE tenant_id = $1 AND unit_id IN ({list}) ORDER BY id"
        );
        let ids: Vec<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(ids.into_iter().map(StaffId).collect())
    }

    /// How many events each message id of a source has (one query; for tests and audits
    /// that prove deduplication over many events).
    pub async fn message_id_counts(
        &self,
        source: SourceId,
    ) -> Result<std::collections::HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT message_id, COUNT(*) FROM events WHERE tenant_id = $1 AND source_id = $2 \
                 GROUP BY message_id",
            )
            .bind(self.tenant.0)
            .bind(source.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// How many events with this message id the source has stored (tests and audits use
    /// it to prove deduplication).
    pub async fn count_events_with_message_id(
        &self,
        source: SourceId,
        message_id: &str,
    ) -> Result<i64> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND source_id = $2 AND message_id = $3")
                .bind(self.tenant.0)
                .bind(source.0)
                .bind(message_id)
                .fetch_one(db)
                .await?
        }))
    }
}
