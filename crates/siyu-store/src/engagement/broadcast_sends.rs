//! Sending a planned batch, exactly once: the batch's intent is recorded (it commits)
//! before the channel is called, and the channel's answer after. A batch found with its
//! intent recorded but no answer was maybe received by the channel: the sender must
//! ask the channel what it has (or reconcile) before sending again, never send blindly.
//!
//! The sandbox channel's side is here too (`sandbox_*` tables): it stands in for a
//! remote channel, so it commits on its own, apart from siyu's records, and it keys a
//! delivery by the batch, so a batch asked for twice is delivered once, while its
//! messages carry no uniqueness and a double would be counted.

use serde_json::Value;
use serde_json::json;
use siyu_domain::engagement::broadcast::BroadcastChannel;
use siyu_domain::engagement::content::BroadcastAttachment;
use siyu_domain::engagement::member_tasks::RecipientStatus;
use siyu_domain::engagement::template::TemplateSnapshot;
use siyu_domain::ids::{BroadcastId, ConnectorId};
use siyu_domain::jobs::kind;

use super::broadcast_tasks::set_statuses;
use crate::jobs::{NewJob, enqueue_in};

use crate::db::{now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// Messages per multi-row insert into the sandbox's inbox.
const INSERT_CHUNK: usize = 2_000;
/// Messages with their own text per multi-row insert (5 bound values each).
const TEXT_INSERT_CHUNK: usize = 500;

/// A batch as its sender needs it.
#[derive(Debug, Clone)]
pub struct BatchToSend {
    pub channel: BroadcastChannel,
    /// A WeCom send's connector.
    pub connector: Option<ConnectorId>,
    /// The text (a member task's own, when a template was rendered for its member).
    pub text: String,
    /// The template to render for each customer, on channels that send one message per
    /// customer (the sandbox).
    pub template: Option<TemplateSnapshot>,
    /// The library items sent with the text.
    pub attachments: Vec<BroadcastAttachment>,
    /// By customer id.
    pub recipients: Vec<i64>,
    /// A WeCom batch's member (userid) and each recipient's external_userid (in the
    /// order of `recipients`); empty on the sandbox.
    pub sender: Option<String>,
    pub external_userids: Vec<String>,
    /// The intent was recorded before (a try that stopped before the answer): the
    /// channel may have the batch. When it was recorded (epoch ms).
    pub intent_recorded: bool,
    pub intent_at: Option<i64>,
    /// The send was cancelled after this batch's intent was recorded: the channel is
    /// only asked whether it has the batch, and nothing more is sent.
    pub cancelled: bool,
}

/// What the sandbox answers for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxAnswer {
    pub messages: i64,
    pub delivered_at: i64,
    /// It had this batch already (asked again after a crash): nothing was delivered now.
    pub again: bool,
}

/// Messages the sandbox holds for a send: all, the customers among them, the
/// recipients it holds none for, and customers it holds one for who are no recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SandboxCount {
    pub messages: i64,
    pub customers: i64,
    pub missed: i64,
    pub strangers: i64,
}

impl TenantScope<'_> {
    /// The batch to send, or `None` when there is nothing to send: its answer is
    /// recorded, the send was cancelled before its intent was, or the batch waits for a
    /// person to tell whether WeCom has it.
    pub async fn batch_to_send(&self, id: BroadcastId, batch: i64) -> Result<Option<BatchToSend>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            channel: String,
            connector_id: Option<i64>,
            text: String,
            template: Option<String>,
            attachments: Option<String>,
            state: String,
            send_state: String,
            sender_userid: Option<String>,
            intent_at: Option<i64>,
        }
        let row: Option<Row> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT s.channel, s.connector_id, COALESCE(b.text, s.text) AS text, s.template, \
                 s.attachments, b.state, s.state AS send_state, b.sender_userid, b.intent_at \
                 FROM broadcast_batches b \
                 JOIN broadcasts s ON s.tenant_id = b.tenant_id AND s.id = b.broadcast_id \
                 WHERE b.tenant_id = $1 AND b.broadcast_id = $2 AND b.batch = $3",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .fetch_optional(db)
            .await?
        });
        let row = row.ok_or(StoreError::NotFound("broadcast batch"))?;
        let intent_recorded = match row.state.as_str() {
            "planned" => false,
            "sending" => true,
            _ => return Ok(None),
        };
        #[derive(sqlx::FromRow)]
        struct Recipient {
            customer_id: i64,
            external_userid: Option<String>,
        }
        let rows: Vec<Recipient> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT customer_id, external_userid FROM broadcast_recipients \
                 WHERE broadcast_id = $1 AND batch = $2 AND tenant_id = $3 ORDER BY customer_id",
            )
            .bind(id.0)
            .bind(batch)
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let external_userids = rows
            .iter()
            .filter_map(|r| r.external_userid.clone())
            .collect();
        Ok(Some(BatchToSend {
            channel: BroadcastChannel::parse("channel", &row.channel)?,
            connector: row.connector_id.map(ConnectorId),
            text: row.text,
            template: super::broadcast_columns::template_of(row.template.as_deref())?,
            attachments: super::broadcast_columns::attachments_of(row.attachments.as_deref())?,
            recipients: rows.into_iter().map(|r| r.customer_id).collect(),
            sender: row.sender_userid,
            external_userids,
            intent_recorded,
            intent_at: row.intent_at,
            cancelled: row.send_state == "cancelled",
        }))
    }

    /// Records that the batch is about to go to its channel (committed before the call):
    /// the batch is claimed, so of two tries that race only one calls. False when it is
    /// no longer to send: cancelled before, claimed or answered meanwhile.
    pub async fn record_batch_intent(&self, id: BroadcastId, batch: i64) -> Result<bool> {
        Ok(self.claim_batch(id, batch).await?.is_some())
    }

    /// [`Self::record_batch_intent`], answering when the intent was recorded.
    pub async fn claim_batch(&self, id: BroadcastId, batch: i64) -> Result<Option<i64>> {
        let at = now_ms();
        let changed = on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'sending', intent_at = $1 \
                 WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4 AND state = 'planned' \
                 AND NOT EXISTS (SELECT 1 FROM broadcasts s WHERE s.tenant_id = $2 \
                 AND s.id = $3 AND s.state = 'cancelled')",
            )
            .bind(at)
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok((changed == 1).then_some(at))
    }

    /// Claims again a batch whose earlier intent found nothing at the channel, so it may
    /// be sent now: `None` when another try claimed or answered it since `seen`, or its
    /// send was cancelled, else the new intent's time.
    pub async fn renew_batch_intent(
        &self,
        id: BroadcastId,
        batch: i64,
        seen: i64,
    ) -> Result<Option<i64>> {
        let at = now_ms().max(seen + 1);
        let changed = on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE broadcast_batches SET intent_at = $1 \
                 WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4 \
                 AND state = 'sending' AND intent_at = $5 AND NOT EXISTS \
                 (SELECT 1 FROM broadcasts s WHERE s.tenant_id = $2 AND s.id = $3 \
                 AND s.state = 'cancelled')",
            )
            .bind(at)
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .bind(seen)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok((changed == 1).then_some(at))
    }

    /// Takes back an intent whose call the channel refused (it made nothing): the batch
    /// is planned again, to be sent by a later try without reconciling (or cancelled,
    /// when its send was cancelled meanwhile).
    pub async fn release_batch_intent(&self, id: BroadcastId, batch: i64, seen: i64) -> Result<()> {
        let mut tx = self.store.begin_writing().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_batches SET intent_at = NULL, state = CASE WHEN EXISTS \
                 (SELECT 1 FROM broadcasts s WHERE s.tenant_id = $1 AND s.id = $2 \
                 AND s.state = 'cancelled') THEN 'cancelled' ELSE 'planned' END \
                 WHERE tenant_id = $1 AND broadcast_id = $2 AND batch = $3 \
                 AND state = 'sending' AND intent_at = $4",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .bind(seen)
            .execute(&mut *c)
            .await?;
        });
        // a WeCom batch given back to a cancelled send: its recipients were not sent
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_recipients SET status = 'not_sent', status_at = $1 \
                 WHERE broadcast_id = $2 AND batch = $3 AND tenant_id = $4 AND status = 'planned' \
                 AND EXISTS (SELECT 1 FROM broadcast_batches b WHERE b.tenant_id = $4 \
                 AND b.broadcast_id = $2 AND b.batch = $3 AND b.state = 'cancelled')",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(batch)
            .bind(self.tenant.0)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// Records the channel's answer to a batch and moves the send's figures: `sent`
    /// recipients received it. The send is sent when its last batch is answered. Once
    /// only: a second answer to the same batch changes nothing.
    pub async fn record_batch_answer(
        &self,
        id: BroadcastId,
        batch: i64,
        sent: i64,
        answer: &Value,
    ) -> Result<()> {
        let mut tx = self.store.begin_writing().await?;
        answer_batch(&mut tx, self.tenant.0, id, batch, sent, answer, &[]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a batch whose intent was recorded as never sent (its send was cancelled and
    /// the channel does not have it).
    pub async fn cancel_batch(&self, id: BroadcastId, batch: i64) -> Result<()> {
        let mut tx = self.store.begin_writing().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'cancelled' \
                 WHERE tenant_id = $1 AND broadcast_id = $2 AND batch = $3 AND state = 'sending'",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 1 {
            // a WeCom batch's recipients (the sandbox's carry no status)
            let (tenant, not_sent) = (self.tenant.0, RecipientStatus::NotSent);
            let planned = [RecipientStatus::Planned];
            set_statuses(
                &mut tx,
                tenant,
                id,
                batch,
                None,
                not_sent,
                now_ms(),
                &planned,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // --- the sandbox channel's side ---

    /// What the sandbox delivered for a batch, if it has it (delivering nothing).
    pub async fn sandbox_delivered(
        &self,
        id: BroadcastId,
        batch: i64,
    ) -> Result<Option<SandboxAnswer>> {
        #[derive(sqlx::FromRow)]
        struct Delivered {
            messages: i64,
            delivered_at: i64,
        }
        let found: Option<Delivered> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT messages, delivered_at FROM sandbox_deliveries \
                 WHERE broadcast_id = $1 AND batch = $2 AND tenant_id = $3",
            )
            .bind(id.0)
            .bind(batch)
            .bind(self.tenant.0)
            .fetch_optional(db)
            .await?
        });
        Ok(found.map(|d| SandboxAnswer {
            messages: d.messages,
            delivered_at: d.delivered_at,
            again: true,
        }))
    }

    /// Delivers a batch to the sandbox's inbox, once per batch: asked again, it answers
    /// what it delivered the first time and delivers nothing.
    pub async fn sandbox_deliver(
        &self,
        id: BroadcastId,
        batch: i64,
        text: &str,
        recipients: &[i64],
        texts: Option<&[String]>,
    ) -> Result<SandboxAnswer> {
        let now = now_ms();
        let mut tx = self.store.begin_writing().await?;
        #[derive(sqlx::FromRow)]
        struct Delivered {
            messages: i64,
            delivered_at: i64,
        }
        let before: Option<Delivered> = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "SELECT messages, delivered_at FROM sandbox_deliveries \
                 WHERE broadcast_id = $1 AND batch = $2 AND tenant_id = $3",
            )
            .bind(id.0)
            .bind(batch)
            .bind(self.tenant.0)
            .fetch_optional(&mut *c)
            .await?
        });
        if let Some(d) = before {
            return Ok(SandboxAnswer {
                messages: d.messages,
                delivered_at: d.delivered_at,
                again: true,
            });
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO sandbox_deliveries (tenant_id, broadcast_id, batch, text, messages, \
                 delivered_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .bind(text)
            .bind(recipients.len() as i64)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        let tenant = self.tenant.0;
        if let Some(texts) = texts {
            // one text per customer (a template rendered for each), bound
            let rows: Vec<(i64, &str)> = recipients
                .iter()
                .copied()
                .zip(texts.iter().map(String::as_str))
                .collect();
            for chunk in rows.chunks(TEXT_INSERT_CHUNK) {
                on_tx!(&mut tx, |c| {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO sandbox_messages (tenant_id, broadcast_id, batch, customer_id, \
                         text) ",
                    );
                    insert.push_values(chunk, |mut row, (customer, text)| {
                        row.push_bind(tenant)
                            .push_bind(id.0)
                            .push_bind(batch)
                            .push_bind(*customer)
                            .push_bind(*text);
                    });
                    insert.build().execute(&mut *c).await?;
                });
            }
        } else if let Tx::Postgres(t) = &mut tx {
            // the batch as one array: one statement
            sqlx::query(
                "INSERT INTO sandbox_messages (tenant_id, broadcast_id, batch, customer_id) \
                 SELECT $1, $2, $3, unnest($4::bigint[])",
            )
            .bind(tenant)
            .bind(id.0)
            .bind(batch)
            .bind(recipients)
            .execute(&mut **t)
            .await?;
        } else {
            for chunk in recipients.chunks(INSERT_CHUNK) {
                let values: Vec<String> = chunk
                    .iter()
                    .map(|customer| format!("({tenant},{},{batch},{customer})", id.0))
                    .collect();
                let sql = format!(
                    "INSERT INTO sandbox_messages (tenant_id, broadcast_id, batch, customer_id) \
                     VALUES {}",
                    values.join(",")
                );
                on_tx!(&mut tx, |c| {
                    sqlx::query(&sql).execute(&mut *c).await?;
                });
            }
        }
        tx.commit().await?;
        Ok(SandboxAnswer {
            messages: recipients.len() as i64,
            delivered_at: now,
            again: false,
        })
    }

    /// The texts the sandbox holds for one customer of a send (a template's rendering,
    /// or the delivery's text).
    pub async fn sandbox_texts(&self, id: BroadcastId, customer: i64) -> Result<Vec<String>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT COALESCE(m.text, d.text) FROM sandbox_messages m \
                 JOIN sandbox_deliveries d ON d.broadcast_id = m.broadcast_id AND d.batch = m.batch \
                 WHERE m.broadcast_id = $1 AND m.tenant_id = $2 AND m.customer_id = $3",
            )
            .bind(id.0)
            .bind(self.tenant.0)
            .bind(customer)
            .fetch_all(db)
            .await?
        }))
    }

    /// What the sandbox received for a send, against its recipients: messages and
    /// distinct customers (fewer customers than messages: someone got it twice), the
    /// recipients without one, and customers with one who are no recipient.
    pub async fn sandbox_count(&self, id: BroadcastId) -> Result<SandboxCount> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT \
                 (SELECT COUNT(*) FROM sandbox_messages WHERE broadcast_id = $1 AND tenant_id = $2) \
                   AS messages, \
                 (SELECT COUNT(DISTINCT customer_id) FROM sandbox_messages \
                   WHERE broadcast_id = $1 AND tenant_id = $2) AS customers, \
                 (SELECT COUNT(*) FROM broadcast_recipients r WHERE r.broadcast_id = $1 \
                   AND r.tenant_id = $2 AND NOT EXISTS (SELECT 1 FROM sandbox_messages m \
                   WHERE m.broadcast_id = $1 AND m.customer_id = r.customer_id)) AS missed, \
                 (SELECT COUNT(DISTINCT m.customer_id) FROM sandbox_messages m \
                   WHERE m.broadcast_id = $1 AND m.tenant_id = $2 AND NOT EXISTS \
                   (SELECT 1 FROM broadcast_recipients r WHERE r.broadcast_id = $1 \
                   AND r.batch = m.batch AND r.customer_id = m.customer_id)) AS strangers",
            )
            .bind(id.0)
            .bind(self.tenant.0)
            .fetch_one(db)
            .await?
        }))
    }
}

/// An answer's extra columns on a WeCom batch.
pub(crate) type BatchColumns<'a> = &'a [(&'a str, Option<&'a str>)];

/// Records a batch's answer (state `sent`: answered), if not recorded yet, with
/// `columns` (text values) set beside it, and moves the send's figures. Answers whether
/// this call recorded it. Batches waiting for a person (`unresolved`) take an answer too.
pub(crate) async fn answer_batch(
    tx: &mut Tx,
    tenant: i64,
    id: BroadcastId,
    batch: i64,
    sent: i64,
    answer: &Value,
    columns: BatchColumns<'_>,
) -> Result<bool> {
    let now = now_ms();
    let extra: String = columns
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!(", {column} = ${}", i + 6))
        .collect();
    let sql = format!(
        "UPDATE broadcast_batches SET state = 'sent', answered_at = $1, answer = $2, \
         unresolved = NULL{extra} \
         WHERE tenant_id = $3 AND broadcast_id = $4 AND batch = $5 \
         AND state IN ('sending', 'unresolved')"
    );
    let changed = on_tx!(tx, |c| {
        let mut query = sqlx::query(&sql)
            .bind(now)
            .bind(answer.to_string())
            .bind(tenant)
            .bind(id.0)
            .bind(batch);
        for (_, value) in columns {
            query = query.bind(*value);
        }
        query.execute(&mut *c).await?.rows_affected()
    });
    if changed == 0 {
        return Ok(false);
    }
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE broadcasts SET sent = sent + $1, batches_sent = batches_sent + 1, \
             updated_at = $2, \
             state = CASE WHEN state = 'sending' AND batches_sent + 1 = batches \
             THEN 'sent' ELSE state END, \
             finished_at = CASE WHEN state = 'sending' AND batches_sent + 1 = batches \
             THEN $2 ELSE finished_at END \
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(sent)
        .bind(now)
        .bind(tenant)
        .bind(id.0)
        .execute(&mut *c)
        .await?;
    });
    Ok(true)
}

/// The job that follows a WeCom send's member tasks (one waiting per send).
pub(crate) fn follow_job(tenant: siyu_domain::ids::TenantId, id: BroadcastId, at: i64) -> NewJob {
    NewJob::new(kind::BROADCAST_FOLLOW, json!({"broadcast_id": id.0}))
        .unique_key(format!("broadcast:{}", id.0))
        .run_at(at)
        .for_tenant(tenant)
}

/// Enqueues the follow job within a transaction.
pub(crate) async fn follow_in(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    id: BroadcastId,
) -> Result<()> {
    enqueue_in(tx, &[follow_job(tenant, id, now_ms())]).await?;
    Ok(())
}
