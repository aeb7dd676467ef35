//! Audience recorders' leases: one worker records a tenant at a time, another takes
//! over when the lease runs out or is given up, from where the first one got.

use siyu_store::RecorderState;
use siyu_store::testing::TestDatabase;

use crate::support::tenant;

#[tokio::test]
async fn one_worker_holds_a_tenants_recorder_and_another_takes_over_where_it_stopped() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "recorders").await.id;
    let first = store.take_recorder(t, "node-a", 60_000).await.unwrap();
    assert_eq!(
        first,
        Some(RecorderState::default()),
        "a new tenant starts from nothing"
    );
    assert_eq!(
        store.take_recorder(t, "node-b", 60_000).await.unwrap(),
        None
    );
    // the holder renews, and saves how far it got
    let state = RecorderState {
        recorded_through: 42,
        full_pass_day: Some(20_000),
        settings_version: Some(7),
        cut_points: Some("cuts".into()),
        counted_at: Some(1_000),
    };
    assert!(
        store
            .take_recorder(t, "node-a", 60_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.save_recorder(t, "node-a", &state).await.unwrap());
    assert!(
        !store.save_recorder(t, "node-b", &state).await.unwrap(),
        "not the holder"
    );
    // node-a stops and gives its recorders up: node-b goes on from 42
    store.release_recorders("node-a").await.unwrap();
    assert_eq!(
        store.take_recorder(t, "node-b", 1).await.unwrap(),
        Some(state.clone())
    );
    assert!(!store.save_recorder(t, "node-a", &state).await.unwrap());
    // node-b's short lease runs out without a renewal: node-a takes it again
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(
        store.take_recorder(t, "node-a", 60_000).await.unwrap(),
        Some(state)
    );
}

#[tokio::test]
async fn changed_customers_are_a_tenants_own_after_the_recorded_change() {
    let db = TestDatabase::create().await;
    let store = &db.store().await;
    let shop = tenant(store, "shop").await.id;
    let other = tenant(store, "other").await.id;
    let scope = store.tenant(shop);
    let before = store.last_customer_change().await.unwrap();
    let a = crate::support::customer(&scope, "rec-a").await;
    let through = store.last_customer_change().await.unwrap();
    let b = crate::support::customer(&scope, "rec-b").await;
    let last = store.last_customer_change().await.unwrap();
    let mut changed = store
        .changed_customers(shop, before, last)
        .await
        .unwrap()
        .unwrap();
    changed.sort_unstable();
    assert_eq!(changed, [a.0, b.0]);
    assert_eq!(
        store.changed_customers(shop, through, last).await.unwrap(),
        Some(vec![b.0])
    );
    assert_eq!(
        store.changed_customers(other, before, last).await.unwrap(),
        Some(vec![])
    );
}
