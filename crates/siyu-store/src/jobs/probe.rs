//! Probe jobs: jobs that do nothing but record, in the transaction that completes them,
//! that they ran and on which worker. They prove the queue end to end (a job enqueued
//! on one node runs once, on whichever node takes it) for the two-node test, for
//! `siyu bench jobs`, and for an operator checking a deployment (`siyu jobs enqueue
//! --kind system.probe`). Exactly once: the record and the completion commit together,
//! and only while the worker still holds the job.

use siyu_domain::ids::JobId;

use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, Store};

/// One run of a probe job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProbeRun {
    pub job_id: i64,
    pub worker: String,
    pub ran_at: i64,
}

impl Store {
    /// Records that `worker` ran probe job `id` and completes it, in one transaction;
    /// `false` (nothing recorded) when the worker no longer holds the job.
    pub async fn record_probe(&self, id: JobId, worker: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let completed = on_tx!(&mut tx, |c| {
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
        if completed != 1 {
            return Ok(false);
        }
        on_tx!(&mut tx, |c| {
            sqlx::query("INSERT INTO job_probes (job_id, worker, ran_at) VALUES ($1, $2, $3)")
                .bind(id.0)
                .bind(worker)
                .bind(now)
                .execute(&mut *c)
                .await?;
        });
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets finished jobs: done and cancelled ones finished before `finished_before`,
    /// dead ones before `dead_before` (kept longer, for a person to look at), and probe
    /// runs as old. Answers how many jobs went.
    pub async fn prune_jobs(&self, finished_before: i64, dead_before: i64) -> Result<u64> {
        Ok(on_db!(self, |db| {
            let jobs = sqlx::query(
                "DELETE FROM jobs WHERE (state IN ('done', 'cancelled') AND finished_at < $1) \
                 OR (state = 'dead' AND finished_at < $2)",
            )
            .bind(finished_before)
            .bind(dead_before)
            .execute(db)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM job_probes WHERE ran_at < $1")
                .bind(finished_before)
                .execute(db)
                .await?;
            jobs
        }))
    }

    /// Every probe run recorded, by job.
    pub async fn probe_runs(&self) -> Result<Vec<ProbeRun>> {
        Ok(on_db!(self, |db| {
            sqlx::query_as("SELECT job_id, worker, ran_at FROM job_probes ORDER BY job_id")
                .fetch_all(db)
                .await?
        }))
    }
}
