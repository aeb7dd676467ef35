//! The ingest log: where tracked events wait, durably, to be applied to profiles.
//!
//! # Why a log
//! Applying an event (identity resolution, traits, the event row and its indexes,
//! per-day counts, orders) writes a few random pages of the database; measured on SQLite
//! that bounds a single writer to about 20,000 events a second however the work is
//! grouped. Appending the checked event to a log costs a fraction of that. So a tracking
//! call is answered once its events are in the log ([`Store::log_events`]), and one task
//! applies the log to profiles in big groups ([`Store::apply_logged`]); under ordinary
//! load that is moments later (see `siyu-server/src/ingest.rs`, which can also make
//! answers wait for it).
//!
//! # Exactly once, on either database
//! - **SQLite** keeps the log in a database file of its own (`PATH.ingest` beside
//!   `PATH`), so appending never waits for the main file's single writer, which an apply
//!   holds for a whole group. The main file records the last entry applied
//!   (`ingest_applied`) in the transaction that applies the group: a crash before that
//!   commit applies the group again from the log; a crash after it does not. Applied
//!   entries are deleted from the log later ([`Store::trim_log`]). Sequence numbers are
//!   `AUTOINCREMENT`, so they never go back, and a log file that is lost or replaced
//!   continues after the last entry applied.
//! - **PostgreSQL** keeps the log as a table. An apply takes an advisory lock (one
//!   applier at a time, whichever server process it is in, so events are applied in the
//!   order they were logged: a refund never before its order), reads the oldest entries
//!   and deletes them in the transaction that applies them.
//!
//! An entry that cannot be applied (it makes its group fail on its own, or cannot be
//! read back, say after an upgrade changed the event's form) is set aside in
//! `ingest_dead_letters` with the error, rather than blocking every entry behind it;
//! `siyu ingest replay` logs it again once the cause is fixed
//! ([`Store::replay_dead_letters`]).
//!
//! Events are kept in their checked form ([`TrackedEvent`] as JSON); the order an
//! e-commerce event carries is read again from its properties when it is applied.

use std::collections::HashMap;

use siyu_domain::identity::Identity;
use siyu_domain::ids::TenantId;
use siyu_domain::tracking::TrackedEvent;
use sqlx::SqlitePool;

use crate::db::Pool;
use crate::ingest::ingest_in;
use crate::sources::SourceRefRow;
use crate::tx::{Placeholders, Tx, lock_customers, on_tx};
use crate::{IngestItem, IngestOutcome, Result, SourceRef, Store, StoreError};

/// An entry's place in the log; later entries have larger numbers.
pub type LogSeq = i64;

/// Entries appended by one statement: three values each, well under both databases'
/// limits on bound parameters.
const APPEND_CHUNK: usize = 500;

/// The log's schema on SQLite (its own file).
const SQLITE_LOG_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ingest_log (\
     seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     tenant_id INTEGER NOT NULL, \
     source_id INTEGER NOT NULL, \
     payload TEXT NOT NULL)";

/// An entry read back from the log.
#[derive(sqlx::FromRow)]
struct LoggedRow {
    seq: LogSeq,
    tenant_id: i64,
    source_id: i64,
    /// The checked event as JSON.
    payload: String,
}

/// An entry set aside: logged, never applied, for the error it failed with.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeadLetter {
    pub seq: LogSeq,
    pub tenant_id: i64,
    pub source_id: i64,
    pub error: String,
    pub failed_at: i64,
}

/// The PostgreSQL advisory lock held by the one applier at work ("SI" for ingest).
const APPLY_LOCK: i64 = 0x5349_0000_0000_0001;

/// Entries deleted from the SQLite log per trim, so a trim after a long backlog never
/// holds the log's writer for long. Trims come every 2 s (see `siyu_runtime::ingest`):
/// smaller, more frequent trims were measured to cost each entry three to five times as
/// much, halving the rate at which a flood of callbacks is taken in.
pub const LOG_TRIM_CHUNK: i64 = 50_000;

impl Store {
    /// Creates the SQLite log's table, and makes its numbering continue after the last
    /// entry applied (a fresh or replaced log file would otherwise start again at 1, and
    /// its entries would look applied already). Run after the migrations.
    pub(crate) async fn prepare_log(&self) -> Result<()> {
        let (Pool::Sqlite(main), Some(log)) = (&self.pool, &self.log) else {
            return Ok(());
        };
        sqlx::query(SQLITE_LOG_SCHEMA).execute(log).await?;
        let Some(applied) = applied_seq(main).await? else {
            // the migrations that make `ingest_applied` have not run (an upgrade test)
            return Ok(());
        };
        let mut tx = log.begin_with("BEGIN IMMEDIATE").await?;
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ingest_log'), 0)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if last < applied {
            sqlx::query("DELETE FROM sqlite_sequence WHERE name = 'ingest_log'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('ingest_log', $1)")
                .bind(applied)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The entries set aside (see [`Store::set_aside_oldest_logged`]), oldest first, at
    /// most `limit`.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>> {
        Ok(crate::on_db!(self, |db| {
            sqlx::query_as(
                "SELECT seq, tenant_id, source_id, error, failed_at FROM ingest_dead_letters \
                 ORDER BY seq LIMIT $1",
            )
            .bind(limit)
            .fetch_all(db)
            .await?
        }))
    }

    /// Puts entries set aside back at the end of the log, to be applied again once what
    /// failed them is fixed: all of them, or those numbered in `only`. Says how many.
    /// They are applied after everything logged before the replay. An event stored
    /// meanwhile (its messageId seen from its source) counts as a duplicate, so a replay
    /// repeated after a crash between its two steps on SQLite (the log is a file of its
    /// own) stores nothing twice.
    pub async fn replay_dead_letters(&self, only: Option<&[LogSeq]>) -> Result<u64> {
        if only.is_some_and(<[LogSeq]>::is_empty) {
            return Ok(0);
        }
        let backend = self.backend();
        let filter = |p: &mut Placeholders| match only {
            Some(seqs) => format!("WHERE seq IN {}", p.row(seqs.len())),
            None => String::new(),
        };
        let bind_seqs = only.unwrap_or_default();
        match (&self.pool, &self.log) {
            (Pool::Sqlite(main), Some(log)) => {
                let sql = format!(
                    "SELECT seq, tenant_id, source_id, payload FROM ingest_dead_letters {} \
                     ORDER BY seq",
                    filter(&mut Placeholders::for_backend(backend))
                );
                let mut query = sqlx::query_as::<_, LoggedRow>(&sql);
                for seq in bind_seqs {
                    query = query.bind(seq);
                }
                let rows = query.fetch_all(main).await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut tx = Tx::Sqlite(log.begin_with("BEGIN IMMEDIATE").await?);
                let entries: Vec<(i64, i64, &str)> = rows
                    .iter()
                    .map(|r| (r.tenant_id, r.source_id, r.payload.as_str()))
                    .collect();
                append(&mut tx, &entries).await?;
                tx.commit().await?;
                // logged again: no longer set aside
                let mut tx = main.begin().await?;
                for chunk in rows.chunks(APPEND_CHUNK) {
                    let mut p = Placeholders::for_backend(backend);
                    let sql = format!(
                        "DELETE FROM ingest_dead_letters WHERE seq IN {}",
                        p.row(chunk.len())
                    );
                    let mut query = sqlx::query(&sql);
                    for row in chunk {
                        query = query.bind(row.seq);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(rows.len() as u64)
            }
            (Pool::Postgres(pool), _) => {
                let mut tx = pool.begin().await?;
                let mut p = Placeholders::for_backend(backend);
                let sql = format!(
                    "WITH replayed AS (DELETE FROM ingest_dead_letters {} \
                     RETURNING seq, tenant_id, source_id, payload) \
                     INSERT INTO ingest_log (tenant_id, source_id, payload) \
                     SELECT tenant_id, source_id, payload FROM replayed ORDER BY seq",
                    filter(&mut p)
                );
                let mut query = sqlx::query(&sql);
                for seq in bind_seqs {
                    query = query.bind(seq);
                }
                let replayed = query.execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(replayed)
            }
            (Pool::Sqlite(_), None) => unreachable!("a SQLite store always has its log"),
        }
    }

    /// Appends checked events to the log in one transaction and gives each its sequence
    /// number, in order. Once this returns they survive a crash and will be applied.
    pub async fn log_events(&self, items: &[IngestItem]) -> Result<Vec<LogSeq>> {
        let payloads = items
            .iter()
            .map(|item| serde_json::to_string(&item.event))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("an event cannot be logged: {e}")))?;
        let mut tx = match (&self.pool, &self.log) {
            (Pool::Sqlite(_), Some(log)) => Tx::Sqlite(log.begin_with("BEGIN IMMEDIATE").await?),
            (Pool::Postgres(pool), _) => Tx::Postgres(pool.begin().await?),
            (Pool::Sqlite(_), None) => unreachable!("a SQLite store always has its log"),
        };
        let entries: Vec<(i64, i64, &str)> = items
            .iter()
            .zip(&payloads)
            .map(|(item, payload)| (item.source.tenant.0, item.source.source.0, payload.as_str()))
            .collect();
        let seqs = append(&mut tx, &entries).await?;
        tx.commit().await?;
        self.log_written(seqs.len() as u64);
        Ok(seqs)
    }

    /// Applies up to `limit` of the oldest entries in the log to profiles, in one
    /// transaction, and says what became of each (as [`Store::ingest`] does). Empty when
    /// nothing waits (or, on PostgreSQL, when every waiting entry is being applied by
    /// another process).
    pub async fn apply_logged(&self, limit: usize) -> Result<Vec<(LogSeq, IngestOutcome)>> {
        match (&self.pool, &self.log) {
            (Pool::Sqlite(main), Some(log)) => self.apply_logged_sqlite(main, log, limit).await,
            (Pool::Postgres(pool), _) => {
                let mut tx = Tx::Postgres(pool.begin().await?);
                let rows: Vec<LoggedRow> = on_tx!(&mut tx, |c| {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(APPLY_LOCK)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query_as(
                        "SELECT seq, tenant_id, source_id, payload FROM ingest_log \
                         ORDER BY seq LIMIT $1",
                    )
                    .bind(limit as i64)
                    .fetch_all(&mut *c)
                    .await?
                });
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let tenants: Vec<TenantId> = rows.iter().map(|r| TenantId(r.tenant_id)).collect();
                lock_customers(&mut tx, &tenants).await?;
                let applied = apply_rows(&mut tx, rows).await?;
                let seqs: Vec<LogSeq> = applied.iter().map(|(seq, _)| *seq).collect();
                if let Tx::Postgres(t) = &mut tx {
                    sqlx::query("DELETE FROM ingest_log WHERE seq = ANY($1)")
                        .bind(&seqs)
                        .execute(&mut **t)
                        .await?;
                }
                tx.commit().await?;
                Ok(applied)
            }
            (Pool::Sqlite(_), None) => unreachable!("a SQLite store always has its log"),
        }
    }

    async fn apply_logged_sqlite(
        &self,
        main: &SqlitePool,
        log: &SqlitePool,
        limit: usize,
    ) -> Result<Vec<(LogSeq, IngestOutcome)>> {
        loop {
            let applied = applied_seq(main).await?.unwrap_or(0);
            let rows: Vec<LoggedRow> = sqlx::query_as(
                "SELECT seq, tenant_id, source_id, payload FROM ingest_log \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(applied)
            .bind(limit as i64)
            .fetch_all(log)
            .await?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                return Ok(Vec::new());
            };
            // BEGIN IMMEDIATE: the write lock of the main file, which is every tenant's
            // customer lock on SQLite
            let mut tx = Tx::Sqlite(main.begin_with("BEGIN IMMEDIATE").await?);
            let now: i64 = on_tx!(&mut tx, |c| {
                sqlx::query_scalar("SELECT seq FROM ingest_applied WHERE id = 1")
                    .fetch_one(&mut *c)
                    .await?
            });
            if now != applied {
                // another store on the same file applied meanwhile: read again
                continue;
            }
            let outcomes = apply_rows(&mut tx, rows).await?;
            on_tx!(&mut tx, |c| {
                sqlx::query("UPDATE ingest_applied SET seq = $1 WHERE id = 1")
                    .bind(last)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
            });
            tx.commit().await?;
            return Ok(outcomes);
        }
    }

    /// Deletes entries already applied from the SQLite log (the space is reused by later
    /// entries), at most [`LOG_TRIM_CHUNK`] at a time; says how many. PostgreSQL deletes
    /// them as it applies them.
    pub async fn trim_log(&self) -> Result<u64> {
        match self.log_applied_through().await? {
            Some(applied) => self.trim_log_through(applied).await,
            None => Ok(0),
        }
    }

    /// The last entry of the SQLite log applied to profiles (none on PostgreSQL, whose
    /// log holds only what waits).
    pub async fn log_applied_through(&self) -> Result<Option<LogSeq>> {
        match &self.pool {
            Pool::Sqlite(main) => Ok(Some(applied_seq(main).await?.unwrap_or(0))),
            Pool::Postgres(_) => Ok(None),
        }
    }

    /// As [`Store::trim_log`], through an entry known to be applied (read earlier with
    /// [`Store::log_applied_through`]), so that trimming reads nothing from the main
    /// database: the logger, which every tracked request waits for, trims often.
    pub async fn trim_log_through(&self, applied: LogSeq) -> Result<u64> {
        let Some(log) = &self.log else {
            return Ok(0);
        };
        let trimmed = sqlx::query(
            "DELETE FROM ingest_log WHERE seq <= \
             MIN($1, (SELECT COALESCE(MIN(seq), 0) FROM ingest_log) + $2)",
        )
        .bind(applied)
        .bind(LOG_TRIM_CHUNK)
        .execute(log)
        .await?
        .rows_affected();
        self.log_written(trimmed);
        Ok(trimmed)
    }

    /// Counts entries appended to or deleted from the SQLite log, for its checkpoints.
    fn log_written(&self, entries: u64) {
        self.log_unchecked
            .fetch_add(entries, std::sync::atomic::Ordering::AcqRel);
    }

    /// After a customer's erasure, removes what is left of them outside the tables:
    /// applied entries still in the SQLite log file (all of them, a trim's chunk at a
    /// time: the erasure waited for everything logged before it) and the WeCom relation changes applied there, and the entries set aside that name any of
    /// their `identities`; then, on SQLite, checkpoints both files' write-ahead logs
    /// with TRUNCATE, so that (with `secure_delete` on) the erased bytes linger neither
    /// in free pages nor in a `-wal` file. PostgreSQL deletes log entries as it applies
    /// them. Says how many entries set aside were removed.
    pub async fn purge_erased(&self, tenant: TenantId, identities: &[Identity]) -> Result<u64> {
        if let (Pool::Sqlite(main), Some(log)) = (&self.pool, &self.log) {
            let applied = applied_seq(main).await?.unwrap_or(0);
            // in trims of LOG_TRIM_CHUNK, so the logger (which every tracked request
            // waits for) gets the log file between them, as with the usual trims
            while self.trim_log_through(applied).await? > 0 {
                tokio::task::yield_now().await;
            }
            // and WeCom's relation changes applied (they name contacts)
            crate::connectors::trim_applied_relation_changes((main, log)).await?;
        }
        let set_aside: Vec<(i64, String)> = crate::on_db!(self, |db| {
            sqlx::query_as("SELECT seq, payload FROM ingest_dead_letters WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_all(db)
                .await?
        });
        let naming: Vec<i64> = set_aside
            .into_iter()
            .filter(|(_, payload)| names_any(payload, identities))
            .map(|(seq, _)| seq)
            .collect();
        for chunk in naming.chunks(APPEND_CHUNK) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            // sequence numbers are our own integers: inlined
            let sql =
                format!("DELETE FROM ingest_dead_letters WHERE tenant_id = $1 AND seq IN ({list})");
            crate::on_db!(self, |db| {
                sqlx::query(&sql).bind(tenant.0).execute(db).await?;
            });
        }
        if let (Pool::Sqlite(main), Some(log)) = (&self.pool, &self.log) {
            for pool in [main, log] {
                // readers may hold the log back for a moment; the next erasure's or the
                // background task's checkpoints catch up, so a busy one is logged only
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await
                {
                    tracing::warn!(error = %e, "truncating checkpoint after an erasure failed");
                }
            }
        }
        Ok(naming.len() as u64)
    }

    /// Sets the oldest entry waiting in the log aside, into `ingest_dead_letters` with
    /// `error`, so the entries behind it can be applied; says which (none when nothing
    /// waits). The applier does this to an entry that fails on its own, again and again.
    pub async fn set_aside_oldest_logged(&self, error: &str) -> Result<Option<LogSeq>> {
        match (&self.pool, &self.log) {
            (Pool::Sqlite(main), Some(log)) => {
                let mut tx = main.begin_with("BEGIN IMMEDIATE").await?;
                let applied: i64 =
                    sqlx::query_scalar("SELECT seq FROM ingest_applied WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let row: Option<LoggedRow> = sqlx::query_as(
                    "SELECT seq, tenant_id, source_id, payload FROM ingest_log \
                     WHERE seq > $1 ORDER BY seq LIMIT 1",
                )
                .bind(applied)
                .fetch_optional(log)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let seq = row.seq;
                let mut tx = Tx::Sqlite(tx);
                set_aside(&mut tx, &row, error).await?;
                on_tx!(&mut tx, |c| {
                    sqlx::query("UPDATE ingest_applied SET seq = $1 WHERE id = 1")
                        .bind(seq)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                });
                tx.commit().await?;
                Ok(Some(seq))
            }
            (Pool::Postgres(pool), _) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(APPLY_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let seq: Option<LogSeq> = sqlx::query_scalar(
                    "INSERT INTO ingest_dead_letters \
                     (seq, tenant_id, source_id, payload, error, failed_at) \
                     SELECT seq, tenant_id, source_id, payload, $1, $2 FROM ingest_log \
                     ORDER BY seq LIMIT 1 RETURNING seq",
                )
                .bind(error)
                .bind(crate::now_ms())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(seq) = seq {
                    sqlx::query("DELETE FROM ingest_log WHERE seq = $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(seq)
            }
            (Pool::Sqlite(_), None) => unreachable!("a SQLite store always has its log"),
        }
    }

    /// The last entry logged so far (0 when none ever was).
    pub async fn logged_through(&self) -> Result<LogSeq> {
        Ok(match (&self.pool, &self.log) {
            (Pool::Sqlite(_), Some(log)) => sqlx::query_scalar(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ingest_log'), 0)",
            )
            .fetch_one(log)
            .await?,
            (Pool::Postgres(pool), _) => {
                sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM ingest_log")
                    .fetch_one(pool)
                    .await?
            }
            (Pool::Sqlite(_), None) => unreachable!("a SQLite store always has its log"),
        })
    }

    /// Whether every entry up to `seq` has been applied (or set aside).
    pub async fn applied_through(&self, seq: LogSeq) -> Result<bool> {
        Ok(match &self.pool {
            Pool::Sqlite(main) => applied_seq(main).await?.unwrap_or(0) >= seq,
            Pool::Postgres(pool) => {
                let waiting: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ingest_log WHERE seq <= $1)")
                        .bind(seq)
                        .fetch_one(pool)
                        .await?;
                !waiting
            }
        })
    }

    /// How many entries wait in the log to be applied (on PostgreSQL at most this many;
    /// 0 exactly when none waits).
    pub async fn log_backlog(&self) -> Result<i64> {
        Ok(match (&self.pool, &self.log) {
            (Pool::Sqlite(main), Some(_)) => {
                // numbers are given without gaps (a rolled-back append gives its back)
                let applied = applied_seq(main).await?.unwrap_or(0);
                (self.logged_through().await? - applied).max(0)
            }
            (Pool::Postgres(pool), _) => {
                // two index look-ups rather than a count of a log that may hold
                // millions: entries are applied oldest first, so what waits is one range
                // of numbers (with a gap where an append rolled back: an upper bound)
                sqlx::query_scalar("SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM ingest_log")
                    .fetch_one(pool)
                    .await?
            }
            (Pool::Sqlite(_), None) => unreachable!("a SQLite store always has its log"),
        })
    }
}

/// The last entry applied, on SQLite; `None` before migration 12.
async fn applied_seq(main: &SqlitePool) -> Result<Option<LogSeq>> {
    match sqlx::query_scalar("SELECT seq FROM ingest_applied WHERE id = 1")
        .fetch_optional(main)
        .await
    {
        Ok(seq) => Ok(seq),
        Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a logged event (its JSON) names any of these identities; one that cannot be
/// read is searched as text for their values.
fn names_any(payload: &str, identities: &[Identity]) -> bool {
    match serde_json::from_str::<TrackedEvent>(payload) {
        Ok(event) => event.identities().iter().any(|i| identities.contains(i)),
        Err(_) => identities.iter().any(|i| payload.contains(&i.value)),
    }
}

/// Appends entries (tenant, source, payload) to the log, many to a statement, and gives
/// each its sequence number, in order.
async fn append(tx: &mut Tx, entries: &[(i64, i64, &str)]) -> Result<Vec<LogSeq>> {
    let mut seqs = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(APPEND_CHUNK) {
        let mut p = Placeholders::for_tx(tx);
        let rows: Vec<String> = (0..chunk.len()).map(|_| p.row(3)).collect();
        let sql = format!(
            "INSERT INTO ingest_log (tenant_id, source_id, payload) VALUES {} RETURNING seq",
            rows.join(",")
        );
        let mut got: Vec<LogSeq> = on_tx!(tx, |c| {
            let mut query = sqlx::query_scalar(&sql);
            for (tenant, source, payload) in chunk {
                query = query.bind(tenant).bind(source).bind(payload);
            }
            query.fetch_all(&mut *c).await?
        });
        // RETURNING gives rows in no promised order; they were numbered in order
        got.sort_unstable();
        seqs.extend(got);
    }
    Ok(seqs)
}

/// Keeps a logged entry in `ingest_dead_letters` with the error that kept it from
/// being applied.
async fn set_aside(tx: &mut Tx, row: &LoggedRow, error: &str) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO ingest_dead_letters \
             (seq, tenant_id, source_id, payload, error, failed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.seq)
        .bind(row.tenant_id)
        .bind(row.source_id)
        .bind(&row.payload)
        .bind(error)
        .bind(crate::now_ms())
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Applies logged entries inside a transaction holding their tenants' customer locks.
/// An entry that cannot be read back (its source gone, its payload not an event) is
/// refused with the reason, and the rest are applied.
async fn apply_rows(tx: &mut Tx, rows: Vec<LoggedRow>) -> Result<Vec<(LogSeq, IngestOutcome)>> {
    let sources = source_refs(tx, &rows).await?;
    let mut outcomes: Vec<(LogSeq, Option<IngestOutcome>)> = Vec::with_capacity(rows.len());
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let seq = row.seq;
        let item = match sources.get(&(row.tenant_id, row.source_id)) {
            None => Err("its source no longer exists".to_owned()),
            Some(source) => serde_json::from_str::<TrackedEvent>(&row.payload)
                .map_err(|e| format!("the logged event cannot be read: {e}"))
                .and_then(|event| event.with_commerce(source.kind.sales_channel()))
                .map(|event| IngestItem {
                    source: *source,
                    event,
                }),
        };
        match item {
            Ok(item) => {
                items.push(item);
                outcomes.push((seq, None));
            }
            Err(reason) => {
                // kept, with the reason, for someone to look at: it was answered for
                tracing::error!(seq, %reason, "a logged event is set aside, not applied");
                set_aside(tx, &row, &reason).await?;
                outcomes.push((seq, Some(IngestOutcome::Refused(reason))));
            }
        }
    }
    let stored = ingest_in(tx, &items).await?;
    // what is refused now was answered for already: it counts against its source
    let mut refused: HashMap<SourceRef, i64> = HashMap::new();
    for (item, outcome) in items.iter().zip(&stored) {
        if matches!(outcome, IngestOutcome::Refused(_)) {
            *refused.entry(item.source).or_default() += 1;
        }
    }
    for (source, count) in refused {
        on_tx!(&mut *tx, |c| {
            sqlx::query(crate::sources::COUNT_REJECTED)
                .bind(count)
                .bind(source.tenant.0)
                .bind(source.source.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    let mut applied = stored.into_iter();
    Ok(outcomes
        .into_iter()
        .map(|(seq, outcome)| {
            let outcome = outcome
                .or_else(|| applied.next())
                .expect("one outcome per applied item");
            (seq, outcome)
        })
        .collect())
}

/// The sources the rows came from, as [`Store::resolve_write_key`] gives them.
async fn source_refs(tx: &mut Tx, rows: &[LoggedRow]) -> Result<HashMap<(i64, i64), SourceRef>> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r.source_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = HashMap::new();
    for chunk in ids.chunks(APPEND_CHUNK) {
        let mut p = Placeholders::for_tx(tx);
        let list: Vec<String> = chunk.iter().map(|_| p.next()).collect();
        let sql = format!(
            "SELECT s.tenant_id, s.id AS source_id, s.kind, t.time_zone FROM sources s \
             JOIN tenants t ON t.id = s.tenant_id WHERE s.id IN ({})",
            list.join(",")
        );
        let got: Vec<SourceRefRow> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.fetch_all(&mut *c).await?
        });
        for row in got {
            found.insert((row.tenant_id, row.source_id), SourceRef::from_row(row));
        }
    }
    Ok(found)
}
