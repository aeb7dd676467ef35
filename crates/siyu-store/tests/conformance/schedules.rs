//! Recurring jobs: each run is enqueued once however many nodes race for it, at the
//! times the cron expression names on the tenant's wall clock.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::schedule::Schedule;
use siyu_domain::tenancy::NewTenant;
use siyu_domain::time::TimeZone;
use siyu_store::testing::TestDatabase;
use siyu_store::{NewSchedule, StoreError};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[tokio::test]
async fn a_recurring_run_is_enqueued_once_across_racing_nodes_on_the_tenants_clock() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let zone = TimeZone::parse("zone", "Asia/Shanghai").unwrap();
    let new = NewTenant::new("cron", "admin@cron.example.com", "store-pass-7a")
        .unwrap()
        .in_time_zone(zone);
    let tenant = store.create_tenant(&new, &Actor::cli()).await.unwrap().0.id;
    let daily = NewSchedule {
        tenant: Some(tenant),
        name: "morning report".into(),
        kind: "report".into(),
        payload: json!({"to": "ops"}),
        schedule: Schedule::parse("cron", "0 9 * * *").unwrap(),
    };
    let saved = store.put_schedule(&daily).await.unwrap();
    // nine in Shanghai is one o'clock UTC
    assert_eq!(saved.next_run_at.rem_euclid(DAY), HOUR, "{saved:?}");
    assert!(saved.next_run_at > siyu_store::now_ms());
    // saved again unchanged (every node does at start): the next run stays
    assert_eq!(store.put_schedule(&daily).await.unwrap(), saved);

    // not due yet: nothing
    let before = saved.next_run_at - 1;
    assert!(
        store
            .enqueue_due_schedules(before)
            .await
            .unwrap()
            .is_empty()
    );
    // due: three nodes race for the run; one enqueues it
    let at = saved.next_run_at + 5;
    let (a, b, c) = tokio::join!(
        store.enqueue_due_schedules(at),
        store.enqueue_due_schedules(at),
        store.enqueue_due_schedules(at)
    );
    let made: Vec<_> = [a.unwrap(), b.unwrap(), c.unwrap()].concat();
    assert_eq!(made.len(), 1, "{made:?}");
    let job = store.tenant(tenant).get_job(made[0]).await.unwrap();
    assert_eq!(job.kind, "report");
    assert_eq!(job.payload, json!({"to": "ops"}));
    // the next run is the next morning; the same moment again makes nothing
    let moved = store.schedules().await.unwrap();
    assert_eq!(moved[0].next_run_at, saved.next_run_at + DAY);
    assert!(store.enqueue_due_schedules(at).await.unwrap().is_empty());
    // runs missed while no node ran come once, late; the next is from now
    let late = saved.next_run_at + 3 * DAY + 7 * HOUR;
    assert_eq!(store.enqueue_due_schedules(late).await.unwrap().len(), 1);
    assert_eq!(
        store.schedules().await.unwrap()[0].next_run_at,
        saved.next_run_at + 4 * DAY
    );

    // a changed expression moves the next run
    let hourly = NewSchedule {
        schedule: Schedule::parse("cron", "30 * * * *").unwrap(),
        ..daily.clone()
    };
    let changed = store.put_schedule(&hourly).await.unwrap();
    assert_eq!(changed.id, saved.id);
    assert_eq!(changed.next_run_at.rem_euclid(HOUR), 30 * 60_000);
    // one that never runs is refused
    let never = NewSchedule {
        name: "never".into(),
        schedule: Schedule::parse("cron", "0 0 30 2 *").unwrap(),
        ..daily
    };
    assert!(matches!(
        store.put_schedule(&never).await,
        Err(StoreError::Conflict(_))
    ));
}
