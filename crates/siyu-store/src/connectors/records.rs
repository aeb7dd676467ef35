//! What a connector's work leaves to read later: sync checkpoints (a sync cut off goes
//! on from its last stored page) and sends, one record per recipient.

use siyu_domain::connector::{ConnectorSend, SendStatus, SyncState};
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, JobId, StaffId};

use serde_json::Value;
use siyu_domain::audit::{Actor, AuditRecord, action};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct SendRow {
    id: i64,
    connector_id: Option<i64>,
    kind: String,
    customer_id: Option<i64>,
    staff_id: Option<i64>,
    recipient: String,
    status: String,
    detail: Option<String>,
    job_id: Option<i64>,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct SyncRow {
    what: String,
    job_id: Option<i64>,
    checkpoint: String,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    items: i64,
}

fn sync_of(row: SyncRow) -> Result<SyncState> {
    Ok(SyncState {
        what: row.what,
        job_id: row.job_id.map(JobId),
        checkpoint: serde_json::from_str(&row.checkpoint)
            .map_err(|e| StoreError::Corrupt(format!("a sync checkpoint: {e}")))?,
        started_at: row.started_at,
        finished_at: row.finished_at,
        items: row.items,
    })
}

/// A send to record.
#[derive(Debug, Clone)]
pub struct NewConnectorSend {
    pub connector: ConnectorId,
    /// `welcome`, `app_message`, …
    pub kind: String,
    pub customer: Option<CustomerId>,
    pub staff: Option<StaffId>,
    /// The channel's address of the recipient (an external_userid, a userid).
    pub recipient: String,
    pub status: SendStatus,
    pub detail: Option<String>,
    pub job: Option<JobId>,
}

/// A sync asked for: its job, and whether it was made now (or one was already waiting
/// or running, which the asker follows instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncAsked {
    pub job: JobId,
    pub created: bool,
}

impl TenantScope<'_> {
    /// Enqueues a sync of the connector (`kind`, `payload`), audited, unless one is
    /// waiting or running already: a connector syncs one at a time.
    pub async fn ask_connector_sync(
        &self,
        id: ConnectorId,
        kind: &str,
        payload: Value,
        created_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<SyncAsked> {
        self.check_connector(id).await?;
        let key = format!("connector:{}", id.0);
        let mut job = NewJob::new(kind, payload.clone())
            .for_tenant(self.tenant)
            .unique_key(key.clone());
        if let Some(staff) = created_by {
            job = job.created_by(staff);
        }
        let mut tx = self.store.begin().await?;
        let made = enqueue_in(&mut tx, &[job]).await?.pop().flatten();
        let asked = match made {
            Some(job) => {
                audit::record(
                    &mut tx,
                    self.tenant,
                    actor,
                    AuditRecord::new(action::CONNECTOR_SYNC_ASKED, "connector", id.0)
                        .with_details(serde_json::json!({"job_id": job.0, "payload": payload})),
                )
                .await?;
                SyncAsked { job, created: true }
            }
            None => {
                let live: Option<i64> = on_tx!(&mut tx, |c| {
                    sqlx::query_scalar(
                        "SELECT id FROM jobs WHERE tenant_id = $1 AND kind = $2 AND unique_key = $3 \
                         AND state IN ('waiting', 'running') ORDER BY id DESC LIMIT 1",
                    )
                    .bind(self.tenant.0)
                    .bind(kind)
                    .bind(&key)
                    .fetch_optional(&mut *c)
                    .await?
                });
                let job = live.ok_or_else(|| {
                    StoreError::Conflict(
                        "a sync of this connector has just ended: ask again".into(),
                    )
                })?;
                SyncAsked {
                    job: JobId(job),
                    created: false,
                }
            }
        };
        tx.commit().await?;
        if asked.created {
            self.store.notify_jobs();
        }
        Ok(asked)
    }

    /// Where a sync stands, if one ever ran.
    pub async fn connector_sync(&self, id: ConnectorId, what: &str) -> Result<Option<SyncState>> {
        let row: Option<SyncRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT s.what, s.job_id, s.checkpoint, s.started_at, s.finished_at, s.items \
                 FROM connector_syncs s JOIN connectors c ON c.id = s.connector_id \
                 WHERE c.tenant_id = $1 AND s.connector_id = $2 AND s.what = $3",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(what)
            .fetch_optional(db)
            .await?
        });
        row.map(sync_of).transpose()
    }

    /// Starts a sync run by `job`, or goes on with it: the checkpoint of the same job's
    /// earlier try is kept (it was cut off); another job starts from the beginning.
    pub async fn begin_connector_sync(
        &self,
        id: ConnectorId,
        what: &str,
        job: JobId,
    ) -> Result<SyncState> {
        self.check_connector(id).await?;
        let now = now_ms();
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO connector_syncs (connector_id, what, job_id, checkpoint, started_at, items) \
                 VALUES ($1, $2, $3, '{}', $4, 0) ON CONFLICT (connector_id, what) DO UPDATE \
                 SET job_id = excluded.job_id, checkpoint = '{}', started_at = excluded.started_at, \
                 finished_at = NULL, items = 0 \
                 WHERE connector_syncs.job_id IS NULL OR connector_syncs.job_id <> excluded.job_id",
            )
            .bind(id.0)
            .bind(what)
            .bind(job.0)
            .bind(now)
            .execute(db)
            .await?;
        });
        self.connector_sync(id, what)
            .await?
            .ok_or(StoreError::NotFound("connector"))
    }

    /// Records a send to one recipient.
    pub async fn record_connector_send(&self, send: &NewConnectorSend) -> Result<i64> {
        self.check_connector(send.connector).await?;
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "INSERT INTO connector_sends (tenant_id, connector_id, kind, customer_id, \
                 staff_id, recipient, status, detail, job_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(send.connector.0)
            .bind(&send.kind)
            .bind(send.customer.map(|c| c.0))
            .bind(send.staff.map(|s| s.0))
            .bind(&send.recipient)
            .bind(send.status.as_str())
            .bind(&send.detail)
            .bind(send.job.map(|j| j.0))
            .bind(now_ms())
            .fetch_one(db)
            .await?
        }))
    }

    /// The recipients a job has recorded sends to (a try after a crash skips them).
    pub async fn connector_recipients_of_job(
        &self,
        id: ConnectorId,
        job: JobId,
    ) -> Result<Vec<String>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT recipient FROM connector_sends WHERE tenant_id = $1 \
                 AND connector_id = $2 AND job_id = $3",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(job.0)
            .fetch_all(db)
            .await?
        }))
    }

    /// The sends of a connector of one kind to one recipient, newest first.
    pub async fn connector_sends_to(
        &self,
        id: ConnectorId,
        kind: &str,
        recipient: &str,
    ) -> Result<Vec<ConnectorSend>> {
        let rows: Vec<SendRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, connector_id, kind, customer_id, staff_id, recipient, status, \
                 detail, job_id, created_at FROM connector_sends WHERE tenant_id = $1 \
                 AND connector_id = $2 AND kind = $3 AND recipient = $4 ORDER BY id DESC",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(kind)
            .bind(recipient)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ConnectorSend {
                id: r.id,
                connector_id: r.connector_id.map(ConnectorId),
                kind: r.kind,
                customer_id: r.customer_id.map(CustomerId),
                staff_id: r.staff_id.map(StaffId),
                recipient: r.recipient,
                status: r.status,
                detail: r.detail,
                job_id: r.job_id.map(JobId),
                created_at: r.created_at,
            })
            .collect())
    }
}
