//! The probe job ([`kind::PROBE`]): records, in the transaction that completes it, that
//! it ran and on which worker (`siyu_store`'s `jobs::probe`). Exactly once. It proves the
//! queue end to end: the two-node test, `siyu bench jobs`, and an operator checking a
//! deployment with `siyu jobs enqueue --kind system.probe`.

use std::time::Duration;

use serde::Deserialize;
use siyu_domain::jobs::kind;

use crate::{JobError, JobHandler, handler_fn};

/// What a probe does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Takes this long before it records (at most a minute): a job to stop a worker in
    /// the middle of.
    #[serde(default)]
    pub sleep_ms: u64,
}

pub fn handler() -> impl JobHandler {
    handler_fn(kind::PROBE, |ctx| async move {
        let probe: Probe = if ctx.job.payload.trim() == "null" {
            Probe::default()
        } else {
            ctx.payload()?
        };
        if probe.sleep_ms > 60_000 {
            return Err(JobError::permanent("a probe sleeps at most 60,000 ms"));
        }
        tokio::time::sleep(Duration::from_millis(probe.sleep_ms)).await;
        if !ctx.store.record_probe(ctx.job.id, &ctx.worker).await? {
            // the lease ran out and another worker has it: that one records it
            tracing::warn!(
                job = ctx.job.id.0,
                "a probe job was no longer this worker's"
            );
        }
        Ok(())
    })
}
