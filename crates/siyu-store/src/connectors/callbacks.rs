//! Callbacks taken once. A channel repeats a callback it thinks unanswered (WeCom: 5 s,
//! up to 3 tries), so each is keyed by what it says; the first is recorded with the job
//! that will process it, in one transaction, and a repeat finds the key and makes none.
//!
//! A callback arrives before any tenant is known (its URL names only the connector), so
//! [`Store::connector_for_callback`] finds the connector's tenant first; everything
//! after it goes through that tenant's scope.

use siyu_domain::connector::ConnectorKind;
use siyu_domain::ids::{ConnectorId, JobId, TenantId};

use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::on_tx;
use crate::{Result, Store, StoreError, TenantScope};

/// How long a callback's key is kept to recognise a repeat: far past the channel's
/// retries.
pub const KEEP_CALLBACK_KEYS_MS: i64 = 24 * 3_600_000;

/// The connector a callback URL names: whose it is and of what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackConnector {
    pub tenant: TenantId,
    pub kind: ConnectorKind,
}

#[derive(sqlx::FromRow)]
struct CallbackConnectorRow {
    tenant_id: i64,
    kind: String,
}

impl TenantScope<'_> {
    /// Takes a callback: the job that processes it is enqueued unless a callback with
    /// the same key was taken before (then `None`).
    pub async fn accept_connector_callback(
        &self,
        id: ConnectorId,
        dedupe_key: &str,
        job: NewJob,
    ) -> Result<Option<JobId>> {
        let now = now_ms();
        // it reads (the connector) before it writes: on SQLite a deferred transaction
        // would be refused the write lock when another writer committed meanwhile
        let mut tx = self.store.begin_writing().await?;
        let taken = on_tx!(&mut tx, |c| {
            let known: Option<i64> =
                sqlx::query_scalar("SELECT id FROM connectors WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .fetch_optional(&mut *c)
                    .await?;
            if known.is_none() {
                return Err(StoreError::NotFound("connector"));
            }
            sqlx::query(
                "INSERT INTO connector_callbacks (connector_id, dedupe_key, received_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (connector_id, dedupe_key) DO NOTHING",
            )
            .bind(id.0)
            .bind(dedupe_key)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
                == 1
        });
        if !taken {
            return Ok(None);
        }
        let job = enqueue_in(&mut tx, &[job]).await?.pop().flatten();
        if let Some(job) = job {
            on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE connector_callbacks SET job_id = $1 \
                     WHERE connector_id = $2 AND dedupe_key = $3",
                )
                .bind(job.0)
                .bind(id.0)
                .bind(dedupe_key)
                .execute(&mut *c)
                .await?;
            });
        }
        tx.commit().await?;
        if job.is_some() {
            self.store.notify_jobs();
        }
        Ok(job)
    }
}

impl Store {
    /// The tenant and kind of the connector a callback URL names, in any tenant (`None`
    /// when there is none): what a callback, which carries no credentials but its
    /// signature, needs to find the secrets to check that signature with.
    pub async fn connector_for_callback(
        &self,
        id: ConnectorId,
    ) -> Result<Option<CallbackConnector>> {
        let row: Option<CallbackConnectorRow> = on_db!(self, |db| {
            sqlx::query_as("SELECT tenant_id, kind FROM connectors WHERE id = $1")
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.map(|row| {
            Ok(CallbackConnector {
                tenant: TenantId(row.tenant_id),
                kind: ConnectorKind::parse("kind", &row.kind)
                    .map_err(|e| StoreError::Corrupt(format!("connector {}: {e}", id.0)))?,
            })
        })
        .transpose()
    }

    /// Forgets callback keys received before `before` (ms), the intake file's too.
    pub async fn prune_connector_callbacks(&self, before: i64) -> Result<u64> {
        let pruned = on_db!(self, |db| {
            sqlx::query("DELETE FROM connector_callbacks WHERE received_at < $1")
                .bind(before)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(match self.relation_intake() {
            Some((_, log)) => pruned + super::relation_intake::prune_keys(log, before).await?,
            None => pruned,
        })
    }
}
