//! Tags on customers: reading a customer's tags and history, adding and removing tags
//! in audited parts.

use serde_json::json;
use siyu_domain::audience::{CustomerTag, TagChange, TagId, TagOrigin, TaggingResult};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::CustomerId;

use crate::audit;
use crate::connectors::queue_wecom_marks_in;
use crate::db::id_list;
use crate::db::{now_ms, on_db};
use crate::feed::note_changed;
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// Customers tagged per transaction in a bulk tagging.
const TAGGING_BATCH: usize = 5000;

#[derive(sqlx::FromRow)]
struct CustomerTagRow {
    tag_id: i64,
    name: String,
    colour: String,
    origin: String,
    reason: Option<String>,
    added_by: String,
    added_at: i64,
}

#[derive(sqlx::FromRow)]
struct TagChangeRow {
    customer_id: i64,
    tag_id: i64,
    /// The tag's name; none when the tag was deleted since.
    tag: Option<String>,
    action: String,
    origin: String,
    reason: Option<String>,
    actor_label: String,
    at: i64,
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
    // --- tags on customers ---

    /// A customer's tags.
    pub async fn customer_tags(&self, id: CustomerId) -> Result<Vec<CustomerTag>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<CustomerTagRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT t.id AS tag_id, t.name, t.colour, ct.origin, ct.reason, ct.added_by, ct.added_at \
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
                    tag_id: TagId(r.tag_id),
                    name: r.name,
                    colour: r.colour,
                    origin: TagOrigin::parse("origin", &r.origin)
                        .map_err(|_| StoreError::Corrupt("customer tag origin".into()))?,
                    reason: r.reason,
                    added_by: r.added_by,
                    added_at: r.added_at,
                })
            })
            .collect()
    }

    /// The history of a customer's tags, newest first.
    pub async fn tag_history(&self, id: CustomerId) -> Result<Vec<TagChange>> {
        let customer = self.get_customer(id).await?;
        let rows: Vec<TagChangeRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                    "SELECT c.customer_id, c.tag_id, t.name AS tag, c.action, c.origin, c.reason, c.actor_label, c.at \
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
                    customer_id: CustomerId(r.customer_id),
                    tag_id: TagId(r.tag_id),
                    tag: r.tag.unwrap_or_else(|| "(deleted)".into()),
                    action: r.action,
                    origin: TagOrigin::parse("origin", &r.origin)
                        .map_err(|_| StoreError::Corrupt("tag change origin".into()))?,
                    reason: r.reason,
                    actor: r.actor_label,
                    at: r.at,
                })
            })
            .collect()
    }

    /// Adds and removes tags on customers, each change recorded with who, when, how and
    /// why. Adding a tag a customer has, or removing one they lack, changes nothing, so
    /// concurrent taggings of the same customers lose nothing and count nothing twice.
    /// Customers that do not exist (or were merged), or are outside the scope's reach,
    /// are skipped.
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
        let customers = &self.reachable(customers).await?;
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
    pub async fn check_tags_known(&self, add: &[TagId], remove: &[TagId]) -> Result<()> {
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
                if origin != TagOrigin::Wecom {
                    // a mirrored WeCom corp tag goes to WeCom too
                    queue_wecom_marks_in(tx, tenant, *tag, &added, "add").await?;
                }
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
                if origin != TagOrigin::Wecom {
                    queue_wecom_marks_in(tx, tenant, *tag, &removed, "remove").await?;
                }
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
        audit::record(
            tx,
            tenant,
            actor,
            AuditRecord::new(
                action::CUSTOMERS_TAGGED,
                "tag",
                add.first().or(remove.first()).map_or(0, |t| t.0),
            )
            .with_details(details),
        )
        .await?;
        note_changed(tx, tenant, &touched).await?;
        Ok(result)
    }

    /// Puts tags on customers, pair by pair, inside a transaction that holds the
    /// tenant's customer lock: for a mirror that brings many customers each with their
    /// own tags (WeCom's corp tags), in one statement for the pairs, one for their
    /// history and one audit entry, where [`TenantScope::change_tags_in`] takes a few
    /// per tag. Customers must be live and tags the tenant's; pairs already on stay.
    pub(crate) async fn add_tag_pairs_in(
        &self,
        tx: &mut Tx,
        pairs: &[(CustomerId, TagId)],
        origin: TagOrigin,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<u64> {
        let tenant = self.tenant;
        let now = now_ms();
        let mut added: Vec<(i64, i64)> = Vec::new();
        for chunk in pairs.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(c, t)| format!("({}, {}, {}, $1, $2, $3, {now})", tenant.0, c.0, t.0))
                .collect();
            let sql = format!(
                "INSERT INTO customer_tags (tenant_id, customer_id, tag_id, origin, reason, added_by, added_at) \
                 VALUES {} ON CONFLICT (tenant_id, customer_id, tag_id) DO NOTHING \
                 RETURNING customer_id, tag_id",
                values.join(",")
            );
            let rows: Vec<(i64, i64)> = on_tx!(tx, |c| {
                sqlx::query_as(&sql)
                    .bind(origin.as_str())
                    .bind(reason)
                    .bind(&actor.label)
                    .fetch_all(&mut *c)
                    .await?
            });
            added.extend(rows);
        }
        if added.is_empty() {
            return Ok(0);
        }
        for chunk in added.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(c, t)| format!("({}, {c}, {t}, 'added', $1, $2, $3, {now})", tenant.0))
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
                    .await?;
            });
        }
        let mut tags: Vec<i64> = added.iter().map(|(_, t)| *t).collect();
        tags.sort_unstable();
        tags.dedup();
        let mut touched: Vec<CustomerId> = added.iter().map(|(c, _)| CustomerId(*c)).collect();
        touched.sort_unstable_by_key(|c| c.0);
        touched.dedup();
        audit::record(
            tx,
            tenant,
            actor,
            AuditRecord::new(action::CUSTOMERS_TAGGED, "tag", tags[0]).with_details(json!({
                "customers": touched.len(), "add": tags, "remove": [], "added": added.len(),
                "removed": 0, "origin": origin.as_str(), "reason_given": reason.is_some()
            })),
        )
        .await?;
        note_changed(tx, tenant, &touched).await?;
        Ok(added.len() as u64)
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
}
