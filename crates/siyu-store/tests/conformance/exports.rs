//! Export files: stored with their job's completion, once, by the worker holding it;
//! read within the job's reach; forgotten with their file.

use serde_json::json;
use siyu_domain::jobs::JobState;
use siyu_store::testing::TestDatabase;
use siyu_store::{NewJob, StoreError};

use crate::support::tenant;

#[tokio::test]
async fn an_export_file_is_stored_with_its_jobs_completion_by_the_worker_holding_it() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "exports").await.id;
    let other = tenant(&store, "others").await.id;
    let scope = store.tenant(t);
    let id = scope
        .enqueue(&[NewJob::new("customers.export", json!({}))])
        .await
        .unwrap()[0]
        .unwrap();
    let claimed = store
        .claim_jobs("holder", &["customers.export"], 1, 30_000)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, id);
    assert!(matches!(
        scope.export_file(id).await,
        Err(StoreError::NotFound(_))
    ));
    let csv = b"id,name\n1,Li\n".to_vec();
    // a worker that does not hold the job stores nothing
    assert!(
        !scope
            .finish_export(id, "stranger", "c.csv", "text/csv", csv.clone(), 1)
            .await
            .unwrap()
    );
    assert!(scope.export_file(id).await.is_err());
    assert_eq!(scope.get_job(id).await.unwrap().state, JobState::Running);
    // the holder stores it and completes the job at once
    assert!(
        scope
            .finish_export(id, "holder", "c.csv", "text/csv", csv.clone(), 1)
            .await
            .unwrap()
    );
    assert_eq!(scope.get_job(id).await.unwrap().state, JobState::Done);
    let (file, bytes) = scope.export_file(id).await.unwrap();
    assert_eq!((file.name.as_str(), bytes), ("c.csv", csv.clone()));
    // a second finish of the done job stores nothing more
    assert!(
        !scope
            .finish_export(id, "holder", "c.csv", "text/csv", csv, 1)
            .await
            .unwrap()
    );
    // another tenant finds nothing
    assert!(matches!(
        store.tenant(other).export_file(id).await,
        Err(StoreError::NotFound(_))
    ));
    // forgotten after its time, file and all
    assert_eq!(
        store
            .prune_exports(siyu_store::now_ms() - 60_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.prune_exports(siyu_store::now_ms() + 1).await.unwrap(),
        1
    );
    assert!(matches!(
        scope.export_file(id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope.file_info(file.id).await,
        Err(StoreError::NotFound(_))
    ));
}
