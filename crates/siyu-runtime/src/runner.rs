//! The job runner: takes durable jobs from the store's queue (`siyu_store`'s `jobs`)
//! and runs their handlers.
//!
//! # The loop
//! A runner claims up to `batch` due jobs of the kinds it has handlers for (never more
//! than a kind's free concurrency), runs each on a task of its own, and reports back:
//! successes are completed together in one statement (`complete_jobs`), a failure goes
//! through `fail_job` (backoff, then dead), a [`JobError::Permanent`] through `kill_job`
//! (dead at once: a payload that does not read never will). A handler that panics is
//! caught (its task's `JoinError`) and fails its job with the panic's message; the
//! runner carries on. While jobs run, the runner heartbeats every lease/3; a job the
//! heartbeat no longer lists (its lease ran out and another worker took it, or it was
//! cancelled) is aborted here. Every finished run is counted in the runner's
//! [`JobMetrics`] (`Runner::metrics`): its kind, whether it failed, how long it took.
//!
//! # Waking up
//! An idle runner waits on the store's wake-up channel: [`Store::enqueue`] bumps it after
//! its commit in this process, and on PostgreSQL a listener on `siyu_jobs` (notified
//! inside every enqueueing transaction, delivered at commit) bumps it for jobs enqueued
//! on any node. It also polls every second, for jobs whose `run_at` arrives, leases that
//! ran out, and notifications lost while the listener reconnects.
//!
//! # Shutting down
//! [`RunnerHandle::shutdown`] stops claiming, waits for the running jobs up to the
//! shutdown timeout, completes what finished, then aborts the rest and **re-queues**
//! them (`release_jobs`: waiting again, due now, the interrupted try counted), so
//! another node takes them at once instead of after their lease. Dropping the handle
//! without shutting down aborts everything; those jobs come back when their leases lapse.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use siyu_domain::ids::JobId;
use siyu_store::{ClaimedJob, Store, StoreError};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinError, JoinSet};

use crate::metrics::{JobMetrics, RunOutcome};

/// A boxed future, as handlers answer.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a try of a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Try again later (after a backoff), while attempts remain.
    Retry(String),
    /// Never try again: the job is dead at once.
    Permanent(String),
    /// Not yet: wait until `at` (ms) and try again, the try not counted (a channel's
    /// rate limit paused the work; waiting is no failure).
    Later { at: i64, reason: String },
}

/// Runs a transaction of a job on a task of its own and waits for it. The runner aborts
/// a handler whose job's lease was lost, or that outlives a shutdown; the transaction in
/// flight then finishes (or is refused by its fences) on its own instead of being cut
/// off mid-statement: a SQLite transaction dropped while its `BEGIN IMMEDIATE` is being
/// answered can leave its pooled connection inside the transaction (sqlx cannot roll
/// back what it was not yet told began), holding the database's write lock for good.
pub(crate) async fn uncancelled<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, JobError> {
    tokio::spawn(work)
        .await
        .map_err(|e| JobError::retry(format!("a transaction of the job stopped: {e}")))
}

impl JobError {
    pub fn retry(error: impl std::fmt::Display) -> Self {
        JobError::Retry(error.to_string())
    }

    pub fn permanent(error: impl std::fmt::Display) -> Self {
        JobError::Permanent(error.to_string())
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Retry(e) | JobError::Permanent(e) => f.write_str(e),
            JobError::Later { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for JobError {}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> Self {
        JobError::Retry(error.to_string())
    }
}

/// What a handler gets: the job and the store.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: ClaimedJob,
    pub store: Store,
    /// The worker running it, whose lease holds it.
    pub worker: Arc<str>,
}

impl JobContext {
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// The payload, read as `T`; one that does not read is a permanent failure.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.job.payload).map_err(|e| {
            JobError::Permanent(format!(
                "the payload of job {} ({}) does not read as {}: {e}",
                self.job.id.0,
                self.job.kind,
                std::any::type_name::<T>()
            ))
        })
    }

    /// Records how far the job got.
    pub async fn progress(
        &self,
        done: i64,
        total: Option<i64>,
        message: Option<&str>,
    ) -> Result<(), JobError> {
        Ok(self
            .store
            .set_progress(self.job.id, done, total, message)
            .await?)
    }
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<(), JobError>>;
}

/// A handler made of a function: `handler_fn("kind", |ctx| async move { … })`.
pub fn handler_fn<F, Fut>(kind: &'static str, f: F) -> impl JobHandler
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    struct FnHandler<F> {
        kind: &'static str,
        f: F,
    }
    impl<F, Fut> JobHandler for FnHandler<F>
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        fn kind(&self) -> &'static str {
            self.kind
        }
        fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<(), JobError>> {
            Box::pin((self.f)(ctx))
        }
    }
    FnHandler { kind, f }
}

/// Jobs claimed at once, by default.
pub const DEFAULT_BATCH: usize = 100;
/// Jobs of one kind running at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 100;
/// How long a claim holds a job without a heartbeat, by default.
pub const DEFAULT_LEASE_MS: i64 = 30_000;
/// How often an idle runner looks for due jobs without being woken.
pub const POLL: Duration = Duration::from_secs(1);

/// A job runner, configured; [`Runner::start`] starts it.
pub struct Runner {
    store: Store,
    worker: Arc<str>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    concurrency: HashMap<&'static str, usize>,
    batch: usize,
    lease_ms: i64,
    poll: Duration,
    shutdown_timeout: Duration,
    metrics: Arc<JobMetrics>,
}

impl Runner {
    /// A runner named `worker`: the name its leases are held under, unique to it
    /// (host and process id, say).
    pub fn new(store: Store, worker: impl Into<String>) -> Self {
        Self {
            store,
            worker: Arc::from(worker.into()),
            handlers: HashMap::new(),
            concurrency: HashMap::new(),
            batch: DEFAULT_BATCH,
            lease_ms: DEFAULT_LEASE_MS,
            poll: POLL,
            shutdown_timeout: Duration::from_secs(30),
            metrics: Arc::new(JobMetrics::new()),
        }
    }

    pub fn handler(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// Every handler of a list (as [`crate::job_handlers`] makes it).
    pub fn handlers(mut self, handlers: impl IntoIterator<Item = Arc<dyn JobHandler>>) -> Self {
        for handler in handlers {
            self.handlers.insert(handler.kind(), handler);
        }
        self
    }

    /// At most `n` jobs of `kind` at once (default [`DEFAULT_CONCURRENCY`]).
    pub fn concurrency(mut self, kind: &'static str, n: usize) -> Self {
        self.concurrency.insert(kind, n.max(1));
        self
    }

    /// At most `n` jobs per claim (default [`DEFAULT_BATCH`]).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The lease of a claim, in milliseconds; heartbeats come every third of it.
    pub fn lease(mut self, ms: i64) -> Self {
        self.lease_ms = ms.max(30);
        self
    }

    /// How often an idle runner looks for jobs without being woken (default 1 s).
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Counts every finished run here (runs, failures, time per kind), for `/metrics`;
    /// by default in figures of the runner's own that nobody reads.
    pub fn metrics(mut self, metrics: Arc<JobMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// How long [`RunnerHandle::shutdown`] waits for running jobs.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the runner on the current Tokio runtime; its tasks belong to the handle.
    pub fn start(self) -> RunnerHandle {
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(self.run(stopping));
        RunnerHandle {
            stop,
            task: Some(task),
        }
    }

    async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut listener = JoinSet::new();
        let store = self.store.clone();
        listener.spawn(async move {
            loop {
                match store.forward_job_notifications().await {
                    Ok(()) => return, // nothing to listen to (SQLite)
                    Err(error) => {
                        tracing::warn!(%error, "job notifications lost; polling meanwhile");
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
        });
        let mut state = State {
            wakeups: self.store.job_wakeups(),
            jobs: JoinSet::new(),
            running: HashMap::new(),
            tasks: HashMap::new(),
            running_per_kind: HashMap::new(),
            drained: HashSet::new(),
            done: Vec::new(),
            runner: self,
        };
        state.wakeups.mark_unchanged();
        let beat = Duration::from_millis(u64::try_from(state.runner.lease_ms / 3).unwrap_or(10));
        let mut heartbeat = tokio::time::interval(beat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(state.runner.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            state.flush().await;
            state.claim().await;
            tokio::select! {
                biased;
                _ = stopping.changed() => break,
                Some(result) = state.jobs.join_next_with_id(), if !state.jobs.is_empty() => {
                    state.finished(result).await;
                    while let Some(result) = state.jobs.try_join_next_with_id() {
                        state.finished(result).await;
                    }
                }
                _ = heartbeat.tick() => state.heartbeat().await,
                changed = state.wakeups.changed() => {
                    if changed.is_ok() {
                        state.drained.clear();
                    }
                }
                _ = poll.tick() => state.drained.clear(),
            }
        }
        listener.abort_all();
        state.shut_down().await;
    }
}

/// A started runner. [`RunnerHandle::shutdown`] stops it; dropping it aborts its tasks.
pub struct RunnerHandle {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunnerHandle {
    /// Stops claiming, waits for running jobs up to the shutdown timeout, and re-queues
    /// the ones still running then (see the crate docs).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A runner at work.
struct State {
    runner: Runner,
    wakeups: watch::Receiver<u64>,
    jobs: JoinSet<Result<(), JobError>>,
    /// Each running job's task, kind and when it started.
    running: HashMap<JobId, (AbortHandle, &'static str, Instant)>,
    tasks: HashMap<tokio::task::Id, JobId>,
    running_per_kind: HashMap<&'static str, usize>,
    /// Kinds whose last claim found fewer jobs than asked: not claimed again until a
    /// wake-up or a poll.
    drained: HashSet<&'static str>,
    /// Jobs that succeeded, to complete together.
    done: Vec<JobId>,
}

impl State {
    fn limit(&self, kind: &'static str) -> usize {
        self.runner
            .concurrency
            .get(kind)
            .copied()
            .unwrap_or(DEFAULT_CONCURRENCY)
    }

    fn free(&self, kind: &'static str) -> usize {
        let running = self.running_per_kind.get(kind).copied().unwrap_or(0);
        self.limit(kind).saturating_sub(running)
    }

    async fn claim(&mut self) {
        let mut kinds: Vec<&'static str> = self.runner.handlers.keys().copied().collect();
        kinds.sort_unstable();
        for kind in kinds {
            if self.drained.contains(kind) {
                continue;
            }
            let want = self.free(kind).min(self.runner.batch);
            // while jobs of the kind run, claim only once half a batch is free: a claim
            // costs about the same for 10 jobs as for 100
            let full = self.limit(kind).min(self.runner.batch);
            let busy = self.running_per_kind.get(kind).copied().unwrap_or(0) > 0;
            if want == 0 || (busy && want < full.div_ceil(2)) {
                continue;
            }
            let claimed = match self
                .runner
                .store
                .claim_jobs(&self.runner.worker, &[kind], want, self.runner.lease_ms)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, kind, "claiming jobs failed");
                    self.drained.insert(kind);
                    continue;
                }
            };
            if claimed.len() < want {
                self.drained.insert(kind);
            }
            let handler = self.runner.handlers[kind].clone();
            for job in claimed {
                let id = job.id;
                // claimed again after its lease lapsed here: the old run stops
                if let Some((abort, ..)) = self.running.get(&id) {
                    abort.abort();
                    self.forget(id);
                }
                let ctx = JobContext {
                    job,
                    store: self.runner.store.clone(),
                    worker: self.runner.worker.clone(),
                };
                let abort = self.jobs.spawn(handler.run(ctx));
                self.tasks.insert(abort.id(), id);
                self.running.insert(id, (abort, kind, Instant::now()));
                *self.running_per_kind.entry(kind).or_default() += 1;
            }
        }
    }

    async fn finished(
        &mut self,
        result: Result<(tokio::task::Id, Result<(), JobError>), JoinError>,
    ) {
        let (task, outcome) = match result {
            Ok((task, outcome)) => (task, outcome),
            Err(error) => {
                let task = error.id();
                if error.is_cancelled() {
                    // aborted here: its lease was lost, or the runner is stopping
                    if let Some(id) = self.tasks.remove(&task) {
                        self.forget_task(id, task);
                    }
                    return;
                }
                let message = match error.into_panic().downcast::<String>() {
                    Ok(s) => *s,
                    Err(payload) => payload
                        .downcast::<&'static str>()
                        .map(|s| (*s).to_owned())
                        .unwrap_or_else(|_| "a panic".to_owned()),
                };
                (
                    task,
                    Err(JobError::Retry(format!("the handler panicked: {message}"))),
                )
            }
        };
        let Some(id) = self.tasks.remove(&task) else {
            return;
        };
        let Some((kind, started)) = self.forget_task(id, task) else {
            return; // lost its lease meanwhile: another worker (or another run) has it
        };
        let ran = if outcome.is_ok() {
            RunOutcome::Succeeded
        } else {
            RunOutcome::Failed
        };
        self.runner.metrics.record(kind, ran, started.elapsed());
        let store = &self.runner.store;
        let reported = match outcome {
            Ok(()) => {
                self.done.push(id);
                Ok(())
            }
            Err(JobError::Retry(error)) => {
                tracing::info!(job = id.0, %error, "job failed");
                store
                    .fail_job(&self.runner.worker, id, &error)
                    .await
                    .map(|_| ())
            }
            Err(JobError::Permanent(error)) => {
                tracing::warn!(job = id.0, %error, "job failed for good");
                store
                    .kill_job(&self.runner.worker, id, &error)
                    .await
                    .map(|_| ())
            }
            Err(JobError::Later { at, reason }) => {
                tracing::info!(job = id.0, %reason, at, "job postponed");
                store
                    .postpone_job(&self.runner.worker, id, at, &reason)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(error) = reported {
            // its lease will lapse and it runs again
            tracing::warn!(job = id.0, %error, "could not record a job's failure");
        }
    }

    /// Removes a job from the running ones if this task runs it; answers its kind and
    /// when it started if it did.
    fn forget_task(&mut self, id: JobId, task: tokio::task::Id) -> Option<(&'static str, Instant)> {
        match self.running.get(&id) {
            Some((abort, ..)) if abort.id() == task => self.forget(id),
            _ => None,
        }
    }

    /// Removes a job from the running ones; answers its kind and when it started if it
    /// was there.
    fn forget(&mut self, id: JobId) -> Option<(&'static str, Instant)> {
        let (_, kind, started) = self.running.remove(&id)?;
        if let Some(n) = self.running_per_kind.get_mut(kind) {
            *n = n.saturating_sub(1);
        }
        Some((kind, started))
    }

    async fn flush(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let done = std::mem::take(&mut self.done);
        if let Err(error) = self
            .runner
            .store
            .complete_jobs(&self.runner.worker, &done)
            .await
        {
            // their leases will lapse and they run again
            tracing::warn!(%error, jobs = done.len(), "could not complete jobs");
        }
    }

    async fn heartbeat(&mut self) {
        if self.running.is_empty() {
            return;
        }
        let ids: Vec<JobId> = self.running.keys().copied().collect();
        let held = match self
            .runner
            .store
            .heartbeat(&self.runner.worker, &ids, self.runner.lease_ms)
            .await
        {
            Ok(held) => held.into_iter().collect::<HashSet<_>>(),
            Err(error) => {
                tracing::warn!(%error, "heartbeat failed");
                return;
            }
        };
        for id in ids {
            if !held.contains(&id) {
                if let Some((abort, ..)) = self.running.get(&id) {
                    tracing::warn!(job = id.0, "lost a job's lease; stopping it here");
                    abort.abort();
                }
                self.forget(id);
            }
        }
    }

    async fn shut_down(mut self) {
        let deadline = tokio::time::Instant::now() + self.runner.shutdown_timeout;
        while !self.jobs.is_empty() {
            match tokio::time::timeout_at(deadline, self.jobs.join_next_with_id()).await {
                Ok(Some(result)) => self.finished(result).await,
                Ok(None) => break,
                Err(_) => break,
            }
        }
        self.flush().await;
        let rest: Vec<JobId> = self.running.keys().copied().collect();
        self.jobs.abort_all();
        while self.jobs.join_next().await.is_some() {}
        if !rest.is_empty() {
            match self
                .runner
                .store
                .release_jobs(&self.runner.worker, &rest)
                .await
            {
                Ok(n) => tracing::info!(jobs = n, "re-queued unfinished jobs"),
                Err(error) => {
                    tracing::warn!(%error, "could not re-queue jobs; their leases will lapse");
                }
            }
        }
    }
}
