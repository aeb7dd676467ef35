//! Mass sends: made, changed before their time, cancelled, read; and planned, once, in
//! one transaction that writes every recipient and batch and enqueues a job per batch
//! (so a send is planned whole or not at all). The rules of planning are
//! `siyu_domain::engagement::broadcast::plan`; this module reads what they need
//! (opt-outs, what each customer received in the cap's window, who a list names) and
//! writes what they decide. Sending is `broadcast_sends.rs`.
//!
//! Staff whose reach is some owners see and change only the sends their staff made, as
//! with jobs; a send's audience is always taken within its maker's reach.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::connector::ConnectorKind;
use siyu_domain::consent::{ConsentChannel, ConsentStatus};
use siyu_domain::engagement::broadcast::{
    Broadcast, BroadcastChannel, BroadcastSpec, BroadcastState, Exclusion, FrequencyCap, Plan,
};
use siyu_domain::engagement::member_tasks::MemberTask;
use siyu_domain::engagement::template::TemplateSnapshot;
use siyu_domain::error::DomainError;
use siyu_domain::ids::{BroadcastId, ConnectorId, MessageTemplateId, StaffId};
use siyu_domain::jobs::kind;
use siyu_domain::page::{Page, PageRequest};

use super::broadcast_columns::{
    attachments_of, attachments_text, audience_text, template_of, template_text,
};
use super::send_links::record_send_links;
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

const BROADCAST_COLUMNS: &str = "id, name, channel, connector_id, state, audience, text, template_id, attachments, frequency_cap, \
     send_at, recipients, excluded, batches, sent, batches_sent, created_by_staff_id, \
     created_at, updated_at, finished_at";

/// Recipients per multi-row insert (4 literal numbers each).
const INSERT_CHUNK: usize = 2_000;

#[derive(sqlx::FromRow)]
struct BroadcastRow {
    id: i64,
    name: String,
    channel: String,
    connector_id: Option<i64>,
    state: String,
    audience: String,
    text: String,
    template_id: Option<i64>,
    attachments: Option<String>,
    frequency_cap: String,
    send_at: i64,
    recipients: Option<i64>,
    excluded: String,
    batches: i64,
    sent: i64,
    batches_sent: i64,
    created_by_staff_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<BroadcastRow> for Broadcast {
    type Error = StoreError;
    fn try_from(r: BroadcastRow) -> Result<Self> {
        let corrupt = |what: &str, e: String| {
            StoreError::Corrupt(format!("{what} of broadcast {}: {e}", r.id))
        };
        let excluded: HashMap<String, i64> =
            serde_json::from_str(&r.excluded).map_err(|e| corrupt("excluded", e.to_string()))?;
        Ok(Broadcast {
            id: BroadcastId(r.id),
            channel: BroadcastChannel::parse("channel", &r.channel)
                .map_err(|e| corrupt("channel", e.to_string()))?,
            connector_id: r.connector_id.map(ConnectorId),
            state: BroadcastState::parse("state", &r.state)
                .map_err(|e| corrupt("state", e.to_string()))?,
            audience: serde_json::from_str(&r.audience)
                .map_err(|e| corrupt("audience", e.to_string()))?,
            frequency_cap: FrequencyCap::parse("frequency_cap", &r.frequency_cap)
                .map_err(|e| corrupt("frequency_cap", e.to_string()))?,
            excluded: excluded
                .into_iter()
                .filter_map(|(k, v)| Exclusion::parse("excluded", &k).ok().map(|k| (k, v)))
                .collect(),
            name: r.name,
            text: r.text,
            template_id: r.template_id.map(MessageTemplateId),
            attachments: attachments_of(r.attachments.as_deref())?,
            send_at: r.send_at,
            recipients: r.recipients,
            sent: r.sent,
            batches: r.batches,
            batches_sent: r.batches_sent,
            created_by: r.created_by_staff_id.map(StaffId),
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}

/// The job that plans a send at its time. Any number may wait for one send (a change
/// of its time adds one); the first that finds the send due plans it, the rest find it
/// planned or not yet due and do nothing.
fn plan_job(id: BroadcastId, at: i64, created_by: Option<StaffId>) -> NewJob {
    let job = NewJob::new(kind::BROADCAST_PLAN, json!({"broadcast_id": id.0})).run_at(at);
    match created_by {
        Some(staff) => job.created_by(staff),
        None => job,
    }
}

impl TenantScope<'_> {
    /// The SQL condition (starting with ` AND`) that keeps a narrower scope to the sends
    /// its staff made.
    pub(super) fn maker_clause(&self) -> String {
        self.owner_clause("created_by_staff_id")
    }

    /// A send is planned within the reach of the staff member who made it, so a scope
    /// narrower than the tenant changes only its own staff's sends it made itself:
    /// a manager cannot point a wider-reaching colleague's send at other customers.
    fn check_changes_audience_of(&self, send: &Broadcast, actor: &Actor) -> Result<()> {
        let own = matches!(actor.kind, siyu_domain::audit::ActorKind::Staff)
            && actor.id.is_some()
            && actor.id == send.created_by.map(|s| s.0);
        if self.reach().is_tenant_wide() || own {
            Ok(())
        } else {
            Err(StoreError::OutOfReach(
                "only who made a send (or someone who reaches the whole tenant) may change it"
                    .into(),
            ))
        }
    }

    /// The WeCom connector a WeCom send goes through: the one named, which must be the
    /// tenant's and WeCom's, or the tenant's only one. `None` for other channels.
    pub async fn connector_of_send(
        &self,
        channel: BroadcastChannel,
        named: Option<ConnectorId>,
    ) -> Result<Option<ConnectorId>> {
        if channel != BroadcastChannel::Wecom {
            return Ok(None);
        }
        let wecom: Vec<ConnectorId> = self
            .list_connectors()
            .await?
            .into_iter()
            .filter(|c| c.kind == ConnectorKind::Wecom)
            .map(|c| c.id)
            .collect();
        let invalid = |message: &str| {
            StoreError::Domain(DomainError::invalid("connector_id", message.to_owned()))
        };
        match (named, wecom.as_slice()) {
            (Some(id), _) if wecom.contains(&id) => Ok(Some(id)),
            (Some(_), _) => Err(invalid("is no WeCom connector of this tenant")),
            (None, [only]) => Ok(Some(*only)),
            (None, []) => Err(invalid(
                "this tenant has no WeCom connector: connect WeCom first",
            )),
            (None, _) => Err(invalid(
                "this tenant has several WeCom connectors: name one",
            )),
        }
    }

    /// Stores a send and enqueues its planning at its time.
    pub async fn create_broadcast(
        &self,
        spec: &BroadcastSpec,
        created_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<Broadcast> {
        let now = now_ms();
        let audience = audience_text(&spec.audience)?;
        let connector = self.connector_of_send(spec.channel, spec.connector).await?;
        let (template, attachments) = (template_text(spec)?, attachments_text(spec)?);
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO broadcasts (tenant_id, name, channel, connector_id, state, audience, \
                 text, frequency_cap, send_at, created_by_staff_id, created_at, updated_at, \
                 template_id, template, attachments) \
                 VALUES ($1, $2, $3, $10, 'scheduled', $4, $5, $6, $7, $8, $9, $9, $11, $12, $13) \
                 RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(&spec.name)
            .bind(spec.channel.as_str())
            .bind(&audience)
            .bind(&spec.text)
            .bind(spec.frequency_cap.as_str())
            .bind(spec.send_at)
            .bind(created_by.map(|s| s.0))
            .bind(now)
            .bind(connector.map(|c| c.0))
            .bind(spec.template.as_ref().map(|t| t.id.0))
            .bind(&template)
            .bind(&attachments)
            .fetch_one(&mut *c)
            .await?
        });
        let id = BroadcastId(id);
        record_send_links(&mut tx, self.tenant, id, spec, created_by, &[]).await?;
        enqueue_in(
            &mut tx,
            &[plan_job(id, spec.send_at, created_by).for_tenant(self.tenant)],
        )
        .await?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::BROADCAST_CREATED, "broadcast", id.0)
                .with_details(json!({"name": spec.name, "channel": spec.channel.as_str()})),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        self.get_broadcast(id).await
    }

    /// A send the scope reaches.
    pub async fn get_broadcast(&self, id: BroadcastId) -> Result<Broadcast> {
        let sql = format!(
            "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE tenant_id = $1 AND id = $2{}",
            self.maker_clause()
        );
        let row: Option<BroadcastRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("broadcast"))?.try_into()
    }

    /// The template a send the scope reaches renders, as it was when the send was made.
    pub async fn broadcast_template(&self, id: BroadcastId) -> Result<Option<TemplateSnapshot>> {
        self.get_broadcast(id).await?;
        let text: Option<String> = on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT template FROM broadcasts WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_one(db)
                .await?
        });
        template_of(text.as_deref())
    }

    /// The sends the scope reaches, newest first.
    pub async fn list_broadcasts(&self, page: PageRequest) -> Result<Page<Broadcast>> {
        let sql = format!(
            "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE tenant_id = $1 AND id < $2{} \
             ORDER BY id DESC LIMIT $3",
            self.maker_clause()
        );
        let before = match page.after_id() {
            0 => i64::MAX,
            after => after,
        };
        let rows: Vec<BroadcastRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(before)
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let sends = rows
            .into_iter()
            .map(Broadcast::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(sends, page, |b| b.id.0))
    }

    /// Changes a send that still waits for its time; 409 once its time came (or it was
    /// planned, changed or cancelled) in the meantime.
    ///
    /// `before` is the send as the caller read it to make `spec`: a change made since
    /// (another edit, planning) is not overwritten (409).
    pub async fn update_broadcast(
        &self,
        before: &Broadcast,
        spec: &BroadcastSpec,
        actor: &Actor,
    ) -> Result<Broadcast> {
        let id = before.id;
        self.check_changes_audience_of(before, actor)?;
        let now = now_ms();
        let audience = audience_text(&spec.audience)?;
        let (template, attachments) = (template_text(spec)?, attachments_text(spec)?);
        let mut tx = self.store.begin().await?;
        // as read: a change made meanwhile (another edit, planning) is not overwritten
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcasts SET name = $1, audience = $2, text = $3, frequency_cap = $4, \
                 send_at = $5, updated_at = $6, template_id = $10, template = $11, \
                 attachments = $12 \
                 WHERE tenant_id = $7 AND id = $8 AND state = 'scheduled' AND send_at > $6 \
                 AND updated_at = $9",
            )
            .bind(&spec.name)
            .bind(&audience)
            .bind(&spec.text)
            .bind(spec.frequency_cap.as_str())
            .bind(spec.send_at)
            .bind(now.max(before.updated_at + 1))
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(before.updated_at)
            .bind(spec.template.as_ref().map(|t| t.id.0))
            .bind(&template)
            .bind(&attachments)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::Conflict(
                "this send's time has come, or it was changed or cancelled meanwhile: \
                 read it again"
                    .into(),
            ));
        }
        record_send_links(
            &mut tx,
            self.tenant,
            id,
            spec,
            before.created_by,
            &before.attachments,
        )
        .await?;
        if spec.send_at != before.send_at {
            enqueue_in(
                &mut tx,
                &[plan_job(id, spec.send_at, before.created_by).for_tenant(self.tenant)],
            )
            .await?;
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::BROADCAST_UPDATED, "broadcast", id.0)
                .with_details(json!({"name": spec.name})),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        self.get_broadcast(id).await
    }

    /// Cancels a send: batches whose intent is not recorded are never sent; one whose
    /// channel may have it already is followed to its answer. A WeCom send whose member
    /// tasks are made can be cancelled while any member has not sent: following asks
    /// WeCom to stop those (`cancel_groupmsg_send`). A batch waiting for a person keeps
    /// waiting: WeCom may have it, and what the person says decides whether it is
    /// stopped there. 409 for a send done.
    pub async fn cancel_broadcast(&self, id: BroadcastId, actor: &Actor) -> Result<Broadcast> {
        let send = self.get_broadcast(id).await?;
        let now = now_ms();
        let mut tx = self.store.begin_writing().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcasts SET state = 'cancelled', updated_at = $1, finished_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND (state IN ('scheduled', 'planning', 'sending') \
                 OR (state = 'sent' AND EXISTS (SELECT 1 FROM broadcast_batches b \
                 WHERE b.tenant_id = $2 AND b.broadcast_id = $3 AND b.task_state = 'waiting')))",
            )
            .bind(now)
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::Conflict(
                "this send is sent or cancelled already".into(),
            ));
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'cancelled' \
                 WHERE tenant_id = $1 AND broadcast_id = $2 AND state = 'planned'",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        if send.channel == BroadcastChannel::Wecom {
            on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE broadcast_recipients SET status = 'not_sent', status_at = $1 \
                     WHERE broadcast_id = $2 AND tenant_id = $3 AND status = 'planned' \
                     AND batch IN (SELECT batch FROM broadcast_batches WHERE tenant_id = $3 \
                     AND broadcast_id = $2 AND state = 'cancelled')",
                )
                .bind(now)
                .bind(id.0)
                .bind(self.tenant.0)
                .execute(&mut *c)
                .await?;
            });
            super::broadcast_sends::follow_in(&mut tx, self.tenant, id).await?;
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::BROADCAST_CANCELLED, "broadcast", id.0),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        self.get_broadcast(id).await
    }

    // --- what planning reads ---

    /// The customers whose consent in force forbids `channel` (an opt-out of it or of
    /// all), whatever their owner: planning leaves them out.
    pub async fn opted_out_of(&self, channel: ConsentChannel) -> Result<HashSet<i64>> {
        #[derive(sqlx::FromRow)]
        struct ConsentRow {
            customer_id: i64,
            channel: String,
            status: String,
        }
        let rows: Vec<ConsentRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT customer_id, channel, status FROM consent_changes \
                 WHERE tenant_id = $1 AND channel IN ($2, 'all') ORDER BY id",
            )
            .bind(self.tenant.0)
            .bind(channel.as_str())
            .fetch_all(db)
            .await?
        });
        // the newest per customer and channel is in force
        let mut in_force: HashMap<(i64, String), bool> = HashMap::new();
        for r in rows {
            let out = r.status == ConsentStatus::OptOut.as_str();
            in_force.insert((r.customer_id, r.channel), out);
        }
        Ok(in_force
            .into_iter()
            .filter(|(_, out)| *out)
            .map(|((customer, _), _)| customer)
            .collect())
    }

    /// How many mass messages each customer received on `channel` since `from`, or
    /// will: the recipients of batches the channel answered since then, and of batches
    /// planned since then and not yet answered (a send on its way counts against the cap
    /// of the next one). Cancelled batches count for nothing, nor do WeCom recipients
    /// known not to have received it.
    pub async fn received_since(
        &self,
        channel: BroadcastChannel,
        from: i64,
    ) -> Result<HashMap<i64, u32>> {
        #[derive(sqlx::FromRow)]
        struct Received {
            customer_id: i64,
            messages: i64,
        }
        let rows: Vec<Received> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT r.customer_id, COUNT(*) AS messages FROM broadcast_batches b \
                 JOIN broadcasts s ON s.tenant_id = b.tenant_id AND s.id = b.broadcast_id \
                 JOIN broadcast_recipients r ON r.broadcast_id = b.broadcast_id AND r.batch = b.batch \
                 WHERE s.tenant_id = $1 AND s.channel = $3 AND s.planned_at IS NOT NULL \
                 AND b.state <> 'cancelled' AND COALESCE(b.answered_at, s.planned_at) >= $2 \
                 AND (r.status IS NULL OR r.status NOT IN \
                 ('refused', 'not_sent', 'member_left', 'not_friend', 'over_cap')) \
                 GROUP BY r.customer_id",
            )
            .bind(self.tenant.0)
            .bind(from)
            .bind(channel.as_str())
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| (r.customer_id, r.messages as u32))
            .collect())
    }

    // --- what planning writes ---

    /// Stores a send's plan, if the send is still waiting and due: its recipients in
    /// batches (`batches`: ranges of consecutive ones, or one per member task), a job
    /// per batch, the figures; all in one transaction. A plan with no recipient ends the send at once. Answers whether
    /// this call planned it (false: planned before, cancelled, or moved later).
    ///
    /// `read` is the send as planning read it and `read_at` when planning began to read:
    /// a send changed since (an edit racing its time) is not planned from the old read,
    /// and when another send on the channel was planned meanwhile the caps read may be
    /// short, so this one is refused (`Conflict`) to be planned again from a new read.
    /// Plans of a tenant take turns.
    pub async fn store_plan(
        &self,
        read: &Broadcast,
        read_at: i64,
        plan: &Plan,
        batches: PlannedBatches<'_>,
    ) -> Result<bool> {
        let id = read.id;
        let now = now_ms();
        let batch_count = match batches {
            PlannedBatches::Ranges(size) => plan.recipients.len().div_ceil(size.max(1)),
            PlannedBatches::MemberTasks(tasks) => tasks.len(),
        };
        let excluded: HashMap<&str, i64> = plan
            .excluded
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let excluded = serde_json::to_string(&excluded)
            .map_err(|e| StoreError::Corrupt(format!("excluded: {e}")))?;
        let done = batch_count == 0;
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let planned_meanwhile: Option<i64> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "SELECT id FROM broadcasts WHERE tenant_id = $1 AND channel = $2 AND id <> $3 \
                 AND planned_at >= $4 LIMIT 1",
            )
            .bind(self.tenant.0)
            .bind(read.channel.as_str())
            .bind(id.0)
            .bind(read_at)
            .fetch_optional(&mut *c)
            .await?
        });
        if let Some(other) = planned_meanwhile {
            return Err(StoreError::Conflict(format!(
                "send {other} was planned meanwhile: plan this one again"
            )));
        }
        let created_by: Option<Option<i64>> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "UPDATE broadcasts SET state = $1, recipients = $2, excluded = $3, batches = $4, \
                 planned_at = $5, updated_at = $5, finished_at = $6 \
                 WHERE tenant_id = $7 AND id = $8 AND state = 'scheduled' AND send_at <= $5 \
                 AND updated_at = $9 RETURNING created_by_staff_id",
            )
            .bind(if done { "sent" } else { "sending" })
            .bind(plan.recipients.len() as i64)
            .bind(&excluded)
            .bind(batch_count as i64)
            .bind(now)
            .bind(done.then_some(now))
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(read.updated_at)
            .fetch_optional(&mut *c)
            .await?
        });
        let Some(created_by) = created_by else {
            return Ok(false);
        };
        match batches {
            PlannedBatches::Ranges(size) => {
                for (batch, recipients) in plan.recipients.chunks(size.max(1)).enumerate() {
                    insert_batch(&mut tx, self.tenant.0, id.0, batch as i64, recipients).await?;
                }
            }
            PlannedBatches::MemberTasks(tasks) => {
                for (batch, task) in tasks.iter().enumerate() {
                    insert_member_task(&mut tx, self.tenant.0, id.0, batch as i64, task).await?;
                }
            }
        }
        let mut jobs = Vec::with_capacity(batch_count);
        for batch in 0..batch_count {
            let job = NewJob::new(
                kind::BROADCAST_BATCH,
                json!({"broadcast_id": id.0, "batch": batch}),
            )
            .for_tenant(self.tenant);
            jobs.push(match created_by {
                Some(staff) => job.created_by(StaffId(staff)),
                None => job,
            });
        }
        enqueue_in(&mut tx, &jobs).await?;
        tx.commit().await?;
        self.store.notify_jobs();
        Ok(true)
    }
}

/// How a plan's recipients are cut into batches (a job each).
#[derive(Debug, Clone, Copy)]
pub enum PlannedBatches<'a> {
    /// Consecutive recipients, this many a batch (the sandbox).
    Ranges(usize),
    /// One batch per member task (WeCom: one `add_msg_template` call each).
    MemberTasks(&'a [MemberTask]),
}

/// Rows per multi-row insert of a member task's recipients (6 bound values each).
const TASK_INSERT_CHUNK: usize = 500;

async fn insert_member_task(
    tx: &mut Tx,
    tenant: i64,
    broadcast: i64,
    batch: i64,
    task: &MemberTask,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO broadcast_batches (tenant_id, broadcast_id, batch, recipients, state, \
             sender_userid, sender_staff_id, text) VALUES ($1, $2, $3, $4, 'planned', $5, $6, $7)",
        )
        .bind(tenant)
        .bind(broadcast)
        .bind(batch)
        .bind(task.recipients.len() as i64)
        .bind(&task.userid)
        .bind(task.staff.0)
        .bind(task.text.as_deref())
        .execute(&mut *c)
        .await?;
    });
    for chunk in task.recipients.chunks(TASK_INSERT_CHUNK) {
        on_tx!(tx, |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO broadcast_recipients (tenant_id, broadcast_id, batch, customer_id, \
                 external_userid, status) ",
            );
            insert.push_values(chunk, |mut row, (customer, external)| {
                row.push_bind(tenant)
                    .push_bind(broadcast)
                    .push_bind(batch)
                    .push_bind(*customer)
                    .push_bind(external.as_str())
                    .push_bind("planned");
            });
            insert.build().execute(&mut *c).await?;
        });
    }
    Ok(())
}

async fn insert_batch(
    tx: &mut Tx,
    tenant: i64,
    broadcast: i64,
    batch: i64,
    recipients: &[i64],
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO broadcast_batches (tenant_id, broadcast_id, batch, recipients, state) \
             VALUES ($1, $2, $3, $4, 'planned')",
        )
        .bind(tenant)
        .bind(broadcast)
        .bind(batch)
        .bind(recipients.len() as i64)
        .execute(&mut *c)
        .await?;
    });
    match tx {
        // PostgreSQL takes the batch as one array: one statement, nothing to parse per row
        Tx::Postgres(t) => {
            sqlx::query(
                "INSERT INTO broadcast_recipients (tenant_id, broadcast_id, batch, customer_id) \
                 SELECT $1, $2, $3, unnest($4::bigint[])",
            )
            .bind(tenant)
            .bind(broadcast)
            .bind(batch)
            .bind(recipients)
            .execute(&mut **t)
            .await?;
        }
        // SQLite: multi-row inserts of literal numbers (no array type; a prepared
        // statement per chunk would be no faster)
        Tx::Sqlite(t) => {
            for chunk in recipients.chunks(INSERT_CHUNK) {
                let values: Vec<String> = chunk
                    .iter()
                    .map(|customer| format!("({tenant},{broadcast},{batch},{customer})"))
                    .collect();
                let sql = format!(
                    "INSERT INTO broadcast_recipients (tenant_id, broadcast_id, batch, customer_id) \
                     VALUES {}",
                    values.join(",")
                );
                sqlx::query(&sql).execute(&mut **t).await?;
            }
        }
    }
    Ok(())
}
