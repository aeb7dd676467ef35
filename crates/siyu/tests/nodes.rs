//! Several `siyu serve` processes on one database, as a deployment runs them: jobs run
//! exactly once across nodes, every node takes work, and a node killed with SIGKILL in
//! the middle of a job loses and duplicates nothing, and a mass send whose batches run
//! on both nodes, each batch more than once, gives each customer one message. Runs on
//! SQLite by default and on PostgreSQL when SIYU_TEST_DATABASE_URL is set.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::ids::{JobId, TenantId};
use siyu_domain::jobs::{JobState, kind};
use siyu_domain::tenancy::NewTenant;
use siyu_store::testing::TestDatabase;
use siyu_store::{NewJob, Store};
use tokio::process::{Child, Command};

const SIYU: &str = env!("CARGO_BIN_EXE_siyu");

/// A `siyu serve` process.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    /// Starts `siyu serve` with a role and a config file, and waits until it is healthy.
    async fn start(db: &TestDatabase, role: &str, config: &std::path::Path) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(SIYU)
            .args(["serve", "--listen", &listen, "--role", role])
            .args(["--database-url", &db.url, "--config"])
            .arg(config)
            .env_remove("SIYU_SECRET_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("siyu serve starts");
        let node = Node {
            child,
            base: format!("http://{listen}"),
        };
        for _ in 0..200 {
            if let Ok(r) = reqwest::get(format!("{}/healthz", node.base)).await
                && r.status() == 200
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} did not become healthy", node.base);
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        assert!(
            std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    async fn stop(mut self) {
        self.signal("-TERM");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("a node stops within 30 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

async fn tenant(store: &Store) -> TenantId {
    let new = NewTenant::new("nodes", "admin@nodes.example.com", "nodes-pass-7a").unwrap();
    store.create_tenant(&new, &Actor::cli()).await.unwrap().0.id
}

fn config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("siyu.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits until `check` holds, for at most `within`.
async fn eventually<T>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let until = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < until,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_nodes_run_ten_thousand_jobs_each_once_and_both_take_work() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, "");
    let api = Node::start(&db, "api", &config).await;
    let first = Node::start(&db, "worker", &config).await;
    let second = Node::start(&db, "worker", &config).await;
    // enqueued here (a third process), in batches of 1,000 as a mass send would
    let mut enqueued = HashSet::new();
    for _ in 0..10 {
        let jobs: Vec<NewJob> = (0..1_000)
            .map(|_| NewJob::new(kind::PROBE, json!({})).for_tenant(tenant))
            .collect();
        for id in store.enqueue(&jobs).await.unwrap() {
            enqueued.insert(id.expect("no unique key: every job is made").0);
        }
    }
    assert_eq!(enqueued.len(), 10_000);
    let runs = eventually(Duration::from_secs(120), "10,000 probe runs", async || {
        let runs = store.probe_runs().await.unwrap();
        (runs.len() >= 10_000).then_some(runs)
    })
    .await;
    // a moment for any second run to show
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = store.probe_runs().await.unwrap().len().max(runs.len());
    assert_eq!(runs, 10_000, "each job ran once");
    let recorded: HashSet<i64> = store
        .probe_runs()
        .await
        .unwrap()
        .iter()
        .map(|r| r.job_id)
        .collect();
    assert_eq!(recorded, enqueued, "every job enqueued ran, and no other");
    let mut per_worker: HashMap<String, usize> = HashMap::new();
    for run in store.probe_runs().await.unwrap() {
        *per_worker.entry(run.worker).or_default() += 1;
    }
    assert_eq!(
        per_worker.len(),
        2,
        "both workers took work: {per_worker:?}"
    );
    assert!(
        per_worker.values().all(|n| *n >= 100),
        "both workers took a real share: {per_worker:?}"
    );
    let scope = store.tenant(tenant);
    for id in enqueued.iter().take(50) {
        assert_eq!(
            scope.get_job(JobId(*id)).await.unwrap().state,
            JobState::Done
        );
    }
    // the API node serves the API (a sign-in is asked for) and ran no job
    assert_eq!(
        reqwest::get(format!("{}/api/v1/jobs", api.base))
            .await
            .unwrap()
            .status(),
        401
    );
    first.stop().await;
    second.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn a_node_killed_in_the_middle_of_a_job_leaves_it_to_another_which_runs_it_once() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, "job_lease_secs = 2\n");
    let doomed = Node::start(&db, "worker", &config).await;
    let id = store
        .enqueue(&[NewJob::new(kind::PROBE, json!({"sleep_ms": 3_000})).for_tenant(tenant)])
        .await
        .unwrap()[0]
        .unwrap();
    let scope = store.tenant(tenant);
    eventually(Duration::from_secs(10), "the job running", async || {
        (scope.get_job(id).await.unwrap().state == JobState::Running).then_some(())
    })
    .await;
    doomed.signal("-KILL");
    let started = Instant::now();
    let survivor = Node::start(&db, "worker", &config).await;
    let job = eventually(Duration::from_secs(30), "the job done", async || {
        let job = scope.get_job(id).await.unwrap();
        (job.state == JobState::Done).then_some(job)
    })
    .await;
    assert_eq!(job.attempts, 2, "taken again once its lease ran out");
    // the lease (2 s) ran out, then the probe's 3 s
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let runs = store.probe_runs().await.unwrap();
    assert_eq!(runs.len(), 1, "run once: {runs:?}");
    assert_eq!(runs[0].job_id, id.0);
    survivor.stop().await;
}

/// How many jobs of a kind a node ran, from its `/metrics`.
async fn runs_of(node: &Node, kind: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("siyu_jobs_runs_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn two_nodes_on_one_database_send_each_customer_of_a_mass_send_one_message() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    // ten sandbox batches of 5,000
    let customers = scope.seed_customers("nodes-", 50_000).await.unwrap();
    let role = scope.role_by_name("admin").await.unwrap();
    let (_, token) = scope
        .create_api_token("nodes", &role, None, None, &Actor::cli())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, "");
    let first = Node::start(&db, "all", &config).await;
    let second = Node::start(&db, "all", &config).await;
    let made: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/broadcasts", first.base))
        .bearer_auth(&token)
        .json(&json!({"name": "two nodes", "audience": "everyone", "text": "老朋友专享"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = siyu_domain::ids::BroadcastId(made["id"].as_i64().unwrap());
    // once planned, every batch's job is enqueued twice more (as a retry racing the
    // first run would be), due a moment later so that both nodes, polling, find them at
    // once and run copies of the same batch side by side
    eventually(Duration::from_secs(60), "the send planned", async || {
        scope
            .get_broadcast(id)
            .await
            .unwrap()
            .recipients
            .map(|_| ())
    })
    .await;
    let due = siyu_store::now_ms() + 1_500;
    let copies: Vec<NewJob> = (0..2)
        .flat_map(|_| 0..10)
        .map(|batch| {
            NewJob::new(
                kind::BROADCAST_BATCH,
                json!({"broadcast_id": id.0, "batch": batch}),
            )
            .for_tenant(tenant)
            .run_at(due)
        })
        .collect();
    store.enqueue(&copies).await.unwrap();
    let send = eventually(Duration::from_secs(180), "the send sent", async || {
        let send = scope.get_broadcast(id).await.unwrap();
        (send.state == siyu_domain::engagement::broadcast::BroadcastState::Sent).then_some(send)
    })
    .await;
    assert_eq!(send.recipients, Some(customers.len() as i64));
    assert_eq!(send.sent, customers.len() as i64);
    // a moment for a second delivery of any batch to show
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = scope.sandbox_count(id).await.unwrap();
    assert_eq!(
        received.messages,
        customers.len() as i64,
        "one message each"
    );
    assert_eq!(received.customers, customers.len() as i64);
    assert_eq!((received.missed, received.strangers), (0, 0));
    // every copy ran (on one node or the other) and sent nothing more
    let batches = eventually(Duration::from_secs(60), "every copy run", async || {
        let runs = (
            runs_of(&first, "broadcast.batch").await,
            runs_of(&second, "broadcast.batch").await,
        );
        (runs.0 + runs.1 >= 30).then_some(runs)
    })
    .await;
    // which node ran what is the queue's choice (on PostgreSQL both are woken; on
    // SQLite the other node polls), so it is shown, not asserted
    eprintln!("batch runs per node: {batches:?}");
    let received = scope.sandbox_count(id).await.unwrap();
    assert_eq!(received.messages, customers.len() as i64, "still one each");
    first.stop().await;
    second.stop().await;
}
