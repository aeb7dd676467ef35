//! Large exports: a job writes the file (the store's `files`, where every node reads),
//! and whoever may read the job downloads it once it is done.
//!
//! Exactly once: the file, the export's row and the job's completion commit in one
//! transaction ([`TenantScope::finish_export`]), and only while the worker still holds
//! the job; a try cut off before that leaves nothing but bytes the file sweep removes.
//! Export files are forgotten after [`KEEP_EXPORTS_MS`] (the maintenance job).

use siyu_domain::ids::{FileId, JobId};

use crate::db::{now_ms, on_db};
use crate::files::{delete_file_in, insert_file_in};
use crate::jobs::complete_job_in;
use crate::tx::on_tx;
use crate::{FileInfo, Result, Store, StoreError, TenantScope};

/// How long an export's file is kept.
pub const KEEP_EXPORTS_MS: i64 = 7 * 24 * 3600 * 1000;

impl TenantScope<'_> {
    /// Stores an export's file and completes its job in one transaction; `false`
    /// (nothing stored) when `worker` no longer holds the job.
    pub async fn finish_export(
        &self,
        job: JobId,
        worker: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        rows: i64,
    ) -> Result<bool> {
        let (staged, bytes) = self.store.stage_file(bytes).await?;
        let mut tx = self.store.begin().await?;
        if !complete_job_in(&mut tx, job, worker).await? {
            return Ok(false); // rolled back; the staged bytes are swept
        }
        let file = insert_file_in(&mut tx, self.tenant, name, content_type, staged, &bytes).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO exports (job_id, tenant_id, file_id, rows, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(job.0)
            .bind(self.tenant.0)
            .bind(file.id.0)
            .bind(rows)
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await?;
        Ok(true)
    }

    /// The file an export job wrote, with its bytes, for a caller who may read the job
    /// (within this scope's reach); not found while it runs, or after it is forgotten.
    pub async fn export_file(&self, job: JobId) -> Result<(FileInfo, Vec<u8>)> {
        self.get_job(job).await?;
        let file: Option<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT file_id FROM exports WHERE tenant_id = $1 AND job_id = $2")
                .bind(self.tenant.0)
                .bind(job.0)
                .fetch_optional(db)
                .await?
        });
        let file = file.ok_or(StoreError::NotFound("export file"))?;
        self.get_file(FileId(file)).await
    }
}

impl Store {
    /// Forgets exports made before `before`, their files too; answers how many.
    pub async fn prune_exports(&self, before: i64) -> Result<u64> {
        #[derive(sqlx::FromRow)]
        struct OldExport {
            job_id: i64,
            tenant_id: i64,
            file_id: i64,
        }
        let old: Vec<OldExport> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT job_id, tenant_id, file_id FROM exports WHERE created_at < $1 LIMIT 1000",
            )
            .bind(before)
            .fetch_all(db)
            .await?
        });
        for export in &old {
            let mut tx = self.begin().await?;
            on_tx!(&mut tx, |c| {
                sqlx::query("DELETE FROM exports WHERE job_id = $1")
                    .bind(export.job_id)
                    .execute(&mut *c)
                    .await?;
            });
            let tenant = siyu_domain::ids::TenantId(export.tenant_id);
            let (_, discarded) = delete_file_in(&mut tx, tenant, FileId(export.file_id)).await?;
            tx.commit().await?;
            self.discard_files(discarded).await;
        }
        Ok(old.len() as u64)
    }
}
