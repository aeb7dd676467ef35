//! The hourly maintenance job ([`kind::MAINTENANCE`], a system schedule every worker
//! node saves at start): forgets what is kept only for a while. Customer changes older
//! than a day (every follower has read them long before), export files after a week,
//! callbacks' keys after a day (WeCom's repeats come within seconds), finished jobs after
//! [`KEEP_FINISHED_DAYS`] days and dead ones after [`KEEP_DEAD_DAYS`] (a person may still
//! want to look at why one died). It also gives any connector whose WeCom relation changes
//! wait without a job its job (`Store::sweep_relation_changes`). Idempotent: running it
//! twice forgets nothing more.

use siyu_domain::jobs::kind;
use siyu_domain::schedule::Schedule;
use siyu_store::{NewSchedule, Store, StoreError};

use crate::{JobHandler, handler_fn};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Done and cancelled jobs are kept this many days.
pub const KEEP_FINISHED_DAYS: i64 = 14;
/// Dead jobs are kept this many days.
pub const KEEP_DEAD_DAYS: i64 = 30;
/// When it runs: every hour, at 17 past (UTC).
pub const EVERY: &str = "17 * * * *";

pub fn handler() -> impl JobHandler {
    handler_fn(kind::MAINTENANCE, |ctx| async move {
        let now = siyu_store::now_ms();
        let changes = ctx.store.prune_customer_changes(DAY_MS).await?;
        let exports = ctx
            .store
            .prune_exports(now - siyu_store::KEEP_EXPORTS_MS)
            .await?;
        let jobs = ctx
            .store
            .prune_jobs(
                now - KEEP_FINISHED_DAYS * DAY_MS,
                now - KEEP_DEAD_DAYS * DAY_MS,
            )
            .await?;
        let keys = ctx
            .store
            .prune_connector_callbacks(now - siyu_store::KEEP_CALLBACK_KEYS_MS)
            .await?;
        let swept = ctx.store.sweep_relation_changes().await?;
        ctx.progress(
            1,
            Some(1),
            Some(&format!(
                "forgot {changes} customer changes, {exports} exports, {jobs} finished jobs \
                 and {keys} callback keys; {swept} connectors with relation changes waiting"
            )),
        )
        .await?;
        Ok(())
    })
}

/// Saves the maintenance schedule (once per deployment, whichever node comes first).
pub async fn schedule(store: &Store) -> Result<(), StoreError> {
    store
        .put_schedule(&NewSchedule {
            tenant: None,
            name: "maintenance".into(),
            kind: kind::MAINTENANCE.into(),
            payload: serde_json::Value::Null,
            schedule: Schedule::parse("maintenance", EVERY).expect("a valid expression"),
        })
        .await?;
    Ok(())
}
