//! The import job under a real runner, on the test database (SQLite, or PostgreSQL with
//! SIYU_TEST_DATABASE_URL): stored in parts with the job's progress, every row exactly
//! once when the runner dies mid-file and another takes over, and an import whose file
//! went missing ends failed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use siyu_domain::audit::Actor;
use siyu_domain::consent::ConsentChannel;
use siyu_domain::ids::TenantId;
use siyu_domain::import::{ImportJob, ImportKind, ImportStatus};
use siyu_domain::jobs::JobState;
use siyu_domain::order::Order;
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::NewTenant;
use siyu_runtime::{Runner, RunnerHandle};
use siyu_store::testing::TestDatabase;
use siyu_store::{OrderFilter, Store, StoreError, TenantScope};

async fn tenant(store: &Store) -> TenantId {
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new("imports", "admin@imports.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    tenant.id
}

fn runner(store: &Store, worker: &str, lease_ms: i64) -> RunnerHandle {
    Runner::new(store.clone(), worker)
        .handler(siyu_runtime::imports::handler())
        .lease(lease_ms)
        .poll(Duration::from_millis(50))
        .start()
}

/// Waits until the import has ended, for at most a minute.
async fn ended(scope: &TenantScope<'_>, id: i64) -> ImportJob {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let import = scope.get_import(id).await.unwrap();
        if import.status.is_finished() {
            return import;
        }
        if Instant::now() > until {
            let job = scope.get_job(import.job_id.unwrap()).await.unwrap();
            panic!("import {id} did not end: {import:?}; its job: {job:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every order of the tenant.
async fn all_orders(scope: &TenantScope<'_>) -> Vec<Order> {
    let mut all: Vec<Order> = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = scope
            .list_orders(&OrderFilter::default(), page)
            .await
            .unwrap();
        page.after = got.items.last().map(|o| o.id.0);
        all.extend(got.items);
        if got.next_cursor.is_none() {
            return all;
        }
    }
}

fn staff() -> Actor {
    Actor {
        kind: siyu_domain::audit::ActorKind::Staff,
        id: Some(1),
        label: "ops@imports.example.com".into(),
        ip: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_job_stores_its_file_in_parts_and_completes() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store).await);
    let mut csv = String::from("user_id,name,consent:sms,city\n");
    for n in 0..1_234 {
        csv.push_str(&format!("u-{n},客户{n},opt_out,上海\n"));
    }
    csv.push_str("u-bad,坏,maybe,北京\n"); // refused: line 1236
    let import = scope
        .create_import(
            ImportKind::Customers,
            "members.csv",
            &HashMap::new(),
            csv.clone().into_bytes(),
            &staff(),
        )
        .await
        .unwrap();
    assert_eq!(import.status, ImportStatus::Queued);
    let file = scope.import_run(import.id).await.unwrap().file.unwrap();
    let handle = runner(&store, "w1", 30_000);
    let done = ended(&scope, import.id).await;
    handle.shutdown().await;
    assert_eq!(done.status, ImportStatus::Completed, "{done:?}");
    assert_eq!(
        (done.processed_rows, done.stored_rows, done.rejected_rows),
        (1_235, 1_234, 1)
    );
    assert_eq!(done.rejects[0].line, 1_236);
    let job = scope.get_job(import.job_id.unwrap()).await.unwrap();
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.attempts, 1);
    assert_eq!(
        (job.progress.done, job.progress.total),
        (1_235, Some(1_235))
    );
    assert!(
        matches!(scope.get_file(file).await, Err(StoreError::NotFound(_))),
        "the file is deleted with the last part"
    );
    // every row's customer, whole: with its opt-out
    let mut customers = 0;
    let mut page = PageRequest::first(500);
    loop {
        let got = scope.list_customers(page, None).await.unwrap();
        page.after = got.items.last().map(|c| c.id.0);
        for customer in &got.items {
            assert!(
                !scope
                    .may_contact(customer.id, ConsentChannel::Sms)
                    .await
                    .unwrap()
            );
        }
        customers += got.items.len();
        if got.next_cursor.is_none() {
            break;
        }
    }
    assert_eq!(customers, 1_234);
}

/// The runner is dropped mid-file without shutting down (as a process killed with
/// SIGKILL: its tasks stop wherever they are, nothing is handed back), and another runner
/// takes the job once its lease runs out: every row is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_import_leaves_the_rest_to_another_and_no_row_is_stored_twice() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store).await);
    const ROWS: usize = 6_000;
    let mut csv = String::from("order_id,user_id,channel,ordered_at,sku,price,quantity\n");
    for i in 0..ROWS {
        // every fifth order has two item rows: rows of one order are one record
        csv.push_str(&format!(
            "O-{i:05},u-{},jd,2026-05-01 12:00,A,{}.00,1\n",
            i % 97,
            i % 50 + 1
        ));
        if i.is_multiple_of(5) {
            csv.push_str(&format!(
                "O-{i:05},u-{},jd,2026-05-01 12:00,B,1.00,2\n",
                i % 97
            ));
        }
    }
    let import = scope
        .create_import(
            ImportKind::Orders,
            "orders.csv",
            &HashMap::new(),
            csv.clone().into_bytes(),
            &staff(),
        )
        .await
        .unwrap();
    assert_eq!(import.total_rows, (ROWS + ROWS / 5) as i64);

    // the first runner, with connections of its own as a process has, stores a few
    // parts, then dies
    let own = store
        .with_own_connections()
        .await
        .unwrap()
        .expect("a database on disk or a server");
    let first = runner(&own, "dies", 400);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let now = scope.get_import(import.id).await.unwrap();
        if now.processed_rows >= 1_000 {
            break;
        }
        assert!(
            !now.status.is_finished(),
            "finished before it could be cut off"
        );
        assert!(Instant::now() < until, "no part stored: {now:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(first);
    // its connections end with it (a transaction cut off is rolled back)
    own.close().await;
    let cut = scope.get_import(import.id).await.unwrap();
    assert!(
        (cut.processed_rows as usize) < ROWS,
        "cut off mid-file: {cut:?}"
    );
    assert_eq!(cut.status, ImportStatus::Running);
    let job = scope.get_job(import.job_id.unwrap()).await.unwrap();
    assert_eq!(
        job.state,
        JobState::Running,
        "still leased to the dead runner"
    );

    // another runner takes it once the lease has lapsed, and finishes it
    let second = runner(&store, "takes-over", 400);
    let done = ended(&scope, import.id).await;
    second.shutdown().await;
    assert_eq!(done.status, ImportStatus::Completed, "{done:?}");
    assert_eq!(
        (done.processed_rows, done.stored_rows, done.rejected_rows),
        (ROWS as i64, ROWS as i64, 0),
        "each order counted once: {done:?}"
    );
    let job = scope.get_job(import.job_id.unwrap()).await.unwrap();
    assert_eq!(job.state, JobState::Done);
    assert!(job.attempts >= 2, "taken again: {job:?}");
    let orders = all_orders(&scope).await;
    let ids: HashSet<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!((orders.len(), ids.len()), (ROWS, ROWS), "every order once");
    for order in &orders {
        let n: usize = order.order_id[2..].parse().unwrap();
        let items = if n.is_multiple_of(5) { 2 } else { 1 };
        assert_eq!(order.items.len(), items, "{order:?}");
    }
    // the customers' figures are their orders'
    let buyer = orders.iter().find(|o| o.order_id == "O-00000").unwrap();
    let customer = scope.get_customer(buyer.customer_id).await.unwrap();
    let theirs = orders
        .iter()
        .filter(|o| o.customer_id == buyer.customer_id)
        .count();
    assert_eq!(customer.orders.count, theirs as i64);
    assert_eq!(theirs, ROWS.div_ceil(97));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_file_is_gone_ends_failed() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store).await);
    let import = scope
        .create_import(
            ImportKind::Customers,
            "x.csv",
            &HashMap::new(),
            b"user_id\nu-1\n".to_vec(),
            &staff(),
        )
        .await
        .unwrap();
    let file = scope.import_run(import.id).await.unwrap().file.unwrap();
    scope.delete_file(file).await.unwrap();
    let handle = runner(&store, "w1", 30_000);
    let done = ended(&scope, import.id).await;
    handle.shutdown().await;
    assert_eq!(done.status, ImportStatus::Failed);
    assert!(
        done.error.as_deref().unwrap_or_default().contains("file"),
        "{done:?}"
    );
    let job = scope.get_job(import.job_id.unwrap()).await.unwrap();
    assert_eq!(
        (job.state, job.attempts),
        (JobState::Dead, 1),
        "not tried again"
    );
}
