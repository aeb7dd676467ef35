//! Recurring jobs: a job of a kind, enqueued at the times a cron expression names, read
//! on the tenant's wall clock (the system's schedules in UTC).
//!
//! Any number of nodes enqueue due runs ([`Store::enqueue_due_schedules`], every second
//! on worker nodes), and each run is enqueued once: the schedule's `next_run_at` moves on
//! in the transaction that enqueues the run, and only if it still holds the time that
//! node read (compare and set), so of two nodes racing for one run, one moves it on and
//! enqueues, the other changes nothing. A run missed while no node ran (a night with
//! every node down) is enqueued once, late, and the next one is the next time from now:
//! missed runs do not pile up.

use serde_json::Value;
use siyu_domain::ids::{JobId, TenantId};
use siyu_domain::schedule::Schedule;
use siyu_domain::time::TimeZone;

use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::on_tx;
use crate::{Result, Store, StoreError};

/// A recurring job to save.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// `None` for the system's.
    pub tenant: Option<TenantId>,
    /// Unique per tenant (or among the system's).
    pub name: String,
    pub kind: String,
    pub payload: Value,
    pub schedule: Schedule,
}

/// A saved recurring job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub name: String,
    pub kind: String,
    pub cron: String,
    pub next_run_at: i64,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    id: i64,
    tenant_id: Option<i64>,
    kind: String,
    payload: String,
    cron: String,
    next_run_at: i64,
    time_zone: Option<String>,
}

impl Store {
    /// Saves a recurring job (by tenant and name): a new one runs first at its next
    /// time from now; saving the same expression again keeps its next run, a changed one
    /// moves it.
    pub async fn put_schedule(&self, new: &NewSchedule) -> Result<ScheduleRow> {
        let zone = match new.tenant {
            Some(tenant) => self.tenant(tenant).time_zone().await?,
            None => TimeZone::UTC,
        };
        let now = now_ms();
        let next = new.schedule.next_after(now, zone).ok_or_else(|| {
            StoreError::Conflict(format!("{:?} never runs", new.schedule.as_str()))
        })?;
        let payload = serde_json::to_string(&new.payload).expect("serializable");
        on_db!(self, |db| {
            sqlx::query(
                "INSERT INTO job_schedules (tenant_id, name, kind, payload, cron, next_run_at, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (COALESCE(tenant_id, 0), name) DO UPDATE SET kind = excluded.kind, \
                 payload = excluded.payload, updated_at = excluded.updated_at, \
                 next_run_at = CASE WHEN job_schedules.cron = excluded.cron \
                 THEN job_schedules.next_run_at ELSE excluded.next_run_at END, \
                 cron = excluded.cron",
            )
            .bind(new.tenant.map(|t| t.0))
            .bind(&new.name)
            .bind(&new.kind)
            .bind(&payload)
            .bind(new.schedule.as_str())
            .bind(next)
            .bind(now)
            .execute(db)
            .await?;
        });
        let row: ScheduleRow = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT id, tenant_id, name, kind, cron, next_run_at FROM job_schedules \
                 WHERE COALESCE(tenant_id, 0) = $1 AND name = $2",
            )
            .bind(new.tenant.map_or(0, |t| t.0))
            .bind(&new.name)
            .fetch_one(db)
            .await?
        });
        Ok(row)
    }

    /// Every recurring job, by id.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        Ok(on_db!(self, |db| {
            sqlx::query_as(
                "SELECT id, tenant_id, name, kind, cron, next_run_at FROM job_schedules ORDER BY id",
            )
            .fetch_all(db)
            .await?
        }))
    }

    /// Enqueues the runs that are due at `now`, each once across nodes (see the module
    /// docs); answers the jobs this call made.
    pub async fn enqueue_due_schedules(&self, now: i64) -> Result<Vec<JobId>> {
        let due: Vec<DueRow> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT s.id, s.tenant_id, s.kind, s.payload, s.cron, s.next_run_at, t.time_zone \
                 FROM job_schedules s LEFT JOIN tenants t ON t.id = s.tenant_id \
                 WHERE s.enabled = 1 AND s.next_run_at <= $1 ORDER BY s.next_run_at LIMIT 500",
            )
            .bind(now)
            .fetch_all(db)
            .await?
        });
        let mut made = Vec::new();
        for row in due {
            let zone = row
                .time_zone
                .as_deref()
                .map_or(TimeZone::UTC, TimeZone::of_stored);
            let next = Schedule::parse("cron", &row.cron)
                .ok()
                .and_then(|s| s.next_after(now, zone));
            let mut tx = self.begin().await?;
            let moved = on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE job_schedules SET next_run_at = $1, enabled = $2, updated_at = $3 \
                     WHERE id = $4 AND next_run_at = $5",
                )
                // one that never runs again is switched off
                .bind(next.unwrap_or(row.next_run_at))
                .bind(i64::from(next.is_some()))
                .bind(now)
                .bind(row.id)
                .bind(row.next_run_at)
                .execute(&mut *c)
                .await?
                .rows_affected()
            });
            if moved != 1 {
                continue; // another node took this run
            }
            let payload = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
            let mut job = NewJob::new(row.kind, payload)
                .unique_key(format!("schedule {} at {}", row.id, row.next_run_at));
            if let Some(tenant) = row.tenant_id {
                job = job.for_tenant(TenantId(tenant));
            }
            let ids = enqueue_in(&mut tx, &[job]).await?;
            tx.commit().await?;
            made.extend(ids.into_iter().flatten());
        }
        if !made.is_empty() {
            self.notify_jobs();
        }
        Ok(made)
    }
}
