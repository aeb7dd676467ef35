//! The ingestor: a task and a thread per node that take tracked events in through
//! the ingest log (see `siyu_store::ingest_log` for why there is a log).
//!
//! - **The logger** gathers every tracking request waiting (group commit), appends all
//!   their events to the log in one transaction, and answers each request. A request is
//!   answered only after the commit that holds its events, so a 200 always means the
//!   events survive a crash.
//! - **The applier** (on nodes that work, not on `--role api` ones) applies the log to
//!   profiles, oldest first, in groups of up to
//!   [`APPLY_GROUP`] events (bigger groups write each shared page once). It runs on a
//!   thread of its own at the lowest scheduling priority (nice 19), with database
//!   connections of its own (whose SQLite threads inherit that priority): when the CPU
//!   is short, answering requests comes first and the profiles fall behind, rather
//!   than clients timing out; when it is not, the applier has it all. (Measured with
//!   `siyu bench ingest` on two cores: at nice 10 the applier still took about half the
//!   CPU under full load, and answers reached 61,000–89,000 events/s; at nice 19,
//!   75,000–103,000 (a build with no applier at all: 98,000–118,000); with SQLite's row
//!   buffer deepened too (`siyu_store`), 128,000–141,000. The back-pressure of
//!   `max_ingest_backlog` bounds how far the profiles fall behind.
//!   Under that full load other writers of the main SQLite file wait for the applier,
//!   so groups are paced to hold the writer about [`GROUP_HOLD`] each, and **requests
//!   that write go first**: while a signed-in API request that may write is being
//!   answered (any method but GET, HEAD and OPTIONS; the `Auth` extractor holds a
//!   [`WritingRequest`]), a sign-in, or a session being resolved, the applier begins
//!   no new group, for at most [`YIELD_AT_MOST`] before each group. Without
//!   that, a console save waited 0.13–5 s (p50 of a run) and up to 10 s: SQLite's busy
//!   handler sleeps up to 100 ms between tries, and the applier began its next group
//!   within milliseconds, so a waiting writer missed gap after gap; with it, 84–232 ms
//!   p50 and 430–640 ms at most. On PostgreSQL, with its row locks, the same saves
//!   waited 6.5–8.1 ms p50, 35–41 ms max, and the applier does not yield.)
//!
//! Answers come as soon as the events are logged (`queued` in the answer), as Segment's
//! own API answers: clients are not held to the speed of the profiles, which follow
//! within moments under ordinary load and catch up after a burst. With
//! `wait_for_profiles` an answer also waits for the applier, so it says what became of
//! each event (stored, duplicate) and a read right after it sees the profile, at the
//! cost of clients waiting for the profiles. Waiting answers are meant for one server
//! process: with several on one database, another may apply the events, and the answer
//! says `queued` after 10 s.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use siyu_store::{Backend, IngestItem, IngestOutcome, LogSeq, Store, StoreError};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// Events logged in one transaction at most.
const MAX_LOG_GROUP: usize = 20_000;
/// Events applied in one transaction at most: big enough that shared pages are written
/// once for many events, small enough that other writers of the main SQLite file wait
/// for it well under their 10 s busy timeout even when the applier is short of CPU.
pub const APPLY_GROUP: usize = 5_000;
/// About how long one group may take: other writers of the main SQLite file (a console
/// save) wait that long at most for the applier.
const GROUP_HOLD: Duration = Duration::from_millis(300);
/// The smallest group pacing makes.
const MIN_PACED_GROUP: usize = 250;
/// How long the applier lets requests that write go first before a group, at most:
/// longer than SQLite's busy handler sleeps between tries (100 ms at most), so a
/// request waiting for the writer gets it, and short beside a group ([`GROUP_HOLD`]),
/// so that requests held open (a slow upload, a long bulk change) slow the profiles
/// down by a part, never stop them.
const YIELD_AT_MOST: Duration = Duration::from_millis(250);

/// How old the logger's count of the log's backlog may be.
const BACKLOG_FRESH: Duration = Duration::from_secs(1);
/// Entries waited for beyond which answers that stopped waiting are forgotten.
const MAX_WAITED_ENTRIES: usize = 100_000;
/// Failures in a row of the oldest entry alone before it is set aside.
const SET_ASIDE_AFTER: u32 = 3;
/// How long an answer waits for its events to be applied before it answers `queued`.
const APPLY_WAIT: Duration = Duration::from_secs(10);
/// How often message ids past the deduplication window are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How often applied entries are deleted from the log (between appends, or on their
/// own when no request comes).
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Why events were not taken in.
#[derive(Debug, thiserror::Error)]
pub enum NotTaken {
    /// More events wait in the log than `max_ingest_backlog`: the profiles are too far
    /// behind to take more now.
    #[error("{0} tracked events are waiting to be applied to profiles; retry later")]
    Behind(i64),
    /// Logging failed (the cause is in the server's log).
    #[error("{0}")]
    Failed(String),
}

/// What the ingestor says of a request's events.
#[derive(Debug)]
pub enum Answer {
    /// Logged and applied: what became of each, in order.
    Applied(Vec<IngestOutcome>),
    /// Logged; they are applied to profiles later.
    Queued,
}

type Applied = oneshot::Receiver<Vec<IngestOutcome>>;

struct Job {
    items: Vec<IngestItem>,
    /// Answered once the events are logged, with a way to wait for their application
    /// when answers wait for profiles.
    logged: oneshot::Sender<Result<Option<Applied>, NotTaken>>,
}

/// A request waiting for its events to be applied.
struct Waiter {
    outcomes: Vec<Option<IngestOutcome>>,
    left: usize,
    reply: oneshot::Sender<Vec<IngestOutcome>>,
}

#[derive(Default)]
struct Waiting {
    /// Each waited-for entry: its waiter and its place in the waiter's request.
    by_seq: HashMap<LogSeq, (u64, usize)>,
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
}

struct Shared {
    /// Taken by the logger from before it logs until it has registered the waiters, so
    /// the applier never applies an entry before its waiter is known.
    waiting: Mutex<Waiting>,
    wake_applier: Notify,
    /// API requests that may write, being answered now: the applier lets them go first.
    requests_writing: AtomicUsize,
    /// Told when the last of them is answered.
    writes_done: Notify,
    /// Requests waiting for the applier to catch up (an erasure): it must not yield to
    /// them.
    awaiting_applier: AtomicUsize,
}

impl Shared {
    fn new() -> Self {
        Self {
            waiting: Mutex::new(Waiting::default()),
            wake_applier: Notify::new(),
            requests_writing: AtomicUsize::new(0),
            writes_done: Notify::new(),
            awaiting_applier: AtomicUsize::new(0),
        }
    }

    /// Returns once no API request that may write is being answered, or no later than
    /// `limit`, or at once while a request waits for the applier itself.
    async fn let_writers_go_first(&self, limit: Duration) {
        let started = tokio::time::Instant::now();
        while self.requests_writing.load(Ordering::Acquire) > 0
            && self.awaiting_applier.load(Ordering::Acquire) == 0
        {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return;
            }
            // the short timeout covers a wake-up given between the check and the wait
            let _ = tokio::time::timeout(
                left.min(Duration::from_millis(10)),
                self.writes_done.notified(),
            )
            .await;
        }
    }
}

/// Held while an API request that may write is answered (see [`Ingestor::writing`]).
pub struct WritingRequest(Arc<Shared>);

impl WritingRequest {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.requests_writing.fetch_add(1, Ordering::AcqRel);
        Self(shared.clone())
    }
}

impl Drop for WritingRequest {
    fn drop(&mut self) {
        if self.0.requests_writing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.writes_done.notify_waiters();
        }
    }
}

/// Held while a request waits for the applier (see [`Ingestor::wait_until_applied`]).
struct AwaitingApplier<'a>(&'a Shared);

impl<'a> AwaitingApplier<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.awaiting_applier.fetch_add(1, Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for AwaitingApplier<'_> {
    fn drop(&mut self) {
        self.0.awaiting_applier.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How tracked events are taken in.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// How long a messageId is remembered per source to drop retried events.
    pub dedup_window_ms: i64,
    /// Tracking answers wait for their events to be applied to profiles, rather than
    /// answering once the events are durably logged (`queued`).
    pub wait_for_profiles: bool,
    /// Tracking calls are answered 503 (SDKs retry) while this many events wait in the
    /// ingest log: the profiles are too far behind, and the log must not fill the disk.
    pub max_backlog: i64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            dedup_window_ms: 7 * 24 * 3600 * 1000,
            wait_for_profiles: false,
            max_backlog: 5_000_000,
        }
    }
}

/// A handle to the ingestor; cheap to clone. When the last handle is dropped the
/// applier stops (a group it was applying is rolled back, and applied by the next run).
#[derive(Clone)]
pub struct Ingestor {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    _stop_applier: Arc<oneshot::Sender<()>>,
}

/// The applier's niceness: the lowest, below the requests (0).
const APPLIER_NICE: i32 = 19;

impl Ingestor {
    /// Starts the logger on the current runtime, and the applier when `apply` (a node
    /// that works; an API-only node logs events for the workers to apply).
    pub fn start(store: Store, config: &IngestConfig, apply: bool) -> Self {
        let IngestConfig {
            dedup_window_ms,
            wait_for_profiles,
            max_backlog,
        } = *config;
        let (jobs, rx) = mpsc::channel::<Job>(1024);
        let shared = Arc::new(Shared::new());
        tokio::spawn(log_loop(
            store.clone(),
            rx,
            shared.clone(),
            wait_for_profiles,
            max_backlog,
        ));
        let (stop, stopped) = oneshot::channel();
        if apply {
            let applier_shared = shared.clone();
            let started = std::thread::Builder::new()
                .name("siyu-applier".into())
                .spawn(move || run_applier(store, applier_shared, dedup_window_ms, stopped));
            if let Err(err) = started {
                tracing::error!(error = %err, "the applier thread did not start");
            }
        }
        Self {
            jobs,
            shared,
            _stop_applier: Arc::new(stop),
        }
    }

    /// Says that an API request that may write is being answered, until the guard is
    /// dropped: on SQLite the applier begins no new group meanwhile (see the module
    /// documentation).
    pub fn writing(&self) -> WritingRequest {
        WritingRequest::new(&self.shared)
    }

    /// Waits until every event logged so far has been applied to profiles (or set
    /// aside), for at most `limit`: an erasure must not be followed by events tracked
    /// before it.
    /// Answers whether they were.
    pub async fn wait_until_applied(
        &self,
        store: &Store,
        limit: Duration,
    ) -> Result<bool, StoreError> {
        let _awaiting = AwaitingApplier::new(&self.shared);
        let through = store.logged_through().await?;
        let started = tokio::time::Instant::now();
        while !store.applied_through(through).await? {
            if started.elapsed() > limit {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(true)
    }

    /// Takes events in; returns once they are logged (or logging failed), and, when
    /// answers wait for profiles, once they are applied too.
    pub async fn submit(&self, items: Vec<IngestItem>) -> Result<Answer, NotTaken> {
        let (logged, answer) = oneshot::channel();
        self.jobs
            .send(Job { items, logged })
            .await
            .map_err(|_| NotTaken::Failed("the ingestor has stopped".to_owned()))?;
        let applied = answer
            .await
            .map_err(|_| NotTaken::Failed("the ingestor dropped the request".to_owned()))??;
        let Some(applied) = applied else {
            return Ok(Answer::Queued);
        };
        match tokio::time::timeout(APPLY_WAIT, applied).await {
            Ok(Ok(outcomes)) => Ok(Answer::Applied(outcomes)),
            // logged all the same: applied later (or by another process)
            Ok(Err(_)) | Err(_) => Ok(Answer::Queued),
        }
    }
}

async fn log_loop(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    wait: bool,
    max_backlog: i64,
) {
    let mut next_trim = tokio::time::Instant::now() + TRIM_EVERY;
    // how many events wait in the log, read again at most once a second
    let mut backlog: Option<(i64, tokio::time::Instant)> = None;
    // the last entry applied (SQLite), read with the backlog, for trims: the logger
    // reads the main database once a second, not at every trim
    let mut applied: Option<LogSeq> = None;
    loop {
        let first = tokio::select! {
            job = rx.recv() => match job {
                Some(job) => job,
                None => break,
            },
            // idle: trim what was applied meanwhile, so a quiet log is emptied too
            _ = tokio::time::sleep_until(next_trim) => {
                match store.log_applied_through().await {
                    Ok(seq) => applied = seq,
                    Err(err) => tracing::warn!(error = %err, "reading the log's last applied entry failed"),
                }
                next_trim = trim(&store, applied).await;
                continue;
            }
        };
        if tokio::time::Instant::now() >= next_trim {
            next_trim = trim(&store, applied).await;
        }
        let mut jobs = vec![first];
        let mut count = jobs[0].items.len();
        while count < MAX_LOG_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.items.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        if backlog.is_none_or(|(_, at)| at.elapsed() > BACKLOG_FRESH) {
            match store.log_backlog().await {
                Ok(n) => backlog = Some((n, tokio::time::Instant::now())),
                Err(err) => tracing::warn!(error = %err, "reading the ingest log's backlog failed"),
            }
            match store.log_applied_through().await {
                Ok(seq) => applied = seq,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the log's last applied entry failed")
                }
            }
        }
        if let Some((waiting, _)) = backlog.filter(|(n, _)| *n >= max_backlog) {
            tracing::warn!(
                waiting,
                "the ingest log is full: tracking calls are refused"
            );
            for job in jobs {
                let _ = job.logged.send(Err(NotTaken::Behind(waiting)));
            }
            continue;
        }
        // the events are moved, not copied: once logged they are read back from the log
        let mut items: Vec<IngestItem> = Vec::with_capacity(count);
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            answers.push((job.items.len(), job.logged));
            items.extend(job.items);
        }
        // held from before the append until the waiters are known, so the applier never
        // applies an entry before its waiter is registered (only when answers wait)
        let mut waiting = if wait {
            Some(shared.waiting.lock().await)
        } else {
            None
        };
        let seqs = match store.log_events(&items).await {
            Ok(seqs) => seqs,
            Err(err) => {
                drop(waiting);
                tracing::error!(error = %err, events = count, "logging events failed");
                for (_, logged) in answers {
                    let _ = logged.send(Err(NotTaken::Failed(err.to_string())));
                }
                continue;
            }
        };
        let mut seqs = seqs.into_iter();
        for (size, logged) in answers {
            let job_seqs: Vec<LogSeq> = seqs.by_ref().take(size).collect();
            let Some(waiting) = waiting.as_mut().filter(|_| size > 0) else {
                let _ = logged.send(Ok(None));
                continue;
            };
            let (reply, applied) = oneshot::channel();
            let id = waiting.next_id;
            waiting.next_id += 1;
            for (position, seq) in job_seqs.into_iter().enumerate() {
                waiting.by_seq.insert(seq, (id, position));
            }
            waiting.waiters.insert(
                id,
                Waiter {
                    outcomes: vec![None; size],
                    left: size,
                    reply,
                },
            );
            let _ = logged.send(Ok(Some(applied)));
        }
        if let Some(waiting) = waiting.as_mut()
            && waiting.by_seq.len() > MAX_WAITED_ENTRIES
        {
            // answers that stopped waiting (their entries applied by another process)
            forget_abandoned(waiting);
        }
        drop(waiting);
        shared.wake_applier.notify_one();
    }
}

/// Deletes a chunk of applied entries from the log (through `applied`, as last read);
/// answers when to trim next.
async fn trim(store: &Store, applied: Option<LogSeq>) -> tokio::time::Instant {
    if let Some(applied) = applied
        && let Err(err) = store.trim_log_through(applied).await
    {
        tracing::warn!(error = %err, "deleting applied entries from the log failed");
    }
    tokio::time::Instant::now() + TRIM_EVERY
}

fn forget_abandoned(waiting: &mut Waiting) {
    waiting.waiters.retain(|_, w| !w.reply.is_closed());
    let Waiting {
        by_seq, waiters, ..
    } = waiting;
    by_seq.retain(|_, (id, _)| waiters.contains_key(id));
}

/// The applier's thread: lowers its priority, opens its own connections and applies
/// the log until told to stop.
fn run_applier(
    store: Store,
    shared: Arc<Shared>,
    dedup_window_ms: i64,
    stopped: oneshot::Receiver<()>,
) {
    #[cfg(target_os = "linux")]
    // on Linux the nice value is the calling thread's, and threads it starts inherit it
    if let Err(err) = rustix::process::setpriority_process(None, APPLIER_NICE) {
        tracing::warn!(error = %err, "the applier runs at the requests' priority");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "the applier has no runtime: events stay in the log");
            return;
        }
    };
    runtime.block_on(async move {
        let own = match store.with_own_connections().await {
            Ok(own) => own,
            Err(err) => {
                tracing::warn!(error = %err, "the applier shares the requests' connections");
                None
            }
        };
        let applying = own.clone().unwrap_or(store);
        let mut stopped = stopped;
        loop {
            // a panic ends the task, not the applier: it starts again
            let task = tokio::spawn(apply_loop(
                applying.clone(),
                shared.clone(),
                dedup_window_ms,
            ));
            let abort = task.abort_handle();
            tokio::select! {
                joined = task => match joined {
                    Err(err) if err.is_panic() => {
                        tracing::error!("the applier panicked; it starts again in a second");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    _ => break,
                },
                _ = &mut stopped => {
                    abort.abort();
                    break;
                }
            }
        }
        if let Some(own) = own {
            own.close().await;
        }
    });
}

async fn apply_loop(store: Store, shared: Arc<Shared>, dedup_window_ms: i64) {
    // what an earlier run logged and did not apply (a crash, a stop under load)
    match store.log_backlog().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "applying events logged before the restart"),
        Err(err) => tracing::warn!(error = %err, "reading the ingest log's backlog failed"),
    }
    let mut last_prune = tokio::time::Instant::now();
    // a group failing for its data (not a busy or unreachable database, which is waited
    // out) is retried smaller and smaller, down to its oldest entry alone; an entry that
    // fails alone, again and again, is set aside so the rest can go on
    let mut limit = APPLY_GROUP;
    // a group's size also follows how fast groups went lately, so that one holds the
    // main file's writer for about GROUP_HOLD: short of CPU, groups get smaller
    let mut paced = APPLY_GROUP;
    let mut failures = 0;
    // SQLite has one writer: requests that write go before each group (PostgreSQL's
    // row locks let them write beside it)
    let yields = store.backend() == Backend::Sqlite;
    loop {
        loop {
            if yields {
                shared.let_writers_go_first(YIELD_AT_MOST).await;
            }
            let started = tokio::time::Instant::now();
            let asked = limit.min(paced);
            match store.apply_logged(asked).await {
                Ok(applied) if applied.is_empty() => break,
                Ok(applied) => {
                    // only a full group tells the pace (a few events say little)
                    if applied.len() >= asked {
                        let per_sec =
                            applied.len() as f64 / started.elapsed().as_secs_f64().max(1e-3);
                        paced = ((per_sec * GROUP_HOLD.as_secs_f64()) as usize)
                            .clamp(MIN_PACED_GROUP, APPLY_GROUP);
                    }
                    answer_waiters(&shared, applied).await;
                    limit = (limit * 2).min(APPLY_GROUP);
                    failures = 0;
                }
                Err(err) if err.is_transient() => {
                    tracing::warn!(error = %err, "applying logged events failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) if limit > 1 => {
                    tracing::warn!(error = %err, events = limit, "applying logged events failed; trying fewer");
                    limit = 1;
                }
                Err(err) => {
                    failures += 1;
                    if failures >= SET_ASIDE_AFTER {
                        failures = 0;
                        match store.set_aside_oldest_logged(&err.to_string()).await {
                            Ok(Some(seq)) => tracing::error!(seq, error = %err,
                                "a logged event that fails on its own is set aside in ingest_dead_letters"),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::error!(error = %e, "setting a logged event aside failed")
                            }
                        }
                    } else {
                        tracing::error!(error = %err, "applying a logged event failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
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
        // woken by the logger; the timer also picks up entries other processes logged
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.wake_applier.notified()).await;
    }
}

async fn answer_waiters(shared: &Shared, applied: Vec<(LogSeq, IngestOutcome)>) {
    let mut waiting = shared.waiting.lock().await;
    if waiting.by_seq.is_empty() {
        return;
    }
    let mut done = Vec::new();
    for (seq, outcome) in applied {
        let Some((id, position)) = waiting.by_seq.remove(&seq) else {
            continue;
        };
        if let Some(waiter) = waiting.waiters.get_mut(&id) {
            waiter.outcomes[position] = Some(outcome);
            waiter.left -= 1;
            if waiter.left == 0 {
                done.push(id);
            }
        }
    }
    for id in done {
        if let Some(waiter) = waiting.waiters.remove(&id) {
            let outcomes = waiter.outcomes.into_iter().flatten().collect();
            let _ = waiter.reply.send(outcomes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_applier_waits_for_requests_that_write_and_goes_on_once_they_are_answered() {
        let shared = Arc::new(Shared::new());
        let first = WritingRequest::new(&shared);
        let second = WritingRequest::new(&shared);
        let waiter = shared.clone();
        let yielded =
            tokio::spawn(async move { waiter.let_writers_go_first(Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!yielded.is_finished(), "two requests write");
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!yielded.is_finished(), "one request still writes");
        let answered = std::time::Instant::now();
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), yielded)
            .await
            .expect("the applier goes on once no request writes")
            .unwrap();
        assert!(answered.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn the_applier_yields_for_a_limited_time_and_not_to_a_request_waiting_for_it() {
        let shared = Arc::new(Shared::new());
        let _writes = WritingRequest::new(&shared);
        let started = std::time::Instant::now();
        shared
            .let_writers_go_first(Duration::from_millis(200))
            .await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "waited {waited:?}");
        assert!(waited < Duration::from_secs(2), "waited {waited:?}");
        // an erasure waits for the applier: yielding to it would only hold it up
        let awaiting = AwaitingApplier::new(&shared);
        let started = std::time::Instant::now();
        shared.let_writers_go_first(Duration::from_secs(30)).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        drop(awaiting);
        assert_eq!(shared.awaiting_applier.load(Ordering::Acquire), 0);
    }
}
