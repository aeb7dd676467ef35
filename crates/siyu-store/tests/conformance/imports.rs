//! Imports as durable jobs: made with their file and job in one transaction (or, for a
//! file that cannot be read, not at all), stored in parts that each carry the import's
//! position, and never stored by a worker that lost its job.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use siyu_domain::audit::Actor;
use siyu_domain::import::{IMPORT_JOB_KIND, ImportJobPayload, ImportKind, ImportStatus};
use siyu_domain::jobs::JobState;
use siyu_domain::order::Order;
use siyu_domain::page::PageRequest;
use siyu_store::testing::TestDatabase;
use siyu_store::{ImportPart, OrderFilter, StoreError, TenantScope};

use crate::support::{audit, invalid_field, tenant};

/// `n` orders of 50 customers, one row each, in order of their number.
pub fn orders_csv(n: usize) -> String {
    let mut csv = String::from("order_id,user_id,channel,ordered_at,amount\n");
    for i in 0..n {
        csv.push_str(&format!(
            "O-{i:05},u-{},tmall,2026-03-01 10:00,{}.50\n",
            i % 50,
            i % 90 + 1
        ));
    }
    csv
}

/// Every order of the tenant.
pub async fn all_orders(scope: &TenantScope<'_>) -> Vec<Order> {
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

fn actor() -> Actor {
    crate::support::staff("ops@acme.example.com")
}

#[tokio::test]
async fn an_import_is_made_with_its_file_and_job_or_not_at_all() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "acme").await.id);
    let none = HashMap::new();
    // not UTF-8, a quote never closed, a header that makes no records: nothing made
    let refused = [
        (&b"user_id,name\nu-1,\xc0\xee\n"[..], "file"),
        (&b"user_id,name\nu-1,\"open\nu-2,x\n"[..], "file"),
        (&b"name,city\nx,y\n"[..], "header"),
    ];
    for (bytes, field) in refused {
        let made = scope
            .create_import(
                ImportKind::Customers,
                "bad.csv",
                &none,
                bytes.to_vec(),
                &actor(),
            )
            .await;
        assert_eq!(invalid_field(made), field);
    }
    assert!(
        scope
            .list_imports(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        store
            .claim_jobs("w", &[IMPORT_JOB_KIND], 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    if let Some(dir) = store.files_dir() {
        assert!(!dir.exists() || std::fs::read_dir(dir).unwrap().count() == 0);
    }

    let mapping = HashMap::from([("会员".to_owned(), "user_id".to_owned())]);
    let bytes = "会员,name\nu-1,甲\nu-2,乙\n".as_bytes();
    let import = scope
        .create_import(
            ImportKind::Customers,
            "members.csv",
            &mapping,
            bytes.to_vec(),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(import.status, ImportStatus::Queued);
    assert_eq!((import.total_rows, import.processed_rows), (2, 0));
    assert_eq!(import.created_by, "ops@acme.example.com");
    let job = scope
        .get_job(import.job_id.expect("its job"))
        .await
        .unwrap();
    assert_eq!(
        (job.state, job.kind.as_str()),
        (JobState::Waiting, IMPORT_JOB_KIND)
    );
    let payload: ImportJobPayload = serde_json::from_value(job.payload).unwrap();
    assert_eq!(payload.import_id, import.id);
    assert_eq!(payload.actor, actor());
    let run = scope.import_run(import.id).await.unwrap();
    assert_eq!((run.items_read, run.mapping.clone()), (0, mapping));
    let (file, stored) = scope.get_file(run.file.expect("its file")).await.unwrap();
    assert_eq!(
        (file.name.as_str(), stored.as_slice()),
        ("members.csv", bytes)
    );
}

#[tokio::test]
async fn parts_carry_the_position_and_a_worker_that_lost_the_job_stores_nothing() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "acme").await.id);
    let csv = orders_csv(1_200);
    let import = scope
        .create_import(
            ImportKind::Orders,
            "orders.csv",
            &HashMap::new(),
            csv.clone().into_bytes(),
            &actor(),
        )
        .await
        .unwrap();

    // w1 takes the job and stores the first part
    let w1 = store
        .claim_jobs("w1", &[IMPORT_JOB_KIND], 1, 200)
        .await
        .unwrap()
        .remove(0);
    let mut run1 = scope.import_run(import.id).await.unwrap();
    let (_, bytes) = scope.get_file(run1.file.unwrap()).await.unwrap();
    let mut rows1 = run1.reader(&bytes[..]).unwrap();
    assert_eq!(
        scope
            .import_part(&mut run1, &mut rows1, &w1, &actor())
            .await
            .unwrap(),
        ImportPart::Stored
    );
    let now = scope.get_import(import.id).await.unwrap();
    assert_eq!(
        (now.status, now.processed_rows, now.stored_rows),
        (ImportStatus::Running, 500, 500)
    );
    let job = scope.get_job(w1.id).await.unwrap();
    assert_eq!((job.progress.done, job.progress.total), (500, Some(1_200)));
    assert_eq!(all_orders(&scope).await.len(), 500);

    // w1's lease runs out and w2 takes the job: w1's next part stores nothing
    tokio::time::sleep(Duration::from_millis(250)).await;
    let w2 = store
        .claim_jobs("w2", &[IMPORT_JOB_KIND], 1, 30_000)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((w2.id, w2.attempts), (w1.id, 2));
    assert_eq!(
        scope
            .import_part(&mut run1, &mut rows1, &w1, &actor())
            .await
            .unwrap(),
        ImportPart::NotHeld
    );
    assert_eq!(all_orders(&scope).await.len(), 500);
    assert_eq!(
        scope.get_import(import.id).await.unwrap().processed_rows,
        500
    );

    // w2 continues where the import stands
    let mut run2 = scope.import_run(import.id).await.unwrap();
    assert_eq!(run2.items_read, 500);
    let mut rows2 = run2.reader(&bytes[..]).unwrap();
    let mut parts = vec![];
    loop {
        let part = scope
            .import_part(&mut run2, &mut rows2, &w2, &actor())
            .await
            .unwrap();
        parts.push(part);
        if part != ImportPart::Stored {
            break;
        }
    }
    assert_eq!(parts, [ImportPart::Stored, ImportPart::Completed]);
    let done = scope.get_import(import.id).await.unwrap();
    assert_eq!(done.status, ImportStatus::Completed, "{done:?}");
    assert_eq!(
        (done.processed_rows, done.stored_rows, done.rejected_rows),
        (1_200, 1_200, 0)
    );
    let orders = all_orders(&scope).await;
    let ids: HashSet<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!((orders.len(), ids.len()), (1_200, 1_200), "every row once");
    let job = scope.get_job(w2.id).await.unwrap();
    assert_eq!(job.state, JobState::Done, "completed with the last part");
    assert_eq!(job.progress.done, 1_200);
    assert!(matches!(
        scope.get_file(run1.file.unwrap()).await,
        Err(StoreError::NotFound("file"))
    ));
    assert_eq!(audit(&scope, "import.completed").await.len(), 1);
    // each customer's figures follow their orders
    let customer = orders[0].customer_id;
    let c = scope.get_customer(customer).await.unwrap();
    assert_eq!(c.orders.count, 24);

    // a stale try stores nothing, even with the job gone
    assert_eq!(
        scope
            .import_part(&mut run1, &mut rows1, &w1, &actor())
            .await
            .unwrap(),
        ImportPart::NotHeld
    );
    assert!(!scope.fail_import(import.id, &w2, "late").await.unwrap());
    assert_eq!(
        scope.get_import(import.id).await.unwrap().status,
        ImportStatus::Completed
    );
}

#[tokio::test]
async fn a_failed_import_keeps_what_it_stored_and_its_job_dying_shows_it_failed() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "acme").await.id);
    let make = async || {
        scope
            .create_import(
                ImportKind::Orders,
                "o.csv",
                &HashMap::new(),
                orders_csv(600).into_bytes(),
                &actor(),
            )
            .await
            .unwrap()
    };
    let first = make().await;
    let job = store
        .claim_jobs("w1", &[IMPORT_JOB_KIND], 1, 30_000)
        .await
        .unwrap()
        .remove(0);
    let mut run = scope.import_run(first.id).await.unwrap();
    let (_, bytes) = scope.get_file(run.file.unwrap()).await.unwrap();
    let mut rows = run.reader(&bytes[..]).unwrap();
    scope
        .import_part(&mut run, &mut rows, &job, &actor())
        .await
        .unwrap();
    assert!(
        scope
            .fail_import(first.id, &job, "the database went away")
            .await
            .unwrap()
    );
    let failed = scope.get_import(first.id).await.unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("the database went away"));
    assert_eq!(failed.processed_rows, 500, "what was stored stays stored");
    assert!(
        scope.get_file(run.file.unwrap()).await.is_err(),
        "its file is deleted"
    );

    // a job that died before its import could say so: the import reads as failed
    let second = make().await;
    let job = store
        .claim_jobs("w1", &[IMPORT_JOB_KIND], 1, 30_000)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(job.id, second.job_id.unwrap());
    store
        .kill_job("w1", job.id, "the payload does not read")
        .await
        .unwrap();
    let shown = scope.get_import(second.id).await.unwrap();
    assert_eq!(shown.status, ImportStatus::Failed);
    assert_eq!(shown.error.as_deref(), Some("the payload does not read"));
    let listed = scope.list_imports(PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items[0], shown);
}
