//! Corp tags both ways: a mirrored tag put on or taken off a customer in siyu (by
//! hand, the API, a rule, an import) is marked on each of their WeCom follow relations
//! (`mark_tag`), and what WeCom says does not undo it meanwhile.
//!
//! The tagging's transaction writes an outbox row per (connector, customer, WeCom tag,
//! add or remove) and enqueues the `wecom.mark_tags` job, so the intent commits with
//! the change or not at all. The job marks it on every live relation, then writes the
//! relations' tag ids and deletes the row in one transaction. While a row waits, a
//! callback or a sync that reads the relation from WeCom (which does not have the
//! change yet) neither takes an added tag off nor puts a removed one back: siyu's
//! change is the newer. So when both sides change one customer at once, each change
//! lands on both sides and none is lost or doubled.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use siyu_domain::audience::TagId;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, TenantId};

use crate::db::{id_list, now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// A mirrored tag waiting to be marked on a customer's relations.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WecomMark {
    pub id: i64,
    pub customer_id: i64,
    pub wecom_tag_id: String,
    /// `add` or `remove`.
    pub action: String,
}

/// A live follow relation of a customer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WecomRelation {
    pub external_userid: String,
    pub userid: String,
}

/// Queues marks for customers whose tag `tag` changed in siyu, in the change's
/// transaction, when the tag mirrors a WeCom corp tag (of any connector).
pub(crate) async fn queue_wecom_marks_in(
    tx: &mut Tx,
    tenant: TenantId,
    tag: TagId,
    customers: &[i64],
    action: &str,
) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let mirrors: Vec<(i64, String)> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT connector_id, wecom_tag_id FROM wecom_tags WHERE tenant_id = $1 AND tag_id = $2",
        )
        .bind(tenant.0)
        .bind(tag.0)
        .fetch_all(&mut *c)
        .await?
    });
    let now = now_ms();
    for (connector, wecom_tag) in mirrors {
        for chunk in customers.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|c| format!("({connector}, {}, {c}, $1, $2, {now})", tenant.0))
                .collect();
            let sql = format!(
                "INSERT INTO wecom_tag_marks (connector_id, tenant_id, customer_id, wecom_tag_id, \
                 action, queued_at) VALUES {}",
                values.join(",")
            );
            on_tx!(tx, |c| {
                sqlx::query(&sql)
                    .bind(&wecom_tag)
                    .bind(action)
                    .execute(&mut *c)
                    .await?;
            });
        }
        let job = NewJob::new(
            siyu_domain::jobs::kind::WECOM_MARK_TAGS,
            json!({"connector_id": connector}),
        )
        .for_tenant(tenant);
        enqueue_in(tx, &[job]).await?;
    }
    Ok(())
}

/// The (customer, WeCom tag) pairs with a mark waiting, among these customers: what
/// WeCom says of them is older than siyu's change.
pub(crate) async fn waiting_marks_in(
    tx: &mut Tx,
    connector: ConnectorId,
    customers: &[i64],
) -> Result<HashSet<(i64, String)>> {
    let mut waiting = HashSet::new();
    for chunk in customers.chunks(500) {
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            sqlx::query_as(&format!(
                "SELECT customer_id, wecom_tag_id FROM wecom_tag_marks \
                 WHERE connector_id = $1 AND customer_id IN ({})",
                id_list(chunk)
            ))
            .bind(connector.0)
            .fetch_all(&mut *c)
            .await?
        });
        waiting.extend(rows);
    }
    Ok(waiting)
}

impl TenantScope<'_> {
    /// The marks waiting on a connector, oldest first.
    pub async fn wecom_marks(&self, id: ConnectorId, limit: i64) -> Result<Vec<WecomMark>> {
        self.check_connector(id).await?;
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, customer_id, wecom_tag_id, action FROM wecom_tag_marks \
                 WHERE connector_id = $1 ORDER BY id LIMIT $2",
            )
            .bind(id.0)
            .bind(limit)
            .fetch_all(db)
            .await?
        }))
    }

    /// A customer's live follow relations on a connector (their merged profiles'
    /// included).
    pub async fn wecom_relations_of(
        &self,
        id: ConnectorId,
        customer: CustomerId,
    ) -> Result<Vec<WecomRelation>> {
        self.check_connector(id).await?;
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT f.external_userid, f.userid FROM wecom_follows f \
                 JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
                 WHERE f.connector_id = $1 AND f.deleted_at IS NULL \
                 AND (f.customer_id = $2 OR c.merged_into_id = $2) \
                 ORDER BY f.external_userid, f.userid",
            )
            .bind(id.0)
            .bind(customer.0)
            .fetch_all(db)
            .await?
        }))
    }

    /// A mark is on WeCom: the relations' tag ids say so and the mark is gone, in one
    /// transaction (a relation read meanwhile then already carries it).
    pub async fn applied_wecom_mark(
        &self,
        id: ConnectorId,
        mark: &WecomMark,
        relations: &[WecomRelation],
    ) -> Result<()> {
        self.check_connector(id).await?;
        // in turn with contacts being stored (they check `marked_at` in theirs)
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let now = now_ms();
        for relation in relations {
            let tag_ids: Option<String> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar(
                    "SELECT tag_ids FROM wecom_follows WHERE connector_id = $1 \
                     AND external_userid = $2 AND userid = $3",
                )
                .bind(id.0)
                .bind(&relation.external_userid)
                .bind(&relation.userid)
                .fetch_optional(&mut *c)
                .await?
            });
            let Some(tag_ids) = tag_ids else { continue };
            let mut ids: Vec<String> = serde_json::from_str(&tag_ids)
                .map_err(|e| StoreError::Corrupt(format!("a follow's tag ids: {e}")))?;
            ids.retain(|t| *t != mark.wecom_tag_id);
            if mark.action == "add" {
                ids.push(mark.wecom_tag_id.clone());
            }
            on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE wecom_follows SET tag_ids = $1, marked_at = $5 \
                     WHERE connector_id = $2 AND external_userid = $3 AND userid = $4",
                )
                .bind(serde_json::Value::from(ids).to_string())
                .bind(id.0)
                .bind(&relation.external_userid)
                .bind(&relation.userid)
                .bind(now)
                .execute(&mut *c)
                .await?;
            });
        }
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM wecom_tag_marks WHERE connector_id = $1 AND id = $2")
                .bind(id.0)
                .bind(mark.id)
                .execute(&mut *c)
                .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// Drops a mark WeCom will never take (the tag is gone there).
    pub async fn drop_wecom_mark(&self, id: ConnectorId, mark: &WecomMark) -> Result<()> {
        self.check_connector(id).await?;
        on_db!(self.store, |db| {
            sqlx::query("DELETE FROM wecom_tag_marks WHERE connector_id = $1 AND id = $2")
                .bind(id.0)
                .bind(mark.id)
                .execute(db)
                .await?;
        });
        Ok(())
    }
}

/// Mirrored tags (siyu tag → WeCom tag id) by siyu tag, for a connector.
pub(crate) fn by_siyu_tag(map: &HashMap<String, TagId>) -> HashMap<TagId, String> {
    map.iter().map(|(w, t)| (*t, w.clone())).collect()
}
