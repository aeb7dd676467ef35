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
use siyu_domain::engagement::broadcast::BroadcastChannel;
use siyu_domain::ids::BroadcastId;

use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

/// Messages per multi-row insert into the sandbox's inbox.
const INSERT_CHUNK: usize = 2_000;

/// A batch as its sender needs it.
#[derive(Debug, Clone)]
pub struct BatchToSend {
    pub channel: BroadcastChannel,
    pub text: String,
    pub recipients: Vec<i64>,
    /// The intent was recorded before (a try that stopped before the answer): the
    /// channel may have the batch.
    pub intent_recorded: bool,
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
    /// recorded, or the send was cancelled before its intent was.
    pub async fn batch_to_send(&self, id: BroadcastId, batch: i64) -> Result<Option<BatchToSend>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            channel: String,
            text: String,
            state: String,
            send_state: String,
        }
        let row: Option<Row> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT s.channel, s.text, b.state, s.state AS send_state FROM broadcast_batches b \
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
        let recipients: Vec<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT customer_id FROM broadcast_recipients \
                 WHERE broadcast_id = $1 AND batch = $2 AND tenant_id = $3 ORDER BY customer_id",
            )
            .bind(id.0)
            .bind(batch)
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        Ok(Some(BatchToSend {
            channel: BroadcastChannel::parse("channel", &row.channel)?,
            text: row.text,
            recipients,
            intent_recorded,
            cancelled: row.send_state == "cancelled",
        }))
    }

    /// Records that the batch is about to go to its channel (committed before the call).
    /// False when it is no longer to send: cancelled before, or answered meanwhile.
    pub async fn record_batch_intent(&self, id: BroadcastId, batch: i64) -> Result<bool> {
        let changed = on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'sending', intent_at = $1 \
                 WHERE tenant_id = $2 AND broadcast_id = $3 AND batch = $4 \
                 AND state IN ('planned', 'sending')",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
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
        let now = now_ms();
        let mut tx = self.store.begin_writing().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'sent', answered_at = $1, answer = $2 \
                 WHERE tenant_id = $3 AND broadcast_id = $4 AND batch = $5 AND state = 'sending'",
            )
            .bind(now)
            .bind(answer.to_string())
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 1 {
            on_tx!(&mut tx, |c| {
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
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks a batch whose intent was recorded as never sent (its send was cancelled and
    /// the channel does not have it).
    pub async fn cancel_batch(&self, id: BroadcastId, batch: i64) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE broadcast_batches SET state = 'cancelled' \
                 WHERE tenant_id = $1 AND broadcast_id = $2 AND batch = $3 AND state = 'sending'",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(batch)
            .execute(db)
            .await?;
        });
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
        for chunk in recipients.chunks(INSERT_CHUNK) {
            let values: Vec<String> = chunk
                .iter()
                .map(|customer| format!("({tenant},{},{batch},{customer})", id.0))
                .collect();
            let sql = format!(
                "INSERT INTO sandbox_messages (tenant_id, broadcast_id, batch, customer_id) VALUES {}",
                values.join(",")
            );
            on_tx!(&mut tx, |c| {
                sqlx::query(&sql).execute(&mut *c).await?;
            });
        }
        tx.commit().await?;
        Ok(SandboxAnswer {
            messages: recipients.len() as i64,
            delivered_at: now,
            again: false,
        })
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
