//! Taking jobs to run, and what a worker says about them afterwards: done, failed,
//! still alive (heartbeats), how far it got.
//!
//! # Claiming, fairly between tenants
//! A claim is one transaction of two statements, whatever the batch size:
//! 1. the tenants that have due jobs of the kinds asked for, found by a skip scan over
//!    the `jobs_waiting` index (a recursive query that jumps from one tenant to the next,
//!    so a tenant with 100,000 waiting jobs costs one index probe, not 100,000 rows);
//!    at most [`MAX_TENANTS`] of them, starting after the tenant served last (the
//!    store's `jobs_turn`), so that every tenant's turn comes;
//! 2. one `UPDATE … WHERE id IN (…) RETURNING …` whose candidates are each tenant's next
//!    jobs (by priority, then the oldest), the system's, and the jobs whose lease ran
//!    out; they are ranked within their group and taken round-robin (`turn`: every
//!    group's first job, then every group's second …, higher priority first within a
//!    turn). On PostgreSQL each group's candidates are locked `FOR UPDATE SKIP LOCKED`,
//!    so concurrent claimers never take the same job; on SQLite the transaction is
//!    `BEGIN IMMEDIATE`, which makes claimers take turns.
//!
//! So when tenant A has 100,000 jobs waiting and tenant B enqueues 10, B's are among
//! the very next claim's (half of a batch of 20 or more is B's if B has that many).
//!
//! # Looking before taking the write lock
//! A runner asks for each of its kinds whenever it is woken, and every enqueue wakes
//! it, so most claims find nothing. Before its transaction a claim reads, without
//! locking, whether any job of its kinds is due ([`Store::any_job_due`], the same index
//! probes); only then does it take the write lock. Under a flood of WeCom callbacks
//! (`siyu bench acquisition`, 100,000 callbacks) 13,010 claims took 2,072 jobs, so at
//! least 84% found nothing, each holding SQLite's single writer, the lock the callbacks'
//! intake and their application wait for. A job enqueued between the look and the claim wakes the
//! runner again, so nothing waits longer for it.

use std::sync::atomic::Ordering;

use siyu_domain::ids::{JobId, TenantId};
use siyu_domain::jobs::{JobState, retry_delay_ms};

use crate::db::{id_list, now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, Store, StoreError};

/// Tenants whose jobs one claim takes from.
pub(crate) const MAX_TENANTS: usize = 32;
/// Ids per statement when completing many jobs.
const COMPLETE_CHUNK: usize = 1_000;
/// The longest last error kept.
const MAX_ERROR_CHARS: usize = 4_000;

/// A job taken by a worker, to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub id: JobId,
    pub tenant: Option<TenantId>,
    pub kind: String,
    /// The payload as stored (JSON): a handler that cannot read it fails the job with a
    /// clear error.
    pub payload: String,
    pub priority: i32,
    /// This try's number, from 1.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Until when the worker holds it, unless a heartbeat extends it.
    pub lease_until: i64,
    /// The worker that claimed it: a handler whose effect commits with the job's
    /// completion checks in that transaction that the job is still this worker's.
    pub worker: String,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    tenant_id: Option<i64>,
    kind: String,
    payload: String,
    priority: i32,
    run_at: i64,
    attempts: i32,
    max_attempts: i32,
    lease_until: Option<i64>,
}

impl Store {
    /// Takes up to `limit` jobs of these kinds for `worker`: waiting ones that are due,
    /// and running ones whose lease ran out (their worker died), fairly between tenants
    /// (see the module docs), highest priority first and then the oldest. Each becomes
    /// running, one attempt more, leased to `worker` for `lease_ms`.
    pub async fn claim_jobs(
        &self,
        worker: &str,
        kinds: &[&str],
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedJob>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let kind_list = (1..=kinds.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(",");
        if !self.any_job_due(kinds, &kind_list, now).await? {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_writing().await?;

        // 1. the tenants with due jobs, starting after the one served last
        let after = self.jobs_turn.load(Ordering::Relaxed);
        let mut tenants = due_tenants(&mut tx, kinds, &kind_list, now, after, MAX_TENANTS).await?;
        if tenants.len() < MAX_TENANTS && after > 0 {
            let wrapped = due_tenants(
                &mut tx,
                kinds,
                &kind_list,
                now,
                0,
                MAX_TENANTS - tenants.len(),
            )
            .await?;
            tenants.extend(wrapped.into_iter().filter(|t| *t <= after));
        }

        // 2. each group's next jobs, taken round-robin, in one statement
        let per_group = limit
            .div_ceil(tenants.len().max(1))
            .saturating_mul(2)
            .min(limit);
        let lock = match tx {
            Tx::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Tx::Sqlite(_) => "",
        };
        let mut groups = vec![format!(
            "SELECT id, priority, run_at, 0 AS grp FROM jobs \
             WHERE state = 'running' AND lease_until < {now} AND kind IN ({kind_list}) \
             ORDER BY lease_until LIMIT {per_group} {lock}"
        )];
        let waiting = |grp: usize, tenant: String| {
            format!(
                "SELECT id, priority, run_at, {grp} AS grp FROM jobs \
                 WHERE state = 'waiting' AND {tenant} AND kind IN ({kind_list}) \
                 AND run_at <= {now} ORDER BY priority DESC, run_at, id LIMIT {per_group} {lock}"
            )
        };
        groups.push(waiting(1, "tenant_id IS NULL".into()));
        for (i, tenant) in tenants.iter().enumerate() {
            groups.push(waiting(i + 2, format!("tenant_id = {tenant}")));
        }
        let ctes: Vec<String> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| format!("c{i} AS ({g})"))
            .collect();
        let union: Vec<String> = (0..groups.len())
            .map(|i| format!("SELECT id, priority, run_at, grp FROM c{i}"))
            .collect();
        let worker_param = kinds.len() + 1;
        let sql = format!(
            "WITH {}, candidates AS ({}), \
             ranked AS (SELECT id, grp, priority, ROW_NUMBER() OVER \
                 (PARTITION BY grp ORDER BY priority DESC, run_at, id) AS turn FROM candidates), \
             chosen AS (SELECT id FROM ranked ORDER BY turn, priority DESC, grp LIMIT {limit}) \
             UPDATE jobs SET state = 'running', attempts = attempts + 1, \
             lease_until = {lease}, worker = ${worker_param}, updated_at = {now} \
             WHERE id IN (SELECT id FROM chosen) \
             RETURNING id, tenant_id, kind, payload, priority, run_at, attempts, max_attempts, \
             lease_until",
            ctes.join(", "),
            union.join(" UNION ALL "),
            lease = now.saturating_add(lease_ms.max(1)),
        );
        let mut rows: Vec<ClaimedRow> = on_tx!(&mut tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for kind in kinds {
                query = query.bind(*kind);
            }
            query.bind(worker).fetch_all(&mut *c).await?
        });
        tx.commit().await?;

        // the next claim starts after the last tenant in this one's round
        if let Some(last) = tenants
            .iter()
            .rev()
            .find(|t| rows.iter().any(|r| r.tenant_id == Some(**t)))
        {
            self.jobs_turn.store(*last, Ordering::Relaxed);
        }
        rows.sort_by_key(|r| (-i64::from(r.priority), r.run_at, r.id));
        Ok(rows
            .into_iter()
            .map(|r| ClaimedJob {
                id: JobId(r.id),
                tenant: r.tenant_id.map(TenantId),
                kind: r.kind,
                payload: r.payload,
                priority: r.priority,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                max_attempts: u32::try_from(r.max_attempts).unwrap_or(0),
                lease_until: r.lease_until.unwrap_or(now),
                worker: worker.to_owned(),
            })
            .collect())
    }

    /// Marks running jobs of `worker` done, in few statements; answers how many were
    /// still its (a job whose lease ran out and another worker took is not completed by
    /// the first).
    pub async fn complete_jobs(&self, worker: &str, ids: &[JobId]) -> Result<u64> {
        let now = now_ms();
        let mut done = 0;
        for chunk in ids.chunks(COMPLETE_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|id| id.0).collect();
            let sql = format!(
                "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = $1, \
                 updated_at = $1 WHERE id IN ({}) AND state = 'running' AND worker = $2",
                id_list(&ids)
            );
            done += on_db!(self, |db| {
                sqlx::query(&sql)
                    .bind(now)
                    .bind(worker)
                    .execute(db)
                    .await?
                    .rows_affected()
            });
        }
        Ok(done)
    }

    /// Records a failed try of a running job of `worker`: it waits again after a backoff
    /// while it has attempts left, else it is dead; either way with this error. Answers
    /// which; not found when the job is no longer the worker's.
    pub async fn fail_job(&self, worker: &str, id: JobId, error: &str) -> Result<JobState> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let mut tx = self.begin_writing().await?;
        let tries: Option<(i32, i32)> = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND state = 'running' \
                 AND worker = $2",
            )
            .bind(id.0)
            .bind(worker)
            .fetch_optional(&mut *c)
            .await?
        });
        let (attempts, max_attempts) = tries.ok_or(StoreError::NotFound("running job"))?;
        let now = now_ms();
        let (state, run_at, finished_at) = if attempts < max_attempts {
            let delay = retry_delay_ms(u32::try_from(attempts).unwrap_or(1));
            (JobState::Waiting, Some(now + delay), None)
        } else {
            (JobState::Dead, None, Some(now))
        };
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), finished_at = $3, \
                 last_error = $4, lease_until = NULL, worker = NULL, updated_at = $5 \
                 WHERE id = $6 AND state = 'running' AND attempts = $7",
            )
            .bind(state.as_str())
            .bind(run_at)
            .bind(finished_at)
            .bind(&error)
            .bind(now)
            .bind(id.0)
            .bind(attempts)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(state)
    }

    /// Puts a running job back to wait until `run_at` without counting the try: the
    /// job could not work yet (a channel's rate limit paused it), which is no failure.
    /// `reason` is kept as its last error, so the console says why it waits. Answers
    /// whether it was running and the worker's.
    pub async fn postpone_job(
        &self,
        worker: &str,
        id: JobId,
        run_at: i64,
        reason: &str,
    ) -> Result<bool> {
        let reason: String = reason.chars().take(MAX_ERROR_CHARS).collect();
        let now = now_ms();
        let changed = on_db!(self, |db| {
            sqlx::query(
                "UPDATE jobs SET state = 'waiting', run_at = $1, last_error = $2, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                 lease_until = NULL, worker = NULL, updated_at = $3 \
                 WHERE id = $4 AND state = 'running' AND worker = $5",
            )
            .bind(run_at.max(now))
            .bind(&reason)
            .bind(now)
            .bind(id.0)
            .bind(worker)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Makes a running job dead at once with this error, whatever attempts it has left:
    /// a try that can never succeed (its payload does not read). Answers whether it was
    /// running and the worker's.
    pub async fn kill_job(&self, worker: &str, id: JobId, error: &str) -> Result<bool> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let now = now_ms();
        let changed = on_db!(self, |db| {
            sqlx::query(
                "UPDATE jobs SET state = 'dead', finished_at = $1, last_error = $2, \
                 lease_until = NULL, worker = NULL, updated_at = $1 \
                 WHERE id = $3 AND state = 'running' AND worker = $4",
            )
            .bind(now)
            .bind(&error)
            .bind(id.0)
            .bind(worker)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Hands running jobs of `worker` back to the queue, due now (a runner shutting down
    /// with jobs it could not finish). The interrupted try still counts, so a job that
    /// never finishes in time ends dead rather than coming back forever. Answers how
    /// many were handed back.
    pub async fn release_jobs(&self, worker: &str, ids: &[JobId]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let sql = format!(
            "UPDATE jobs SET state = 'waiting', run_at = $1, lease_until = NULL, worker = NULL, \
             updated_at = $1 WHERE id IN ({}) AND state = 'running' AND worker = $2",
            id_list(&ids)
        );
        let released = on_db!(self, |db| {
            sqlx::query(&sql)
                .bind(now)
                .bind(worker)
                .execute(db)
                .await?
                .rows_affected()
        });
        if released > 0 {
            self.notify_jobs();
        }
        Ok(released)
    }

    /// Extends the leases of these jobs while `worker` runs them; answers the ones it
    /// still holds (a job missing was taken again, its lease having run out, or
    /// cancelled: the worker should stop it).
    pub async fn heartbeat(
        &self,
        worker: &str,
        ids: &[JobId],
        lease_ms: i64,
    ) -> Result<Vec<JobId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let sql = format!(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 \
             WHERE id IN ({}) AND state = 'running' AND worker = $3 RETURNING id",
            id_list(&ids)
        );
        let held: Vec<i64> = on_db!(self, |db| {
            sqlx::query_scalar(&sql)
                .bind(now.saturating_add(lease_ms.max(1)))
                .bind(now)
                .bind(worker)
                .fetch_all(db)
                .await?
        });
        Ok(held.into_iter().map(JobId).collect())
    }

    /// Records how far a running job got.
    pub async fn set_progress(
        &self,
        id: JobId,
        done: i64,
        total: Option<i64>,
        message: Option<&str>,
    ) -> Result<()> {
        let changed = on_db!(self, |db| {
            sqlx::query(
                "UPDATE jobs SET progress_done = $1, progress_total = $2, progress_message = $3, \
                 updated_at = $4 WHERE id = $5 AND state = 'running'",
            )
            .bind(done)
            .bind(total)
            .bind(message)
            .bind(now_ms())
            .bind(id.0)
            .execute(db)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound("running job"));
        }
        Ok(())
    }
}

/// Up to `max` tenants with due waiting jobs of these kinds and ids above `after`, in
/// id order: a skip scan (each step the least tenant id above the last, one index probe).
impl Store {
    /// Whether a job of these kinds is due (waiting with its time come, or running with
    /// its lease run out), read without the write lock (see the module docs).
    async fn any_job_due(&self, kinds: &[&str], kind_list: &str, now: i64) -> Result<bool> {
        let sql = format!(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE state = 'running' \
             AND lease_until < {now} AND kind IN ({kind_list})) \
             OR EXISTS (SELECT 1 FROM jobs WHERE state = 'waiting' AND tenant_id IS NULL \
             AND kind IN ({kind_list}) AND run_at <= {now}) \
             OR (SELECT MIN(tenant_id) FROM jobs WHERE state = 'waiting' \
             AND tenant_id IS NOT NULL AND kind IN ({kind_list}) AND run_at <= {now}) \
             IS NOT NULL THEN 1 ELSE 0 END"
        );
        let due: i32 = on_db!(self, |db| {
            let mut query = sqlx::query_scalar(&sql);
            for kind in kinds {
                query = query.bind(*kind);
            }
            query.fetch_one(db).await?
        });
        Ok(due == 1)
    }
}

async fn due_tenants(
    tx: &mut Tx,
    kinds: &[&str],
    kind_list: &str,
    now: i64,
    after: i64,
    max: usize,
) -> Result<Vec<i64>> {
    let next = |above: &str| {
        format!(
            "(SELECT MIN(tenant_id) FROM jobs WHERE state = 'waiting' AND tenant_id > {above} \
             AND kind IN ({kind_list}) AND run_at <= {now})"
        )
    };
    let sql = format!(
        "WITH RECURSIVE due(tenant, n) AS (SELECT {}, 1 UNION ALL \
         SELECT {}, n + 1 FROM due WHERE tenant IS NOT NULL AND n < {max}) \
         SELECT tenant FROM due WHERE tenant IS NOT NULL",
        next(&after.to_string()),
        next("due.tenant"),
    );
    let tenants: Vec<i64> = on_tx!(tx, |c| {
        let mut query = sqlx::query_scalar(&sql);
        for kind in kinds {
            query = query.bind(*kind);
        }
        query.fetch_all(&mut *c).await?
    });
    Ok(tenants)
}

/// Marks a running job done in the caller's transaction, if `worker` still holds it: a
/// handler whose effect is in the database completes in the transaction of the effect,
/// so the effect happens exactly once (a try that dies before committing leaves neither,
/// and a worker whose lease ran out and whose job another worker took cannot complete
/// it). Answers whether it did; the caller rolls back when it did not.
pub(crate) async fn complete_job_in(tx: &mut Tx, id: JobId, worker: &str) -> Result<bool> {
    let now = now_ms();
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = $1, \
             updated_at = $1 WHERE id = $2 AND state = 'running' AND worker = $3",
        )
        .bind(now)
        .bind(id.0)
        .bind(worker)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// Records how far a running job got in the caller's transaction, if `worker` still
/// holds it (the progress then moves with the work it counts). Answers whether it did.
/// Being the first write to the job's row, it also keeps the job's row locked until
/// the transaction ends (PostgreSQL), so no other worker claims it meanwhile.
pub(crate) async fn set_progress_in(
    tx: &mut Tx,
    id: JobId,
    worker: &str,
    done: i64,
    total: Option<i64>,
) -> Result<bool> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE jobs SET progress_done = $1, progress_total = $2, updated_at = $3 \
             WHERE id = $4 AND state = 'running' AND worker = $5",
        )
        .bind(done)
        .bind(total)
        .bind(now_ms())
        .bind(id.0)
        .bind(worker)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}
