//! On SQLite, WeCom's relation changes wait in the intake file (`PATH.ingest`, beside the
//! ingest log), not in the main file.
//!
//! # Why
//! The main file has one writer. In a flood of adds, taking callbacks (a small
//! transaction per group, every few milliseconds) and applying them (a big transaction
//! per group of thousands) took turns at that writer, and each turn lost time in
//! SQLite's busy wait: the applier sat idle while the callbacks waited, and the other
//! way round. Kept in a file of their own, callbacks are taken without ever waiting for
//! the applier, and the applier has the main file's writer to itself.
//!
//! # Exactly once across two files
//! The intake file holds the changes (`wecom_relation_changes`, numbered by
//! `AUTOINCREMENT`, so numbers never go back) and the keys of the callbacks taken
//! (`connector_callbacks`, what makes a repeat a no-op). The main file records, per
//! connector, the last change applied (`wecom_relation_applied`), in the transaction
//! that applies the group, and only if no one applied from that group meanwhile: a
//! crash before that commit applies the group again; a crash after it does not. Applied
//! changes are deleted from the intake file afterwards ([`trim`]); a trim lost to a crash
//! is done by the next. A replaced intake file continues its numbering after the last
//! change applied ([`Store::prepare_relation_intake`]).
//!
//! # No change left waiting without a job
//! The intake makes sure each connector it took callbacks for (repeats included) has
//! its job waiting or running (a read of the main file, a write only when none is),
//! after its own commit. The job, once it has completed itself with nothing waiting,
//! looks once more and enqueues the next job if a change came meanwhile. Either the
//! intake's look comes after the completion and enqueues, or the job's look comes after
//! the change and sees it. A crash (or a failure) between a commit and its look leaves
//! changes without a job until the sweep ([`Store::sweep_relation_changes`]) finds
//! them: at start and by the hourly maintenance job.
//!
//! PostgreSQL keeps the changes in a table of the database, taken and applied in turns
//! under the connector's advisory lock (see `wecom_relation_changes`).

use siyu_domain::ids::{ConnectorId, TenantId};
use sqlx::SqlitePool;

use super::wecom_relation_changes::{WaitingRelationChange, relation_changes_job};
use crate::tx::{Tx, on_tx};
use crate::{Result, Store, StoreError};

/// The intake file's tables for relation changes.
const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS wecom_relation_changes (\
     id INTEGER PRIMARY KEY AUTOINCREMENT, \
     tenant_id INTEGER NOT NULL, \
     connector_id INTEGER NOT NULL, \
     event TEXT NOT NULL, \
     received_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS wecom_relation_changes_connector \
     ON wecom_relation_changes (connector_id, id)",
    "CREATE TABLE IF NOT EXISTS connector_callbacks (\
     connector_id INTEGER NOT NULL, \
     dedupe_key TEXT NOT NULL, \
     received_at INTEGER NOT NULL, \
     PRIMARY KEY (connector_id, dedupe_key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS connector_callbacks_received \
     ON connector_callbacks (received_at)",
];

/// Rows moved or deleted per statement.
const CHUNK: usize = 500;

impl Store {
    /// Makes the intake file's tables for relation changes; moves in the changes an
    /// earlier version left waiting in the main file (same numbers, so a move repeated
    /// after a crash adds nothing twice); and makes the intake file's numbering continue
    /// after every change applied or moved. Run after the migrations.
    pub(crate) async fn prepare_relation_intake(&self) -> Result<()> {
        let (crate::db::Pool::Sqlite(main), Some(log)) = (&self.pool, &self.log) else {
            return Ok(());
        };
        for statement in SCHEMA {
            sqlx::query(statement).execute(log).await?;
        }
        let applied: Option<i64> = match sqlx::query_scalar(
            "SELECT COALESCE(MAX(through), 0) FROM wecom_relation_applied",
        )
        .fetch_one(main)
        .await
        {
            Ok(applied) => Some(applied),
            Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => None,
            Err(e) => return Err(e.into()),
        };
        let Some(applied) = applied else {
            return Ok(()); // before migration 34 (an upgrade test)
        };
        let left: Vec<LeftChange> = sqlx::query_as(
            "SELECT id, tenant_id, connector_id, event, received_at \
             FROM wecom_relation_changes ORDER BY id",
        )
        .fetch_all(main)
        .await?;
        let numbered: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence \
             WHERE name = 'wecom_relation_changes'), 0)",
        )
        .fetch_one(main)
        .await?;
        let mut tx = log.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in left.chunks(CHUNK) {
            let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(",");
            let sql = format!(
                "INSERT OR IGNORE INTO wecom_relation_changes \
                 (id, tenant_id, connector_id, event, received_at) VALUES {rows}"
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(row.id)
                    .bind(row.tenant_id)
                    .bind(row.connector_id)
                    .bind(&row.event)
                    .bind(row.received_at);
            }
            query.execute(&mut *tx).await?;
        }
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence \
             WHERE name = 'wecom_relation_changes'), 0)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let floor = applied.max(numbered);
        if last < floor {
            sqlx::query("DELETE FROM sqlite_sequence WHERE name = 'wecom_relation_changes'")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('wecom_relation_changes', ?)",
            )
            .bind(floor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if let Some(moved) = left.last() {
            sqlx::query("DELETE FROM wecom_relation_changes WHERE id <= ?")
                .bind(moved.id)
                .execute(main)
                .await?;
            tracing::info!(
                changes = left.len(),
                "relation changes moved into the intake file"
            );
        }
        self.sweep_relation_changes().await?;
        Ok(())
    }

    /// Gives every connector with relation changes waiting its job (on SQLite one may
    /// be left without by a crash between a commit and its look, see the module's
    /// documentation; PostgreSQL enqueues with the changes, and is swept all the same),
    /// and deletes what waits in the intake file for connectors deleted since. Says how
    /// many connectors have changes waiting.
    pub async fn sweep_relation_changes(&self) -> Result<u64> {
        let Some((main, log)) = self.relation_intake() else {
            let waiting: Vec<(i64, i64)> = crate::db::on_db!(self, |db| {
                sqlx::query_as(
                    "SELECT DISTINCT tenant_id, connector_id FROM wecom_relation_changes",
                )
                .fetch_all(db)
                .await?
            });
            for (tenant, connector) in &waiting {
                self.ensure_relation_changes_job(TenantId(*tenant), ConnectorId(*connector))
                    .await?;
            }
            return Ok(waiting.len() as u64);
        };
        let known = connectors_applied(main).await?;
        let mut ensured = 0;
        for (connector, last) in waiting_connectors(log).await? {
            match known.iter().find(|k| k.connector_id == connector) {
                None => forget_connector(log, ConnectorId(connector)).await?,
                Some(k) if last > k.through => {
                    self.ensure_relation_changes_job(TenantId(k.tenant_id), ConnectorId(connector))
                        .await?;
                    ensured += 1;
                }
                Some(_) => {}
            }
        }
        Ok(ensured)
    }

    /// The intake file, when relation changes wait there (SQLite).
    pub(super) fn relation_intake(&self) -> Option<(&SqlitePool, &SqlitePool)> {
        match (&self.pool, &self.log) {
            (crate::db::Pool::Sqlite(main), Some(log)) => Some((main, log)),
            _ => None,
        }
    }

    /// Enqueues the connector's job unless one waits or runs (a read when one does).
    pub(super) async fn ensure_relation_changes_job(
        &self,
        tenant: TenantId,
        connector: ConnectorId,
    ) -> Result<()> {
        let job = relation_changes_job(tenant, connector);
        let live: bool = crate::db::on_db!(self, |db| {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = $1 AND unique_key = $2 \
                 AND state IN ('waiting', 'running'))",
            )
            .bind(&job.kind)
            .bind(&job.unique_key)
            .fetch_one(db)
            .await?
        });
        if !live {
            self.enqueue(&[job]).await?;
        }
        Ok(())
    }
}

/// A change an earlier version left in the main file.
#[derive(sqlx::FromRow)]
struct LeftChange {
    id: i64,
    tenant_id: i64,
    connector_id: i64,
    event: String,
    received_at: i64,
}

/// The last change of the connector applied, as the main file records it (0 before the
/// first).
pub(super) async fn applied_through(
    main: &SqlitePool,
    tenant: TenantId,
    connector: ConnectorId,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE((SELECT a.through FROM wecom_relation_applied a \
         JOIN connectors c ON c.id = a.connector_id \
         WHERE c.tenant_id = ? AND a.connector_id = ?), 0)",
    )
    .bind(tenant.0)
    .bind(connector.0)
    .fetch_one(main)
    .await?)
}

/// The oldest `limit` changes of the connector not yet applied.
pub(super) async fn waiting(
    (main, log): (&SqlitePool, &SqlitePool),
    tenant: TenantId,
    connector: ConnectorId,
    limit: i64,
) -> Result<Vec<WaitingRelationChange>> {
    let applied = applied_through(main, tenant, connector).await?;
    Ok(sqlx::query_as(
        "SELECT id, event FROM wecom_relation_changes WHERE tenant_id = ? \
         AND connector_id = ? AND id > ? ORDER BY id LIMIT ?",
    )
    .bind(tenant.0)
    .bind(connector.0)
    .bind(applied)
    .bind(limit)
    .fetch_all(log)
    .await?)
}

/// How many changes of the connector wait.
pub(super) async fn waiting_count(
    (main, log): (&SqlitePool, &SqlitePool),
    tenant: TenantId,
    connector: ConnectorId,
) -> Result<i64> {
    let applied = applied_through(main, tenant, connector).await?;
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM wecom_relation_changes WHERE tenant_id = ? \
         AND connector_id = ? AND id > ?",
    )
    .bind(tenant.0)
    .bind(connector.0)
    .bind(applied)
    .fetch_one(log)
    .await?)
}

/// Whether a change of the connector after `through` waits.
pub(super) async fn waits_after(
    log: &SqlitePool,
    tenant: TenantId,
    connector: ConnectorId,
    through: i64,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM wecom_relation_changes WHERE tenant_id = ? \
         AND connector_id = ? AND id > ?)",
    )
    .bind(tenant.0)
    .bind(connector.0)
    .bind(through)
    .fetch_one(log)
    .await?)
}

/// Records in the applying transaction (main file) that the connector's changes from
/// `first` through `through` are applied; a conflict when `first` was applied
/// meanwhile (by another applier), so nothing is applied twice.
pub(super) async fn mark_applied_in(
    tx: &mut Tx,
    connector: ConnectorId,
    first: i64,
    through: i64,
) -> Result<()> {
    let marked = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO wecom_relation_applied (connector_id, through) VALUES ($1, $2) \
             ON CONFLICT (connector_id) DO UPDATE SET through = excluded.through \
             WHERE wecom_relation_applied.through < $3",
        )
        .bind(connector.0)
        .bind(through)
        .bind(first)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    if marked == 0 {
        return Err(StoreError::Conflict(format!(
            "relation change {first} of connector {} was applied meanwhile",
            connector.0
        )));
    }
    Ok(())
}

/// Deletes the connector's changes through `through` (applied) from the intake file.
pub(super) async fn trim(
    log: &SqlitePool,
    tenant: TenantId,
    connector: ConnectorId,
    through: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM wecom_relation_changes WHERE tenant_id = ? AND connector_id = ? \
         AND id <= ?",
    )
    .bind(tenant.0)
    .bind(connector.0)
    .bind(through)
    .execute(log)
    .await?
    .rows_affected())
}

/// A connector of the main file and the last of its changes applied.
#[derive(sqlx::FromRow)]
struct ConnectorApplied {
    connector_id: i64,
    tenant_id: i64,
    through: i64,
}

/// Every connector, with the last of its changes applied (0 before the first).
async fn connectors_applied(main: &SqlitePool) -> Result<Vec<ConnectorApplied>> {
    Ok(sqlx::query_as(
        "SELECT c.id AS connector_id, c.tenant_id, COALESCE(a.through, 0) AS through \
         FROM connectors c LEFT JOIN wecom_relation_applied a ON a.connector_id = c.id",
    )
    .fetch_all(main)
    .await?)
}

/// The connectors with changes in the intake file, each with its last one.
async fn waiting_connectors(log: &SqlitePool) -> Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT connector_id, MAX(id) FROM wecom_relation_changes GROUP BY connector_id",
    )
    .fetch_all(log)
    .await?)
}

/// Deletes every applied change from the intake file, and every change of a connector
/// deleted since (after an erasure: nothing of an erased customer lingers there).
pub(crate) async fn trim_all((main, log): (&SqlitePool, &SqlitePool)) -> Result<u64> {
    let known = connectors_applied(main).await?;
    let mut trimmed = 0;
    for (connector, _) in waiting_connectors(log).await? {
        let through = known
            .iter()
            .find(|k| k.connector_id == connector)
            .map_or(i64::MAX, |k| k.through);
        trimmed +=
            sqlx::query("DELETE FROM wecom_relation_changes WHERE connector_id = ? AND id <= ?")
                .bind(connector)
                .bind(through)
                .execute(log)
                .await?
                .rows_affected();
    }
    Ok(trimmed)
}

/// Deletes a deleted connector's changes and callback keys from the intake file.
pub(super) async fn forget_connector(log: &SqlitePool, connector: ConnectorId) -> Result<()> {
    for table in ["wecom_relation_changes", "connector_callbacks"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE connector_id = ?"))
            .bind(connector.0)
            .execute(log)
            .await?;
    }
    Ok(())
}

/// Forgets the intake file's callback keys received before `before` (ms).
pub(super) async fn prune_keys(log: &SqlitePool, before: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM connector_callbacks WHERE received_at < ?")
            .bind(before)
            .execute(log)
            .await?
            .rows_affected(),
    )
}
