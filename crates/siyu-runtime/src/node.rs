//! A node: what one `siyu serve` process runs beside (or instead of) the HTTP server.
//!
//! Every node keeps its audience indexes following the database and logs tracked
//! events it is sent. A node that works ([`Role::Worker`], [`Role::All`]) also applies
//! the ingest log to profiles, records audiences (see [`crate::audience::recorder`])
//! and runs jobs; an API node ([`Role::Api`]) leaves those to the workers.

use std::sync::Arc;
use std::time::Duration;

use siyu_store::{Store, StoreError};

use crate::audience::Audiences;
use crate::ingest::{IngestConfig, Ingestor};
use crate::{JobMetrics, RunnerHandle, Services};

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The HTTP API only (and the console): background work is left to worker nodes.
    Api,
    /// Background work only; HTTP serves health and metrics.
    Worker,
    /// Both (one node, the default).
    #[default]
    All,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "api" => Some(Role::Api),
            "worker" => Some(Role::Worker),
            "all" => Some(Role::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }

    /// Whether the node serves the API and the console.
    pub fn serves_api(self) -> bool {
        self != Role::Worker
    }

    /// Whether the node does background work.
    pub fn works(self) -> bool {
        self != Role::Api
    }
}

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub role: Role,
    pub ingest: IngestConfig,
    /// The name the node's leases are held under: unique per process.
    pub name: String,
    /// How long a stopping node waits for its running jobs before handing them back.
    pub shutdown_timeout: Duration,
    /// How long a claimed job is held without a heartbeat: a node that dies holds its
    /// jobs this long before others take them (at most 30 s).
    pub job_lease_ms: i64,
    /// How often a waiting WeCom transfer's result is read (an hour; tests: less).
    pub wecom_transfer_poll: Duration,
    /// How often a WeCom mass send's waiting member tasks are read (10 min; tests:
    /// less), and how long a batch's intent holds off another try (60 s).
    pub wecom_broadcast_poll: Duration,
    pub wecom_broadcast_claim: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            role: Role::All,
            ingest: IngestConfig::default(),
            name: default_name(),
            shutdown_timeout: Duration::from_secs(20),
            job_lease_ms: crate::DEFAULT_LEASE_MS,
            wecom_transfer_poll: crate::wecom::TRANSFER_POLL,
            wecom_broadcast_poll: crate::wecom::BROADCAST_POLL,
            wecom_broadcast_claim: crate::wecom::BROADCAST_CLAIM,
        }
    }
}

/// This host's name and the process id, plus a random part (two nodes in one process,
/// as in tests, are two workers).
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "siyu".to_owned());
    format!("{host}:{}:{:04x}", std::process::id(), rand_part() & 0xffff)
}

fn rand_part() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(siyu_store::now_ms() as u64);
    h.finish()
}

/// A started node.
pub struct Node {
    pub store: Store,
    pub config: NodeConfig,
    pub ingestor: Ingestor,
    /// Takes WeCom's relation changes from callbacks, many to a transaction.
    pub relation_intake: crate::wecom::intake::RelationIntake,
    pub audiences: Audiences,
    /// What the node's job runner counts of its runs (`/metrics` shows them).
    pub job_metrics: Arc<JobMetrics>,
    runner: Option<RunnerHandle>,
    /// Enqueues due recurring jobs, on nodes that work.
    scheduler: Option<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Starts the node's background work on the current runtime.
    pub async fn start(store: Store, config: NodeConfig) -> Result<Node, StoreError> {
        let works = config.role.works();
        let ingestor = Ingestor::start(store.clone(), &config.ingest, works);
        let relation_intake = crate::wecom::intake::RelationIntake::start(store.clone());
        let audiences = Audiences::start(store.clone(), works.then(|| config.name.clone())).await?;
        let job_metrics = Arc::new(JobMetrics::new());
        let runner = works.then(|| {
            let services = Services {
                store: store.clone(),
                audiences: audiences.clone(),
                wecom: crate::wecom::WecomCalls::new()
                    .with_transfer_poll(config.wecom_transfer_poll)
                    .with_broadcast_timing(
                        config.wecom_broadcast_poll,
                        config.wecom_broadcast_claim,
                    ),
            };
            let runner = crate::Runner::new(store.clone(), config.name.clone())
                .handlers(crate::job_handlers(&services));
            crate::KIND_CONCURRENCY
                .iter()
                .fold(runner, |runner, (kind, n)| runner.concurrency(kind, *n))
                .metrics(job_metrics.clone())
                .shutdown_timeout(config.shutdown_timeout)
                .lease(config.job_lease_ms.min(crate::DEFAULT_LEASE_MS))
                .start()
        });
        let scheduler = if works {
            crate::maintenance::schedule(&store).await?;
            Some(tokio::spawn(enqueue_due_schedules(store.clone())))
        } else {
            None
        };
        tracing::info!(role = config.role.as_str(), name = %config.name, "node started");
        Ok(Node {
            store,
            config,
            ingestor,
            relation_intake,
            audiences,
            job_metrics,
            runner,
            scheduler,
        })
    }

    /// Stops the node's background work: running jobs finish or are handed back, and
    /// recorders are given up, so other nodes take over at once.
    pub async fn shutdown(mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
        if let Some(runner) = self.runner.take() {
            runner.shutdown().await;
        }
        self.audiences.release_recorders().await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
    }
}

/// Every second, enqueues the recurring jobs that are due (each run once across nodes:
/// see `siyu_store`'s `jobs::schedules`).
async fn enqueue_due_schedules(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = store.enqueue_due_schedules(siyu_store::now_ms()).await {
            tracing::warn!(%error, "enqueueing recurring jobs failed; retrying");
        }
    }
}
