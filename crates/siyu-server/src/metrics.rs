//! Prometheus metrics: request counts and latencies by route, method and status, the
//! events waiting in the ingest log (how far profiles are behind the tracking calls),
//! the job queue's backlog per kind, and the runs of the job runner this process starts
//! (its [`JobMetrics`], read at each scrape).
//!
//! The registry belongs to the application, not to the process, so several servers in
//! one test process each count their own requests.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use siyu_runtime::{JobMetrics, RUN_SECONDS_BUCKETS};
use siyu_store::JobQueueStat;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
    /// Set when the metrics are read.
    pub ingest_backlog: Gauge,
    /// Tracked-link clicks whose event the ingestor did not take (the person was sent on).
    pub link_clicks_dropped: Counter,
    /// Set when the metrics are read, per kind: due waiting jobs, and how long the one
    /// due longest has waited.
    jobs_waiting: Family<KindLabels, Gauge>,
    jobs_oldest_waiting: Family<KindLabels, Gauge<f64, AtomicU64>>,
    /// Kinds shown so far: a kind whose backlog is gone shows 0, not nothing.
    job_kinds: Mutex<BTreeSet<String>>,
}

impl Metrics {
    /// The metrics of an application whose job runner counts its runs in `jobs`.
    pub fn new(jobs: Arc<JobMetrics>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "siyu_http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "siyu_http_request_duration_seconds",
            "time to answer HTTP requests, by method, route and status",
            durations.clone(),
        );
        let ingest_backlog = Gauge::default();
        registry.register(
            "siyu_ingest_log_backlog_events",
            "tracked events answered for and not yet applied to profiles",
            ingest_backlog.clone(),
        );
        let link_clicks_dropped = Counter::default();
        registry.register(
            "siyu_link_clicks_dropped",
            "tracked-link clicks sent on without their event (the ingestor refused it)",
            link_clicks_dropped.clone(),
        );
        let jobs_waiting = Family::<KindLabels, Gauge>::default();
        registry.register(
            "siyu_jobs_waiting",
            "jobs waiting whose time has come, by kind (all tenants)",
            jobs_waiting.clone(),
        );
        let jobs_oldest_waiting = Family::<KindLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "siyu_jobs_oldest_waiting_seconds",
            "how long the waiting job due longest has waited since it fell due, by kind",
            jobs_oldest_waiting.clone(),
        );
        registry.register_collector(Box::new(JobRuns(jobs)));
        Self {
            registry,
            requests,
            durations,
            ingest_backlog,
            link_clicks_dropped,
            jobs_waiting,
            jobs_oldest_waiting,
            job_kinds: Mutex::default(),
        }
    }

    /// Sets the job queue's gauges from its backlog read at `now` (milliseconds).
    pub fn set_job_queue(&self, stats: &[JobQueueStat], now: i64) {
        let mut kinds = self.job_kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds.extend(stats.iter().map(|s| s.kind.clone()));
        for kind in kinds.iter() {
            let stat = stats.iter().find(|s| &s.kind == kind);
            let labels = KindLabels { kind: kind.clone() };
            self.jobs_waiting
                .get_or_create(&labels)
                .set(stat.map_or(0, |s| s.waiting));
            let waited = stat.map_or(0.0, |s| (now - s.oldest_due_at).max(0) as f64 / 1000.0);
            self.jobs_oldest_waiting.get_or_create(&labels).set(waited);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// Middleware that counts and times every request under its route template
/// (`/api/v1/units/{id}`), so ids do not explode the label space.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .durations
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The job runner's figures, encoded at each scrape: `siyu_jobs_runs_total` and
/// `siyu_jobs_failures_total` by kind, and the histogram `siyu_job_run_seconds`.
#[derive(Debug)]
struct JobRuns(Arc<JobMetrics>);

impl Collector for JobRuns {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let kinds = self.0.snapshot();
        let runs: Vec<(&String, u64)> = kinds.iter().map(|(k, f)| (k, f.runs)).collect();
        let failures: Vec<(&String, u64)> = kinds.iter().map(|(k, f)| (k, f.failures)).collect();
        for (name, help, counts) in [
            ("siyu_jobs_runs", "job runs finished here, by kind", runs),
            (
                "siyu_jobs_failures",
                "job runs that failed here (an error, a panic), by kind",
                failures,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (kind, count) in counts {
                let labels = KindLabels { kind: kind.clone() };
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "siyu_job_run_seconds",
            "how long job runs took, by kind",
            None,
            MetricType::Histogram,
        )?;
        for (kind, figures) in &kinds {
            let labels = KindLabels { kind: kind.clone() };
            let buckets: Vec<(f64, u64)> = RUN_SECONDS_BUCKETS
                .iter()
                .copied()
                .chain([f64::MAX])
                .zip(figures.buckets.iter().copied())
                .collect();
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(figures.seconds, figures.runs, &buckets, None)?;
        }
        Ok(())
    }
}
