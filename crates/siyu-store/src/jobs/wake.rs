//! Waking job runners when jobs are enqueued, so that a job starts at once rather than
//! at a runner's next poll.
//!
//! - In one process (SQLite, and PostgreSQL too) a `watch` channel on the store:
//!   [`Store::enqueue`] bumps it after its commit. Work enqueued in a change's own
//!   transaction (`enqueue_in`) is announced by its caller calling
//!   [`Store::notify_jobs`] after the commit (a `Tx` does not know its store).
//! - Across nodes (PostgreSQL) `pg_notify('siyu_jobs', kind)` is issued inside the
//!   enqueueing transaction; PostgreSQL delivers it at commit (never for a rollback) to
//!   every session that `LISTEN`s. [`Store::forward_job_notifications`] listens on a
//!   dedicated connection and bumps the local channel for each notification.
//!
//! A wake-up only hastens a claim: runners also poll (scheduled jobs falling due,
//! leases running out, a notification lost while a listener reconnects).

use tokio::sync::watch;

use crate::db::Pool;
use crate::{Result, Store};

/// The PostgreSQL channel that announces enqueued jobs; the payload is their kind.
pub const JOBS_CHANNEL: &str = "siyu_jobs";

impl Store {
    /// Wakes the job runners of this process (after a commit that enqueued jobs).
    pub fn notify_jobs(&self) {
        self.jobs_wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever jobs were enqueued in this process (or, while
    /// [`Store::forward_job_notifications`] runs, on another node).
    pub fn job_wakeups(&self) -> watch::Receiver<u64> {
        self.jobs_wake.subscribe()
    }

    /// On PostgreSQL, listens for jobs enqueued anywhere and wakes this process's
    /// runners for each; runs until the listening connection fails (the caller starts it
    /// again). On SQLite there is no other process to hear from: returns at once.
    pub async fn forward_job_notifications(&self) -> Result<()> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(());
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        // jobs enqueued before the listener was up are found by the runner's first claim
        self.notify_jobs();
        loop {
            listener.recv().await?;
            self.notify_jobs();
        }
    }
}
