//! The `import` job: runs a CSV import made by `TenantScope::create_import` (the API's
//! `POST /api/v1/imports`), whose file, import row and job were made in one transaction.
//!
//! The handler reads the import's file from the store's file store, skips the records
//! the import has settled (`items_read`), and stores the rest a part at a time with
//! `TenantScope::import_part`: each part's rows, the import's new position, counts and
//! refused rows, and the job's progress commit in one transaction, and the last part's
//! transaction also marks the import completed, completes the job and deletes the file.
//! **Exactly once**: a try killed anywhere (SIGKILL, a lost node) leaves whole parts
//! only, and the next try, on any node, continues after the last one; a worker that lost
//! the job's lease stores nothing more (each part checks the job is still its own). See
//! `siyu-store`'s `imports` module for the argument.
//!
//! A failure that will not pass (the file gone or not matching its checksum, an import
//! that ended, a payload that does not read) marks the import `failed` and kills the
//! job; a database error is tried again with backoff, and on the job's last attempt it
//! marks the import failed too, so an import always ends `completed` or `failed`.

use std::io::Cursor;
use std::sync::Arc;

use siyu_domain::import::{IMPORT_JOB_KIND, ImportJobPayload, ImportStatus};
use siyu_store::{ImportPart, StoreError, TenantScope};

use crate::runner::{JobContext, JobError, JobHandler, handler_fn, uncancelled};

/// The import job's handler.
pub fn handler() -> impl JobHandler {
    handler_fn(IMPORT_JOB_KIND, run)
}

async fn run(ctx: JobContext) -> Result<(), JobError> {
    let payload: ImportJobPayload = ctx.payload()?;
    let tenant = ctx.job.tenant.ok_or_else(|| {
        JobError::permanent("an import job belongs to a tenant; this one to none")
    })?;
    let scope = ctx.store.tenant(tenant);
    let outcome = import(&ctx, &scope, &payload).await;
    if let Err(error) = &outcome {
        let last =
            matches!(error, JobError::Permanent(_)) || ctx.job.attempts >= ctx.job.max_attempts;
        if last {
            // the job will not run again: the import ends here (unless this worker no
            // longer holds the job, in which case another one goes on with it)
            let (store, job, id, message) = (
                ctx.store.clone(),
                ctx.job.clone(),
                payload.import_id,
                error.to_string(),
            );
            let failed = uncancelled(async move {
                store
                    .tenant(tenant)
                    .fail_import(id, &job, &message)
                    .await
                    .map_err(JobError::from)
            })
            .await
            .and_then(|recorded| recorded);
            if let Err(e) = failed {
                tracing::warn!(import = id, error = %e, "cannot record that an import failed");
            }
        }
    }
    outcome
}

async fn import(
    ctx: &JobContext,
    scope: &TenantScope<'_>,
    payload: &ImportJobPayload,
) -> Result<(), JobError> {
    let run = scope.import_run(payload.import_id).await.map_err(failure)?;
    match run.status {
        ImportStatus::Queued | ImportStatus::Running => {}
        // its last part completed this job too
        ImportStatus::Completed => return Ok(()),
        ended @ (ImportStatus::Failed | ImportStatus::Interrupted) => {
            return Err(JobError::permanent(format!(
                "import {} has ended ({})",
                run.id,
                ended.as_str()
            )));
        }
    }
    let file = run
        .file
        .ok_or_else(|| JobError::permanent(format!("the file of import {} is gone", run.id)))?;
    let (_, bytes) = scope.get_file(file).await.map_err(failure)?;
    if run.status == ImportStatus::Queued {
        tracing::info!(import = run.id, rows = run.total_rows, "import started");
    } else {
        tracing::info!(import = run.id, from = run.items_read, "import continues");
    }
    // skipping what is settled reads the file up to there: off the async workers
    let bytes: Arc<[u8]> = bytes.into();
    let (mut run, mut rows) =
        tokio::task::spawn_blocking(move || run.reader(Cursor::new(bytes)).map(|rows| (run, rows)))
            .await
            .map_err(JobError::retry)?
            .map_err(JobError::permanent)?;
    loop {
        let (store, job, actor) = (ctx.store.clone(), ctx.job.clone(), payload.actor.clone());
        let tenant = scope.id();
        let (back, back_rows, part) = uncancelled(async move {
            let part = store
                .tenant(tenant)
                .import_part(&mut run, &mut rows, &job, &actor)
                .await;
            (run, rows, part)
        })
        .await?;
        (run, rows) = (back, back_rows);
        match part.map_err(failure)? {
            ImportPart::Stored => {}
            ImportPart::Completed => {
                tracing::info!(
                    import = run.id,
                    rows = run.progress.processed,
                    rejected = run.progress.rejected,
                    "import completed"
                );
                return Ok(());
            }
            ImportPart::NotHeld => {
                return Err(JobError::retry(format!(
                    "import {}: this worker no longer holds its job",
                    run.id
                )));
            }
        }
    }
}

/// A store error as a job's failure: one about the data (missing, corrupt, refused) will
/// not pass by trying again; the rest (the database busy or away) may.
fn failure(error: StoreError) -> JobError {
    match error {
        StoreError::NotFound(_) | StoreError::Corrupt(_) | StoreError::Domain(_) => {
            JobError::permanent(error)
        }
        other => JobError::retry(other),
    }
}
