//! siyu's runtime: the background work of a node, out of the HTTP crate.
//!
//! Background work (imports, backfills, sends) must survive a crash and run once across
//! several nodes, so it is a row in the database, not a `tokio::spawn`: the [`runner`]
//! takes jobs from the store's queue and runs their handlers. Running them is a concern
//! of its own: `siyu-server` knows HTTP only, and the binary starts a [`Runner`] beside
//! it (or alone, on a worker node).

pub mod acting;
pub mod audience;
pub mod broadcasts;
pub mod exports;
pub mod imports;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod node;
pub mod probe;
pub mod runner;
pub mod tagging;
pub mod wecom;

pub use metrics::{JobMetrics, KindFigures, RUN_SECONDS_BUCKETS, RunOutcome};
pub use node::{Node, NodeConfig, Role};
pub use runner::{
    BoxFuture, DEFAULT_BATCH, DEFAULT_CONCURRENCY, DEFAULT_LEASE_MS, JobContext, JobError,
    JobHandler, POLL, Runner, RunnerHandle, handler_fn,
};

use std::sync::Arc;

use siyu_store::Store;

/// What a node's job handlers reach.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub audiences: audience::Audiences,
    /// The node's WeCom call budgets, concurrency and kept tokens.
    pub wecom: wecom::WecomCalls,
}

/// A handler of every kind of job this version runs; a worker node registers them all.
/// A new kind of job gets a module of its own here (its payload, its handler, its
/// tests) and a line below.
pub fn job_handlers(services: &Services) -> Vec<Arc<dyn JobHandler>> {
    vec![
        Arc::new(probe::handler()),
        Arc::new(maintenance::handler()),
        // CSV imports (`POST /api/v1/imports`), a part per transaction, exactly once
        Arc::new(imports::handler()),
        Arc::new(exports::handler(services)),
        Arc::new(tagging::bulk_tagging(services)),
        Arc::new(tagging::rule_backfill(services)),
        // a WeCom corp's staff, corp tags and customers, resumable page by page
        Arc::new(wecom::sync::handler(services)),
        // one WeCom callback event each: edits, tags, chats, and the welcome of an add
        Arc::new(wecom::callbacks::handler(services)),
        // adds and deletions taken from callbacks, applied in bulk
        Arc::new(wecom::relation_changes::handler(services)),
        // mirrored corp tags changed in siyu, marked on WeCom
        Arc::new(wecom::marks::handler(services)),
        // channel codes' contact ways made, changed and deleted with them
        Arc::new(wecom::contact_ways::handler(services)),
        // group codes' join ways moved onto the chats with room
        Arc::new(wecom::join_ways::handler(services)),
        // personal tags read in the background, paced under WeCom's limits
        Arc::new(wecom::personal_tags::handler(services)),
        // texts from the app to members, within WeCom's per-member limits
        Arc::new(wecom::app_messages::handler(services)),
        // customers transferred between WeCom members: asked 100 a call, then followed
        // until WeCom's takeover (24 h) or a refusal
        Arc::new(wecom::transfers::asking(services)),
        Arc::new(wecom::transfers::following(services)),
        // mass sends: planned once at their time, then sent a batch per job
        Arc::new(broadcasts::planning(services)),
        Arc::new(broadcasts::sending(services)),
        Arc::new(broadcasts::following(services)),
        Arc::new(broadcasts::reminding(services)),
    ]
}

/// Kinds of job that run fewer at once on a node than the default: each holds the
/// database's writer for a part at a time or reads many customers, and requests come
/// first.
pub const KIND_CONCURRENCY: [(&str, usize); 7] = [
    (siyu_domain::jobs::kind::IMPORT, 2),
    (siyu_domain::jobs::kind::CUSTOMER_EXPORT, 2),
    (siyu_domain::jobs::kind::BULK_TAGGING, 4),
    (siyu_domain::jobs::kind::TAG_RULE_BACKFILL, 4),
    (siyu_domain::jobs::kind::WECOM_SYNC, 2),
    // one drains a connector's marks; more would mark the same ones twice
    (siyu_domain::jobs::kind::WECOM_MARK_TAGS, 1),
    // each holds the writer for a group of changes; one per connector waits or runs
    (siyu_domain::jobs::kind::WECOM_RELATION_CHANGES, 2),
];
