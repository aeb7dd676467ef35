//! The ingestor: one task per process that stores tracked events with group commit.
//!
//! Tracking requests hand their checked events to the ingestor and wait. The ingestor
//! takes everything waiting (up to a cap) and stores it in one transaction, then answers
//! each request. Under load many requests share one durable commit, which is what makes
//! ingestion fast on SQLite (one writer) and cheap on PostgreSQL; a request is answered
//! 200 only after the commit that holds its events.

use std::time::Duration;

use siyu_store::{IngestItem, IngestOutcome, Store};
use tokio::sync::{mpsc, oneshot};

/// Events stored in one transaction at most.
const MAX_GROUP_EVENTS: usize = 10_000;
/// How often message ids past the deduplication window are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

type Reply = oneshot::Sender<Result<Vec<IngestOutcome>, String>>;

struct Job {
    items: Vec<IngestItem>,
    reply: Reply,
}

/// A handle to the ingestor task; cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    jobs: mpsc::Sender<Job>,
}

impl Ingestor {
    /// Starts the ingestor task on the current runtime.
    pub fn start(store: Store, dedup_window_ms: i64) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>(1024);
        tokio::spawn(run(store, rx, dedup_window_ms));
        Self { jobs }
    }

    /// Stores events; returns once they are committed (or the commit failed).
    pub async fn submit(&self, items: Vec<IngestItem>) -> Result<Vec<IngestOutcome>, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { items, reply })
            .await
            .map_err(|_| "the ingestor has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the ingestor dropped the request".to_owned())?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, dedup_window_ms: i64) {
    let mut last_prune = tokio::time::Instant::now();
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut count = jobs[0].items.len();
        while count < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.items.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut items = Vec::with_capacity(count);
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            sizes.push(job.items.len());
            items.extend(job.items);
            replies.push(job.reply);
        }
        match store.ingest(&items).await {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (size, reply) in sizes.into_iter().zip(replies) {
                    let _ = reply.send(Ok(outcomes.by_ref().take(size).collect()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, events = count, "storing events failed");
                for reply in replies {
                    let _ = reply.send(Err(err.to_string()));
                }
            }
        }
        if last_prune.elapsed() > PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            match store.prune_message_ids(dedup_window_ms).await {
                Ok(n) => tracing::debug!(
                    pruned = n,
                    "message ids past the deduplication window forgotten"
                ),
                Err(err) => tracing::warn!(error = %err, "pruning message ids failed"),
            }
        }
    }
}
