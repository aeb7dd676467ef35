//! Tags, segments and what the audience index reads.
//!
//! The in-memory index (`siyu-audience`) is built from [`TenantScope::audience_facts`]
//! and kept current by following `customer_changes`: every transaction that changes
//! something a segment can test (traits, tags, owner, events, orders, consent, merges,
//! erasure) writes the customers it touched there, in the same transaction
//! ([`note_changed`]), so each server process can replay them in commit order.

use std::collections::HashMap;

use serde_json::{Value, json};
use siyu_audience::Condition;
use siyu_audience::catalog::SavedSegment;
use siyu_audience::condition::Performed;
use siyu_audience::facts::{CustomerFacts, EventDay, OrderFact, trait_matches, window_start};
use siyu_domain::DomainError;
use siyu_domain::audience::{
    CustomerTag, Segment, SegmentEvent, SegmentId, SegmentKind, StageChange, Tag, TagChange,
    TagGroup, TagGroupId, TagId, TagOrigin, TagRule, TagRuleId, TaggingResult,
};
use siyu_domain::audit::{Actor, ActorKind, AuditRecord};
use siyu_domain::error::check_name;
use siyu_domain::ids::{CustomerId, TenantId, UnitId};
use siyu_domain::order::OrderStatus;
use siyu_domain::page::{Page, PageRequest};

use crate::tx::{Tx, on_tx};
use crate::{Result, Store, StoreError, TenantScope, insert_audit, now_ms, on_db};

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
    for ((tenant, customer, code), at) in codes {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO customer_channel_codes (tenant_id, customer_id, code, first_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, customer_id, code) DO UPDATE SET first_at = \
             CASE WHEN customer_channel_codes.first_at > excluded.first_at \
             THEN excluded.first_at ELSE customer_channel_codes.first_at END"
        )
        .bind(tenant)
        .bind(customer)
        .bind(code)
        .bind(at)
        .execute(&mut *c)
        .await?
        .rows_affected());
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
            let properties = crate::ingest::parse_map(&properties);
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

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Customers tagged per transaction in a bulk tagging.
const TAGGING_BATCH: usize = 5000;

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
        let rows: Vec<(i64, i64, i64)> = on_db!(self, |db| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(limit)
                .fetch_all(db)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(seq, t, c)| CustomerChange {
                seq,
                tenant: TenantId(t),
                customer: CustomerId(c),
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

type TagRow = (i64, i64, String, String, i64, i64);
type CustomerTagRow = (i64, String, String, String, Option<String>, String, i64);
type TagChangeRow = (
    i64,
    i64,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    i64,
);

fn tag_of(row: TagRow) -> Tag {
    Tag {
        id: TagId(row.0),
        group_id: TagGroupId(row.1),
        name: row.2,
        colour: row.3,
        position: row.4,
        customers: row.5,
    }
}

const TAG_SELECT: &str = "SELECT t.id, t.group_id, t.name, t.colour, t.position, \
     (SELECT COUNT(*) FROM customer_tags ct WHERE ct.tenant_id = t.tenant_id AND ct.tag_id = t.id) \
     FROM tags t WHERE t.tenant_id = $1";

type SegmentRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    i64,
    i64,
);

fn segment_of(row: SegmentRow) -> Result<Segment> {
    let kind = SegmentKind::parse("kind", &row.3)
        .map_err(|_| StoreError::Corrupt(format!("segment {}: kind", row.0)))?;
    let (definition, condition) = match row.4 {
        Some(json) => {
            let condition: Condition = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("segment {}: {e}", row.0)))?;
            (
                Some(condition.to_string()),
                Some(serde_json::to_value(&condition).expect("serializable")),
            )
        }
        None => (None, None),
    };
    Ok(Segment {
        id: SegmentId(row.0),
        name: row.1,
        description: row.2,
        kind,
        definition,
        condition,
        created_by: row.5,
        created_at: row.6,
        updated_at: row.7,
    })
}

const SEGMENT_SELECT: &str = "SELECT id, name, description, kind, definition, created_by, created_at, updated_at \
     FROM segments WHERE tenant_id = $1";

/// A segment to save.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub description: Option<String>,
    /// The definition of a dynamic segment; a static one has none.
    pub condition: Option<Condition>,
    /// The members of a static segment; those of a dynamic one when it is made.
    pub members: Vec<CustomerId>,
}

/// Which part of a larger tagging a transaction is, for its audit entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaggingPart {
    /// 1-based.
    pub number: usize,
    pub of: usize,
    /// Customers in the whole tagging.
    pub customers: usize,
}

impl TenantScope<'_> {
    // --- tag groups and tags ---

    /// Every tag group with its tags, in their order.
    pub async fn tag_groups(&self) -> Result<Vec<TagGroup>> {
        let groups: Vec<(i64, String, Option<i64>, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, name, unit_id, position FROM tag_groups WHERE tenant_id = $1 ORDER BY position, id",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let tags = self.tags().await?;
        Ok(groups
            .into_iter()
            .map(|(id, name, unit, position)| TagGroup {
                id: TagGroupId(id),
                name,
                unit_id: unit.map(UnitId),
                position,
                tags: tags
                    .iter()
                    .filter(|t| t.group_id.0 == id)
                    .cloned()
                    .collect(),
            })
            .collect())
    }

    /// Every tag, in group order.
    pub async fn tags(&self) -> Result<Vec<Tag>> {
        let sql = format!("{TAG_SELECT} ORDER BY t.position, t.id");
        let rows: Vec<TagRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().map(tag_of).collect())
    }

    pub async fn get_tag(&self, id: TagId) -> Result<Tag> {
        let sql = format!("{TAG_SELECT} AND t.id = $2");
        let row: Option<TagRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.map(tag_of).ok_or(StoreError::NotFound("tag"))
    }

    pub async fn get_tag_group(&self, id: TagGroupId) -> Result<TagGroup> {
        self.tag_groups()
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or(StoreError::NotFound("tag group"))
    }

    pub async fn create_tag_group(
        &self,
        name: &str,
        unit: Option<UnitId>,
        position: i64,
        actor: &Actor,
    ) -> Result<TagGroup> {
        let name = check_name("name", name, 50)?;
        if let Some(unit) = unit {
            self.get_unit(unit).await?;
        }
        let now = now_ms();
        let id: i64 = on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tag_groups (tenant_id, unit_id, name, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(unit.map(|u| u.0))
            .bind(&name)
            .bind(position)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag group of that name exists", "no such unit"))?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag_group.created", "tag_group", id)
                    .with_details(json!({"name": name}))
            )?;
            tx.commit().await?;
            id
        });
        self.get_tag_group(TagGroupId(id)).await
    }

    pub async fn update_tag_group(
        &self,
        id: TagGroupId,
        name: Option<&str>,
        position: Option<i64>,
        actor: &Actor,
    ) -> Result<TagGroup> {
        let current = self.get_tag_group(id).await?;
        let name = match name {
            Some(n) => check_name("name", n, 50)?,
            None => current.name,
        };
        let position = position.unwrap_or(current.position);
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            sqlx::query("UPDATE tag_groups SET name = $1, position = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
                .bind(&name)
                .bind(position)
                .bind(now_ms())
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_constraint(e, "a tag group of that name exists", ""))?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag_group.updated", "tag_group", id.0)
                    .with_details(json!({"name": name}))
            )?;
            tx.commit().await?;
        });
        self.get_tag_group(id).await
    }

    /// Deletes an empty tag group.
    pub async fn delete_tag_group(&self, id: TagGroupId, actor: &Actor) -> Result<()> {
        let group = self.get_tag_group(id).await?;
        if !group.tags.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the group still has {} tags: move or delete them first",
                group.tags.len()
            )));
        }
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            sqlx::query("DELETE FROM tag_groups WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag_group.deleted", "tag_group", id.0)
                    .with_details(json!({"name": group.name}))
            )?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn create_tag(
        &self,
        group: TagGroupId,
        name: &str,
        colour: &str,
        position: i64,
        actor: &Actor,
    ) -> Result<Tag> {
        let name = check_name("name", name, 50)?;
        let colour = siyu_domain::audience::check_colour("colour", colour)?;
        self.get_tag_group(group).await?;
        let now = now_ms();
        let id: i64 = on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tags (tenant_id, group_id, name, colour, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(group.0)
            .bind(&name)
            .bind(&colour)
            .bind(position)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag of that name exists", "no such tag group"))?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag.created", "tag", id).with_details(json!({"name": name}))
            )?;
            tx.commit().await?;
            id
        });
        self.get_tag(TagId(id)).await
    }

    /// Changes a tag. A new name is written into every segment that uses the tag, in the
    /// same transaction, so no definition is left naming a tag that no longer exists.
    pub async fn update_tag(
        &self,
        id: TagId,
        name: Option<&str>,
        colour: Option<&str>,
        group: Option<TagGroupId>,
        position: Option<i64>,
        actor: &Actor,
    ) -> Result<Tag> {
        let current = self.get_tag(id).await?;
        let name = match name {
            Some(n) => check_name("name", n, 50)?,
            None => current.name.clone(),
        };
        let colour = match colour {
            Some(c) => siyu_domain::audience::check_colour("colour", c)?,
            None => current.colour.clone(),
        };
        let group = group.unwrap_or(current.group_id);
        if group != current.group_id {
            self.get_tag_group(group).await?;
        }
        let position = position.unwrap_or(current.position);
        let renamed: Vec<(i64, String)> = if name != current.name {
            self.segment_rows()
                .await?
                .into_iter()
                .filter_map(|row| {
                    let json = row.4.as_ref()?;
                    let condition: Condition = serde_json::from_str(json).ok()?;
                    condition.tags().contains(&current.name.as_str()).then(|| {
                        let renamed = rename_tag(&condition, &current.name, &name);
                        (
                            row.0,
                            serde_json::to_string(&renamed).expect("serializable"),
                        )
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let renamed_rules: Vec<(i64, String)> = if name != current.name {
            self.tag_rules()
                .await?
                .into_iter()
                .filter_map(|rule| {
                    let condition: Condition = serde_json::from_value(rule.condition).ok()?;
                    condition.tags().contains(&current.name.as_str()).then(|| {
                        let renamed = rename_tag(&condition, &current.name, &name);
                        (
                            rule.id.0,
                            serde_json::to_string(&renamed).expect("serializable"),
                        )
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let renamed_settings: Vec<(String, String)> = if name != current.name {
            self.definition_settings()
                .await?
                .into_iter()
                .filter(|(_, _, condition)| condition.tags().contains(&current.name.as_str()))
                .map(|(key, value, condition)| {
                    let renamed = rename_tag(&condition, &current.name, &name);
                    (key, with_definition(value, &renamed))
                })
                .collect()
        } else {
            Vec::new()
        };
        let now = now_ms();
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            for (key, value) in &renamed_settings {
                sqlx::query("UPDATE tenant_settings SET value = $1, updated_at = $2 WHERE tenant_id = $3 AND key = $4")
                    .bind(value)
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE tags SET name = $1, colour = $2, group_id = $3, position = $4, updated_at = $5 \
                 WHERE tenant_id = $6 AND id = $7",
            )
            .bind(&name)
            .bind(&colour)
            .bind(group.0)
            .bind(position)
            .bind(now)
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag of that name exists", ""))?;
            for (rule, condition) in &renamed_rules {
                sqlx::query("UPDATE tag_rules SET condition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                    .bind(condition)
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(rule)
                    .execute(&mut *tx)
                    .await?;
            }
            for (segment, definition) in &renamed {
                sqlx::query("UPDATE segments SET definition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                    .bind(definition)
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(segment)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag.updated", "tag", id.0).with_details(
                    json!({"name": name, "was": current.name, "segments_rewritten": renamed.len()})
                )
            )?;
            tx.commit().await?;
        });
        self.get_tag(id).await
    }

    /// Deletes a tag and takes it off every customer. A tag that a saved segment uses is
    /// not deleted: the error names the segments.
    pub async fn delete_tag(&self, id: TagId, actor: &Actor) -> Result<()> {
        let tag = self.get_tag(id).await?;
        let users = self
            .definitions_where(
                |c| c.tags().contains(&tag.name.as_str()),
                |r| r.add.contains(&id) || r.remove.contains(&id),
            )
            .await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the tag \"{}\" is used by {}: change them first",
                tag.name,
                users.join(", ")
            )));
        }
        let tenant = self.tenant;
        let mut tx = self.store.begin_changing_customers(&[tenant]).await?;
        // each customer's tag history says the tag was taken off, and why (the tag's
        // name is gone with it, so the reason names it)
        let origin = match actor.kind {
            ActorKind::ApiToken => TagOrigin::Api,
            _ => TagOrigin::Manual,
        };
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO customer_tag_changes (tenant_id, customer_id, tag_id, action, origin, reason, actor_label, at) \
                 SELECT tenant_id, customer_id, tag_id, 'removed', $3, $4, $5, $6 FROM customer_tags \
                 WHERE tenant_id = $1 AND tag_id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(origin.as_str())
            .bind(format!("the tag \"{}\" was deleted", tag.name))
            .bind(&actor.label)
            .bind(now_ms())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        let customers: Vec<i64> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar("DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 RETURNING customer_id")
                .bind(tenant.0)
                .bind(id.0)
                .fetch_all(&mut *c)
                .await?
        });
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM tags WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            insert_audit!(
                &mut *c,
                tenant,
                actor,
                AuditRecord::new("tag.deleted", "tag", id.0)
                    .with_details(json!({"name": tag.name, "customers": customers.len()}))
            )?
            .rows_affected()
        });
        let customers: Vec<CustomerId> = customers.into_iter().map(CustomerId).collect();
        note_changed(&mut tx, tenant, &customers).await?;
        tx.commit().await
    }

    /// Tag name → id, for checking and evaluating segment definitions.
    pub async fn tag_catalog(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT name, id FROM tags WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Source name → id, for segment definitions.
    pub async fn source_catalog(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT name, id FROM sources WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Unit → the unit and every unit beneath it.
    pub async fn unit_catalog(&self) -> Result<HashMap<i64, Vec<i64>>> {
        let rows: Vec<(i64, Option<i64>)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT id, parent_id FROM units WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        for (id, parent) in &rows {
            if let Some(p) = parent {
                children.entry(*p).or_default().push(*id);
            }
        }
        let mut catalog = HashMap::new();
        for (id, _) in &rows {
            let mut beneath = vec![*id];
            let mut i = 0;
            while i < beneath.len() {
                if let Some(kids) = children.get(&beneath[i]) {
                    beneath.extend(kids);
                }
                i += 1;
            }
            catalog.insert(*id, beneath);
        }
        Ok(catalog)
    }

    // --- tags on customers ---

    /// A customer's tags.
    pub async fn customer_tags(&self, id: CustomerId) -> Result<Vec<CustomerTag>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<CustomerTagRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT t.id, t.name, t.colour, ct.origin, ct.reason, ct.added_by, ct.added_at \
                 FROM customer_tags ct JOIN tags t ON t.tenant_id = ct.tenant_id AND t.id = ct.tag_id \
                 WHERE ct.tenant_id = $1 AND ct.customer_id = $2 ORDER BY t.position, t.id",
            )
            .bind(self.tenant.0)
            .bind(customer.id.0)
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(CustomerTag {
                    tag_id: TagId(r.0),
                    name: r.1,
                    colour: r.2,
                    origin: TagOrigin::parse("origin", &r.3)
                        .map_err(|_| StoreError::Corrupt("customer tag origin".into()))?,
                    reason: r.4,
                    added_by: r.5,
                    added_at: r.6,
                })
            })
            .collect()
    }

    /// The history of a customer's tags, newest first.
    pub async fn tag_history(&self, id: CustomerId) -> Result<Vec<TagChange>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<TagChangeRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                    "SELECT c.customer_id, c.tag_id, t.name, c.action, c.origin, c.reason, c.actor_label, c.at \
                     FROM customer_tag_changes c LEFT JOIN tags t ON t.tenant_id = c.tenant_id AND t.id = c.tag_id \
                     WHERE c.tenant_id = $1 AND c.customer_id = $2 ORDER BY c.id DESC LIMIT 500",
                )
                .bind(self.tenant.0)
                .bind(customer.id.0)
                .fetch_all(db)
                .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(TagChange {
                    customer_id: CustomerId(r.0),
                    tag_id: TagId(r.1),
                    tag: r.2.unwrap_or_else(|| "(deleted)".into()),
                    action: r.3,
                    origin: TagOrigin::parse("origin", &r.4)
                        .map_err(|_| StoreError::Corrupt("tag change origin".into()))?,
                    reason: r.5,
                    actor: r.6,
                    at: r.7,
                })
            })
            .collect()
    }

    /// Adds and removes tags on customers, each change recorded with who, when, how and
    /// why. Adding a tag a customer has, or removing one they lack, changes nothing, so
    /// concurrent taggings of the same customers lose nothing and count nothing twice.
    /// Customers that do not exist (or were merged) are skipped.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_tags(
        &self,
        customers: &[CustomerId],
        add: &[TagId],
        remove: &[TagId],
        origin: TagOrigin,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<TaggingResult> {
        let reason = siyu_domain::audience::check_reason(reason)?;
        self.check_tags_known(add, remove).await?;
        let tenant = self.tenant;
        let mut result = TaggingResult {
            added: 0,
            removed: 0,
        };
        // many customers are tagged in transactions of a few thousand, so one big
        // tagging never holds the writers up for long (each part is whole, with its own
        // audit entry; tagging again finishes what an interrupted one began). Reads then
        // writes: each takes the writer's turn first (SQLite would refuse a transaction
        // whose reads another writer made stale).
        let parts: Vec<&[CustomerId]> = if customers.is_empty() {
            vec![&[]]
        } else {
            customers.chunks(TAGGING_BATCH).collect()
        };
        let count = parts.len();
        for (n, part) in parts.into_iter().enumerate() {
            let mut tx = self.store.begin_changing_customers(&[tenant]).await?;
            let done = self
                .change_tags_in(
                    &mut tx,
                    part,
                    add,
                    remove,
                    origin,
                    reason.as_deref(),
                    actor,
                    Some(TaggingPart {
                        number: n + 1,
                        of: count,
                        customers: customers.len(),
                    }),
                )
                .await?;
            tx.commit().await?;
            result.added += done.added;
            result.removed += done.removed;
        }
        Ok(result)
    }

    /// Refuses tags this tenant does not have.
    pub(crate) async fn check_tags_known(&self, add: &[TagId], remove: &[TagId]) -> Result<()> {
        let known = self.tag_catalog().await?;
        for tag in add.iter().chain(remove) {
            if !known.values().any(|id| *id == tag.0) {
                return Err(StoreError::NotFound("tag"));
            }
        }
        Ok(())
    }

    /// Adds and removes tags on these customers inside a transaction that holds the
    /// tenant's customer lock, each change recorded, with one audit entry (naming the
    /// part of a larger tagging it is). The tags must be the tenant's
    /// ([`TenantScope::check_tags_known`]) and the reason checked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn change_tags_in(
        &self,
        tx: &mut Tx,
        customers: &[CustomerId],
        add: &[TagId],
        remove: &[TagId],
        origin: TagOrigin,
        reason: Option<&str>,
        actor: &Actor,
        part: Option<TaggingPart>,
    ) -> Result<TaggingResult> {
        let tenant = self.tenant;
        let now = now_ms();
        let mut result = TaggingResult {
            added: 0,
            removed: 0,
        };
        let mut touched: Vec<CustomerId> = Vec::new();
        for chunk in customers.chunks(500) {
            let ids: Vec<i64> = chunk.iter().map(|c| c.0).collect();
            let live: Vec<i64> = on_tx!(tx, |c| {
                sqlx::query_scalar(&format!(
                "SELECT id FROM customers WHERE tenant_id = $1 AND merged_into_id IS NULL AND id IN ({})",
                id_list(&ids)
            ))
            .bind(tenant.0)
            .fetch_all(&mut *c)
            .await?
            });
            if live.is_empty() {
                continue;
            }
            for tag in add {
                let values: Vec<String> = live
                    .iter()
                    .map(|id| format!("({}, {id}, {}, $1, $2, $3, {now})", tenant.0, tag.0))
                    .collect();
                let sql = format!(
                    "INSERT INTO customer_tags (tenant_id, customer_id, tag_id, origin, reason, added_by, added_at) \
                 VALUES {} ON CONFLICT (tenant_id, customer_id, tag_id) DO NOTHING RETURNING customer_id",
                    values.join(",")
                );
                let added: Vec<i64> = on_tx!(tx, |c| {
                    sqlx::query_scalar(&sql)
                        .bind(origin.as_str())
                        .bind(reason)
                        .bind(&actor.label)
                        .fetch_all(&mut *c)
                        .await?
                });
                result.added += added.len() as u64;
                self.log_tag_changes(tx, &added, *tag, "added", origin, reason, actor, now)
                    .await?;
                touched.extend(added.into_iter().map(CustomerId));
            }
            for tag in remove {
                let sql = format!(
                    "DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 AND customer_id IN ({}) \
                 RETURNING customer_id",
                    id_list(&live)
                );
                let removed: Vec<i64> = on_tx!(tx, |c| {
                    sqlx::query_scalar(&sql)
                        .bind(tenant.0)
                        .bind(tag.0)
                        .fetch_all(&mut *c)
                        .await?
                });
                result.removed += removed.len() as u64;
                self.log_tag_changes(tx, &removed, *tag, "removed", origin, reason, actor, now)
                    .await?;
                touched.extend(removed.into_iter().map(CustomerId));
            }
        }
        let mut details = json!({"customers": customers.len(), "add": add.iter().map(|t| t.0).collect::<Vec<_>>(),
            "remove": remove.iter().map(|t| t.0).collect::<Vec<_>>(), "added": result.added,
            "removed": result.removed, "origin": origin.as_str(),
            // the reason is free text, kept with each customer's change (which an
            // erasure clears), not in the audit log
            "reason_given": reason.is_some()});
        if let Some(part) = part.filter(|p| p.of > 1) {
            details["part"] = json!(part.number);
            details["parts"] = json!(part.of);
            details["customers_in_all"] = json!(part.customers);
        }
        on_tx!(tx, |c| {
            insert_audit!(
                &mut *c,
                tenant,
                actor,
                AuditRecord::new(
                    "customers.tagged",
                    "tag",
                    add.first().or(remove.first()).map_or(0, |t| t.0)
                )
                .with_details(details.clone())
            )?
            .rows_affected()
        });
        note_changed(tx, tenant, &touched).await?;
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    async fn log_tag_changes(
        &self,
        tx: &mut Tx,
        customers: &[i64],
        tag: TagId,
        action: &str,
        origin: TagOrigin,
        reason: Option<&str>,
        actor: &Actor,
        now: i64,
    ) -> Result<()> {
        if customers.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = customers
            .iter()
            .map(|id| {
                format!(
                    "({}, {id}, {}, '{action}', $1, $2, $3, {now})",
                    self.tenant.0, tag.0
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO customer_tag_changes (tenant_id, customer_id, tag_id, action, origin, reason, actor_label, at) \
             VALUES {}",
            values.join(",")
        );
        on_tx!(tx, |c| {
            sqlx::query(&sql)
                .bind(origin.as_str())
                .bind(reason)
                .bind(&actor.label)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    // --- segments ---

    async fn segment_rows(&self) -> Result<Vec<SegmentRow>> {
        let sql = format!("{SEGMENT_SELECT} ORDER BY id");
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        }))
    }

    pub async fn segments(&self) -> Result<Vec<Segment>> {
        self.segment_rows()
            .await?
            .into_iter()
            .map(segment_of)
            .collect()
    }

    pub async fn get_segment(&self, id: SegmentId) -> Result<Segment> {
        let sql = format!("{SEGMENT_SELECT} AND id = $2");
        let row: Option<SegmentRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        segment_of(row.ok_or(StoreError::NotFound("segment"))?)
    }

    /// Every saved segment as conditions refer to it: dynamic ones by definition, static
    /// ones by their members.
    pub async fn segment_catalog(&self) -> Result<HashMap<i64, SavedSegment>> {
        let mut catalog = HashMap::new();
        let mut statics = Vec::new();
        for row in self.segment_rows().await? {
            match row.4 {
                Some(json) => {
                    let condition: Condition = serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("segment {}: {e}", row.0)))?;
                    catalog.insert(row.0, SavedSegment::Dynamic(condition));
                }
                None => statics.push(row.0),
            }
        }
        if !statics.is_empty() {
            let rows: Vec<(i64, i64)> = on_db!(self.store, |db| {
                sqlx::query_as(&format!(
                    "SELECT segment_id, customer_id FROM segment_members WHERE tenant_id = $1 AND segment_id IN ({})",
                    id_list(&statics)
                ))
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
            });
            for id in statics {
                catalog.insert(id, SavedSegment::Static(Vec::new()));
            }
            for (segment, customer) in rows {
                if let Some(SavedSegment::Static(members)) = catalog.get_mut(&segment) {
                    members.push(customer);
                }
            }
        }
        Ok(catalog)
    }

    /// Saves a segment. Its definition must already be checked against the tenant (the
    /// caller holds the catalog); a static segment's members are frozen now.
    pub async fn create_segment(&self, new: &NewSegment, actor: &Actor) -> Result<Segment> {
        let name = check_name("name", &new.name, 80)?;
        let kind = if new.condition.is_some() {
            SegmentKind::Dynamic
        } else {
            SegmentKind::Static
        };
        let definition = new
            .condition
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("serializable"));
        let now = now_ms();
        let tenant = self.tenant;
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO segments (tenant_id, name, description, kind, definition, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
            )
            .bind(tenant.0)
            .bind(&name)
            .bind(&new.description)
            .bind(kind.as_str())
            .bind(&definition)
            .bind(&actor.label)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a segment of that name exists", ""))?
        });
        let mut members: Vec<i64> = new.members.iter().map(|c| c.0).collect();
        members.sort_unstable();
        members.dedup();
        for chunk in members.chunks(500) {
            // a static segment's list; a dynamic one's members now (entering it later
            // is an event; being in it when it was made is not)
            let table = if new.condition.is_some() {
                "segment_memberships (tenant_id, segment_id, customer_id, entered_at)"
            } else {
                "segment_members (tenant_id, segment_id, customer_id, added_at)"
            };
            let sql = format!(
                "INSERT INTO {table} \
                 SELECT tenant_id, {id}, id, {now} FROM customers WHERE tenant_id = $1 AND merged_into_id IS NULL \
                 AND id IN ({})",
                id_list(chunk)
            );
            on_tx!(&mut tx, |c| sqlx::query(&sql)
                .bind(tenant.0)
                .execute(&mut *c)
                .await?
                .rows_affected());
        }
        on_tx!(&mut tx, |c| {
            insert_audit!(
                &mut *c,
                tenant,
                actor,
                AuditRecord::new("segment.created", "segment", id).with_details(
                    json!({"name": name, "kind": kind.as_str(), "members": members.len()})
                )
            )?
            .rows_affected()
        });
        tx.commit().await?;
        self.get_segment(SegmentId(id)).await
    }

    /// Changes a segment's name, description or (for a dynamic one) definition.
    pub async fn update_segment(
        &self,
        id: SegmentId,
        name: Option<&str>,
        description: Option<Option<&str>>,
        condition: Option<&Condition>,
        actor: &Actor,
    ) -> Result<Segment> {
        let current = self.get_segment(id).await?;
        let name = match name {
            Some(n) => check_name("name", n, 80)?,
            None => current.name.clone(),
        };
        let description = match description {
            Some(d) => d.map(str::to_owned),
            None => current.description.clone(),
        };
        if condition.is_some() && current.kind == SegmentKind::Static {
            return Err(StoreError::Conflict(
                "a static segment is a frozen list: it has no definition".into(),
            ));
        }
        let definition = match condition {
            Some(c) => Some(serde_json::to_string(c).expect("serializable")),
            None => current.condition.as_ref().map(|c| c.to_string()),
        };
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            sqlx::query(
                "UPDATE segments SET name = $1, description = $2, definition = $3, updated_at = $4 \
                 WHERE tenant_id = $5 AND id = $6",
            )
            .bind(&name)
            .bind(&description)
            .bind(&definition)
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a segment of that name exists", ""))?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("segment.updated", "segment", id.0)
                    .with_details(json!({"name": name}))
            )?;
            tx.commit().await?;
        });
        self.get_segment(id).await
    }

    /// Deletes a segment no other segment uses.
    pub async fn delete_segment(&self, id: SegmentId, actor: &Actor) -> Result<()> {
        let segment = self.get_segment(id).await?;
        let users = self
            .definitions_where(|c| c.segments().contains(&id.0), |_| false)
            .await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the segment is used by {}: change them first",
                users.join(", ")
            )));
        }
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            for sql in [
                "DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2",
                "DELETE FROM segment_counts WHERE tenant_id = $1 AND segment_id = $2",
                "DELETE FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2",
                "DELETE FROM segments WHERE tenant_id = $1 AND id = $2",
            ] {
                sqlx::query(sql)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("segment.deleted", "segment", id.0)
                    .with_details(json!({"name": segment.name}))
            )?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a segment's size now (its size over time is a chart).
    pub async fn record_segment_count(&self, id: SegmentId, count: u64) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO segment_counts (tenant_id, segment_id, at, count) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, segment_id, at) DO UPDATE SET count = excluded.count",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(now_ms())
            .bind(count as i64)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// A segment's recorded sizes, oldest first (the last 500).
    pub async fn segment_counts(&self, id: SegmentId) -> Result<Vec<(i64, i64)>> {
        self.get_segment(id).await?;
        let mut rows: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT at, count FROM segment_counts WHERE tenant_id = $1 AND segment_id = $2 ORDER BY at DESC LIMIT 500",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        rows.reverse();
        Ok(rows)
    }

    // --- settings ---

    /// A tenant setting (JSON), if set.
    pub async fn setting(&self, key: &str) -> Result<Option<Value>> {
        let value: Option<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2",
            )
            .bind(self.tenant.0)
            .bind(key)
            .fetch_optional(db)
            .await?
        });
        value
            .map(|v| {
                serde_json::from_str(&v)
                    .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))
            })
            .transpose()
    }

    /// When the tenant's settings last changed (0 if never): servers compare it to
    /// notice a change made through another one.
    pub async fn settings_version(&self) -> Result<i64> {
        let at: Option<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT MAX(updated_at) FROM tenant_settings WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_one(db)
                .await?
        });
        Ok(at.unwrap_or(0))
    }

    /// Sets a tenant setting. Audited.
    pub async fn put_setting(&self, key: &str, value: &Value, actor: &Actor) -> Result<()> {
        let mut tx = self.store.begin().await?;
        put_setting_tx(&mut tx, self.tenant, key, value, actor).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The saved segments and tag rules whose definitions name a unit.
    pub(crate) async fn definitions_using_unit(&self, unit: i64) -> Result<Vec<String>> {
        self.definitions_where(
            |c| {
                let mut found = false;
                c.walk(&mut |part| match part {
                    Condition::Unit(u) if *u == unit => found = true,
                    Condition::Orders(o) if o.unit == Some(unit) => found = true,
                    _ => {}
                });
                found
            },
            |_| false,
        )
        .await
    }

    /// The saved segments and tag rules that use something, named for an error
    /// (`segment 大客户 (3)`, `tag rule 上海 (1)`): those whose definition `uses`, and
    /// rules `rule_uses` otherwise (by the tags they change).
    async fn definitions_where(
        &self,
        uses: impl Fn(&Condition) -> bool,
        rule_uses: impl Fn(&TagRule) -> bool,
    ) -> Result<Vec<String>> {
        let mut users = Vec::new();
        for row in self.segment_rows().await? {
            if let Some(json) = &row.4
                && serde_json::from_str::<Condition>(json).is_ok_and(|c| uses(&c))
            {
                users.push(format!("segment {} ({})", row.1, row.0));
            }
        }
        for rule in self.tag_rules().await? {
            if rule_uses(&rule)
                || serde_json::from_value::<Condition>(rule.condition.clone())
                    .is_ok_and(|c| uses(&c))
            {
                users.push(format!("tag rule {} ({})", rule.name, rule.id.0));
            }
        }
        for (key, _, condition) in self.definition_settings().await? {
            if uses(&condition) {
                users.push(format!("the {key} setting"));
            }
        }
        Ok(users)
    }

    /// The tenant's settings that hold a segment definition (`{"definition": "…"}`, such
    /// as who counts as a KOC), with it parsed: renames rewrite them and deletions name
    /// them, as they do saved segments and tag rules.
    async fn definition_settings(&self) -> Result<Vec<(String, Value, Condition)>> {
        let rows: Vec<(String, String)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT key, value FROM tenant_settings WHERE tenant_id = $1 ORDER BY key",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(key, value)| {
                let value: Value = serde_json::from_str(&value).ok()?;
                let condition = siyu_audience::parse(value.get("definition")?.as_str()?).ok()?;
                Some((key, value, condition))
            })
            .collect())
    }

    /// Rewrites every saved segment's and tag rule's definition that `change` changes
    /// (a renamed source).
    pub(crate) async fn rewrite_definitions(
        &self,
        change: impl Fn(&Condition) -> Option<Condition>,
    ) -> Result<()> {
        let now = now_ms();
        for row in self.segment_rows().await? {
            let Some(json) = row.4.as_ref() else { continue };
            let Ok(condition) = serde_json::from_str::<Condition>(json) else {
                continue;
            };
            if let Some(new) = change(&condition) {
                on_db!(self.store, |db| {
                    sqlx::query("UPDATE segments SET definition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                        .bind(serde_json::to_string(&new).expect("serializable"))
                        .bind(now)
                        .bind(self.tenant.0)
                        .bind(row.0)
                        .execute(db)
                        .await?;
                });
            }
        }
        for rule in self.tag_rules().await? {
            let Ok(condition) = serde_json::from_value::<Condition>(rule.condition.clone()) else {
                continue;
            };
            if let Some(new) = change(&condition) {
                on_db!(self.store, |db| {
                    sqlx::query("UPDATE tag_rules SET condition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                        .bind(serde_json::to_string(&new).expect("serializable"))
                        .bind(now)
                        .bind(self.tenant.0)
                        .bind(rule.id.0)
                        .execute(db)
                        .await?;
                });
            }
        }
        for (key, value, condition) in self.definition_settings().await? {
            if let Some(new) = change(&condition) {
                // its new time tells other servers to reload the settings
                on_db!(self.store, |db| {
                    sqlx::query("UPDATE tenant_settings SET value = $1, updated_at = $2 WHERE tenant_id = $3 AND key = $4")
                        .bind(with_definition(value, &new))
                        .bind(now)
                        .bind(self.tenant.0)
                        .bind(&key)
                        .execute(db)
                        .await?;
                });
            }
        }
        Ok(())
    }

    // --- what the audience index reads ---

    /// Live customers with ids above `after`, at most `limit`, in id order, with all the
    /// audience index reads of them.
    pub async fn audience_facts(&self, after: i64, limit: i64) -> Result<Vec<CustomerFacts>> {
        let rows: Vec<(i64, String, Option<i64>, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, traits, owner_staff_id, first_seen_at FROM customers \
                 WHERE tenant_id = $1 AND merged_into_id IS NULL AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(self.tenant.0)
            .bind(after)
            .bind(limit)
            .fetch_all(db)
            .await?
        });
        let (Some(first), Some(last)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0))
        else {
            return Ok(Vec::new());
        };
        let range = format!("customer_id >= {first} AND customer_id <= {last}");
        self.facts_of_rows(rows, &range).await
    }

    /// The facts of these customers; those merged away or unknown are left out.
    pub async fn audience_facts_of(&self, ids: &[i64]) -> Result<Vec<CustomerFacts>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = id_list(ids);
        let rows: Vec<(i64, String, Option<i64>, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT id, traits, owner_staff_id, first_seen_at FROM customers \
                 WHERE tenant_id = $1 AND merged_into_id IS NULL AND id IN ({list}) ORDER BY id"
            ))
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let range = format!("customer_id IN ({list})");
        self.facts_of_rows(rows, &range).await
    }

    async fn facts_of_rows(
        &self,
        rows: Vec<(i64, String, Option<i64>, i64)>,
        range: &str,
    ) -> Result<Vec<CustomerFacts>> {
        // the audience layer counts days from midnight in the tenant's zone: its times
        // are shifted into that zone (event days are stored in it already)
        let zone = self.time_zone().await?;
        let mut facts: Vec<CustomerFacts> = rows
            .into_iter()
            .map(|(id, traits, owner, first_seen_at)| CustomerFacts {
                id,
                traits: serde_json::from_str(&traits).unwrap_or_default(),
                owner,
                first_seen_at: zone.local_ms(first_seen_at),
                ..Default::default()
            })
            .collect();
        let at: HashMap<i64, usize> = facts.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let tenant = self.tenant.0;
        let tags: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, tag_id FROM customer_tags WHERE tenant_id = $1 AND {range}"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, tag) in tags {
            if let Some(&i) = at.get(&c) {
                facts[i].tags.push(tag);
            }
        }
        let sources: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, source_id FROM customer_sources WHERE tenant_id = $1 AND {range} \
                 ORDER BY customer_id, first_at, id"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, source) in sources {
            if let Some(&i) = at.get(&c) {
                facts[i].sources.push(source);
            }
        }
        let codes: Vec<(i64, String)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, code FROM customer_channel_codes WHERE tenant_id = $1 AND {range} \
                 ORDER BY customer_id, first_at, id"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, code) in codes {
            if let Some(&i) = at.get(&c) {
                facts[i].channel_codes.push(code);
            }
        }
        let days: Vec<(i64, String, i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, name, day, count FROM customer_event_days WHERE tenant_id = $1 AND {range}"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, name, day, count) in days {
            if let Some(&i) = at.get(&c) {
                facts[i].events.push(EventDay {
                    name,
                    day: day as i32,
                    count: count.clamp(0, u32::MAX as i64) as u32,
                });
            }
        }
        let orders: Vec<(i64, i64, i64, Option<i64>, String)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, ordered_at, net_tenant_amount, unit_id, channel FROM orders \
                 WHERE tenant_id = $1 AND {range} AND status IN {}",
                OrderStatus::COUNTING_SQL
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, at_ms, amount, unit, channel) in orders {
            if let Some(&i) = at.get(&c) {
                facts[i].orders.push(OrderFact {
                    at: zone.local_ms(at_ms),
                    amount,
                    unit,
                    channel,
                });
            }
        }
        let consents: Vec<(i64, String, String)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, channel, status FROM consent_changes WHERE tenant_id = $1 AND {range} ORDER BY id"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        let mut newest: HashMap<(i64, String), String> = HashMap::new();
        for (c, channel, status) in consents {
            newest.insert((c, channel), status);
        }
        for ((c, channel), status) in newest {
            if status == "opt_out"
                && let Some(&i) = at.get(&c)
            {
                facts[i].opted_out.push(channel);
            }
        }
        Ok(facts)
    }

    /// For an event condition with property filters: per customer with at least one
    /// matching event in the window, how many. Reads the stored events of that name in
    /// the window (the language requires a window of at most a year for these).
    pub async fn filtered_event_counts(
        &self,
        p: &Performed,
        today: i32,
        customers: Option<&[i64]>,
    ) -> Result<HashMap<i64, u32>> {
        let only = match customers {
            Some([]) => return Ok(HashMap::new()),
            Some(ids) => format!(" AND customer_id IN ({})", id_list(ids)),
            None => String::new(),
        };
        let days = p
            .within_days
            .unwrap_or(siyu_audience::condition::MAX_FILTERED_WINDOW_DAYS);
        // the window's first local midnight, as a UTC time
        let since = self
            .time_zone()
            .await?
            .start_of_day(i64::from(window_start(today, days)));
        // views are counted under these names but stored as page and screen calls
        let (filter, value) = match p.event.as_str() {
            siyu_domain::tracking::PAGE_VIEWED => ("type = $2", "page"),
            siyu_domain::tracking::SCREEN_VIEWED => ("type = $2", "screen"),
            name => ("type = 'track' AND name = $2", name),
        };
        let sql = format!(
            "SELECT id, customer_id, properties FROM events \
             WHERE tenant_id = $1 AND {filter} AND timestamp >= $3 AND id > $4{only} ORDER BY id LIMIT 5000"
        );
        let mut counts: HashMap<i64, u32> = HashMap::new();
        let mut after = 0i64;
        loop {
            let rows: Vec<(i64, i64, String)> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .bind(value)
                    .bind(since)
                    .bind(after)
                    .fetch_all(db)
                    .await?
            });
            let Some(last) = rows.last() else { break };
            after = last.0;
            for (_, customer, properties) in rows {
                let properties: serde_json::Map<String, Value> =
                    serde_json::from_str(&properties).unwrap_or_default();
                let all = p.filters.iter().all(|f| {
                    properties.get(&f.property).is_some_and(|v| {
                        trait_matches(
                            v,
                            &siyu_audience::condition::TraitOp::Compare {
                                op: f.op,
                                value: f.value.clone(),
                            },
                            today,
                            // property filters compare; they hold no day test
                            siyu_domain::time::TimeZone::UTC,
                        )
                    })
                });
                if all {
                    *counts.entry(customer).or_default() += 1;
                }
            }
        }
        Ok(counts)
    }
}

/// The same condition with every `source(old)` naming `new`, if it names `old`.
pub(crate) fn rename_source(condition: &Condition, old: &str, new: &str) -> Option<Condition> {
    let renamed = condition.map_leaves(&|leaf| match leaf {
        Condition::Source(name) if name == old => Some(Condition::Source(new.to_owned())),
        _ => None,
    });
    (renamed != *condition).then_some(renamed)
}

/// A definition setting's value with its definition changed, as stored.
fn with_definition(mut value: Value, condition: &Condition) -> String {
    value["definition"] = Value::String(condition.to_string());
    value.to_string()
}

/// The same condition with every `tag(old)` naming `new`.
fn rename_tag(condition: &Condition, old: &str, new: &str) -> Condition {
    condition.map_leaves(&|leaf| match leaf {
        Condition::Tag(name) if name == old => Some(Condition::Tag(new.to_owned())),
        _ => None,
    })
}

type TagRuleRow = (i64, String, String, String, String, i64, String, i64, i64);

fn tag_rule_of(row: TagRuleRow) -> Result<TagRule> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("tag rule {}: {what}", row.0));
    let condition: Condition = serde_json::from_str(&row.2).map_err(|_| corrupt("condition"))?;
    let add: Vec<TagId> = serde_json::from_str(&row.3).map_err(|_| corrupt("add_tags"))?;
    let remove: Vec<TagId> = serde_json::from_str(&row.4).map_err(|_| corrupt("remove_tags"))?;
    Ok(TagRule {
        id: TagRuleId(row.0),
        name: row.1,
        definition: condition.to_string(),
        condition: serde_json::to_value(&condition).expect("serializable"),
        add,
        remove,
        enabled: row.5 != 0,
        created_by: row.6,
        created_at: row.7,
        updated_at: row.8,
    })
}

const TAG_RULE_SELECT: &str = "SELECT id, name, condition, add_tags, remove_tags, enabled, created_by, \
     created_at, updated_at FROM tag_rules WHERE tenant_id = $1";

/// A tag rule to save.
#[derive(Debug, Clone)]
pub struct NewTagRule {
    pub name: String,
    pub condition: Condition,
    pub add: Vec<TagId>,
    pub remove: Vec<TagId>,
    pub enabled: bool,
}

impl TenantScope<'_> {
    // --- segment membership, for entry and exit events ---

    /// Brings a dynamic segment's recorded members in line with what it matches now,
    /// among `checked` customers (all of them when `None`): those who came in get an
    /// `entered` event, those who left an `exited` one. Each is recorded once even when
    /// several servers sync at the same time (the insert or delete that changes the row
    /// is the one that writes the event). Answers (entered, exited).
    pub async fn sync_memberships(
        &self,
        segment: SegmentId,
        checked: Option<&[i64]>,
        members_now: &[i64],
    ) -> Result<(u64, u64)> {
        let tenant = self.tenant;
        let now = now_ms();
        let recorded: Vec<i64> = match checked {
            Some([]) => return Ok((0, 0)),
            Some(ids) => {
                let mut found = Vec::new();
                for chunk in ids.chunks(500) {
                    let rows: Vec<i64> = on_db!(self.store, |db| {
                        sqlx::query_scalar(&format!(
                            "SELECT customer_id FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2 \
                             AND customer_id IN ({})",
                            id_list(chunk)
                        ))
                        .bind(tenant.0)
                        .bind(segment.0)
                        .fetch_all(db)
                        .await?
                    });
                    found.extend(rows);
                }
                found
            }
            None => on_db!(self.store, |db| {
                sqlx::query_scalar(
                    "SELECT customer_id FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2",
                )
                .bind(tenant.0)
                .bind(segment.0)
                .fetch_all(db)
                .await?
            }),
        };
        let recorded: std::collections::HashSet<i64> = recorded.into_iter().collect();
        let now_set: std::collections::HashSet<i64> = members_now.iter().copied().collect();
        let coming: Vec<i64> = members_now
            .iter()
            .copied()
            .filter(|id| !recorded.contains(id))
            .collect();
        let leaving: Vec<i64> = recorded
            .iter()
            .copied()
            .filter(|id| !now_set.contains(id))
            .collect();
        if coming.is_empty() && leaving.is_empty() {
            return Ok((0, 0));
        }
        let mut tx = self.store.begin().await?;
        let mut entered = Vec::new();
        for chunk in coming.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|id| format!("({}, {}, {id}, {now})", tenant.0, segment.0))
                .collect();
            let sql = format!(
                "INSERT INTO segment_memberships (tenant_id, segment_id, customer_id, entered_at) VALUES {} \
                 ON CONFLICT (tenant_id, segment_id, customer_id) DO NOTHING RETURNING customer_id",
                values.join(",")
            );
            let rows: Vec<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(&sql)
                .fetch_all(&mut *c)
                .await?);
            entered.extend(rows);
        }
        let mut exited = Vec::new();
        for chunk in leaving.chunks(500) {
            let sql = format!(
                "DELETE FROM segment_memberships WHERE tenant_id = $1 AND segment_id = $2 AND customer_id IN ({}) \
                 RETURNING customer_id",
                id_list(chunk)
            );
            let rows: Vec<i64> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar(&sql)
                    .bind(tenant.0)
                    .bind(segment.0)
                    .fetch_all(&mut *c)
                    .await?
            });
            exited.extend(rows);
        }
        for (action, ids) in [("entered", &entered), ("exited", &exited)] {
            for chunk in ids.chunks(500) {
                let values: Vec<String> = chunk
                    .iter()
                    .map(|id| format!("({}, {}, {id}, '{action}', {now})", tenant.0, segment.0))
                    .collect();
                let sql = format!(
                    "INSERT INTO segment_events (tenant_id, segment_id, customer_id, action, at) VALUES {}",
                    values.join(",")
                );
                on_tx!(&mut tx, |c| sqlx::query(&sql)
                    .execute(&mut *c)
                    .await?
                    .rows_affected());
            }
        }
        tx.commit().await?;
        Ok((entered.len() as u64, exited.len() as u64))
    }

    /// Entries into and exits from a segment, oldest first, after the event id `after`.
    pub async fn segment_events(
        &self,
        segment: SegmentId,
        page: PageRequest,
    ) -> Result<Page<SegmentEvent>> {
        self.get_segment(segment).await?;
        let rows: Vec<(i64, i64, String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, customer_id, action, at FROM segment_events WHERE tenant_id = $1 AND segment_id = $2 \
                 AND id > $3 ORDER BY id LIMIT $4",
            )
            .bind(self.tenant.0)
            .bind(segment.0)
            .bind(page.after.unwrap_or(0))
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
        });
        let events = rows
            .into_iter()
            .map(|(id, customer, action, at)| SegmentEvent {
                id,
                segment_id: segment,
                customer_id: CustomerId(customer),
                action,
                at,
            })
            .collect();
        Ok(Page::from_rows(events, page, |e: &SegmentEvent| e.id))
    }

    // --- tag rules ---

    pub async fn tag_rules(&self) -> Result<Vec<TagRule>> {
        let sql = format!("{TAG_RULE_SELECT} ORDER BY id");
        let rows: Vec<TagRuleRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(tag_rule_of).collect()
    }

    pub async fn get_tag_rule(&self, id: TagRuleId) -> Result<TagRule> {
        let sql = format!("{TAG_RULE_SELECT} AND id = $2");
        let row: Option<TagRuleRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        tag_rule_of(row.ok_or(StoreError::NotFound("tag rule"))?)
    }

    async fn check_rule_tags(&self, add: &[TagId], remove: &[TagId]) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            return Err(
                DomainError::invalid("add", "a rule adds or removes at least one tag").into(),
            );
        }
        let known = self.tag_catalog().await?;
        for (field, tags) in [("add", add), ("remove", remove)] {
            for tag in tags {
                if !known.values().any(|id| *id == tag.0) {
                    return Err(
                        DomainError::invalid(field, format!("there is no tag {}", tag.0)).into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Saves a tag rule; its condition must already be checked against the tenant.
    pub async fn create_tag_rule(&self, new: &NewTagRule, actor: &Actor) -> Result<TagRule> {
        let name = check_name("name", &new.name, 80)?;
        self.check_rule_tags(&new.add, &new.remove).await?;
        let now = now_ms();
        let id: i64 = on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tag_rules (tenant_id, name, condition, add_tags, remove_tags, enabled, created_by, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(&name)
            .bind(serde_json::to_string(&new.condition).expect("serializable"))
            .bind(serde_json::to_string(&new.add).expect("serializable"))
            .bind(serde_json::to_string(&new.remove).expect("serializable"))
            .bind(i64::from(new.enabled))
            .bind(&actor.label)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag rule of that name exists", ""))?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag_rule.created", "tag_rule", id)
                    .with_details(json!({"name": name}))
            )?;
            tx.commit().await?;
            id
        });
        self.get_tag_rule(TagRuleId(id)).await
    }

    /// Changes a tag rule (each part optional).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_tag_rule(
        &self,
        id: TagRuleId,
        name: Option<&str>,
        condition: Option<&Condition>,
        add: Option<&[TagId]>,
        remove: Option<&[TagId]>,
        enabled: Option<bool>,
        actor: &Actor,
    ) -> Result<TagRule> {
        let current = self.get_tag_rule(id).await?;
        let name = match name {
            Some(n) => check_name("name", n, 80)?,
            None => current.name.clone(),
        };
        let add = add.map(<[TagId]>::to_vec).unwrap_or(current.add.clone());
        let remove = remove
            .map(<[TagId]>::to_vec)
            .unwrap_or(current.remove.clone());
        self.check_rule_tags(&add, &remove).await?;
        let condition = match condition {
            Some(c) => serde_json::to_string(c).expect("serializable"),
            None => current.condition.to_string(),
        };
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            sqlx::query(
                "UPDATE tag_rules SET name = $1, condition = $2, add_tags = $3, remove_tags = $4, enabled = $5, \
                 updated_at = $6 WHERE tenant_id = $7 AND id = $8",
            )
            .bind(&name)
            .bind(&condition)
            .bind(serde_json::to_string(&add).expect("serializable"))
            .bind(serde_json::to_string(&remove).expect("serializable"))
            .bind(i64::from(enabled.unwrap_or(current.enabled)))
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag rule of that name exists", ""))?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag_rule.updated", "tag_rule", id.0)
                    .with_details(json!({"name": name}))
            )?;
            tx.commit().await?;
        });
        self.get_tag_rule(id).await
    }

    pub async fn delete_tag_rule(&self, id: TagRuleId, actor: &Actor) -> Result<()> {
        let rule = self.get_tag_rule(id).await?;
        on_db!(self.store, |db| {
            let mut tx = db.begin().await?;
            sqlx::query("DELETE FROM tag_rules WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            insert_audit!(
                &mut *tx,
                self.tenant,
                actor,
                AuditRecord::new("tag_rule.deleted", "tag_rule", id.0)
                    .with_details(json!({"name": rule.name}))
            )?;
            tx.commit().await?;
        });
        Ok(())
    }
}

impl TenantScope<'_> {
    // --- lifecycle stages, for stage-change events ---

    /// Records each customer's lifecycle stage now (`checked`: the customers looked at,
    /// all when `None`). A customer seen for the first time is recorded without an event;
    /// one whose stage moved gets a change event, once even when several servers record
    /// the same move (only the update that finds the old stage writes it). Answers how
    /// many moved.
    pub async fn sync_stages(
        &self,
        stages: &[(i64, &str)],
        checked: Option<&[i64]>,
    ) -> Result<u64> {
        let tenant = self.tenant;
        let now = now_ms();
        let mut recorded: HashMap<i64, String> = HashMap::new();
        match checked {
            Some([]) => return Ok(0),
            Some(ids) => {
                for chunk in ids.chunks(500) {
                    let rows: Vec<(i64, String)> = on_db!(self.store, |db| {
                        sqlx::query_as(&format!(
                            "SELECT customer_id, stage FROM customer_stages WHERE tenant_id = $1 AND customer_id IN ({})",
                            id_list(chunk)
                        ))
                        .bind(tenant.0)
                        .fetch_all(db)
                        .await?
                    });
                    recorded.extend(rows);
                }
            }
            None => {
                let rows: Vec<(i64, String)> = on_db!(self.store, |db| {
                    sqlx::query_as(
                        "SELECT customer_id, stage FROM customer_stages WHERE tenant_id = $1",
                    )
                    .bind(tenant.0)
                    .fetch_all(db)
                    .await?
                });
                recorded.extend(rows);
            }
        }
        let mut first: Vec<(i64, &str)> = Vec::new();
        let mut moves: HashMap<(String, &str), Vec<i64>> = HashMap::new();
        for (id, stage) in stages {
            match recorded.get(id) {
                None => first.push((*id, stage)),
                Some(old) if old != stage => {
                    moves.entry((old.clone(), stage)).or_default().push(*id)
                }
                Some(_) => {}
            }
        }
        if first.is_empty() && moves.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        for chunk in first.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(id, stage)| format!("({}, {id}, '{stage}', {now})", tenant.0))
                .collect();
            let sql = format!(
                "INSERT INTO customer_stages (tenant_id, customer_id, stage, since) VALUES {} \
                 ON CONFLICT (tenant_id, customer_id) DO NOTHING",
                values.join(",")
            );
            on_tx!(&mut tx, |c| sqlx::query(&sql)
                .execute(&mut *c)
                .await?
                .rows_affected());
        }
        let mut moved = 0;
        for ((from, to), ids) in &moves {
            for chunk in ids.chunks(500) {
                let sql = format!(
                    "UPDATE customer_stages SET stage = $1, since = $2 WHERE tenant_id = $3 AND stage = $4 \
                     AND customer_id IN ({}) RETURNING customer_id",
                    id_list(chunk)
                );
                let changed: Vec<i64> = on_tx!(&mut tx, |c| {
                    sqlx::query_scalar(&sql)
                        .bind(*to)
                        .bind(now)
                        .bind(tenant.0)
                        .bind(from)
                        .fetch_all(&mut *c)
                        .await?
                });
                moved += changed.len() as u64;
                for chunk in changed.chunks(500) {
                    let values: Vec<String> = chunk
                        .iter()
                        .map(|id| format!("({}, {id}, $1, $2, {now})", tenant.0))
                        .collect();
                    let sql = format!(
                        "INSERT INTO stage_events (tenant_id, customer_id, from_stage, to_stage, at) VALUES {}",
                        values.join(",")
                    );
                    on_tx!(&mut tx, |c| {
                        sqlx::query(&sql)
                            .bind(from)
                            .bind(*to)
                            .execute(&mut *c)
                            .await?
                            .rows_affected()
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Lifecycle stage changes, oldest first, after the change id `after`.
    pub async fn stage_changes(&self, page: PageRequest) -> Result<Page<StageChange>> {
        let rows: Vec<(i64, i64, String, String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, customer_id, from_stage, to_stage, at FROM stage_events WHERE tenant_id = $1 \
                 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(self.tenant.0)
            .bind(page.after.unwrap_or(0))
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
        });
        let changes = rows
            .into_iter()
            .map(|(id, customer, from, to, at)| StageChange {
                id,
                customer_id: CustomerId(customer),
                from,
                to,
                at,
            })
            .collect();
        Ok(Page::from_rows(changes, page, |c: &StageChange| c.id))
    }
}

/// Writes a tenant setting and its audit record in the caller's transaction (for a
/// setting whose change must be checked against what the transaction reads).
pub(crate) async fn put_setting_tx(
    tx: &mut Tx,
    tenant: TenantId,
    key: &str,
    value: &Value,
    actor: &Actor,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(key)
        .bind(value.to_string())
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
        insert_audit!(
            &mut *c,
            tenant,
            actor,
            AuditRecord::new("settings.changed", "setting", 0)
                .with_details(json!({"key": key, "value": value}))
        )?
        .rows_affected()
    });
    Ok(())
}
