//! Tag groups and tags: the tenant's catalog of labels (customers' tags are `tagging`).

use std::collections::HashMap;

use serde_json::json;
use siyu_audience::Condition;
use siyu_domain::audience::{Tag, TagGroup, TagGroupId, TagId, TagOrigin};
use siyu_domain::audit::{Actor, ActorKind, AuditRecord, action};
use siyu_domain::error::check_name;
use siyu_domain::ids::{CustomerId, UnitId};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::definitions::{rename_tag, with_definition};
use crate::feed::note_changed;
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct TagRow {
    id: i64,
    group_id: i64,
    name: String,
    colour: String,
    position: i64,
    /// Customers who have the tag.
    customers: i64,
}

fn tag_of(row: TagRow) -> Tag {
    Tag {
        id: TagId(row.id),
        group_id: TagGroupId(row.group_id),
        name: row.name,
        colour: row.colour,
        position: row.position,
        customers: row.customers,
    }
}

const TAG_SELECT: &str = "SELECT t.id, t.group_id, t.name, t.colour, t.position, \
     (SELECT COUNT(*) FROM customer_tags ct WHERE ct.tenant_id = t.tenant_id AND ct.tag_id = t.id) \
     AS customers FROM tags t WHERE t.tenant_id = $1";

#[derive(sqlx::FromRow)]
struct TagGroupRow {
    id: i64,
    name: String,
    unit_id: Option<i64>,
    position: i64,
}

impl TenantScope<'_> {
    /// Every tag group with its tags, in their order.
    pub async fn tag_groups(&self) -> Result<Vec<TagGroup>> {
        let groups: Vec<TagGroupRow> = on_db!(self.store, |db| {
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
            .map(|g| TagGroup {
                id: TagGroupId(g.id),
                name: g.name,
                unit_id: g.unit_id.map(UnitId),
                position: g.position,
                tags: tags
                    .iter()
                    .filter(|t| t.group_id.0 == g.id)
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
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO tag_groups (tenant_id, unit_id, name, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(unit.map(|u| u.0))
            .bind(&name)
            .bind(position)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag group of that name exists", "no such unit"))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_GROUP_CREATED, "tag_group", id)
                .with_details(json!({"name": name})),
        )
        .await?;
        tx.commit().await?;
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
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE tag_groups SET name = $1, position = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
                .bind(&name)
                .bind(position)
                .bind(now_ms())
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(|e| StoreError::from_constraint(e, "a tag group of that name exists", ""))?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_GROUP_UPDATED, "tag_group", id.0)
                .with_details(json!({"name": name})),
        )
        .await?;
        tx.commit().await?;
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
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM tag_groups WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_GROUP_DELETED, "tag_group", id.0)
                .with_details(json!({"name": group.name})),
        )
        .await?;
        tx.commit().await?;
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
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO tags (tenant_id, group_id, name, colour, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(group.0)
            .bind(&name)
            .bind(&colour)
            .bind(position)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag of that name exists", "no such tag group"))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_CREATED, "tag", id).with_details(json!({"name": name})),
        )
        .await?;
        tx.commit().await?;
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
            self.segment_definitions()
                .await?
                .into_iter()
                .filter_map(|row| {
                    let condition: Condition = serde_json::from_str(&row.definition).ok()?;
                    condition.tags().contains(&current.name.as_str()).then(|| {
                        let renamed = rename_tag(&condition, &current.name, &name);
                        (
                            row.id,
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
        let mut tx = if renamed_settings.is_empty() {
            self.store.begin().await?
        } else {
            // rewritten settings move the tenant's settings version on, in turn
            self.store.begin_changing_customers(&[self.tenant]).await?
        };
        let version = if renamed_settings.is_empty() {
            now
        } else {
            crate::settings::next_version(&mut tx, self.tenant).await?
        };
        on_tx!(&mut tx, |c| {
            for (key, value) in &renamed_settings {
                sqlx::query("UPDATE tenant_settings SET value = $1, updated_at = $2 WHERE tenant_id = $3 AND key = $4")
                    .bind(value)
                    .bind(version)
                    .bind(self.tenant.0)
                    .bind(key)
                    .execute(&mut *c)
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
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag of that name exists", ""))?;
            for (rule, condition) in &renamed_rules {
                sqlx::query("UPDATE tag_rules SET condition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                    .bind(condition)
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(rule)
                    .execute(&mut *c)
                    .await?;
            }
            for (segment, definition) in &renamed {
                sqlx::query("UPDATE segments SET definition = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                    .bind(definition)
                    .bind(now)
                    .bind(self.tenant.0)
                    .bind(segment)
                    .execute(&mut *c)
                    .await?;
            }
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_UPDATED, "tag", id.0).with_details(
                json!({"name": name, "was": current.name, "segments_rewritten": renamed.len()}),
            ),
        )
        .await?;
        tx.commit().await?;
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
        });
        audit::record(
            &mut tx,
            tenant,
            actor,
            AuditRecord::new(action::TAG_DELETED, "tag", id.0)
                .with_details(json!({"name": tag.name, "customers": customers.len()})),
        )
        .await?;
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
}
