//! The data layer of siyu: one code path over SQLite (embedded default) and PostgreSQL
//! (production).
//!
//! # Why plain SQL over sqlx, written once
//! Every query is written once, in the SQL both databases understand (`$1` placeholders,
//! `RETURNING`, `ON CONFLICT`), and compiled for both drivers by the [`on_db!`] macro,
//! which matches on the pool and expands the same code in each arm. That keeps native
//! types and native speed (no `Any` driver converting every value), gives each dialect
//! an escape hatch where one is really needed, and adds no ORM to the build. Only the
//! migrations differ per database (`migrations/sqlite`, `migrations/postgres`).
//!
//! # Tenancy is enforced here
//! Tenant-owned data is reachable only through a [`TenantScope`], made with
//! [`Store::tenant`]; every query it runs filters by that tenant. The few methods on
//! [`Store`] itself are the ones that must work before a tenant is known (signing in,
//! resolving a token, creating a tenant). A handler cannot forget the tenant, because
//! there is no unscoped method to call. Foreign keys include `tenant_id` too, so the
//! database refuses a row that points into another tenant.
//!
//! # Audit in the same transaction
//! Methods that change security-relevant data take the [`Actor`] and write the audit
//! entry in the same transaction as the change: there is no change without its entry.

mod access;
mod acquisition;
mod audit;
mod auth;
mod connectors;
mod customers;
mod db;
mod definitions;
mod engagement;
mod error;
mod exports;
mod facts;
mod feed;
mod files;
mod imports;
mod ingest;
mod ingest_log;
mod jobs;
mod lifecycle;
mod merges;
mod orders;
mod privacy;
mod profiles;
mod reach;
mod recent;
mod recording;
mod secrets;
mod segments;
mod settings;
mod sources;
mod tag_rules;
mod tagging;
mod tags;
mod tenancy;
#[cfg(feature = "testing")]
pub mod testing;
mod tracked;
mod traits;
mod tx;
mod views;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use acquisition::{
    ContactWayUpdate, JoinWayUpdate, KeptImage, LINKS_SOURCE, LandingCode, LinkRoute, RelationEnd,
    WecomQrImage,
};
pub use audit::AuditFilter;
pub use auth::{Credentials, LoginThrottle};
pub use connectors::{
    ApiPause, CONTACT_ADDED, CallBudget, CallLimits, CallbackConnector, ChatStored,
    ConnectorSecrets, ContactRead, ContactsStored, DepartmentUnits, KEEP_CALLBACK_KEYS_MS,
    MemberSynced, NewConnectorSend, StoredToken, SyncAsked, SyncFinished, SyncPosition,
    TagsMirrored, TransferOutcome, TransfersAsked, WECOM_SOURCE, WECOM_TAG_COLOUR,
    WecomChatMemberRecord, WecomChatRecord, WecomContactRecord, WecomContext,
    WecomDepartmentRecord, WecomFollowRecord, WecomMark, WecomMemberRecord, WecomMemberRow,
    WecomRelation, WecomTagGroupRecord, WecomTagRecord,
};
pub use connectors::{
    ChangesApplied, RecordDetail, RelationChange, RelationChanges, TakenCallback,
    WaitingRelationChange, relation_changes_job,
};
pub use db::now_ms;
pub(crate) use db::{Pool, on_db};
pub use engagement::{
    BatchToSend, ContentFilter, FollowState, PlannedBatches, QuickReplyFilter, RecipientResult,
    SandboxAnswer, SandboxCount, StoredMedia, TaskToFollow, TemplateValues,
};
pub use error::{StoreError, redact_url};
pub use exports::KEEP_EXPORTS_MS;
pub use feed::CustomerChange;
pub use files::FileInfo;
pub use imports::{IMPORT_SOURCE, ImportPart, ImportProgress, ImportRun};
pub use ingest::aggregate_name;
pub use ingest_log::{DeadLetter, LOG_TRIM_CHUNK, LogSeq};
pub use jobs::{
    ClaimedJob, JOBS_CHANNEL, JobFilter, JobQueueStat, NewJob, NewSchedule, ProbeRun, ScheduleRow,
};
pub use orders::OrderFilter;
pub use privacy::ConsentChange;
pub use recording::RecorderState;
pub use secrets::SecretName;
pub use segments::NewSegment;
use siyu_domain::access::Reach;
use siyu_domain::ids::TenantId;
use siyu_domain::secret::SecretKey;
pub use sources::SourceRef;
pub use tag_rules::NewTagRule;
pub use tracked::{IngestItem, IngestOutcome};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// The key that seals stored secrets; without it, storing a secret is refused.
    pub secret_key: Option<SecretKey>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            secret_key: None,
        }
    }
}

/// The handle to siyu's database. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// SQLite: the ingest log's own file (see `ingest_log`); PostgreSQL keeps it in `pool`.
    pub(crate) log: Option<SqlitePool>,
    /// How it was opened, for [`Store::with_own_connections`].
    opened: std::sync::Arc<(String, StoreOptions)>,
    pub(crate) secret_key: Option<SecretKey>,
    /// Answers every tracking call needs, kept for a few seconds (see `recent`).
    pub(crate) recent: std::sync::Arc<recent::Recent>,
    /// The tenant whose jobs were claimed last, where the next claim starts (see `jobs`).
    pub(crate) jobs_turn: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Bumped when jobs were enqueued in this process (see `jobs::wake`): job runners
    /// waiting on it claim at once instead of at their next poll.
    pub(crate) jobs_wake: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// SQLite on disk: where the bytes of stored files are (`PATH.files/`, see `files`);
    /// PostgreSQL and an in-memory database keep them in their rows.
    pub(crate) files_dir: Option<std::sync::Arc<std::path::PathBuf>>,
    /// SQLite: entries appended to or deleted from the ingest log since its write-ahead
    /// log was last copied into its file (see [`checkpoint_log`]).
    pub(crate) log_unchecked: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite
    /// file if it is missing. Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store> {
        Self::open(url, options, true).await
    }

    /// Another handle on the same database with connections of its own, made by the
    /// calling thread (on SQLite each connection runs on a thread the caller starts, and
    /// inherits its scheduling priority: the ingest log's applier runs so, at a lower
    /// priority than the requests). It runs no background tasks of its own; the first
    /// handle does. `None` for an in-memory SQLite database, which only its own
    /// connections can see.
    pub async fn with_own_connections(&self) -> Result<Option<Store>> {
        if self.log.as_ref().is_some_and(|_| self.in_memory()) {
            return Ok(None);
        }
        // the applier needs few connections: one writes, one reads the log
        let options = StoreOptions {
            max_connections: 2,
            ..self.opened.1.clone()
        };
        Self::open(&self.opened.0, options, false).await.map(Some)
    }

    fn in_memory(&self) -> bool {
        sqlite_in_memory(&self.opened.0)
    }

    async fn open(url: &str, options: StoreOptions, background: bool) -> Result<Store> {
        let connect_error = |source: sqlx::Error| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        let mut log_pool = None;
        let mut files_dir = None;
        let log_unchecked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let pool = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(connect_error)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // rows come back from a connection's thread through a channel; a deep one
                // lets a statement run to its end without waiting for the reader
                .row_buffer_size(ROW_BUFFER)
                .statement_cache_capacity(STATEMENT_CACHE)
                // checkpoints run in the background (below), not inside a commit
                .pragma("wal_autocheckpoint", "0")
                // pages read through a memory map of the file, not copied in by read()
                // into each connection's small cache (see MMAP_SIZE)
                .pragma("mmap_size", MMAP_SIZE)
                .pragma("cache_size", PAGE_CACHE)
                // deleted rows are overwritten, not left in free pages: an erased
                // customer's data is gone from the files (PIPL), not just unlinked
                .pragma("secure_delete", "on");
            // the ingest log beside the file (PATH.ingest); an in-memory database keeps
            // its log in memory, on one connection so that every use sees the same one
            let file = connect.get_filename().to_owned();
            let in_memory = sqlite_in_memory(url);
            let log_connect = if in_memory {
                // a database of its own: sqlx names an in-memory one and shares it
                // between the connections that name it
                let mut name = file.clone().into_os_string();
                name.push("-intake");
                connect.clone().filename(name).in_memory(true)
            } else {
                // stored files beside it too (PATH.files/)
                let mut files = file.clone().into_os_string();
                files.push(".files");
                files_dir = Some(std::sync::Arc::new(std::path::PathBuf::from(files)));
                let mut name = file.into_os_string();
                name.push(".ingest");
                connect.clone().filename(name)
            }
            .foreign_keys(false);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(connect_error)?;
            let log = SqlitePoolOptions::new()
                .max_connections(if in_memory { 1 } else { 4 })
                .acquire_timeout(options.acquire_timeout)
                .connect_with(log_connect)
                .await
                .map_err(connect_error)?;
            if background {
                tokio::spawn(checkpoint_wal(pool.clone(), true));
                tokio::spawn(checkpoint_log(log.clone(), log_unchecked.clone()));
            }
            log_pool = Some(log);
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(url).map_err(connect_error)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(connect_error)?;
            if background {
                tokio::spawn(analyze_growing_tables(pool.clone()));
            }
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        Ok(Store {
            pool,
            log: log_pool,
            secret_key: options.secret_key.clone(),
            opened: std::sync::Arc::new((url.to_owned(), options)),
            recent: std::sync::Arc::default(),
            jobs_turn: std::sync::Arc::default(),
            jobs_wake: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            files_dir,
            log_unchecked,
        })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations embedded in the binary that the database has not seen.
    /// Safe to run from several processes at once: sqlx takes a lock on PostgreSQL, and
    /// SQLite serialises writers.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        self.prepare_log().await?;
        self.prepare_relation_intake().await?;
        // bytes of stored files left without their row by a crash (SQLite's directory)
        if let Err(error) = self.sweep_files().await {
            tracing::warn!(%error, "cannot sweep the files directory");
        }
        Ok(())
    }

    /// Applies the embedded migrations up to and including `version` only: for tests
    /// that upgrade a database holding data from an earlier schema.
    #[doc(hidden)]
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        fn upto(mut m: sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
            m.migrations = m
                .migrations
                .iter()
                .filter(|x| x.version <= version)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            m
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                upto(sqlx::migrate!("./migrations/sqlite"), version)
                    .run(pool)
                    .await?
            }
            Pool::Postgres(pool) => {
                upto(sqlx::migrate!("./migrations/postgres"), version)
                    .run(pool)
                    .await?
            }
        }
        self.prepare_log().await?;
        self.prepare_relation_intake().await
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on_db!(self, |db| {
            sqlx::query("SELECT 1").execute(db).await?;
        });
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_db!(self, |db| db.close().await);
        if let Some(log) = &self.log {
            log.close().await;
        }
    }

    /// The whole of one tenant's data, every customer included: for work done by the
    /// system (ingestion, the audience index, imports, the CLI) and for tenant data that
    /// is not about customers. Every query made through it is scoped to that tenant.
    /// A request acts through [`Store::scope_for`] instead, which also limits customers
    /// to the principal's reach; taking this wider view in a request is a visible step.
    pub fn tenant(&self, tenant: TenantId) -> TenantScope<'_> {
        TenantScope {
            store: self,
            tenant,
            reach: Reach::Tenant,
        }
    }
}

/// Access to one tenant's data; see the crate documentation. It carries the reach of
/// whoever acts through it (the whole tenant, or the customers of some owners), and
/// every read and write of customers made through it stays within that reach: a
/// customer outside it is not found, lists and counts leave it out, changes refuse it.
#[derive(Debug, Clone)]
pub struct TenantScope<'s> {
    pub(crate) store: &'s Store,
    pub(crate) tenant: TenantId,
    pub(crate) reach: Reach,
}

impl TenantScope<'_> {
    pub fn id(&self) -> TenantId {
        self.tenant
    }

    /// The customers this scope may see and change.
    pub fn reach(&self) -> &Reach {
        &self.reach
    }
}

/// How much of a SQLite file is read through a memory map: the operating system's page
/// cache, shared by every connection, instead of a copy per read. Applying a flood of
/// WeCom adds to a million customers touches index pages all over the file, and with
/// SQLite's default (no map, a 2 MiB cache per connection) each was read again. 2 GiB,
/// the most the bundled SQLite maps (the rest of a bigger file is read as before).
const MMAP_SIZE: &str = "2147418112";
/// Each SQLite connection's own page cache (negative: KiB), at most 32 MiB instead of
/// 2 MiB: it holds a big group's changed pages until the commit; reads go through the map.
const PAGE_CACHE: &str = "-32768";

/// Rows a SQLite connection's thread may have ready before the reader takes them
/// (sqlx's default is 50).
const ROW_BUFFER: usize = 4096;
/// Prepared statements each SQLite connection keeps (sqlx's default is 100). Statements
/// built for their rows (a multi-row insert, an `IN` list of ids) are each new to the
/// cache, and with 100 they pushed out the fixed ones between two uses, so that these
/// were parsed again every time (profiled under a flood of WeCom callbacks).
const STATEMENT_CACHE: usize = 1_000;

/// Whether a SQLite URL names an in-memory database (`sqlite::memory:`, `mode=memory`);
/// sqlx renames those internally, so the URL is what tells.
fn sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Copies SQLite's write-ahead log into the database file every half second, so that
/// commits only append to the log. SQLite would otherwise checkpoint inside whichever
/// commit crosses 1,000 log pages, and ingestion (whose index writes touch many pages)
/// crosses it on almost every group, stalling that commit for tens of milliseconds. A
/// log that grows large while readers keep part of it from being copied is reset with a
/// blocking checkpoint when `may_block`. Only then: a log copied in full is started
/// again from its beginning by the next commit anyway, and a blocking checkpoint holds
/// up every writer while it waits (measured under `siyu bench ingest`, 1.6–5.5 s each,
/// every few seconds while the applier caught up). Ends when the pool is closed.
async fn checkpoint_wal(pool: SqlitePool, may_block: bool) {
    const RESTART_PAGES: i64 = 50_000;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let result: std::result::Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match result {
            Ok((_, log, copied)) if may_block && log > RESTART_PAGES && copied < log => {
                let _ = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                    .execute(&pool)
                    .await;
            }
            Ok(_) => {}
            Err(_) if pool.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// Copies the ingest log's write-ahead log into its file, as [`checkpoint_wal`] does
/// for the main file, but only once [`LOG_CHECKPOINT_ENTRIES`] entries were appended or
/// deleted since the last copy, or [`LOG_CHECKPOINT_EVERY`] passed with any: never a
/// blocking checkpoint, and seldom at a steady trickle. A checkpoint syncs the log's
/// `-wal` file to disk, and an append writing into the page being synced waits for the
/// disk: under tracked-link clicks at 1,000 a second, a checkpoint every half second held
/// the appends (so the redirects answered after them) 5–18 ms several times in ten
/// seconds, and the redirects' p99 swung between 3 and 23 ms between runs (measured with
/// `siyu bench acquisition`); without those checkpoints, appends took at most 3.7 ms.
/// Under a flood, the entries come fast enough that the log is still copied every half
/// second, and the log's size stays bounded. Ends when the pool is closed.
async fn checkpoint_log(log: SqlitePool, unchecked: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if log.is_closed() {
            return;
        }
        let written = unchecked.load(Ordering::Acquire);
        if written < LOG_CHECKPOINT_ENTRIES
            && (written == 0 || last.elapsed() < LOG_CHECKPOINT_EVERY)
        {
            continue;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&log)
            .await
        {
            Ok(_) => {
                unchecked.fetch_sub(written, Ordering::AcqRel);
                last = tokio::time::Instant::now();
            }
            Err(_) if log.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint of the ingest log failed"),
        }
    }
}

/// Entries written to the ingest log that have it copied into its file at the next tick.
const LOG_CHECKPOINT_ENTRIES: u64 = 20_000;
/// How long entries written to the ingest log wait at most to be copied into its file.
const LOG_CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// Keeps PostgreSQL's statistics of the ingestion tables fresh while they grow fast
/// (a new tenant's first import or launch day). Autovacuum analyzes a table only after
/// 10% of it changed and at most once a minute per database; until then a table that
/// grew from nothing still looks empty to the planner, which then reads identity look-ups
/// of hundreds of values as scans of every identity of a kind (200 ms each, measured,
/// instead of a fraction of a millisecond). Checks every 10 seconds; ends when the pool
/// is closed.
async fn analyze_growing_tables(pool: PgPool) {
    const TABLES: &str = "('identities', 'customers', 'events', 'message_ids', 'orders', \
         'customer_event_days')";
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let stale: std::result::Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(&format!(
            "SELECT relname::text FROM pg_stat_user_tables WHERE relname IN {TABLES} \
             AND schemaname = current_schema() \
             AND n_mod_since_analyze > GREATEST(1000, n_live_tup / 5)"
        ))
        .fetch_all(&pool)
        .await;
        match stale {
            Ok(tables) => {
                for table in tables {
                    // names come from the fixed list above
                    if let Err(e) = sqlx::query(&format!("ANALYZE {table}"))
                        .execute(&pool)
                        .await
                    {
                        tracing::warn!(error = %e, table, "ANALYZE failed");
                    }
                }
            }
            Err(_) if pool.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "cannot read table statistics"),
        }
    }
}
