//! `siyu bench jobs`: the durable job queue and its runner on a real database. Enqueue
//! rate (no-op jobs in batches of 1,000), run rate (the same jobs run from a full queue
//! by a runner with default settings), and pickup latency (jobs enqueued one at a time
//! into an idle runner; on PostgreSQL enqueued on one node, a store, and run on a second).
//! The last line is one JSON object.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use siyu_runtime::{Runner, handler_fn};
use siyu_store::NewJob;

use crate::config::FileConfig;

pub struct JobsBench {
    /// No-op jobs enqueued, then run.
    pub jobs: usize,
    /// Jobs enqueued one at a time for the pickup latency.
    pub pickups: usize,
    /// How many of them a second.
    pub pickup_rate: u32,
}

const ENQUEUE_BATCH: usize = 1_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(
    database_url: Option<String>,
    file: &FileConfig,
    bench: JobsBench,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = crate::open_store(&url, file, None).await?;
    // kinds of this run only, so that jobs left in a shared database are not counted
    let stamp = siyu_store::now_ms();
    let noop = format!("bench.noop.{stamp}");
    let ping = format!("bench.ping.{stamp}");
    let noop: &'static str = Box::leak(noop.into_boxed_str());
    let ping: &'static str = Box::leak(ping.into_boxed_str());
    println!("backend: {:?}", store.backend());

    // 1. enqueue
    let began = Instant::now();
    let mut left = bench.jobs;
    while left > 0 {
        let n = left.min(ENQUEUE_BATCH);
        let jobs: Vec<NewJob> = (0..n).map(|_| NewJob::new(noop, json!({}))).collect();
        store.enqueue(&jobs).await?;
        left -= n;
    }
    let enqueue_s = began.elapsed().as_secs_f64();
    let enqueue_rate = bench.jobs as f64 / enqueue_s;
    println!(
        "enqueue: {} jobs in {enqueue_s:.2} s, {enqueue_rate:.0} jobs/s",
        bench.jobs
    );

    // 2. run them, from a full queue, with default settings
    let ran = Arc::new(AtomicU64::new(0));
    let all_ran = Arc::new(tokio::sync::Notify::new());
    let (count, signal, total) = (ran.clone(), all_ran.clone(), bench.jobs as u64);
    let began = Instant::now();
    let runner = Runner::new(store.clone(), format!("bench-{stamp}"))
        .handler(handler_fn(noop, move |_ctx| {
            let (count, signal) = (count.clone(), signal.clone());
            async move {
                if count.fetch_add(1, Ordering::Relaxed) + 1 == total {
                    signal.notify_one();
                }
                Ok(())
            }
        }))
        .start();
    if bench.jobs > 0 {
        all_ran.notified().await;
    }
    // shutting down completes the last batch
    runner.shutdown().await;
    let run_s = began.elapsed().as_secs_f64();
    let run_rate = bench.jobs as f64 / run_s;
    println!(
        "run: {} jobs in {run_s:.2} s, {run_rate:.0} jobs/s",
        ran.load(Ordering::Relaxed)
    );

    // 3. pickup latency into an idle runner; on PostgreSQL the runner is a second node
    // (a store of its own, woken only by the database's notifications), as when one
    // node enqueues and another runs
    let runs_on = match store.backend() {
        siyu_store::Backend::Postgres => crate::open_store(&url, file, None).await?,
        siyu_store::Backend::Sqlite => store.clone(),
    };
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; bench.pickups]));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let (sent_at, measured) = (sent.clone(), latencies.clone());
    let runner = Runner::new(runs_on.clone(), format!("bench-pickup-{stamp}"))
        .handler(handler_fn(ping, move |ctx| {
            let now = Instant::now();
            let (sent_at, measured) = (sent_at.clone(), measured.clone());
            async move {
                let i: usize = ctx.payload()?;
                if let Some(Some(at)) = sent_at.lock().unwrap().get(i) {
                    measured
                        .lock()
                        .unwrap()
                        .push((now - *at).as_secs_f64() * 1000.0);
                }
                Ok(())
            }
        }))
        .start();
    // settle: the runner idle, PostgreSQL's listener connected
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut every = tokio::time::interval(Duration::from_secs_f64(
        1.0 / f64::from(bench.pickup_rate.max(1)),
    ));
    for i in 0..bench.pickups {
        every.tick().await;
        sent.lock().unwrap()[i] = Some(Instant::now());
        store.enqueue(&[NewJob::new(ping, json!(i))]).await?;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while latencies.lock().unwrap().len() < bench.pickups && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.shutdown().await;
    if store.backend() == siyu_store::Backend::Postgres {
        runs_on.close().await;
    }
    let mut sorted = latencies.lock().unwrap().clone();
    sorted.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&sorted, 50.0), percentile(&sorted, 99.0));
    let max = sorted.last().copied().unwrap_or(0.0);
    println!(
        "pickup: {} of {} jobs at {}/s; p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        sorted.len(),
        bench.pickups,
        bench.pickup_rate
    );

    let summary = json!({
        "bench": "jobs",
        "backend": format!("{:?}", store.backend()).to_lowercase(),
        "jobs": bench.jobs,
        "enqueue_jobs_per_s": enqueue_rate.round(),
        "run_jobs_per_s": run_rate.round(),
        "pickups": sorted.len(),
        "pickup_p50_ms": (p50 * 10.0).round() / 10.0,
        "pickup_p99_ms": (p99 * 10.0).round() / 10.0,
        "pickup_max_ms": (max * 10.0).round() / 10.0,
    });
    println!("{summary}");
    Ok(())
}
