//! A WeCom send's member tasks: the answer of each `add_msg_template` (the msgid, the
//! customers WeCom refused), what following the tasks finds (who confirmed, what each
//! customer got), reminders, and the batches whose lost call a person must resolve
//! (what the console shows of them is `broadcast_views`). The rules are
//! `siyu_domain::engagement::member_tasks`.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::engagement::broadcast::BroadcastState;
use siyu_domain::engagement::member_tasks::{
    BatchResolution, RecipientStatus, TaskState, Unresolved, WecomRoute,
};
use siyu_domain::error::DomainError;
use siyu_domain::ids::{BroadcastId, ConnectorId, StaffId, TenantId};
use siyu_domain::jobs::kind;

use super::broadcast_sends::{answer_batch, follow_in};
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// external_userids per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// What following a send needs: where it stands, how many batches may still become
/// member tasks (planned, or with WeCom maybe: a cancelled send's planned ones never
/// will), how many wait for a person, and the member tasks still waiting.
#[derive(Debug, Clone)]
pub struct FollowState {
    pub state: BroadcastState,
    pub connector: Option<ConnectorId>,
    pub in_flight: i64,
    pub unresolved: i64,
    /// When the send was planned (epoch ms).
    pub planned_at: Option<i64>,
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
    /// the member added them, whether the member left (or is disabled or not
    /// activated: not active, so no sender).
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
                 f.added_at, (m.left_at IS NOT NULL OR m.status <> 1) AS member_left \
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
        let answered = hand_over(&mut tx, self.tenant, id, batch, msgid, fail_list, answer).await?;
        if !answered {
            return Ok(false);
        }
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
    /// Only the intent `seen` is stopped: a try that claimed the batch anew since keeps it.
    pub async fn mark_batch_unresolved(
        &self,
        id: BroadcastId,
        batch: i64,
        seen: i64,
        unresolved: &Unresolved,
    ) -> Result<()> {
        let text = serde_json::to_string(unresolved)
            .map_err(|e| StoreError::Corrupt(format!("unresolved: {e}")))?;
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'unresolved', unresolved = $1 \
                 WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4 AND state = 'sending' \
                 AND intent_at = $5",
            )
            .bind(&text)
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .bind(seen)
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
            planned_at: Option<i64>,
            in_flight: i64,
            unresolved: i64,
        }
        let send: Option<Send> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT s.state, s.connector_id, s.planned_at, \
                 (SELECT COUNT(*) FROM broadcast_batches b \
                 WHERE b.tenant_id = s.tenant_id AND b.broadcast_id = s.id \
                 AND (b.state = 'sending' OR (b.state = 'planned' AND s.state <> 'cancelled'))) \
                 AS in_flight, \
                 (SELECT COUNT(*) FROM broadcast_batches b \
                 WHERE b.tenant_id = s.tenant_id AND b.broadcast_id = s.id \
                 AND b.state = 'unresolved') AS unresolved \
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
                 (m.userid IS NULL OR m.left_at IS NOT NULL OR m.status = 5) AS member_left, \
                 b.answered_at, \
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
            in_flight: send.in_flight,
            unresolved: send.unresolved,
            planned_at: send.planned_at,
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
        // customers WeCom does not list as sent (or not) once the task is over were not
        // sent: left out by the member, or refused by WeCom without a word
        let left_as = match state {
            TaskState::Waiting => None,
            TaskState::MemberLeft => Some(RecipientStatus::MemberLeft),
            TaskState::Confirmed
            | TaskState::Cancelled
            | TaskState::Expired
            | TaskState::Failed => Some(RecipientStatus::NotSent),
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

    /// Records that a batch's member was reminded at `at` (a compare-and-set on the list
    /// read, so two reminders recorded at once both count).
    pub async fn record_reminder(&self, id: BroadcastId, batch: i64, at: i64) -> Result<()> {
        for _ in 0..10 {
            let kept: Option<String> = on_db!(self.store, |db| {
                sqlx::query_scalar(
                    "SELECT reminders FROM broadcast_batches \
                     WHERE tenant_id = $1 AND broadcast_id = $2 AND batch = $3",
                )
                .bind(self.tenant.0)
                .bind(id.0)
                .bind(batch)
                .fetch_optional(db)
                .await?
            });
            let Some(kept) = kept else {
                return Err(StoreError::NotFound("broadcast batch"));
            };
            let mut reminders: Vec<i64> = serde_json::from_str(&kept)
                .map_err(|e| StoreError::Corrupt(format!("reminders: {e}")))?;
            reminders.push(at);
            let changed = on_db!(self.store, |db| {
                sqlx::query(
                    "UPDATE broadcast_batches SET reminders = $1 \
                     WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4 AND reminders = $5",
                )
                .bind(json!(reminders).to_string())
                .bind(self.tenant.0)
                .bind(id.0)
                .bind(batch)
                .bind(&kept)
                .execute(db)
                .await?
                .rows_affected()
            });
            if changed == 1 {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(
            "the batch's reminders kept changing".into(),
        ))
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
        let send = self.get_broadcast(id).await?;
        if send.state == BroadcastState::Cancelled && *resolution == BatchResolution::SendAgain {
            return Err(StoreError::Conflict(
                "the send is cancelled: nothing more is sent (say which message WeCom has, \
                 and it is stopped there, or that none is)"
                    .into(),
            ));
        }
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
                let answer = json!({"msgid": msgid, "resolved": by});
                hand_over(&mut tx, self.tenant, id, batch, msgid, &[], &answer).await?
            }
            BatchResolution::SendAgain => {
                let changed = on_tx!(&mut tx, |c| {
                    sqlx::query(
                        "UPDATE broadcast_batches SET state = 'planned', intent_at = NULL, \
                         unresolved = NULL WHERE tenant_id = $1 AND broadcast_id = $2 \
                         AND batch = $3 AND state = 'unresolved' AND NOT EXISTS \
                         (SELECT 1 FROM broadcasts s WHERE s.tenant_id = $1 AND s.id = $2 \
                         AND s.state = 'cancelled')",
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
}

/// Records that WeCom has a batch's member task (`msgid`): the task waiting, each
/// recipient waiting or (in `fail_list`) refused, the send's figures moved, the follow
/// job enqueued. False when the batch was answered before (nothing changes then, once
/// the transaction is dropped).
async fn hand_over(
    tx: &mut Tx,
    tenant: TenantId,
    id: BroadcastId,
    batch: i64,
    msgid: &str,
    fail_list: &[String],
    answer: &Value,
) -> Result<bool> {
    let now = now_ms();
    let planned = [RecipientStatus::Planned];
    let waiting = RecipientStatus::Waiting;
    let recipients = set_statuses(tx, tenant.0, id, batch, None, waiting, now, &planned).await?;
    let refused = set_statuses(
        tx,
        tenant.0,
        id,
        batch,
        Some(fail_list),
        RecipientStatus::Refused,
        now,
        &[waiting],
    )
    .await?;
    let columns = [("msgid", Some(msgid)), ("task_state", Some("waiting"))];
    let sent = recipients - refused;
    if !answer_batch(tx, tenant.0, id, batch, sent, answer, &columns).await? {
        return Ok(false);
    }
    follow_in(tx, tenant, id).await?;
    Ok(true)
}

/// Sets the status of a batch's recipients that have one of `from` (all of them, or
/// those of `externals`); answers how many changed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn set_statuses(
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
