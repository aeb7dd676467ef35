//! A WeCom send's member tasks: the answer of each `add_msg_template` (the msgid, the
//! customers WeCom refused), what following the tasks finds (who confirmed, what each
//! customer got), reminders, the batches whose lost call a person must resolve, and
//! what the console shows of them: each batch (member task) with its results, and each
//! recipient. The rules are `siyu_domain::engagement::member_tasks`.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::engagement::broadcast::BroadcastState;
use siyu_domain::engagement::member_tasks::{
    BatchResolution, BatchState, BroadcastRecipient, BroadcastTask, RecipientStatus, TaskState,
    Unresolved, WecomRoute,
};
use siyu_domain::error::DomainError;
use siyu_domain::ids::{BroadcastId, ConnectorId, CustomerId, StaffId};
use siyu_domain::jobs::kind;
use siyu_domain::page::{Page, PageRequest};

use super::broadcast_sends::{answer_batch, follow_in};
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// external_userids per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// What following a send needs: where it stands, how many batches are not answered yet
/// (planned, sending, or waiting for a person) and the member tasks still waiting.
#[derive(Debug, Clone)]
pub struct FollowState {
    pub state: BroadcastState,
    pub connector: Option<ConnectorId>,
    pub unanswered: i64,
    pub tasks: Vec<TaskToFollow>,
}

/// A member task WeCom has, not yet over.
#[derive(Debug, Clone)]
pub struct TaskToFollow {
    pub batch: i64,
    pub msgid: String,
    pub userid: String,
    pub staff: Option<StaffId>,
    /// The member left the company (as the last sync or callback said).
    pub member_left: bool,
    pub answered_at: i64,
    /// When the member was reminded (epoch ms).
    pub reminders: Vec<i64>,
}

/// One customer's result as following read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    pub external_userid: String,
    pub status: RecipientStatus,
    /// When WeCom says it was sent (epoch ms), else when it was read.
    pub at: i64,
}

impl TenantScope<'_> {
    /// Every live relation of the connector a WeCom send may reach a customer through
    /// (planning picks one per recipient): whose member the customer's owner is, when
    /// the member added them, whether the member left.
    pub async fn wecom_routes(&self, connector: ConnectorId) -> Result<Vec<WecomRoute>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            customer_id: i64,
            external_userid: String,
            userid: String,
            staff_id: i64,
            owner: bool,
            added_at: i64,
            member_left: bool,
        }
        let rows: Vec<Row> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT f.customer_id, f.external_userid, f.userid, m.staff_id, \
                 (c.owner_staff_id IS NOT NULL AND c.owner_staff_id = m.staff_id) AS owner, \
                 f.added_at, (m.left_at IS NOT NULL OR m.status = 5) AS member_left \
                 FROM wecom_follows f \
                 JOIN wecom_members m ON m.connector_id = f.connector_id AND m.userid = f.userid \
                 JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
                 WHERE f.connector_id = $1 AND f.tenant_id = $2 AND f.deleted_at IS NULL",
            )
            .bind(connector.0)
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| WecomRoute {
                customer: r.customer_id,
                external_userid: r.external_userid,
                userid: r.userid,
                staff: StaffId(r.staff_id),
                owner: r.owner,
                added_at: r.added_at,
                member_left: r.member_left,
            })
            .collect())
    }

    /// Records WeCom's answer to a batch's `add_msg_template`: its msgid, the member's
    /// task waiting, each recipient waiting or (in `fail_list`) refused; the follow job
    /// is enqueued with it. Once: false when the batch was answered before.
    pub async fn record_member_task(
        &self,
        id: BroadcastId,
        batch: i64,
        msgid: &str,
        fail_list: &[String],
        answer: &Value,
    ) -> Result<bool> {
        let mut tx = self.store.begin_writing().await?;
        let now = now_ms();
        let recipients = set_statuses(
            &mut tx,
            self.tenant.0,
            id,
            batch,
            None,
            RecipientStatus::Waiting,
            now,
            &[RecipientStatus::Planned],
        )
        .await?;
        let refused = set_statuses(
            &mut tx,
            self.tenant.0,
            id,
            batch,
            Some(fail_list),
            RecipientStatus::Refused,
            now,
            &[RecipientStatus::Waiting],
        )
        .await?;
        let answered = answer_batch(
            &mut tx,
            self.tenant.0,
            id,
            batch,
            recipients - refused,
            answer,
            &[("msgid", Some(msgid)), ("task_state", Some("waiting"))],
        )
        .await?;
        if !answered {
            return Ok(false);
        }
        follow_in(&mut tx, self.tenant, id).await?;
        tx.commit().await?;
        self.store.notify_jobs();
        Ok(true)
    }

    /// Records that WeCom refused a batch's call as a whole (nothing was made): every
    /// recipient refused (or, when the member is gone, `member_left`), with WeCom's
    /// words in the answer. Never retried as if it were transient.
    pub async fn record_member_task_refused(
        &self,
        id: BroadcastId,
        batch: i64,
        member_left: bool,
        answer: &Value,
    ) -> Result<bool> {
        let (status, task) = if member_left {
            (RecipientStatus::MemberLeft, TaskState::MemberLeft)
        } else {
            (RecipientStatus::Refused, TaskState::Failed)
        };
        let mut tx = self.store.begin_writing().await?;
        set_statuses(
            &mut tx,
            self.tenant.0,
            id,
            batch,
            None,
            status,
            now_ms(),
            &[RecipientStatus::Planned],
        )
        .await?;
        let answered = answer_batch(
            &mut tx,
            self.tenant.0,
            id,
            batch,
            0,
            answer,
            &[("task_state", Some(task.as_str()))],
        )
        .await?;
        if answered {
            tx.commit().await?;
        }
        Ok(answered)
    }

    /// Stops a batch whose lost call could not be told apart from other messages: it
    /// waits for a person ([`Self::resolve_batch`]).
    pub async fn mark_batch_unresolved(
        &self,
        id: BroadcastId,
        batch: i64,
        unresolved: &Unresolved,
    ) -> Result<()> {
        let text = serde_json::to_string(unresolved)
            .map_err(|e| StoreError::Corrupt(format!("unresolved: {e}")))?;
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'unresolved', unresolved = $1 \
                 WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4 AND state = 'sending'",
            )
            .bind(&text)
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// The msgids siyu's batches recorded since `since` (epoch ms): reconciling leaves
    /// them out, they are other batches'.
    pub async fn recorded_msgids(&self, since: i64) -> Result<HashSet<String>> {
        let rows: Vec<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT msgid FROM broadcast_batches WHERE tenant_id = $1 AND msgid IS NOT NULL \
                 AND answered_at >= $2",
            )
            .bind(self.tenant.0)
            .bind(since)
            .fetch_all(db)
            .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// What following a send needs now.
    pub async fn follow_state(&self, id: BroadcastId) -> Result<FollowState> {
        #[derive(sqlx::FromRow)]
        struct Send {
            state: String,
            connector_id: Option<i64>,
            unanswered: i64,
        }
        let send: Option<Send> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT s.state, s.connector_id, (SELECT COUNT(*) FROM broadcast_batches b \
                 WHERE b.tenant_id = s.tenant_id AND b.broadcast_id = s.id \
                 AND b.state IN ('planned', 'sending', 'unresolved')) AS unanswered \
                 FROM broadcasts s WHERE s.tenant_id = $1 AND s.id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_optional(db)
            .await?
        });
        let send = send.ok_or(StoreError::NotFound("broadcast"))?;
        #[derive(sqlx::FromRow)]
        struct Task {
            batch: i64,
            msgid: String,
            sender_userid: String,
            sender_staff_id: Option<i64>,
            member_left: bool,
            answered_at: i64,
            reminders: String,
        }
        let tasks: Vec<Task> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT b.batch, b.msgid, b.sender_userid, b.sender_staff_id, \
                 (m.left_at IS NOT NULL OR m.status = 5) AS member_left, b.answered_at, \
                 b.reminders FROM broadcast_batches b \
                 JOIN broadcasts s ON s.tenant_id = b.tenant_id AND s.id = b.broadcast_id \
                 LEFT JOIN wecom_members m ON m.connector_id = s.connector_id \
                 AND m.userid = b.sender_userid \
                 WHERE b.tenant_id = $1 AND b.broadcast_id = $2 AND b.task_state = 'waiting' \
                 ORDER BY b.batch",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        Ok(FollowState {
            state: BroadcastState::parse("state", &send.state)?,
            connector: send.connector_id.map(ConnectorId),
            unanswered: send.unanswered,
            tasks: tasks
                .into_iter()
                .map(|t| TaskToFollow {
                    batch: t.batch,
                    msgid: t.msgid,
                    userid: t.sender_userid,
                    staff: t.sender_staff_id.map(StaffId),
                    member_left: t.member_left,
                    answered_at: t.answered_at,
                    reminders: serde_json::from_str(&t.reminders).unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// Records what following read of a waiting member task: each customer's result,
    /// and where the task stands. A task over without the member sending (cancelled,
    /// the member left, expired) leaves its waiting customers not sent (or with their
    /// member gone). Only a waiting task changes.
    pub async fn record_task_results(
        &self,
        id: BroadcastId,
        batch: i64,
        state: TaskState,
        member_sent_at: Option<i64>,
        results: &[RecipientResult],
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.store.begin_writing().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_batches SET task_state = $1, task_checked_at = $2, \
                 member_sent_at = COALESCE($3, member_sent_at) \
                 WHERE tenant_id = $4 AND broadcast_id = $5 AND batch = $6 \
                 AND task_state = 'waiting'",
            )
            .bind(state.as_str())
            .bind(now)
            .bind(member_sent_at)
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Ok(());
        }
        let mut by_status: HashMap<(RecipientStatus, i64), Vec<String>> = HashMap::new();
        for r in results {
            by_status
                .entry((r.status, r.at))
                .or_default()
                .push(r.external_userid.clone());
        }
        for ((status, at), externals) in &by_status {
            set_statuses(
                &mut tx,
                self.tenant.0,
                id,
                batch,
                Some(externals),
                *status,
                *at,
                &[RecipientStatus::Waiting],
            )
            .await?;
        }
        let left_as = match state {
            TaskState::Waiting | TaskState::Confirmed => None,
            TaskState::MemberLeft => Some(RecipientStatus::MemberLeft),
            TaskState::Cancelled | TaskState::Expired | TaskState::Failed => {
                Some(RecipientStatus::NotSent)
            }
        };
        if let Some(status) = left_as {
            set_statuses(
                &mut tx,
                self.tenant.0,
                id,
                batch,
                None,
                status,
                now,
                &[RecipientStatus::Waiting],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that a batch's member was reminded at `at`.
    pub async fn record_reminder(&self, id: BroadcastId, batch: i64, at: i64) -> Result<()> {
        let mut tx = self.store.begin_writing().await?;
        let kept: Option<String> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "SELECT reminders FROM broadcast_batches \
                 WHERE tenant_id = $1 AND broadcast_id = $2 AND batch = $3",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .fetch_optional(&mut *c)
            .await?
        });
        let mut reminders: Vec<i64> = kept
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("reminders: {e}")))?
            .unwrap_or_default();
        reminders.push(at);
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_batches SET reminders = $1 \
                 WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4",
            )
            .bind(json!(reminders).to_string())
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// A person's decision on a batch that waits for one (409 for any other batch):
    /// WeCom has it as one of its candidate messages, or has none and it is sent now,
    /// or it stays unsent. Audited.
    pub async fn resolve_batch(
        &self,
        id: BroadcastId,
        batch: i64,
        resolution: &BatchResolution,
        actor: &Actor,
    ) -> Result<()> {
        self.get_broadcast(id).await?;
        let unresolved: Option<Option<String>> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT unresolved FROM broadcast_batches WHERE tenant_id = $1 \
                 AND broadcast_id = $2 AND batch = $3 AND state = 'unresolved'",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .fetch_optional(db)
            .await?
        });
        let Some(unresolved) = unresolved else {
            return Err(StoreError::Conflict(
                "this batch does not wait for anyone to resolve it".into(),
            ));
        };
        let candidates: Unresolved = unresolved
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("unresolved: {e}")))?
            .unwrap_or(Unresolved {
                msgids: Vec::new(),
                reason: String::new(),
            });
        let by = json!({"resolved_by": actor.label});
        let mut tx = self.store.begin_writing().await?;
        let done = match resolution {
            BatchResolution::Sent { msgid } => {
                if !candidates.msgids.contains(msgid) {
                    return Err(DomainError::invalid(
                        "msgid",
                        format!(
                            "is none of the batch's candidates ({})",
                            candidates.msgids.join(", ")
                        ),
                    )
                    .into());
                }
                let now = now_ms();
                let recipients = set_statuses(
                    &mut tx,
                    self.tenant.0,
                    id,
                    batch,
                    None,
                    RecipientStatus::Waiting,
                    now,
                    &[RecipientStatus::Planned],
                )
                .await?;
                let answered = answer_batch(
                    &mut tx,
                    self.tenant.0,
                    id,
                    batch,
                    recipients,
                    &json!({"msgid": msgid, "resolved": by}),
                    &[("msgid", Some(msgid)), ("task_state", Some("waiting"))],
                )
                .await?;
                if answered {
                    follow_in(&mut tx, self.tenant, id).await?;
                }
                answered
            }
            BatchResolution::SendAgain => {
                let changed = on_tx!(&mut tx, |c| {
                    sqlx::query(
                        "UPDATE broadcast_batches SET state = 'planned', intent_at = NULL, \
                         unresolved = NULL WHERE tenant_id = $1 AND broadcast_id = $2 \
                         AND batch = $3 AND state = 'unresolved'",
                    )
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .bind(batch)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
                if changed == 1 {
                    let job = NewJob::new(
                        kind::BROADCAST_BATCH,
                        json!({"broadcast_id": id.0, "batch": batch}),
                    )
                    .for_tenant(self.tenant);
                    enqueue_in(&mut tx, &[job]).await?;
                }
                changed == 1
            }
            BatchResolution::NotSent => {
                set_statuses(
                    &mut tx,
                    self.tenant.0,
                    id,
                    batch,
                    None,
                    RecipientStatus::NotSent,
                    now_ms(),
                    &[RecipientStatus::Planned],
                )
                .await?;
                answer_batch(
                    &mut tx,
                    self.tenant.0,
                    id,
                    batch,
                    0,
                    &json!({"not_sent": by}),
                    &[("task_state", Some(TaskState::Cancelled.as_str()))],
                )
                .await?
            }
        };
        if !done {
            return Err(StoreError::Conflict(
                "this batch was resolved meanwhile".into(),
            ));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::BROADCAST_BATCH_RESOLVED, "broadcast", id.0)
                .with_details(json!({"batch": batch, "resolution": format!("{resolution:?}")})),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        Ok(())
    }

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

/// A recipient's status as shown: the sandbox's carry none and follow their batch.
const STATUS: &str = "COALESCE(r.status, CASE b.state WHEN 'sent' THEN 'sent' \
     WHEN 'cancelled' THEN 'not_sent' ELSE 'planned' END)";

/// Sets the status of a batch's recipients that have one of `from` (all of them, or
/// those of `externals`); answers how many changed.
#[allow(clippy::too_many_arguments)]
async fn set_statuses(
    tx: &mut Tx,
    tenant: i64,
    id: BroadcastId,
    batch: i64,
    externals: Option<&[String]>,
    status: RecipientStatus,
    at: i64,
    from: &[RecipientStatus],
) -> Result<i64> {
    let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let base = format!(
        "UPDATE broadcast_recipients SET status = $1, status_at = $2 \
         WHERE broadcast_id = $3 AND batch = $4 AND tenant_id = $5 AND status IN ({})",
        from.join(", ")
    );
    let Some(externals) = externals else {
        return Ok(on_tx!(tx, |c| {
            sqlx::query(&base)
                .bind(status.as_str())
                .bind(at)
                .bind(id.0)
                .bind(batch)
                .bind(tenant)
                .execute(&mut *c)
                .await?
                .rows_affected()
        }) as i64);
    };
    let mut changed = 0;
    for chunk in externals.chunks(IN_CHUNK) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 6)).collect();
        let sql = format!("{base} AND external_userid IN ({})", marks.join(", "));
        changed += on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql)
                .bind(status.as_str())
                .bind(at)
                .bind(id.0)
                .bind(batch)
                .bind(tenant);
            for external in chunk {
                query = query.bind(external.as_str());
            }
            query.execute(&mut *c).await?.rows_affected()
        }) as i64;
    }
    Ok(changed)
}
