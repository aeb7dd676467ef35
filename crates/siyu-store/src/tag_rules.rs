//! Tag rules: definitions that add and remove tags as customers come to match them.

use serde_json::json;
use siyu_audience::Condition;
use siyu_domain::DomainError;
use siyu_domain::audience::{TagId, TagRule, TagRuleId};
use siyu_domain::audit::{Actor, ActorKind, AuditRecord, action};
use siyu_domain::error::check_name;
use siyu_domain::ids::{JobId, StaffId};
use siyu_domain::jobs::kind;

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct TagRuleRow {
    id: i64,
    name: String,
    /// The condition as JSON.
    condition: String,
    /// Tag ids as a JSON list.
    add_tags: String,
    remove_tags: String,
    enabled: i64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

fn tag_rule_of(row: TagRuleRow) -> Result<TagRule> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("tag rule {}: {what}", row.id));
    let condition: Condition =
        serde_json::from_str(&row.condition).map_err(|_| corrupt("condition"))?;
    let add: Vec<TagId> = serde_json::from_str(&row.add_tags).map_err(|_| corrupt("add_tags"))?;
    let remove: Vec<TagId> =
        serde_json::from_str(&row.remove_tags).map_err(|_| corrupt("remove_tags"))?;
    Ok(TagRule {
        id: TagRuleId(row.id),
        name: row.name,
        definition: condition.to_string(),
        condition: serde_json::to_value(&condition).expect("serializable"),
        add,
        remove,
        enabled: row.enabled != 0,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
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

    /// Saves a tag rule; its condition must already be checked against the tenant. An
    /// enabled rule's backfill (applying it to everyone it matches now) is enqueued in
    /// the same transaction; its job comes back with the rule.
    pub async fn create_tag_rule(
        &self,
        new: &NewTagRule,
        actor: &Actor,
    ) -> Result<(TagRule, Option<JobId>)> {
        let name = check_name("name", &new.name, 80)?;
        self.check_rule_tags(&new.add, &new.remove).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
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
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag rule of that name exists", ""))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_RULE_CREATED, "tag_rule", id)
                .with_details(json!({"name": name})),
        )
        .await?;
        let backfill = if new.enabled {
            self.enqueue_backfill(&mut tx, TagRuleId(id), actor).await?
        } else {
            None
        };
        tx.commit().await?;
        self.store.notify_jobs();
        Ok((self.get_tag_rule(TagRuleId(id)).await?, backfill))
    }

    /// The job that applies a rule to everyone it matches now.
    async fn enqueue_backfill(
        &self,
        tx: &mut Tx,
        rule: TagRuleId,
        actor: &Actor,
    ) -> Result<Option<JobId>> {
        let job = NewJob::new(kind::TAG_RULE_BACKFILL, json!({"rule_id": rule.0}))
            .for_tenant(self.tenant);
        let job = match (actor.kind, actor.id) {
            (ActorKind::Staff, Some(staff)) => job.created_by(StaffId(staff)),
            _ => job,
        };
        Ok(enqueue_in(tx, &[job]).await?.into_iter().next().flatten())
    }

    /// Changes a tag rule (each part optional). A rule enabled after the change gets a
    /// backfill, enqueued in the same transaction, whose job comes back with the rule.
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
    ) -> Result<(TagRule, Option<JobId>)> {
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
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
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
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tag rule of that name exists", ""))?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_RULE_UPDATED, "tag_rule", id.0)
                .with_details(json!({"name": name})),
        )
        .await?;
        let backfill = if enabled.unwrap_or(current.enabled) {
            self.enqueue_backfill(&mut tx, id, actor).await?
        } else {
            None
        };
        tx.commit().await?;
        self.store.notify_jobs();
        Ok((self.get_tag_rule(id).await?, backfill))
    }

    pub async fn delete_tag_rule(&self, id: TagRuleId, actor: &Actor) -> Result<()> {
        let rule = self.get_tag_rule(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM tag_rules WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TAG_RULE_DELETED, "tag_rule", id.0)
                .with_details(json!({"name": rule.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
