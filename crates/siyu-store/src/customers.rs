//! Reading customer profiles: by id, by identity, a search, and the timeline.

use serde_json::{Map, Value};
use std::collections::HashMap;

use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::{
    Customer, CustomerId, EventActivity, MergeRecord, Note, SourceId, TimelineEntry, TimelineEvent,
    check_note, summarize_activity,
};
use siyu_domain::identity::{Identity, IdentityKind, normalize_phone};
use siyu_domain::ids::StaffId;
use siyu_domain::order::OrderStats;
use siyu_domain::page::{Page, PageRequest};

use siyu_domain::DomainError;
use siyu_domain::traits::TraitScope;

use crate::db::on_db;
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

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
    order_count: i64,
    order_total: i64,
    first_order_at: Option<i64>,
    last_order_at: Option<i64>,
    erased_at: Option<i64>,
}

const CUSTOMER_COLUMNS: &str = "id, merged_into_id, owner_staff_id, name, email, phone, traits, \
     first_seen_at, last_seen_at, created_at, updated_at, order_count, order_total, \
     first_order_at, last_order_at, erased_at";

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

/// A merge into a profile, as its timeline shows it.
#[derive(sqlx::FromRow)]
struct MergeRow {
    id: i64,
    survivor_id: i64,
    merged_id: i64,
    message_id: Option<String>,
    reason: String,
    at: i64,
    undone_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: i64,
    customer_id: i64,
    author_staff_id: Option<i64>,
    author_label: String,
    body: String,
    created_at: i64,
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
            orders: OrderStats::new(
                row.order_count,
                row.order_total,
                row.first_order_at,
                row.last_order_at,
            ),
            erased_at: row.erased_at,
            groups: None,
        })
    }

    /// A customer by id, with their groups. The id of a profile that was merged leads to
    /// the survivor. A customer outside the scope's reach is not found.
    pub async fn get_customer(&self, id: CustomerId) -> Result<Customer> {
        let mut id = id;
        for _ in 0..16 {
            let row = self
                .customer_row(id)
                .await?
                .ok_or(StoreError::NotFound("customer"))?;
            match row.merged_into_id {
                Some(survivor) => id = CustomerId(survivor),
                None if !self.reaches(row.owner_staff_id.map(StaffId)) => {
                    return Err(StoreError::NotFound("customer"));
                }
                None => {
                    let mut customer = self.customer_from_row(row).await?;
                    customer.groups = Some(self.customer_groups(customer.id).await?);
                    return Ok(customer);
                }
            }
        }
        Err(StoreError::Corrupt(format!(
            "customer {id} merges in a loop"
        )))
    }

    /// Live customers by id, in the order given; unknown or merged ids, and customers
    /// outside the scope's reach, are left out.
    pub async fn customers_by_ids(&self, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        let mut by_id = HashMap::new();
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(|i| i.0.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE tenant_id = $1 AND merged_into_id IS NULL \
                 AND id IN ({list}){}",
                self.owner_clause("owner_staff_id")
            );
            let rows: Vec<CustomerRow> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?
            });
            for row in rows {
                let c = self.customer_from_row(row).await?;
                by_id.insert(c.id, c);
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
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

    /// The live profiles that own these identities, looked up a few hundred at a time
    /// (an import finding the profiles of rows it stored before). Identities no one owns
    /// are left out.
    pub(crate) async fn identity_owners(
        &self,
        identities: &[&Identity],
    ) -> Result<HashMap<(String, String), CustomerId>> {
        let mut by_kind: HashMap<&str, Vec<&str>> = HashMap::new();
        for identity in identities {
            by_kind
                .entry(identity.kind.as_str())
                .or_default()
                .push(identity.value.as_str());
        }
        let mut owners = HashMap::new();
        for (kind, values) in by_kind {
            for chunk in values.chunks(300) {
                let mut p = crate::tx::Placeholders::for_backend(self.store.backend());
                let (tenant_p, kind_p) = (p.next(), p.next());
                let sql = format!(
                    "SELECT i.value, COALESCE(c.merged_into_id, i.customer_id) FROM identities i \
                     JOIN customers c ON c.tenant_id = i.tenant_id AND c.id = i.customer_id \
                     WHERE i.tenant_id = {tenant_p} AND i.kind = {kind_p} AND i.value IN {}",
                    p.row(chunk.len())
                );
                let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
                    let mut query = sqlx::query_as(&sql).bind(self.tenant.0).bind(kind);
                    for value in chunk {
                        query = query.bind(*value);
                    }
                    query.fetch_all(db).await?
                });
                for (value, customer) in rows {
                    owners.insert((kind.to_owned(), value), CustomerId(customer));
                }
            }
        }
        Ok(owners)
    }

    /// Live profiles, newest first; `q` searches names (contains), and emails, phones and
    /// identity values (exact, normalised).
    /// Only customers within the scope's reach.
    pub async fn list_customers(
        &self,
        page: PageRequest,
        q: Option<&str>,
    ) -> Result<Page<Customer>> {
        let before = page.after.unwrap_or(i64::MAX);
        let Some((sql, pattern, exact)) = search_sql(CUSTOMER_COLUMNS, q, self.reach.owners())
        else {
            return Ok(Page::from_rows(vec![], page, |c: &Customer| c.id.0));
        };
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

    /// The ids a search finds (as [`TenantScope::list_customers`] lists them: newest
    /// first, below `before`), at most `limit`: for narrowing a search by a segment
    /// filter without loading every profile it finds.
    pub async fn search_customer_ids(
        &self,
        q: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<i64>> {
        let Some((sql, pattern, exact)) = search_sql("id", q, self.reach.owners()) else {
            return Ok(Vec::new());
        };
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(&sql)
                .bind(self.tenant.0)
                .bind(before)
                .bind(&pattern)
                .bind(&exact)
                .bind(limit)
                .fetch_all(db)
                .await?
        }))
    }

    /// A customer's timeline, newest first: events (by their time), orders (by order
    /// time), notes and merges into this profile.
    pub async fn customer_timeline(
        &self,
        id: CustomerId,
        page: PageRequest,
    ) -> Result<Page<TimelineEntry>> {
        let customer = self.get_customer(id).await?;
        let (at, seq) = page.after_pair.unwrap_or((i64::MAX, i64::MAX));
        // every entry is keyed (time, seq) with seq = row id * 4 + kind, unique and
        // ordered; each branch takes its newest rows past the cursor, then the union is
        // cut to the page
        let branch = |table: &str, time: &str, owner: &str, kind: i64| {
            format!(
                "SELECT at, seq FROM (SELECT {time} AS at, id * 4 + {kind} AS seq FROM {table} \
                 WHERE tenant_id = $1 AND {owner} = $2 \
                 AND ({time} < $3 OR ({time} = $3 AND id * 4 + {kind} < $4)) \
                 ORDER BY {time} DESC, id DESC LIMIT $5) AS b{kind}"
            )
        };
        let sql = format!(
            "{} UNION ALL {} UNION ALL {} UNION ALL {} ORDER BY at DESC, seq DESC LIMIT $5",
            branch("events", "timestamp", "customer_id", 3),
            branch("orders", "ordered_at", "customer_id", 2),
            branch("customer_notes", "created_at", "customer_id", 1),
            branch("customer_merges", "at", "survivor_id", 0),
        );
        let keys: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(customer.id.0)
                .bind(at)
                .bind(seq)
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let ids_of = |kind: i64| -> Vec<i64> {
            keys.iter()
                .filter(|(_, s)| s.rem_euclid(4) == kind)
                .map(|(_, s)| s.div_euclid(4))
                .collect()
        };
        let in_list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut entries: HashMap<i64, TimelineEntry> = HashMap::new();
        let event_ids = ids_of(3);
        if !event_ids.is_empty() {
            let sql = format!(
                "SELECT id, type, name, properties, source_id, message_id, timestamp, received_at \
                 FROM events WHERE tenant_id = $1 AND id IN ({})",
                in_list(&event_ids)
            );
            let rows: Vec<EventRow> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?
            });
            for r in rows {
                entries.insert(
                    r.id * 4 + 3,
                    TimelineEntry::Event(TimelineEvent {
                        id: r.id,
                        event_type: r.event_type,
                        name: r.name,
                        properties: serde_json::from_str(&r.properties).unwrap_or_default(),
                        source_id: SourceId(r.source_id),
                        message_id: r.message_id,
                        timestamp: r.timestamp,
                        received_at: r.received_at,
                    }),
                );
            }
        }
        for order in self.orders_by_ids(&ids_of(2)).await? {
            entries.insert(order.id.0 * 4 + 2, TimelineEntry::Order(order));
        }
        for note in self.notes_by_ids(&ids_of(1)).await? {
            entries.insert(note.id * 4 + 1, TimelineEntry::Note(note));
        }
        let merge_ids = ids_of(0);
        if !merge_ids.is_empty() {
            let sql = format!(
                "SELECT id, survivor_id, merged_id, message_id, reason, at, undone_at FROM customer_merges \
                 WHERE tenant_id = $1 AND id IN ({})",
                in_list(&merge_ids)
            );
            let rows: Vec<MergeRow> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?
            });
            for row in rows {
                entries.insert(
                    row.id * 4,
                    TimelineEntry::Merge(MergeRecord {
                        id: row.id,
                        survivor_id: CustomerId(row.survivor_id),
                        merged_id: CustomerId(row.merged_id),
                        message_id: row.message_id,
                        reason: row.reason,
                        at: row.at,
                        undone_at: row.undone_at,
                    }),
                );
            }
        }
        let rows: Vec<(TimelineEntry, (i64, i64))> = keys
            .iter()
            .filter_map(|key| entries.remove(&key.1).map(|entry| (entry, *key)))
            .collect();
        Ok(Page::from_rows_by_pair(rows, page, |(_, key)| *key).map(|(entry, _)| entry))
    }

    async fn notes_by_ids(&self, ids: &[i64]) -> Result<Vec<Note>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT id, customer_id, author_staff_id, author_label, body, created_at \
             FROM customer_notes WHERE tenant_id = $1 AND id IN ({list})"
        );
        self.fetch_notes(&sql, None).await
    }

    async fn fetch_notes(&self, sql: &str, customer: Option<CustomerId>) -> Result<Vec<Note>> {
        let rows: Vec<NoteRow> = on_db!(self.store, |db| {
            let mut query = sqlx::query_as(sql).bind(self.tenant.0);
            if let Some(c) = customer {
                query = query.bind(c.0);
            }
            query.fetch_all(db).await?
        });
        Ok(rows
            .into_iter()
            .map(|row| Note {
                id: row.id,
                customer_id: CustomerId(row.customer_id),
                author_staff_id: row.author_staff_id.map(StaffId),
                author: row.author_label,
                body: row.body,
                created_at: row.created_at,
            })
            .collect())
    }

    /// A customer's notes, newest first.
    pub async fn customer_notes(&self, id: CustomerId) -> Result<Vec<Note>> {
        let customer = self.get_customer(id).await?;
        self.fetch_notes(
            "SELECT id, customer_id, author_staff_id, author_label, body, created_at \
             FROM customer_notes WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id DESC",
            Some(customer.id),
        )
        .await
    }

    /// Adds a note to a customer.
    pub async fn add_note(&self, id: CustomerId, body: &str, actor: &Actor) -> Result<Note> {
        let body = check_note(body)?;
        let customer = self.get_customer(id).await?;
        let now = crate::now_ms();
        let staff = match actor.kind {
            siyu_domain::audit::ActorKind::Staff => actor.id,
            _ => None,
        };
        let id: i64 = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "INSERT INTO customer_notes (tenant_id, customer_id, author_staff_id, author_label, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .bind(staff)
            .bind(&actor.label)
            .bind(&body)
            .bind(now)
            .fetch_one(db)
            .await?
        });
        Ok(Note {
            id,
            customer_id: customer.id,
            author_staff_id: staff.map(StaffId),
            author: actor.label.clone(),
            body,
            created_at: now,
        })
    }

    /// A customer's event counts by name, with rolling windows as of now.
    pub async fn customer_activity(&self, id: CustomerId) -> Result<Vec<EventActivity>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<(String, i64, i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT name, day, count, last_at FROM customer_event_days \
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .fetch_all(db)
            .await?
        });
        let today = self.time_zone().await?.day_of(crate::now_ms());
        Ok(summarize_activity(&rows, today))
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
            self.check_owner_within_reach(Some(staff))?;
            self.get_staff(staff).await?;
        }
        let now = crate::now_ms();
        let tenant = self.tenant;
        // read and write in one transaction that ingestion waits for, so neither writes
        // back traits the other changed meanwhile
        let mut tx = self.store.begin_changing_customers(&[tenant]).await?;
        let row: (String, String) = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "SELECT traits, trait_times FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(customer.id.0)
            .fetch_one(&mut *c)
            .await?
        });
        let mut current: Map<String, Value> = serde_json::from_str(&row.0).unwrap_or_default();
        let mut times: Map<String, Value> = serde_json::from_str(&row.1).unwrap_or_default();
        if let Some(traits) = traits {
            for key in traits.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k) {
                current.remove(key);
                times.insert(key.clone(), Value::from(now));
            }
            // the tenant's trait limits hold for staff too: refused whole, not trimmed
            let set: Map<String, Value> = traits
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut names = crate::traits::ApplyTraits::default();
            let keys: Vec<&str> = set.keys().map(String::as_str).collect();
            names.load_tenant(&mut tx, tenant, &keys).await?;
            let admitted = names.admit(tenant, TraitScope::Customer, &current, &set);
            if admitted.dropped > 0 {
                return Err(StoreError::Domain(DomainError::invalid(
                    "traits",
                    format!(
                        "{} of these traits do not fit the tenant's trait limits (settings/traits: \
                         new names per change, names per profile, distinct names)",
                        admitted.dropped
                    ),
                )));
            }
            names.flush(&mut tx).await?;
            for (key, value) in set {
                times.insert(key.clone(), Value::from(now));
                current.insert(key, value);
            }
        }
        let name = siyu_domain::customer::display_name(&current);
        let owner_id = match owner {
            Some(o) => o.map(|s| s.0),
            None => customer.owner_staff_id.map(|s| s.0),
        };
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
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE customers SET traits = $1, trait_times = $2, name = $3, owner_staff_id = $4, \
                 updated_at = $5 WHERE tenant_id = $6 AND id = $7",
            )
            .bind(Value::Object(current.clone()).to_string())
            .bind(Value::Object(times.clone()).to_string())
            .bind(&name)
            .bind(owner_id)
            .bind(now)
            .bind(tenant.0)
            .bind(customer.id.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        crate::audit::record(
            &mut tx,
            tenant,
            actor,
            AuditRecord::new(action::CUSTOMER_UPDATED, "customer", customer.id)
                .with_details(Value::Object(details)),
        )
        .await?;
        crate::feed::note_changed(&mut tx, tenant, &[customer.id]).await?;
        tx.commit().await?;
        self.get_customer(customer.id).await
    }

    /// Hands customers to a staff member (分配客户), or takes them from whoever has them
    /// (`None`), in parts of 1,000 per transaction; one audit entry per part. Ids that
    /// are not this tenant's customers, or not within the scope's reach, are skipped; a
    /// staff member outside the reach is refused. Says how many changed.
    pub async fn assign_owner(
        &self,
        customers: &[CustomerId],
        owner: Option<StaffId>,
        actor: &siyu_domain::audit::Actor,
    ) -> Result<u64> {
        self.check_owner_within_reach(owner)?;
        if let Some(staff) = owner {
            self.get_staff(staff).await?;
        }
        let customers = &self.reachable(customers).await?;
        let tenant = self.tenant;
        let mut changed = 0;
        for part in customers.chunks(1000) {
            let list = part
                .iter()
                .map(|c| c.0.to_string())
                .collect::<Vec<_>>()
                .join(",");
            // only customers whose owner changes: the audit names each of them
            let sql = format!(
                "UPDATE customers SET owner_staff_id = $1, updated_at = $2 \
                 WHERE tenant_id = $3 AND id IN ({list}) AND erased_at IS NULL \
                 AND merged_into_id IS NULL \
                 AND (owner_staff_id IS NULL OR owner_staff_id <> $4 OR $4 IS NULL) \
                 AND NOT (owner_staff_id IS NULL AND $4 IS NULL) \
                 RETURNING id"
            );
            let owner_id = owner.map(|s| s.0);
            let mut tx = self.store.begin_changing_customers(&[tenant]).await?;
            let ids: Vec<i64> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar(&sql)
                    .bind(owner_id)
                    .bind(crate::now_ms())
                    .bind(tenant.0)
                    .bind(owner_id)
                    .fetch_all(&mut *c)
                    .await?
            });
            if !ids.is_empty() {
                crate::audit::record(
                    &mut tx,
                    tenant,
                    actor,
                    AuditRecord::new(
                        action::CUSTOMER_ASSIGNED,
                        "staff",
                        owner_id.map_or("none".to_string(), |s| s.to_string()),
                    )
                    .with_details(serde_json::json!({"customers": ids})),
                )
                .await?;
            }
            let moved: Vec<CustomerId> = ids.iter().map(|id| CustomerId(*id)).collect();
            crate::feed::note_changed(&mut tx, tenant, &moved).await?;
            tx.commit().await?;
            changed += moved.len() as u64;
        }
        Ok(changed)
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

/// The statement of a customer search, selecting `columns`, newest first: binds the
/// tenant ($1), the id to list below ($2), the name pattern ($3), the exact value of an
/// email, phone or identity ($4) and the limit ($5); with the pattern and exact value to
/// bind. None when the caller may see no customer (an empty list of owners).
fn search_sql(
    columns: &str,
    q: Option<&str>,
    owners: Option<&[StaffId]>,
) -> Option<(String, Option<String>, Option<String>)> {
    // staff ids are integers from our own tables: inlined, one statement for both
    let owner_filter = match owners {
        Some([]) => return None,
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
        "SELECT {columns} FROM customers c WHERE tenant_id = $1 AND merged_into_id IS NULL \
         AND erased_at IS NULL AND id < $2 AND ($3 IS NULL OR name LIKE $3 OR email = $4 OR phone = $4 OR EXISTS ( \
           SELECT 1 FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id \
           AND i.value = $4)){owner_filter} \
         ORDER BY id DESC LIMIT $5"
    );
    Some((sql, pattern, exact))
}
