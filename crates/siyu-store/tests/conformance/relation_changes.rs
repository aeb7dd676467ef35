//! WeCom's relation changes: taken once each with the connector's job, applied once
//! (a group applied again is refused), never left waiting without a job; on SQLite,
//! kept in the intake file, whose numbering survives its loss, and moved there from
//! the main file on an upgrade.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_domain::jobs::JobState;
use siyu_store::testing::TestDatabase;
use siyu_store::{RelationChanges, Store, StoreError, TakenCallback};

use crate::support::{options_with_key, tenant, wecom};

const KIND: &str = siyu_domain::jobs::kind::WECOM_RELATION_CHANGES;

async fn take(store: &Store, tenant: TenantId, connector: ConnectorId, keys: &[&str]) -> Vec<bool> {
    let events: Vec<String> = keys
        .iter()
        .map(|k| json!({"Event": "change_external_contact", "key": k}).to_string())
        .collect();
    let taken: Vec<TakenCallback<'_>> = keys
        .iter()
        .zip(&events)
        .map(|(key, event)| TakenCallback {
            tenant,
            connector,
            dedupe_key: key,
            event,
        })
        .collect();
    store.take_wecom_relation_changes(&taken).await.unwrap()
}

/// Claims the connector's job and applies everything waiting, as the job does (with
/// no change to apply: the bookkeeping is what is tested); answers the group applied
/// (first, through) and whether the job was completed with it.
async fn apply_waiting(
    store: &Store,
    tenant: TenantId,
    connector: ConnectorId,
) -> ((i64, i64), Result<bool, StoreError>) {
    let scope = store.tenant(tenant);
    let claimed = store.claim_jobs("w", &[KIND], 1, 30_000).await.unwrap();
    assert_eq!(claimed.len(), 1, "the connector's job waits");
    let waiting = scope
        .waiting_wecom_relation_changes(connector, 1_000)
        .await
        .unwrap();
    let group = (
        waiting.first().map_or(0, |w| w.id),
        waiting.last().map_or(0, |w| w.id),
    );
    let applied = apply(store, tenant, connector, group, claimed[0].id).await;
    (group, applied)
}

async fn apply(
    store: &Store,
    tenant: TenantId,
    connector: ConnectorId,
    (first, through): (i64, i64),
    job: siyu_domain::ids::JobId,
) -> Result<bool, StoreError> {
    let scope = store.tenant(tenant);
    let actor = Actor::cli();
    let context = scope.wecom_context(connector, &actor).await.unwrap();
    scope
        .apply_wecom_relation_changes(
            connector,
            &context,
            &RelationChanges {
                first,
                through,
                changes: &[],
                follow_ups: Vec::new(),
            },
            job,
            "w",
            &actor,
        )
        .await
        .map(|applied| applied.drained)
}

async fn live_jobs(store: &Store, tenant: TenantId) -> usize {
    store
        .tenant(tenant)
        .list_jobs(
            siyu_domain::page::PageRequest::first(50),
            &siyu_store::JobFilter {
                kind: Some(KIND.into()),
                state: None,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|j| matches!(j.state, JobState::Waiting | JobState::Running))
        .count()
}

#[tokio::test]
async fn relation_changes_are_taken_once_applied_once_and_never_left_without_a_job() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "rca").await;
    let b = tenant(&store, "rcb").await;
    let scope = store.tenant(a.id);
    let id = scope
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    assert_eq!(
        take(&store, a.id, id, &["add:1", "add:2", "add:1"]).await,
        [true, true, false],
        "a key twice is taken once"
    );
    assert_eq!(take(&store, a.id, id, &["add:2"]).await, [false]);
    assert_eq!(
        live_jobs(&store, a.id).await,
        1,
        "one job for the connector"
    );
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .tenant(b.id)
            .waiting_wecom_relation_change_count(id)
            .await
            .unwrap(),
        0,
        "another tenant sees none of them"
    );

    let (group, drained) = apply_waiting(&store, a.id, id).await;
    assert!(drained.unwrap(), "nothing else waits: the job is done");
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        0
    );
    assert_eq!(live_jobs(&store, a.id).await, 0);

    // a change after the job completed gets a job of its own
    assert_eq!(take(&store, a.id, id, &["del:1"]).await, [true]);
    assert_eq!(live_jobs(&store, a.id).await, 1);
    let claimed = store.claim_jobs("w", &[KIND], 1, 30_000).await.unwrap();
    // the group already applied, applied again (an applier that read it before the
    // first committed), is refused and changes nothing
    let again = apply(&store, a.id, id, group, claimed[0].id).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        1
    );
    let waiting = scope.waiting_wecom_relation_changes(id, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].id > group.1, "numbers never go back");
    assert!(waiting[0].event.contains("del:1"));
    let applied = apply(
        &store,
        a.id,
        id,
        (waiting[0].id, waiting[0].id),
        claimed[0].id,
    )
    .await;
    assert!(applied.unwrap());
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        0
    );

    // a deleted connector's changes go with it
    assert_eq!(take(&store, a.id, id, &["add:3"]).await, [true]);
    scope.delete_connector(id, &Actor::cli()).await.unwrap();
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a_lost_sqlite_intake_file_numbers_changes_after_the_last_applied() {
    let db = TestDatabase::create().await;
    if db.is_postgres() {
        return; // PostgreSQL keeps relation changes in the database itself
    }
    let store = db.store().await;
    let a = tenant(&store, "rcl").await;
    let id = store
        .tenant(a.id)
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    take(&store, a.id, id, &["k1", "k2", "k3"]).await;
    let (group, drained) = apply_waiting(&store, a.id, id).await;
    assert!(drained.unwrap());
    store.close().await;
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    std::fs::remove_file(format!("{path}.ingest")).expect("the intake is a file of its own");
    for suffix in [".ingest-wal", ".ingest-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = Store::connect(&db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(take(&store, a.id, id, &["k4"]).await, [true]);
    let waiting = store
        .tenant(a.id)
        .waiting_wecom_relation_changes(id, 10)
        .await
        .unwrap();
    assert_eq!(
        waiting.len(),
        1,
        "the new change waits, not taken for applied"
    );
    assert!(waiting[0].id > group.1);
}

#[tokio::test]
async fn changes_an_earlier_version_left_in_the_main_sqlite_file_are_moved_once() {
    let db = TestDatabase::create().await;
    if db.is_postgres() {
        return; // PostgreSQL keeps them where they were
    }
    let store = Store::connect(&db.url, options_with_key()).await.unwrap();
    store.migrate_to(33).await.unwrap();
    let a = tenant(&store, "rcu").await;
    let id = store
        .tenant(a.id)
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    let main = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    for n in 1..=3 {
        sqlx::query(
            "INSERT INTO wecom_relation_changes (tenant_id, connector_id, event, received_at) \
             VALUES (?, ?, ?, 0)",
        )
        .bind(a.id.0)
        .bind(id.0)
        .bind(format!("{{\"left\": {n}}}"))
        .execute(&main)
        .await
        .unwrap();
    }
    store.migrate().await.unwrap();
    // and again, as after a crash before the main file's copies were deleted
    store.migrate().await.unwrap();
    let scope = store.tenant(a.id);
    let waiting = scope.waiting_wecom_relation_changes(id, 10).await.unwrap();
    let events: Vec<&str> = waiting.iter().map(|w| w.event.as_str()).collect();
    assert_eq!(
        events,
        ["{\"left\": 1}", "{\"left\": 2}", "{\"left\": 3}"],
        "each once, in order"
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wecom_relation_changes")
        .fetch_one(&main)
        .await
        .unwrap();
    assert_eq!(left, 0, "none left in the main file");
    main.close().await;
    assert_eq!(take(&store, a.id, id, &["new"]).await, [true]);
    let waiting = scope.waiting_wecom_relation_changes(id, 10).await.unwrap();
    assert_eq!(waiting.len(), 4);
    assert!(waiting[3].event.contains("new"), "taken after those moved");
}

/// What a crash between a commit and its look at the jobs would leave: changes waiting
/// with no job. A repeat of their callback, and the sweep (at start, hourly), give them
/// one.
#[tokio::test]
async fn changes_left_without_a_job_get_one_from_a_repeat_or_the_sweep() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "rcs").await;
    let id = store
        .tenant(a.id)
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    take(&store, a.id, id, &["k1", "k2"]).await;
    let forget_the_job = || async {
        let claimed = store.claim_jobs("w", &[KIND], 1, 30_000).await.unwrap();
        store.complete_jobs("w", &[claimed[0].id]).await.unwrap();
        assert_eq!(live_jobs(&store, a.id).await, 0);
    };
    forget_the_job().await;
    assert_eq!(take(&store, a.id, id, &["k1"]).await, [false], "a repeat");
    assert_eq!(
        live_jobs(&store, a.id).await,
        1,
        "the repeat brought the job back"
    );

    forget_the_job().await;
    assert_eq!(store.sweep_relation_changes().await.unwrap(), 1);
    assert_eq!(live_jobs(&store, a.id).await, 1);
    let (_, drained) = apply_waiting(&store, a.id, id).await;
    assert!(drained.unwrap());
    assert_eq!(
        store.sweep_relation_changes().await.unwrap(),
        0,
        "nothing waits"
    );
    assert_eq!(live_jobs(&store, a.id).await, 0);
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_changes_apart_and_through_a_second_migration() {
    let store = Store::connect("sqlite::memory:", options_with_key())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let a = tenant(&store, "rcm").await;
    let id = store
        .tenant(a.id)
        .create_connector(&wecom(), &Actor::cli())
        .await
        .unwrap()
        .id;
    take(&store, a.id, id, &["m1", "m2"]).await;
    // the start's move of changes left in the main file finds none there
    store.migrate().await.unwrap();
    let scope = store.tenant(a.id);
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        2
    );
    let (_, drained) = apply_waiting(&store, a.id, id).await;
    assert!(drained.unwrap());
    assert_eq!(
        scope.waiting_wecom_relation_change_count(id).await.unwrap(),
        0
    );
}
