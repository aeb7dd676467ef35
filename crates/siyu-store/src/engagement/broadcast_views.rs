//! What the console shows of a mass send's progress: each batch (on WeCom, one member's
//! task) with its recipients counted by status, and the recipients one by one. The
//! sandbox's recipients carry no status of their own: they read as their batch.

use std::collections::HashMap;

use siyu_domain::engagement::member_tasks::{
    BatchState, BroadcastRecipient, BroadcastTask, RecipientStatus, TaskState,
};
use siyu_domain::ids::{BroadcastId, CustomerId, StaffId};
use siyu_domain::page::{Page, PageRequest};

use crate::db::on_db;
use crate::{Result, TenantScope};

/// A recipient's status as shown: the sandbox's carry none and follow their batch.
const STATUS: &str = "COALESCE(r.status, CASE b.state WHEN 'sent' THEN 'sent' \
     WHEN 'cancelled' THEN 'not_sent' ELSE 'planned' END)";

impl TenantScope<'_> {
    /// A send's batches (on WeCom: its member tasks) with their results, for a send the
    /// scope reaches.
    pub async fn broadcast_tasks(&self, id: BroadcastId) -> Result<Vec<BroadcastTask>> {
        self.get_broadcast(id).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            batch: i64,
            sender_userid: Option<String>,
            member_name: Option<String>,
            sender_staff_id: Option<i64>,
            recipients: i64,
            state: String,
            task_state: Option<String>,
            msgid: Option<String>,
            member_sent_at: Option<i64>,
            reminders: String,
            unresolved: Option<String>,
        }
        let rows: Vec<Row> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT b.batch, b.sender_userid, m.name AS member_name, b.sender_staff_id, \
                 b.recipients, b.state, b.task_state, b.msgid, b.member_sent_at, b.reminders, \
                 b.unresolved FROM broadcast_batches b \
                 JOIN broadcasts s ON s.tenant_id = b.tenant_id AND s.id = b.broadcast_id \
                 LEFT JOIN wecom_members m ON m.connector_id = s.connector_id \
                 AND m.userid = b.sender_userid \
                 WHERE b.tenant_id = $1 AND b.broadcast_id = $2 ORDER BY b.batch",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        #[derive(sqlx::FromRow)]
        struct Count {
            batch: i64,
            status: String,
            recipients: i64,
        }
        let counts: Vec<Count> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT r.batch, {STATUS} AS status, COUNT(*) AS recipients \
                 FROM broadcast_recipients r JOIN broadcast_batches b \
                 ON b.broadcast_id = r.broadcast_id AND b.batch = r.batch \
                 WHERE r.broadcast_id = $1 AND r.tenant_id = $2 GROUP BY r.batch, 2"
            ))
            .bind(id.0)
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let mut results: HashMap<i64, HashMap<RecipientStatus, i64>> = HashMap::new();
        for c in counts {
            let status = RecipientStatus::parse("status", &c.status)?;
            *results
                .entry(c.batch)
                .or_default()
                .entry(status)
                .or_default() += c.recipients;
        }
        rows.into_iter()
            .map(|r| {
                Ok(BroadcastTask {
                    batch: r.batch,
                    member_userid: r.sender_userid,
                    member_name: r.member_name,
                    staff_id: r.sender_staff_id.map(StaffId),
                    recipients: r.recipients,
                    state: BatchState::parse("state", &r.state)?,
                    task_state: r
                        .task_state
                        .as_deref()
                        .map(|t| TaskState::parse("task_state", t))
                        .transpose()?,
                    msgid: r.msgid,
                    member_sent_at: r.member_sent_at,
                    reminders: serde_json::from_str(&r.reminders).unwrap_or_default(),
                    unresolved: r
                        .unresolved
                        .as_deref()
                        .and_then(|u| serde_json::from_str(u).ok()),
                    results: results.remove(&r.batch).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// A send's recipients, by batch and customer, optionally those with one status.
    pub async fn broadcast_recipients(
        &self,
        id: BroadcastId,
        status: Option<RecipientStatus>,
        page: PageRequest,
    ) -> Result<Page<BroadcastRecipient>> {
        self.get_broadcast(id).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            customer_id: i64,
            batch: i64,
            sender_userid: Option<String>,
            external_userid: Option<String>,
            status: String,
            status_at: Option<i64>,
        }
        let (after_batch, after_customer) = page.after_pair.unwrap_or((-1, 0));
        let filter = if status.is_some() {
            format!(" AND {STATUS} = $6")
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT r.customer_id, r.batch, b.sender_userid, r.external_userid, \
             {STATUS} AS status, COALESCE(r.status_at, b.answered_at) AS status_at \
             FROM broadcast_recipients r JOIN broadcast_batches b \
             ON b.broadcast_id = r.broadcast_id AND b.batch = r.batch \
             WHERE r.broadcast_id = $1 AND r.tenant_id = $2 \
             AND (r.batch > $3 OR (r.batch = $3 AND r.customer_id > $4)){filter} \
             ORDER BY r.batch, r.customer_id LIMIT $5"
        );
        let rows: Vec<Row> = on_db!(self.store, |db| {
            let mut query = sqlx::query_as(&sql)
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(after_batch)
                .bind(after_customer)
                .bind(page.fetch_limit());
            if let Some(status) = status {
                query = query.bind(status.as_str());
            }
            query.fetch_all(db).await?
        });
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(BroadcastRecipient {
                    customer_id: CustomerId(r.customer_id),
                    batch: r.batch,
                    member_userid: r.sender_userid,
                    external_userid: r.external_userid,
                    status: RecipientStatus::parse("status", &r.status)?,
                    status_at: r.status_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows_by_pair(items, page, |r| {
            (r.batch, r.customer_id.0)
        }))
    }
}
