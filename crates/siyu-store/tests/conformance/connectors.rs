//! Connectors' shared records: calls counted against one limit, a pause that grows,
//! the shared token, callbacks taken once, all within the connector's tenant.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::connector::ConnectorKind;
use siyu_domain::ids::ConnectorId;
use siyu_store::testing::TestDatabase;
use siyu_store::{CallBudget, CallLimits, NewJob, StoreError};

use crate::support::{tenant, wecom};

#[tokio::test]
async fn calls_stay_within_the_window_and_pauses_grow_within_the_tenant() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "ca").await;
    let b = tenant(&store, "cb").await;
    let scope = store.tenant(a.id);
    let id = scope
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    let limits = CallLimits {
        per_minute: 120,
        per_hour: 1_000,
    };
    // two "nodes" asking at once never get more than the window holds together
    let other_node = store.tenant(a.id);
    let (x, y) = tokio::join!(
        scope.reserve_connector_calls(id, "batch", 100, limits),
        other_node.reserve_connector_calls(id, "batch", 100, limits)
    );
    let granted = |b: CallBudget| match b {
        CallBudget::Granted { calls, .. } => calls,
        CallBudget::WaitUntil { .. } => 0,
    };
    assert_eq!(granted(x.unwrap()) + granted(y.unwrap()), 120);
    assert!(matches!(
        scope
            .reserve_connector_calls(id, "batch", 1, limits)
            .await
            .unwrap(),
        CallBudget::WaitUntil { paused: None, .. }
    ));
    // another API has its own window
    assert!(matches!(
        scope
            .reserve_connector_calls(id, "get", 5, limits)
            .await
            .unwrap(),
        CallBudget::Granted {
            calls: 5,
            paused_before: false
        }
    ));

    let first = scope.pause_connector_api(id, "get", "45009").await.unwrap();
    let second = scope.pause_connector_api(id, "get", "45009").await.unwrap();
    assert_eq!((first.strikes, second.strikes), (1, 2));
    assert!(second.until - first.until >= 900, "{first:?} {second:?}");
    assert!(matches!(
        scope.reserve_connector_calls(id, "get", 1, limits).await.unwrap(),
        CallBudget::WaitUntil { paused: Some(p), .. } if p.strikes == 2
    ));
    assert_eq!(scope.connector_api_pauses(id).await.unwrap().len(), 1);
    scope.clear_connector_api_pause(id, "get").await.unwrap();
    assert!(scope.connector_api_pauses(id).await.unwrap().is_empty());

    // another tenant reaches none of it
    let theirs = store.tenant(b.id);
    for refused in [
        theirs
            .reserve_connector_calls(id, "get", 1, limits)
            .await
            .err(),
        theirs.pause_connector_api(id, "get", "x").await.err(),
        theirs.clear_connector_api_pause(id, "get").await.err(),
        theirs.drop_connector_token(id, 0).await.err(),
        theirs.save_connector_token(id, "t", i64::MAX).await.err(),
    ] {
        assert!(
            matches!(refused, Some(StoreError::NotFound("connector"))),
            "{refused:?}"
        );
    }
    assert!(theirs.connector_api_pauses(id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_token_is_shared_sealed_and_dropped_only_while_current() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "ta").await;
    let scope = store.tenant(a.id);
    let id = scope
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    assert!(scope.connector_token(id).await.unwrap().is_none());
    let far = siyu_store::now_ms() + 3_600_000;
    let kept = scope
        .save_connector_token(id, "token-one", far)
        .await
        .unwrap();
    assert_eq!(
        scope.connector_token(id).await.unwrap().unwrap().token,
        "token-one"
    );
    // a newer token another node kept is not dropped by an old one's refusal
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    scope
        .save_connector_token(id, "token-two", far)
        .await
        .unwrap();
    scope
        .drop_connector_token(id, kept.fetched_at)
        .await
        .unwrap();
    assert_eq!(
        scope.connector_token(id).await.unwrap().unwrap().token,
        "token-two"
    );
    // an expired one is not given out
    scope
        .save_connector_token(id, "old", siyu_store::now_ms() - 1)
        .await
        .unwrap();
    assert!(scope.connector_token(id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_callback_is_taken_once_with_its_job() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "cba").await;
    let b = tenant(&store, "cbb").await;
    let scope = store.tenant(a.id);
    let id = scope
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    let job = || NewJob::new("wecom.callback", json!({"n": 1}));
    let first = scope
        .accept_connector_callback(id, "add:u1:e1:1700000000", job())
        .await
        .unwrap();
    assert!(first.is_some());
    let again = scope
        .accept_connector_callback(id, "add:u1:e1:1700000000", job())
        .await
        .unwrap();
    assert_eq!(again, None, "a repeat makes no second job");
    let theirs = store
        .tenant(b.id)
        .accept_connector_callback(id, "other", job())
        .await;
    assert!(matches!(theirs, Err(StoreError::NotFound("connector"))));
    assert!(matches!(
        scope
            .accept_connector_callback(ConnectorId(id.0 + 99), "k", job())
            .await,
        Err(StoreError::NotFound("connector"))
    ));
    // a callback's URL names only the connector: its tenant is found across tenants
    let found = store.connector_for_callback(id).await.unwrap().unwrap();
    assert_eq!(found.tenant, a.id);
    assert_eq!(found.kind, ConnectorKind::Wecom);
    assert_eq!(
        store
            .connector_for_callback(ConnectorId(id.0 + 99))
            .await
            .unwrap(),
        None
    );
}

/// WeCom sends several events at once (and again when slow to answer): callbacks taken
/// side by side each commit, none refused a lock.
#[tokio::test]
async fn callbacks_taken_side_by_side_all_commit() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "cbc").await;
    let id = store
        .tenant(a.id)
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .tenant(a.id)
                    .accept_connector_callback(
                        id,
                        &format!("key-{}", i % 8),
                        NewJob::new("wecom.callback", json!({"n": i})).for_tenant(a.id),
                    )
                    .await
            })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            made += 1;
        }
    }
    assert_eq!(made, 8, "one job per key");
}
