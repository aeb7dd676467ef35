//! CSV imports: checked rows from [`ImportReader`] stored in parts, with progress.
//!
//! # An import through the API is a durable job
//! [`TenantScope::create_import`] checks the whole file (UTF-8, CSV, its header) and
//! then, in **one** transaction, stores the file (`files`), makes the import row
//! (`queued`) and enqueues its job (kind [`IMPORT_JOB_KIND`]): there is no import
//! without its file and its job, and none of a file that cannot be read. The job's
//! handler (`siyu-runtime`) reads the file and calls [`TenantScope::import_part`] until
//! the last part; each part is one transaction.
//!
//! # Exactly once
//! A part's transaction holds, together: the part's rows (profiles, identities,
//! consents, tags, orders), the import's position (`items_read`: how many records of
//! the file are settled, stored, unchanged or refused), its counts and refused rows, and
//! the job's progress. It begins by moving the import row on only from the position the
//! part was read from, and by checking that the job is still held by this worker (its
//! `worker` column); the last part also completes the job and deletes the file in it.
//! So a worker killed at any point leaves either the whole part or none of it, and the
//! worker that takes the job next (after its lease runs out, on any node) skips the
//! settled records and continues: no row is applied twice and none is skipped. A worker
//! that lost its lease stores nothing more (its next part finds the job someone else's).
//! The reader is deterministic over the same bytes and mapping (the time it checks
//! orders against is the import's creation time), so "the first `items_read` records"
//! are the same records on every try.
//!
//! The command line's import ([`TenantScope::run_import`]) stores parts the same way
//! without an import row; run again, it recognises rows stored before (customer rows by
//! a fingerprint of their content, orders by their order id).

mod apply;

use std::collections::HashMap;
use std::io::Read;
use std::iter::Peekable;

use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{FileId, JobId};
use siyu_domain::import::{
    IMPORT_JOB_KIND, ImportJob, ImportJobPayload, ImportKind, ImportReader, ImportStatus,
    MAX_REPORTED_REJECTS, RejectedRow, check_file,
};
use siyu_domain::page::{Page, PageRequest};

use crate::db::{now_ms, on_db};
use crate::files::{delete_file_in, insert_file_in};
use crate::jobs::{ClaimedJob, NewJob, complete_job_in, enqueue_in, set_progress_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// The name of the source customer imports are recorded under.
pub const IMPORT_SOURCE: &str = "CSV import";

/// Records per part (per transaction).
pub(crate) const PART: usize = 500;

/// Where an import run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportProgress {
    pub processed: u64,
    pub stored: u64,
    /// Rows that changed nothing: imported before.
    pub unchanged: u64,
    pub rejected: u64,
    /// The first refused rows (up to [`MAX_REPORTED_REJECTS`]).
    pub rejects: Vec<RejectedRow>,
}

impl ImportProgress {
    fn reject(&mut self, row: RejectedRow) {
        self.processed += 1;
        self.rejected += 1;
        if self.rejects.len() < MAX_REPORTED_REJECTS {
            self.rejects.push(row);
        }
    }
}

/// An import as its job runs it: what to read, and how far it got.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRun {
    pub id: i64,
    pub kind: ImportKind,
    pub status: ImportStatus,
    /// The uploaded file; none once the import ended (or for imports made before).
    pub file: Option<FileId>,
    pub mapping: HashMap<String, String>,
    /// Records of the file settled (stored, unchanged or refused): the next part starts
    /// after them.
    pub items_read: u64,
    pub total_rows: i64,
    /// Stored and unchanged rows are counted together (`stored_rows`).
    pub progress: ImportProgress,
    pub created_at: i64,
}

impl ImportRun {
    /// A reader of the import's file positioned after the records already settled.
    /// The reader checks orders against the import's creation time, so every try reads
    /// the same records.
    pub fn reader<R: Read>(
        &self,
        file: R,
    ) -> std::result::Result<Peekable<ImportReader<R>>, siyu_domain::DomainError> {
        let mut rows =
            ImportReader::new(self.kind, file, &self.mapping, self.created_at)?.peekable();
        let skipped = rows.by_ref().take(self.items_read as usize).count() as u64;
        if skipped < self.items_read {
            return Err(siyu_domain::DomainError::invalid(
                "file",
                format!(
                    "the file has {skipped} records, and the import had settled {}",
                    self.items_read
                ),
            ));
        }
        Ok(rows)
    }
}

/// What a part of an import came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPart {
    /// Stored; more follow.
    Stored,
    /// The last part is stored: the import is completed and its job done.
    Completed,
    /// Nothing stored: the job is no longer this worker's (its lease ran out and
    /// another took it), or the import moved on or ended meanwhile.
    NotHeld,
}

#[derive(sqlx::FromRow)]
struct ImportRow {
    id: i64,
    kind: String,
    status: String,
    file_name: String,
    total_rows: i64,
    processed_rows: i64,
    stored_rows: i64,
    rejected_rows: i64,
    rejects: String,
    error: Option<String>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    file_id: Option<i64>,
    job_id: Option<i64>,
    mapping: String,
    items_read: i64,
    job_state: Option<String>,
    job_error: Option<String>,
}

/// The import's columns, and its job's state (a job dead or cancelled before the
/// import could record its end still shows the import failed).
const IMPORT_SELECT: &str = "SELECT i.id, i.kind, i.status, i.file_name, i.total_rows, \
     i.processed_rows, i.stored_rows, i.rejected_rows, i.rejects, i.error, i.created_by, \
     i.created_at, i.updated_at, i.file_id, i.job_id, i.mapping, i.items_read, \
     j.state AS job_state, j.last_error AS job_error \
     FROM imports i LEFT JOIN jobs j ON j.id = i.job_id";

impl ImportRow {
    fn status(&self) -> Result<ImportStatus> {
        let status = ImportStatus::parse("status", &self.status)
            .map_err(|_| StoreError::Corrupt(format!("import {}: status", self.id)))?;
        let job_ended = matches!(self.job_state.as_deref(), Some("dead" | "cancelled"));
        Ok(if !status.is_finished() && job_ended {
            ImportStatus::Failed
        } else {
            status
        })
    }

    fn kind(&self) -> Result<ImportKind> {
        ImportKind::parse("kind", &self.kind)
            .map_err(|_| StoreError::Corrupt(format!("import {}: kind", self.id)))
    }

    fn rejects(&self) -> Vec<RejectedRow> {
        serde_json::from_str(&self.rejects).unwrap_or_default()
    }
}

impl TryFrom<ImportRow> for ImportJob {
    type Error = StoreError;

    fn try_from(r: ImportRow) -> Result<ImportJob> {
        let status = r.status()?;
        let error = match (&r.error, status) {
            (None, ImportStatus::Failed) => Some(
                r.job_error
                    .clone()
                    .unwrap_or_else(|| "its job was cancelled".into()),
            ),
            (error, _) => error.clone(),
        };
        Ok(ImportJob {
            id: r.id,
            kind: r.kind()?,
            status,
            job_id: r.job_id.map(JobId),
            rejects: r.rejects(),
            file_name: r.file_name,
            total_rows: r.total_rows,
            processed_rows: r.processed_rows,
            stored_rows: r.stored_rows,
            rejected_rows: r.rejected_rows,
            error,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Moves the import on from `from` (the position its part was read from) while it is
/// queued or running, taking its row for the rest of the transaction; answers whether
/// it was there. The first part makes a queued import running.
async fn hold_import(tx: &mut Tx, tenant: i64, id: i64, from: u64) -> Result<bool> {
    let held = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE imports SET status = 'running', updated_at = $1 WHERE tenant_id = $2 \
             AND id = $3 AND items_read = $4 AND status IN ('queued', 'running')",
        )
        .bind(now_ms())
        .bind(tenant)
        .bind(id)
        .bind(from as i64)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(held == 1)
}

impl TenantScope<'_> {
    /// Makes an import of a CSV file (the API's): checks the whole file (UTF-8, CSV,
    /// a header that makes records; a 422 naming the problem and its line, and nothing
    /// made), then in one transaction stores the file, records the import (`queued`)
    /// and enqueues the job that runs it (see the module docs).
    pub async fn create_import(
        &self,
        kind: ImportKind,
        file_name: &str,
        mapping: &HashMap<String, String>,
        bytes: Vec<u8>,
        actor: &Actor,
    ) -> Result<ImportJob> {
        // rows name any customer, or make new ones: only for a tenant-wide reach
        self.check_tenant_wide("importing")?;
        // reading megabytes: on a blocking thread, off the async workers
        let header = mapping.clone();
        let (checked, bytes) = tokio::task::spawn_blocking(move || {
            let checked = check_file(&bytes).and_then(|rows| {
                ImportReader::new(kind, &bytes[..], &header, now_ms()).map(|_| rows)
            });
            (checked, bytes)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("checking a file stopped: {e}")))?;
        let total_rows = checked? as i64;
        let (staged, bytes) = self.store.stage_file(bytes).await?;
        let mut tx = self.store.begin().await?;
        let file =
            insert_file_in(&mut tx, self.tenant, file_name, "text/csv", staged, &bytes).await?;
        let now = now_ms();
        let mapping = serde_json::to_string(mapping).unwrap_or_else(|_| "{}".into());
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO imports (tenant_id, kind, status, file_name, total_rows, created_by, \
                 created_at, updated_at, file_id, mapping) \
                 VALUES ($1, $2, 'queued', $3, $4, $5, $6, $6, $7, $8) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(kind.as_str())
            .bind(&file.name)
            .bind(total_rows)
            .bind(&actor.label)
            .bind(now)
            .bind(file.id.0)
            .bind(&mapping)
            .fetch_one(&mut *c)
            .await?
        });
        let payload = ImportJobPayload {
            import_id: id,
            actor: actor.clone(),
        };
        let job = NewJob::new(
            IMPORT_JOB_KIND,
            serde_json::to_value(&payload).unwrap_or_default(),
        )
        .for_tenant(self.tenant);
        // the staff member who uploaded it follows it (their jobs are theirs to see)
        let job = match (actor.kind, actor.id) {
            (siyu_domain::audit::ActorKind::Staff, Some(staff)) => {
                job.created_by(siyu_domain::ids::StaffId(staff))
            }
            _ => job,
        };
        let job = enqueue_in(&mut tx, &[job])
            .await?
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| StoreError::Corrupt("an import's job was not made".into()))?;
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE imports SET job_id = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(job.0)
                .bind(self.tenant.0)
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        self.store.notify_jobs();
        self.get_import(id).await
    }

    /// An import as its job needs it.
    pub async fn import_run(&self, id: i64) -> Result<ImportRun> {
        let row = self.import_row(id).await?;
        Ok(ImportRun {
            id: row.id,
            kind: row.kind()?,
            status: row.status()?,
            file: row.file_id.map(FileId),
            mapping: serde_json::from_str(&row.mapping)
                .map_err(|_| StoreError::Corrupt(format!("import {id}: mapping")))?,
            items_read: u64::try_from(row.items_read).unwrap_or(0),
            total_rows: row.total_rows,
            progress: ImportProgress {
                processed: u64::try_from(row.processed_rows).unwrap_or(0),
                stored: u64::try_from(row.stored_rows).unwrap_or(0),
                unchanged: 0,
                rejected: u64::try_from(row.rejected_rows).unwrap_or(0),
                rejects: row.rejects(),
            },
            created_at: row.created_at,
        })
    }

    /// Stores the next part of an import in one transaction, for the worker holding its
    /// `job`: reads up to a part's records from `rows` (positioned at
    /// `run.items_read`), stores them, and records the new position, counts, refused
    /// rows and the job's progress with them; the last part also marks the import
    /// completed, completes the job, audits the import and deletes its file. See the
    /// module docs for why this stores each row exactly once. `run` follows.
    pub async fn import_part<R: Read>(
        &self,
        run: &mut ImportRun,
        rows: &mut Peekable<ImportReader<R>>,
        job: &ClaimedJob,
        actor: &Actor,
    ) -> Result<ImportPart> {
        let mut state = run.progress.clone();
        let (records, items) = apply::read_part(rows, &mut state);
        let last = rows.peek().is_none();
        let prepared = self.prepare_part(&records, actor, &mut state).await?;
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        // first, the fences: this part starts where the import stands, and the job is
        // still this worker's (both rows stay locked until the commit)
        if !hold_import(&mut tx, self.tenant.0, run.id, run.items_read).await?
            || !set_progress_in(
                &mut tx,
                job.id,
                &job.worker,
                run.progress.processed as i64,
                Some(run.total_rows),
            )
            .await?
        {
            return Ok(ImportPart::NotHeld);
        }
        self.write_part(&mut tx, prepared, actor, &mut state)
            .await?;
        let items_read = run.items_read + items;
        let status = if last {
            ImportStatus::Completed
        } else {
            ImportStatus::Running
        };
        let rejects = serde_json::to_string(&state.rejects).unwrap_or_else(|_| "[]".into());
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE imports SET status = $1, processed_rows = $2, stored_rows = $3, \
                 rejected_rows = $4, rejects = $5, items_read = $6, updated_at = $7, \
                 file_id = CASE WHEN $8 THEN NULL ELSE file_id END \
                 WHERE tenant_id = $9 AND id = $10",
            )
            .bind(status.as_str())
            .bind(state.processed as i64)
            .bind((state.stored + state.unchanged) as i64)
            .bind(state.rejected as i64)
            .bind(rejects)
            .bind(items_read as i64)
            .bind(now_ms())
            .bind(last)
            .bind(self.tenant.0)
            .bind(run.id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        set_progress_in(
            &mut tx,
            job.id,
            &job.worker,
            state.processed as i64,
            Some(run.total_rows.max(state.processed as i64)),
        )
        .await?;
        let mut discarded = None;
        if last {
            if !complete_job_in(&mut tx, job.id, &job.worker).await? {
                return Ok(ImportPart::NotHeld);
            }
            if let Some(file) = run.file {
                discarded = Some(delete_file_in(&mut tx, self.tenant, file).await?.1);
            }
            let record = AuditRecord::new(action::IMPORT_COMPLETED, "import", run.id.to_string())
                .with_details(serde_json::json!({"kind": run.kind.as_str(),
                    "rows": state.processed, "stored": state.stored,
                    "unchanged": state.unchanged, "rejected": state.rejected}));
            crate::audit::record(&mut tx, self.tenant, actor, record).await?;
        }
        tx.commit().await?;
        if let Some(discarded) = discarded {
            self.store.discard_files(discarded).await;
        }
        run.items_read = items_read;
        run.progress = state;
        run.status = status;
        if last {
            run.file = None;
            Ok(ImportPart::Completed)
        } else {
            Ok(ImportPart::Stored)
        }
    }

    /// Marks an import failed with `error`, for the worker holding its `job`, when the
    /// job will not be tried again (a permanent error, or its last attempt): the rows
    /// stored stay stored, and its file is deleted. Answers whether it did (not when the
    /// job is no longer this worker's, or the import had ended).
    pub async fn fail_import(&self, id: i64, job: &ClaimedJob, error: &str) -> Result<bool> {
        let mut tx = self.store.begin_writing().await?;
        let file: Option<Option<i64>> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "SELECT file_id FROM imports WHERE tenant_id = $1 AND id = $2 \
                 AND status IN ('queued', 'running')",
            )
            .bind(self.tenant.0)
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
        });
        let Some(file) = file else {
            return Ok(false);
        };
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE imports SET status = 'failed', error = $1, file_id = NULL, \
                 updated_at = $2 WHERE tenant_id = $3 AND id = $4 \
                 AND EXISTS (SELECT 1 FROM jobs WHERE id = $5 AND state = 'running' \
                 AND worker = $6)",
            )
            .bind(error.chars().take(4_000).collect::<String>())
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id)
            .bind(job.id.0)
            .bind(&job.worker)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed != 1 {
            return Ok(false);
        }
        let discarded = match file {
            Some(file) => Some(delete_file_in(&mut tx, self.tenant, FileId(file)).await?.1),
            None => None,
        };
        tx.commit().await?;
        if let Some(discarded) = discarded {
            self.store.discard_files(discarded).await;
        }
        Ok(true)
    }

    async fn import_row(&self, id: i64) -> Result<ImportRow> {
        let sql = format!("{IMPORT_SELECT} WHERE i.tenant_id = $1 AND i.id = $2");
        let row: Option<ImportRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("import"))
    }

    pub async fn get_import(&self, id: i64) -> Result<ImportJob> {
        self.import_row(id).await?.try_into()
    }

    /// Imports, newest first.
    pub async fn list_imports(&self, page: PageRequest) -> Result<Page<ImportJob>> {
        let sql = format!(
            "{IMPORT_SELECT} WHERE i.tenant_id = $1 AND i.id < $2 ORDER BY i.id DESC LIMIT $3"
        );
        let rows: Vec<ImportRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after.unwrap_or(i64::MAX))
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let jobs = rows
            .into_iter()
            .map(ImportJob::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(jobs, page, |j| j.id))
    }
}
