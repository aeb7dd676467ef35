//! Jobs as people see and steer them: read, listed, cancelled and retried by hand, and
//! the queue's backlog for the metrics.
//!
//! # Who sees which jobs
//! A tenant's jobs are reached only through its [`TenantScope`], and within its reach:
//! a scope over the whole tenant sees every job of the tenant; one limited to some
//! owners (staff whose data scope is their own customers or their unit's) sees only the
//! jobs made by staff among those owners (`created_by_staff_id`), never one the system
//! or a token made. A job out of reach is not found, to read, cancel or retry alike.
//! The operator's command line reaches any job, the system's too (`Store::*_any_job*`).
//!
//! Cancelling and retrying write their audit entry in the same transaction as the
//! change (a job of the system has no tenant's log to go in: it is logged instead).

use serde_json::{Value, json};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{JobId, StaffId, TenantId};
use siyu_domain::jobs::{Job, JobProgress, JobState};
use siyu_domain::page::{Page, PageRequest};

use super::{NewJob, enqueue_in};
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, Store, StoreError, TenantScope};

/// What the jobs list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

/// The due waiting jobs of one kind, over every tenant and the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQueueStat {
    pub kind: String,
    /// Jobs waiting whose time has come.
    pub waiting: i64,
    /// When the one that has waited longest fell due (milliseconds since the epoch).
    pub oldest_due_at: i64,
}

/// The columns of a job, as [`JobRow`] reads them.
const JOB_COLUMNS: &str = "id, tenant_id, kind, payload, priority, state, run_at, attempts, \
     max_attempts, last_error, unique_key, created_by_staff_id, progress_done, progress_total, \
     progress_message, created_at, updated_at, finished_at";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    tenant_id: Option<i64>,
    kind: String,
    payload: String,
    priority: i32,
    state: String,
    run_at: i64,
    attempts: i32,
    max_attempts: i32,
    last_error: Option<String>,
    unique_key: Option<String>,
    created_by_staff_id: Option<i64>,
    progress_done: i64,
    progress_total: Option<i64>,
    progress_message: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self> {
        Ok(Job {
            id: JobId(r.id),
            tenant: r.tenant_id.map(TenantId),
            state: JobState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("job state {:?}", r.state)))?,
            // a payload this version cannot read still shows, as its text
            payload: serde_json::from_str(&r.payload).unwrap_or(Value::String(r.payload)),
            kind: r.kind,
            created_by_staff_id: r.created_by_staff_id.map(StaffId),
            priority: r.priority,
            run_at: r.run_at,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            max_attempts: u32::try_from(r.max_attempts).unwrap_or(0),
            last_error: r.last_error,
            unique_key: r.unique_key,
            progress: JobProgress {
                done: r.progress_done,
                total: r.progress_total,
                message: r.progress_message,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}

/// Which jobs a read or a change may touch, as a condition starting with ` AND` (tenant
/// and staff ids are numbers, written into the statement).
struct Within(String);

impl Within {
    /// Any job, of any tenant or of the system.
    fn any() -> Self {
        Within(String::new())
    }

    /// The scope's tenant's jobs within its reach.
    fn scope(scope: &TenantScope<'_>) -> Self {
        Within(format!(
            " AND tenant_id = {}{}",
            scope.tenant.0,
            scope.owner_clause("created_by_staff_id")
        ))
    }
}

/// A change made to a job by hand.
#[derive(Clone, Copy)]
enum Change {
    Cancel,
    Retry,
}

impl Change {
    /// The statement: the change, from the states it applies to, of a job within reach.
    fn statement(self, within: &Within) -> String {
        let (set, from) = match self {
            Change::Cancel => (
                "state = 'cancelled', finished_at = $1, updated_at = $1",
                "'waiting'",
            ),
            Change::Retry => (
                "state = 'waiting', attempts = 0, run_at = $1, lease_until = NULL, \
                 worker = NULL, finished_at = NULL, updated_at = $1",
                "'dead', 'cancelled'",
            ),
        };
        format!(
            "UPDATE jobs SET {set} WHERE id = $2 AND state IN ({from}){} RETURNING {JOB_COLUMNS}",
            within.0
        )
    }

    fn action(self) -> &'static str {
        match self {
            Change::Cancel => action::JOB_CANCELLED,
            Change::Retry => action::JOB_RETRIED,
        }
    }
}

async fn read(store: &Store, id: JobId, within: &Within) -> Result<Job> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1{}", within.0);
    let row: Option<JobRow> = on_db!(store, |db| {
        sqlx::query_as(&sql).bind(id.0).fetch_optional(db).await?
    });
    row.ok_or(StoreError::NotFound("job"))?.try_into()
}

async fn list(
    store: &Store,
    page: PageRequest,
    filter: &JobFilter,
    within: &Within,
) -> Result<Page<Job>> {
    let before = page.after.unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id < $1{} \
         AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR kind = $3) \
         ORDER BY id DESC LIMIT $4",
        within.0
    );
    let rows: Vec<JobRow> = on_db!(store, |db| {
        sqlx::query_as(&sql)
            .bind(before)
            .bind(filter.state.map(JobState::as_str))
            .bind(&filter.kind)
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
    });
    let jobs = rows
        .into_iter()
        .map(Job::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(jobs, page, |j| j.id.0))
}

/// Cancels or retries a job within reach, with its audit entry in the same transaction.
/// A job out of reach is not found; one in a state the change does not apply to is a
/// conflict naming the state.
async fn change(
    store: &Store,
    id: JobId,
    within: &Within,
    change: Change,
    actor: &Actor,
) -> Result<Job> {
    let sql = change.statement(within);
    let mut tx = store.begin().await?;
    let row: Option<JobRow> = on_tx!(&mut tx, |c| {
        sqlx::query_as(&sql)
            .bind(now_ms())
            .bind(id.0)
            .fetch_optional(&mut *c)
            .await
            .map_err(|e| match StoreError::from_constraint(e, "", "") {
                StoreError::AlreadyExists(_) => {
                    StoreError::Conflict("a job with the same key is waiting or running".into())
                }
                other => other,
            })?
    });
    let Some(row) = row else {
        drop(tx);
        let job = read(store, id, within).await?;
        return Err(StoreError::Conflict(format!(
            "the job is {}",
            job.state.as_str()
        )));
    };
    let job = Job::try_from(row)?;
    let details = json!({"kind": job.kind});
    audit_job(&mut tx, job.tenant, job.id, details, change.action(), actor).await?;
    tx.commit().await?;
    if let Change::Retry = change {
        store.notify_jobs();
    }
    Ok(job)
}

/// Records a change to a job in its tenant's audit log; a job of the system has none, so
/// the change is logged.
async fn audit_job(
    tx: &mut Tx,
    tenant: Option<TenantId>,
    id: JobId,
    details: Value,
    action: &'static str,
    actor: &Actor,
) -> Result<()> {
    match tenant {
        Some(tenant) => {
            let record = AuditRecord::new(action, "job", id.0).with_details(details);
            audit::record(tx, tenant, actor, record).await
        }
        None => {
            tracing::info!(job = id.0, action, actor = %actor.label, %details,
                "a job of the system was changed by hand");
            Ok(())
        }
    }
}

impl TenantScope<'_> {
    /// One of the tenant's jobs within reach; another tenant's, or one out of reach, is
    /// not found.
    pub async fn get_job(&self, id: JobId) -> Result<Job> {
        read(self.store, id, &Within::scope(self)).await
    }

    /// The tenant's jobs within reach, newest first.
    pub async fn list_jobs(&self, page: PageRequest, filter: &JobFilter) -> Result<Page<Job>> {
        list(self.store, page, filter, &Within::scope(self)).await
    }

    /// Cancels a waiting job of the tenant (audited). A job that is running or finished
    /// cannot be cancelled (a conflict); another tenant's, or one out of reach, is not
    /// found.
    pub async fn cancel_job(&self, id: JobId, actor: &Actor) -> Result<Job> {
        change(self.store, id, &Within::scope(self), Change::Cancel, actor).await
    }

    /// Makes a dead or cancelled job of the tenant wait again, with its attempts
    /// counted from none (audited). A running, waiting or done one is a conflict (so is
    /// one whose unique key another live job holds); another tenant's, or one out of
    /// reach, is not found.
    pub async fn retry_job(&self, id: JobId, actor: &Actor) -> Result<Job> {
        change(self.store, id, &Within::scope(self), Change::Retry, actor).await
    }
}

impl Store {
    /// Any job, of a tenant or of the system: for the operator's command line.
    pub async fn get_any_job(&self, id: JobId) -> Result<Job> {
        read(self, id, &Within::any()).await
    }

    /// Every job, of every tenant and of the system, newest first: for the operator's
    /// command line.
    pub async fn list_any_jobs(&self, page: PageRequest, filter: &JobFilter) -> Result<Page<Job>> {
        list(self, page, filter, &Within::any()).await
    }

    /// [`TenantScope::cancel_job`] for any job (audited in its tenant's log).
    pub async fn cancel_any_job(&self, id: JobId, actor: &Actor) -> Result<Job> {
        change(self, id, &Within::any(), Change::Cancel, actor).await
    }

    /// [`TenantScope::retry_job`] for any job (audited in its tenant's log).
    pub async fn retry_any_job(&self, id: JobId, actor: &Actor) -> Result<Job> {
        change(self, id, &Within::any(), Change::Retry, actor).await
    }

    /// Enqueues a job asked for by hand (the operator's `siyu jobs enqueue`), audited in
    /// its tenant's log in the same transaction; answers its id, or `None` when a live
    /// job of its kind holds its unique key.
    pub async fn enqueue_by_hand(&self, job: &NewJob, actor: &Actor) -> Result<Option<JobId>> {
        let mut tx = self.begin().await?;
        let id = enqueue_in(&mut tx, std::slice::from_ref(job)).await?[0];
        if let Some(id) = id {
            let details = json!({"kind": job.kind, "payload": job.payload});
            audit_job(
                &mut tx,
                job.tenant,
                id,
                details,
                action::JOB_ENQUEUED,
                actor,
            )
            .await?;
        }
        tx.commit().await?;
        self.notify_jobs();
        Ok(id)
    }

    /// The due waiting jobs per kind over every tenant and the system, with when the
    /// oldest fell due: the queue's backlog, for the metrics. One statement over the
    /// waiting jobs' partial index (finished jobs are not read).
    pub async fn job_queue_stats(&self) -> Result<Vec<JobQueueStat>> {
        let rows: Vec<(String, i64, i64)> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT kind, COUNT(*), MIN(run_at) FROM jobs \
                 WHERE state = 'waiting' AND run_at <= $1 GROUP BY kind ORDER BY kind",
            )
            .bind(now_ms())
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, waiting, oldest_due_at)| JobQueueStat {
                kind,
                waiting,
                oldest_due_at,
            })
            .collect())
    }
}
