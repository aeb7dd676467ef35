//! What the runner counts of the jobs it runs, per kind: finished runs, failed runs and
//! how long they took. The HTTP server shows them in `/metrics` (the binary hands the
//! server's [`JobMetrics`] to the runner it starts); this crate knows no metrics format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The upper bounds (seconds) of the run-time histogram's buckets; a last, unbounded
/// bucket holds the rest.
pub const RUN_SECONDS_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    /// It failed: an error to retry after, a permanent one, or a panic.
    Failed,
}

/// The figures of one kind of job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindFigures {
    /// Runs that finished, either way.
    pub runs: u64,
    /// Runs that failed.
    pub failures: u64,
    /// The runs' seconds added up.
    pub seconds: f64,
    /// Runs per bucket of [`RUN_SECONDS_BUCKETS`] (not cumulative), then those longer
    /// than the last bound.
    pub buckets: [u64; RUN_SECONDS_BUCKETS.len() + 1],
}

/// Counts of finished job runs by kind, shared between a runner and whoever shows them.
#[derive(Debug, Default)]
pub struct JobMetrics {
    kinds: Mutex<BTreeMap<String, KindFigures>>,
}

impl JobMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a finished run of a job of `kind` that took `took`.
    pub fn record(&self, kind: &str, outcome: RunOutcome, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = RUN_SECONDS_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(RUN_SECONDS_BUCKETS.len());
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let figures = match kinds.get_mut(kind) {
            Some(figures) => figures,
            None => kinds.entry(kind.to_owned()).or_default(),
        };
        figures.runs += 1;
        if outcome == RunOutcome::Failed {
            figures.failures += 1;
        }
        figures.seconds += seconds;
        figures.buckets[bucket] += 1;
    }

    /// Every kind's figures so far, by kind.
    pub fn snapshot(&self) -> Vec<(String, KindFigures)> {
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds
            .iter()
            .map(|(kind, figures)| (kind.clone(), figures.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_per_kind_into_their_buckets() {
        let metrics = JobMetrics::new();
        metrics.record("mail", RunOutcome::Succeeded, Duration::from_millis(3));
        metrics.record("mail", RunOutcome::Failed, Duration::from_millis(700));
        metrics.record("mail", RunOutcome::Succeeded, Duration::from_secs(301));
        metrics.record("export", RunOutcome::Succeeded, Duration::from_millis(10));
        let snapshot = metrics.snapshot();
        assert_eq!(
            snapshot.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["export", "mail"]
        );
        let export = &snapshot[0].1;
        assert_eq!(export.buckets[1], 1, "10 ms is within the 0.01 s bucket");
        let mail = &snapshot[1].1;
        assert_eq!((mail.runs, mail.failures), (3, 1));
        assert!((mail.seconds - 301.703).abs() < 1e-9);
        let mut expected = [0; RUN_SECONDS_BUCKETS.len() + 1];
        expected[0] = 1; // ≤ 5 ms
        expected[7] = 1; // ≤ 1 s
        expected[RUN_SECONDS_BUCKETS.len()] = 1; // beyond 300 s
        assert_eq!(mail.buckets, expected);
    }
}
