//! The durable job queue: background work (imports, backfills, sends) that must survive
//! a crash and run once across several servers.
//!
//! # Why the queue lives in our own database
//! A job is enqueued in the caller's own transaction ([`enqueue_in`]), so it exists if
//! and only if the change that asked for it committed: no import row without its job,
//! no job for a change that rolled back. That needs the queue in the same database and
//! the same sqlx transaction as the change, on both databases. graphile-worker (and its
//! Rust port) is PostgreSQL-only; apalis's SQLite and PostgreSQL backends enqueue
//! through connections of their own, not inside our sqlx transactions. So the queue is
//! a table (`jobs`, migration 14) and the statements here.
//!
//! # A job's life
//! `waiting` (due at `run_at`) → `running` (claimed by a worker under a lease that its
//! heartbeats extend) → `done`; a failed try goes back to `waiting` after a backoff
//! (`siyu_domain::jobs::backoff_ms`) until its last attempt, then `dead` with its last
//! error. A job whose worker died (its lease ran out) is claimed again. A waiting job
//! can be cancelled; a dead or cancelled one retried by hand. While a job with a unique
//! key is waiting or running, enqueueing the key again makes no second job.
//!
//! # Exactly once
//! A worker may die after a job's effect and before its completion, so a job can run
//! again. Its effect happens exactly once only where the effect commits in the same
//! transaction as the completion ([`claim::complete_job_in`]); an effect outside the database
//! (a call to WeCom, an e-mail) is at least once, and its handler records its intent
//! first and is idempotent or reconciles.
//!
//! Claiming, completing and failing are in `claim`; reading, cancelling and retrying
//! by hand (within a scope's reach, or any job for the operator) in `manage`.

mod claim;
mod manage;
mod probe;
mod schedules;
mod wake;

use std::collections::HashMap;

use serde_json::Value;
use siyu_domain::ids::{JobId, StaffId, TenantId};

use crate::db::now_ms;
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, Store, StoreError, TenantScope};

pub use claim::ClaimedJob;
pub(crate) use claim::{complete_job_in, set_progress_in};
pub use manage::{JobFilter, JobQueueStat};
pub use probe::ProbeRun;
pub use schedules::{NewSchedule, ScheduleRow};
pub use wake::JOBS_CHANNEL;

/// A job to enqueue: what it does (`kind`), its input, and how it is run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    /// `None` for a job of the system.
    pub tenant: Option<TenantId>,
    pub payload: Value,
    /// Higher runs first within a tenant's turn (default 0).
    pub priority: i32,
    /// When it is due (default: now).
    pub run_at: Option<i64>,
    /// While a job of this kind with this key is waiting or running, no second is made.
    pub unique_key: Option<String>,
    /// Tries before the job is dead (default [`NewJob::DEFAULT_MAX_ATTEMPTS`], at least 1).
    pub max_attempts: u32,
    /// The staff member whose action asks for the job (`None`: the system, an API token,
    /// the command line); staff limited to some owners see only their staff's jobs.
    pub created_by: Option<StaffId>,
}

impl NewJob {
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    /// A system job of this kind, due now, priority 0.
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            tenant: None,
            payload,
            priority: 0,
            run_at: None,
            unique_key: None,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            created_by: None,
        }
    }

    pub fn for_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Due at this time (milliseconds since the epoch), not before.
    pub fn run_at(mut self, at: i64) -> Self {
        self.run_at = Some(at);
        self
    }

    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Made by this staff member's action (a principal's `staff_id()`).
    pub fn created_by(mut self, staff: StaffId) -> Self {
        self.created_by = Some(staff);
        self
    }
}

/// Jobs per multi-row insert (8 values each: well within either database's limit).
const ENQUEUE_CHUNK: usize = 1_000;

/// Enqueues jobs in the caller's transaction: they exist if and only if it commits.
/// On PostgreSQL the transaction notifies `siyu_jobs` (delivered at commit, to runners on
/// every node); in this process the caller wakes runners with [`Store::notify_jobs`]
/// after its commit. Answers each job's id in order, or `None` for a job not made because a job of its
/// kind with its unique key is waiting or running (or came earlier in `jobs`).
pub(crate) async fn enqueue_in(tx: &mut Tx, jobs: &[NewJob]) -> Result<Vec<Option<JobId>>> {
    let now = now_ms();
    let mut ids = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(ENQUEUE_CHUNK) {
        if let Some(job) = chunk.iter().find(|j| j.kind.trim().is_empty()) {
            return Err(StoreError::Conflict(format!(
                "a job needs a kind ({:?})",
                job.kind
            )));
        }
        let mut p = Placeholders::for_tx(tx);
        let rows: Vec<String> = chunk
            .iter()
            .map(|_| {
                let [tenant, kind, payload, priority, run_at, attempts, key, by] =
                    std::array::from_fn(|_| p.next());
                format!(
                    "({tenant},{kind},{payload},{priority},'waiting',{run_at},{attempts},{key},{by},{now},{now})"
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO jobs (tenant_id, kind, payload, priority, state, run_at, max_attempts, \
             unique_key, created_by_staff_id, created_at, updated_at) VALUES {} \
             ON CONFLICT (kind, unique_key) \
             WHERE unique_key IS NOT NULL AND state IN ('waiting', 'running') DO NOTHING \
             RETURNING id, kind, unique_key",
            rows.join(",")
        );
        let made: Vec<(i64, String, Option<String>)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for job in chunk {
                query = query
                    .bind(job.tenant.map(|t| t.0))
                    .bind(&job.kind)
                    .bind(job.payload.to_string())
                    .bind(job.priority)
                    .bind(job.run_at.unwrap_or(now))
                    .bind(i32::try_from(job.max_attempts.max(1)).unwrap_or(i32::MAX))
                    .bind(&job.unique_key)
                    .bind(job.created_by.map(|s| s.0));
            }
            query.fetch_all(&mut *c).await?
        });
        // jobs without a key are all made, their ids given in the order of the rows
        let mut plain: Vec<i64> = Vec::new();
        let mut keyed: HashMap<(String, String), i64> = HashMap::new();
        for (id, kind, key) in made {
            match key {
                Some(key) => {
                    keyed.insert((kind, key), id);
                }
                None => plain.push(id),
            }
        }
        plain.sort_unstable();
        if let Tx::Postgres(t) = tx {
            let mut kinds: Vec<&str> = chunk.iter().map(|j| j.kind.as_str()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for kind in kinds {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(wake::JOBS_CHANNEL)
                    .bind(kind)
                    .execute(&mut **t)
                    .await?;
            }
        }
        let mut plain = plain.into_iter();
        for job in chunk {
            ids.push(match &job.unique_key {
                None => plain.next().map(JobId),
                Some(key) => keyed.remove(&(job.kind.clone(), key.clone())).map(JobId),
            });
        }
    }
    Ok(ids)
}

impl Store {
    /// Enqueues jobs (of the system or of any tenant) in a transaction of their own;
    /// see [`enqueue_in`] for the answer. Work asked for by a change is enqueued in the
    /// change's transaction instead.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Option<JobId>>> {
        let mut tx = self.begin().await?;
        let ids = enqueue_in(&mut tx, jobs).await?;
        tx.commit().await?;
        self.notify_jobs();
        Ok(ids)
    }

    /// Enqueues in a transaction that then commits or rolls back: for tests that show a
    /// job exists only if its transaction committed.
    #[doc(hidden)]
    pub async fn enqueue_then(&self, jobs: &[NewJob], commit: bool) -> Result<Vec<Option<JobId>>> {
        let mut tx = self.begin().await?;
        let ids = enqueue_in(&mut tx, jobs).await?;
        if commit {
            tx.commit().await?;
            self.notify_jobs();
        }
        Ok(ids)
    }
}

impl TenantScope<'_> {
    /// Enqueues jobs of this tenant (whatever tenant they name) in a transaction of
    /// their own; see [`Store::enqueue`].
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Option<JobId>>> {
        let jobs: Vec<NewJob> = jobs
            .iter()
            .map(|j| j.clone().for_tenant(self.tenant))
            .collect();
        self.store.enqueue(&jobs).await
    }
}
