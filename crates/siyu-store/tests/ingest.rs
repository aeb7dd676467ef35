//! Ingestion on every backend: deduplication, identity resolution and merges, traits.

use serde_json::{Value, json};
use siyu_domain::audit::Actor;
use siyu_domain::customer::SourceKind;
use siyu_domain::customer::TimelineEntry;
use siyu_domain::identity::Identity;
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::NewTenant;
use siyu_domain::tracking::{BatchDefaults, read_event};
use siyu_store::testing::TestDatabase;
use siyu_store::{IngestItem, IngestOutcome, SourceRef, Store, StoreError};

struct Fixture {
    store: Store,
    source: SourceRef,
    _db: TestDatabase,
}

async fn fixture() -> Fixture {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new("shop", "a@shop.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let (source, key) = store
        .tenant(tenant.id)
        .create_source("app", SourceKind::App, &Actor::cli())
        .await
        .unwrap();
    let resolved = store.resolve_write_key(&key).await.unwrap().unwrap();
    assert_eq!(resolved.source, source.id);
    Fixture {
        store,
        source: resolved,
        _db: db,
    }
}

fn item(f: &Fixture, event: Value) -> IngestItem {
    let now = siyu_store::now_ms();
    IngestItem {
        source: f.source,
        event: read_event(0, event, None, &BatchDefaults::default(), now, false, uuid).unwrap(),
    }
}

fn uuid() -> String {
    format!("gen-{}", siyu_store::now_ms())
}

fn customer_of(outcome: IngestOutcome) -> i64 {
    match outcome {
        IngestOutcome::Stored(c) => c.0,
        IngestOutcome::Duplicate => panic!("unexpected duplicate"),
        IngestOutcome::Refused(reason) => panic!("refused: {reason}"),
    }
}

#[tokio::test]
async fn a_retried_message_id_is_stored_once() {
    let f = fixture().await;
    let e = json!({"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": "m-1"});
    let first = f.store.ingest(&[item(&f, e.clone())]).await.unwrap();
    assert!(matches!(first[0], IngestOutcome::Stored(_)));
    // the retry, and a duplicate inside one batch
    let again = f
        .store
        .ingest(&[item(&f, e.clone()), item(&f, e)])
        .await
        .unwrap();
    assert_eq!(again, [IngestOutcome::Duplicate, IngestOutcome::Duplicate]);
    let scope = f.store.tenant(f.source.tenant);
    assert_eq!(
        scope
            .count_events_with_message_id(f.source.source, "m-1")
            .await
            .unwrap(),
        1
    );
    let source = scope.get_source(f.source.source).await.unwrap();
    assert_eq!(source.received, 1);
    assert!(source.last_event_at.is_some());
    // past the window, the id is forgotten
    assert_eq!(f.store.prune_message_ids(-60_000).await.unwrap(), 1);
}

#[tokio::test]
async fn identify_links_an_anonymous_visitor_to_the_user_and_merges_profiles() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    // a visitor browses anonymously; separately, the user signed up on another device
    let visitor = customer_of(
        f.store
            .ingest(&[item(
                &f,
                json!({"type": "page", "name": "Home", "anonymousId": "anon-1", "messageId": "p1"}),
            )])
            .await
            .unwrap()[0]
            .clone(),
    );
    let user = customer_of(
        f.store
            .ingest(&[item(&f, json!({"type": "identify", "userId": "u-42", "messageId": "i1",
                "traits": {"name": "李娜", "email": "Li.Na@Brand.cn", "phone": "138 1234 1680", "city": "杭州"},
                "timestamp": "2026-01-01T00:00:00Z"}))])
            .await
            .unwrap()[0].clone(),
    );
    assert_ne!(visitor, user);
    // the visitor signs in: both ids on one event prove they are one person
    let merged = customer_of(
        f.store
            .ingest(&[item(&f, json!({"type": "identify", "userId": "u-42", "anonymousId": "anon-1", "messageId": "i2",
                "traits": {"city": "上海"}}))])
            .await
            .unwrap()[0].clone(),
    );
    assert_eq!(merged, user, "the profile the user id names survives");
    let profile = scope
        .get_customer(siyu_domain::customer::CustomerId(visitor))
        .await
        .unwrap();
    assert_eq!(profile.id.0, user, "the merged id leads to the survivor");
    assert_eq!(profile.name.as_deref(), Some("李娜"));
    assert_eq!(profile.email.as_deref(), Some("li.na@brand.cn"));
    assert_eq!(profile.phone.as_deref(), Some("+8613812341680"));
    assert_eq!(profile.traits["city"], "上海", "the newer trait wins");
    let kinds: Vec<_> = profile
        .identities
        .iter()
        .map(|i| i.kind.as_str().to_owned())
        .collect();
    for kind in ["user_id", "anonymous_id", "email", "phone"] {
        assert!(kinds.contains(&kind.to_owned()), "{kinds:?}");
    }
    let timeline = scope
        .customer_timeline(profile.id, PageRequest::first(10))
        .await
        .unwrap();
    let events = timeline
        .items
        .iter()
        .filter(|e| matches!(e, TimelineEntry::Event(_)))
        .count();
    assert_eq!(events, 3, "the visitor's page view moved to the survivor");
    assert!(
        timeline
            .items
            .iter()
            .any(|e| matches!(e, TimelineEntry::Merge(m) if m.survivor_id == profile.id)),
        "the merge is on the timeline"
    );
    let by_phone = scope
        .lookup_customer(&Identity::of("phone", "+86 13812341680").unwrap())
        .await
        .unwrap();
    assert_eq!(by_phone.id.0, user);
    let listed = scope
        .list_customers(PageRequest::first(10), None, None)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "merged profiles leave the list");
    for q in ["李", "13812341680", "li.na@brand.cn", "u-42"] {
        let found = scope
            .list_customers(PageRequest::first(10), Some(q), None)
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1, "search {q}");
    }
    assert!(
        scope
            .list_customers(PageRequest::first(10), Some("王"), None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn two_user_ids_on_one_device_stay_two_people() {
    let f = fixture().await;
    let a = customer_of(f.store.ingest(&[item(&f, json!({"type": "identify", "userId": "alice", "anonymousId": "shared-ipad", "messageId": "1"}))]).await.unwrap()[0].clone());
    let b = customer_of(f.store.ingest(&[item(&f, json!({"type": "identify", "userId": "bob", "anonymousId": "shared-ipad", "messageId": "2"}))]).await.unwrap()[0].clone());
    assert_ne!(a, b);
    let scope = f.store.tenant(f.source.tenant);
    let bob = scope
        .lookup_customer(&Identity::of("user_id", "bob").unwrap())
        .await
        .unwrap();
    assert_eq!(bob.id.0, b);
    let alice = scope
        .lookup_customer(&Identity::of("user_id", "alice").unwrap())
        .await
        .unwrap();
    assert_eq!(alice.id.0, a);
    // a later event with both user ids' devices does not merge them either
    let again = customer_of(f.store.ingest(&[item(&f, json!({"type": "track", "event": "x", "userId": "bob", "anonymousId": "shared-ipad", "messageId": "3"}))]).await.unwrap()[0].clone());
    assert_eq!(again, b);
    assert_eq!(
        scope
            .list_customers(PageRequest::first(10), None, None)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn customers_are_tenant_scoped() {
    let f = fixture().await;
    let c = customer_of(
        f.store
            .ingest(&[item(
                &f,
                json!({"type": "identify", "userId": "u1", "messageId": "1"}),
            )])
            .await
            .unwrap()[0]
            .clone(),
    );
    let (other, _) = f
        .store
        .create_tenant(
            &NewTenant::new("other", "a@other.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let scope = f.store.tenant(other.id);
    let id = siyu_domain::customer::CustomerId(c);
    assert!(matches!(
        scope.get_customer(id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope.customer_timeline(id, PageRequest::first(5)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope
            .lookup_customer(&Identity::of("user_id", "u1").unwrap())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_merge_inside_one_group_keeps_every_event_on_the_survivor() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let group = [
        json!({"type": "page", "name": "Home", "anonymousId": "anon-9", "messageId": "g1", "timestamp": "2026-01-01T00:00:00Z"}),
        json!({"type": "identify", "userId": "u-9", "messageId": "g2", "traits": {"name": "周敏"}}),
        json!({"type": "track", "event": "Viewed", "anonymousId": "anon-9", "messageId": "g3"}),
        json!({"type": "identify", "userId": "u-9", "anonymousId": "anon-9", "messageId": "g4", "traits": {"city": "苏州"}}),
        json!({"type": "track", "event": "Ordered", "userId": "u-9", "messageId": "g5"}),
        json!({"type": "track", "event": "Ordered", "userId": "u-9", "messageId": "g5"}),
    ];
    let outcomes = f.store.ingest(&group.map(|e| item(&f, e))).await.unwrap();
    assert_eq!(
        outcomes[5],
        IngestOutcome::Duplicate,
        "the same messageId twice in one group"
    );
    let survivor = customer_of(outcomes[4].clone());
    for outcome in &outcomes[..5] {
        assert_eq!(
            customer_of(outcome.clone()),
            survivor,
            "outcomes name the survivor"
        );
    }
    let profile = scope
        .lookup_customer(&Identity::of("anonymous_id", "anon-9").unwrap())
        .await
        .unwrap();
    assert_eq!(profile.id.0, survivor);
    assert_eq!(profile.name.as_deref(), Some("周敏"));
    assert_eq!(profile.traits["city"], "苏州");
    assert_eq!(
        siyu_domain::time::format_rfc3339(profile.first_seen_at),
        "2026-01-01T00:00:00.000Z",
        "the merged profile's earliest sighting is kept"
    );
    let timeline = scope
        .customer_timeline(profile.id, PageRequest::first(10))
        .await
        .unwrap();
    let events = timeline
        .items
        .iter()
        .filter(|e| matches!(e, TimelineEntry::Event(_)))
        .count();
    assert_eq!(events, 5);
    assert_eq!(
        scope
            .list_customers(PageRequest::first(10), None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// 分配客户: customers handed to a staff member in bulk; only real changes are made and
/// audited, merged and other tenants' ids are skipped.
#[tokio::test]
async fn customers_are_assigned_to_staff_in_bulk() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let mut ids = Vec::new();
    for n in 0..5 {
        let e = json!({"type": "identify", "userId": format!("assign-{n}"), "messageId": format!("as-{n}")});
        ids.push(siyu_domain::customer::CustomerId(customer_of(
            f.store.ingest(&[item(&f, e)]).await.unwrap().remove(0),
        )));
    }
    let root = scope.root_unit().await.unwrap();
    let guide = scope
        .create_staff(
            &siyu_domain::tenancy::NewStaff::new(
                root.id,
                "service",
                "guide@shop.example.com",
                "导购",
                None,
                siyu_domain::access::DataScope::Own,
            )
            .unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let ghost = siyu_domain::customer::CustomerId(i64::MAX);
    let mut asked = ids[..3].to_vec();
    asked.push(ghost);
    assert_eq!(
        scope
            .assign_owner(&asked, Some(guide.id), &Actor::cli())
            .await
            .unwrap(),
        3
    );
    // again: nothing changes, nothing more is audited
    assert_eq!(
        scope
            .assign_owner(&ids, Some(guide.id), &Actor::cli())
            .await
            .unwrap(),
        2
    );
    for id in &ids {
        assert_eq!(
            scope.get_customer(*id).await.unwrap().owner_staff_id,
            Some(guide.id)
        );
    }
    assert_eq!(
        scope
            .assign_owner(&ids[..1], None, &Actor::cli())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        scope.get_customer(ids[0]).await.unwrap().owner_staff_id,
        None
    );
    let audit = scope
        .list_audit(
            PageRequest::first(50),
            &siyu_store::AuditFilter {
                action: Some("customer.assigned".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        audit.items.len(),
        3,
        "one entry per part that changed something"
    );
    // a staff member of another tenant (or none) is refused
    assert!(
        scope
            .assign_owner(
                &ids,
                Some(siyu_domain::ids::StaffId(i64::MAX)),
                &Actor::cli()
            )
            .await
            .is_err()
    );
}

/// Two WeChat users on one family phone: by default the shared phone merges them; once
/// the tenant names `wechat_unionid` an identifying kind, they stay two people, the phone
/// stays with the first, and a later event naming both values goes to the better-ranked
/// kind's owner without merging.
#[tokio::test]
async fn identifying_kinds_keep_people_with_a_shared_phone_apart() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let wechat = |n: u32, unionid: &str, phone: &str| {
        json!({"type": "identify", "anonymousId": format!("device-{unionid}-{n}"),
               "messageId": format!("{unionid}-{n}"),
               "traits": {"phone": phone},
               "context": {"externalIds": [{"id": unionid, "type": "wechat_unionid", "collection": "users"}]}})
    };
    // by default: the phone proves one person
    let a = customer_of(
        f.store
            .ingest(&[item(&f, wechat(1, "oU-a", "13800000001"))])
            .await
            .unwrap()[0]
            .clone(),
    );
    let b = customer_of(
        f.store
            .ingest(&[item(&f, wechat(1, "oU-b", "13800000001"))])
            .await
            .unwrap()[0]
            .clone(),
    );
    assert_eq!(a, b, "merged through the phone");

    scope
        .put_setting(
            "identity",
            &json!({"identifying_kinds": ["user_id", "wechat_unionid"]}),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let c = customer_of(
        f.store
            .ingest(&[item(&f, wechat(2, "oU-c", "13800000002"))])
            .await
            .unwrap()[0]
            .clone(),
    );
    let d = customer_of(
        f.store
            .ingest(&[item(&f, wechat(2, "oU-d", "13800000002"))])
            .await
            .unwrap()[0]
            .clone(),
    );
    assert_ne!(c, d, "two unionids: two people, whatever they share");
    let phone = scope
        .lookup_customer(&Identity::of("phone", "13800000002").unwrap())
        .await
        .unwrap();
    assert_eq!(phone.id.0, c, "the phone stays with its first holder");
    let of = |unionid: &str| {
        let scope = f.store.tenant(f.source.tenant);
        let identity = Identity::of("wechat_unionid", unionid).unwrap();
        async move { scope.lookup_customer(&identity).await.unwrap().id.0 }
    };
    assert_eq!(of("oU-d").await, d);
    // user ids rank first: an event naming d's user id and c's unionid goes to d, and
    // merges nothing
    f.store
        .ingest(&[item(&f, json!({"type": "identify", "userId": "member-d", "messageId": "d-login",
            "context": {"externalIds": [{"id": "oU-d", "type": "wechat_unionid", "collection": "users"}]}}))])
        .await
        .unwrap();
    let both = customer_of(f.store.ingest(&[item(&f, json!({"type": "track", "event": "x", "userId": "member-d", "messageId": "both",
        "context": {"externalIds": [{"id": "oU-c", "type": "wechat_unionid", "collection": "users"}]}}))]).await.unwrap()[0].clone());
    assert_eq!(both, d);
    assert_eq!(of("oU-c").await, c, "c keeps its unionid");
    assert_eq!(of("oU-d").await, d);
    // a profile never gets a second unionid: a new one named with d's user id is not
    // linked to d
    f.store
        .ingest(&[item(&f, json!({"type": "track", "event": "x", "userId": "member-d", "messageId": "third",
            "context": {"externalIds": [{"id": "oU-e", "type": "wechat_unionid", "collection": "users"}]}}))])
        .await
        .unwrap();
    assert!(matches!(
        scope
            .lookup_customer(&Identity::of("wechat_unionid", "oU-e").unwrap())
            .await,
        Err(StoreError::NotFound(_))
    ));
    // one event naming two values of an identifying kind links only the first
    let two = customer_of(f.store.ingest(&[item(&f, json!({"type": "identify", "userId": "first-id", "messageId": "two-ids",
        "context": {"externalIds": [{"id": "second-id", "type": "user_id", "collection": "users"}]}}))]).await.unwrap()[0].clone());
    assert_eq!(
        scope
            .lookup_customer(&Identity::of("user_id", "first-id").unwrap())
            .await
            .unwrap()
            .id
            .0,
        two
    );
    assert!(matches!(
        scope
            .lookup_customer(&Identity::of("user_id", "second-id").unwrap())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

fn tracked(f: &Fixture, n: usize, prefix: &str) -> Vec<IngestItem> {
    (0..n)
        .map(|i| {
            item(
                f,
                json!({"type": "track", "event": "Viewed", "userId": format!("log-u{}", i % 7),
                       "messageId": format!("{prefix}-{i}")}),
            )
        })
        .collect()
}

async fn stored_ids(f: &Fixture) -> std::collections::HashMap<String, i64> {
    f.store
        .tenant(f.source.tenant)
        .message_id_counts(f.source.source)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn the_ingest_log_is_applied_once_in_order_and_survives_reopening() {
    let f = fixture().await;
    let first = f.store.log_events(&tracked(&f, 30, "a")).await.unwrap();
    let second = f.store.log_events(&tracked(&f, 20, "b")).await.unwrap();
    assert_eq!(first.len(), 30);
    assert!(
        first.windows(2).all(|w| w[0] < w[1]) && first[29] < second[0],
        "numbered in order"
    );
    assert_eq!(f.store.log_backlog().await.unwrap(), 50);
    // logged is not applied: nothing is on a profile yet
    assert!(stored_ids(&f).await.is_empty());

    let applied = f.store.apply_logged(40).await.unwrap();
    let seqs: Vec<i64> = applied.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [&first[..], &second[..10]].concat(), "oldest first");
    assert!(
        applied
            .iter()
            .all(|(_, o)| matches!(o, IngestOutcome::Stored(_)))
    );
    assert_eq!(f.store.log_backlog().await.unwrap(), 10);

    // a new store on the same database (a restart) finds the rest, and only the rest
    let again = Store::connect(&f._db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    again.migrate().await.unwrap();
    assert_eq!(again.log_backlog().await.unwrap(), 10);
    let rest = again.apply_logged(1000).await.unwrap();
    assert_eq!(
        rest.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        second[10..].to_vec()
    );
    assert!(again.apply_logged(1000).await.unwrap().is_empty());
    let ids = stored_ids(&f).await;
    assert_eq!(ids.len(), 50);
    assert!(ids.values().all(|c| *c == 1));

    // logging the same messageIds again: applied as duplicates
    f.store.log_events(&tracked(&f, 5, "a")).await.unwrap();
    let dup = f.store.apply_logged(1000).await.unwrap();
    assert_eq!(dup.len(), 5);
    assert!(dup.iter().all(|(_, o)| *o == IngestOutcome::Duplicate));

    // applied entries are deleted from the log; numbering never goes back
    f.store.trim_log().await.unwrap();
    let later = f.store.log_events(&tracked(&f, 1, "c")).await.unwrap();
    assert!(later[0] > second[19]);
    assert_eq!(f.store.apply_logged(10).await.unwrap().len(), 1);
    assert_eq!(stored_ids(&f).await.len(), 51);
}

#[tokio::test]
async fn a_lost_sqlite_log_file_starts_after_the_last_entry_applied() {
    let f = fixture().await;
    if f._db.is_postgres() {
        return; // PostgreSQL keeps the log in the database itself
    }
    let seqs = f.store.log_events(&tracked(&f, 10, "x")).await.unwrap();
    f.store.apply_logged(100).await.unwrap();
    f.store.close().await;
    let path = f._db.url.trim_start_matches("sqlite://").to_owned();
    std::fs::remove_file(format!("{path}.ingest")).expect("the log is a file of its own");
    for suffix in [".ingest-wal", ".ingest-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = Store::connect(&f._db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let fresh = store.log_events(&tracked(&f, 3, "y")).await.unwrap();
    assert!(fresh[0] > seqs[9], "{fresh:?} after {seqs:?}");
    assert_eq!(store.apply_logged(100).await.unwrap().len(), 3);
    let ids = store
        .tenant(f.source.tenant)
        .message_id_counts(f.source.source)
        .await
        .unwrap();
    assert_eq!(ids.len(), 13, "the new entries were applied, not skipped");
}

#[tokio::test]
async fn two_appliers_take_each_logged_event_once() {
    let f = fixture().await;
    let other = Store::connect(&f._db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    let mut logged = Vec::new();
    for round in 0..10 {
        logged.extend(
            f.store
                .log_events(&tracked(&f, 40, &format!("r{round}")))
                .await
                .unwrap(),
        );
    }
    let apply = |store: Store| async move {
        let mut seen = Vec::new();
        loop {
            let got = store.apply_logged(25).await.unwrap();
            if got.is_empty() {
                return seen;
            }
            seen.extend(got.into_iter().map(|(s, _)| s));
        }
    };
    // in turns: each takes up where the other stopped
    let mut turns = Vec::new();
    for round in 0..4 {
        let store = if round % 2 == 0 { &f.store } else { &other };
        let got = store.apply_logged(25).await.unwrap();
        assert_eq!(got.len(), 25, "round {round}");
        turns.extend(got.into_iter().map(|(s, _)| s));
    }
    assert_eq!(turns, logged[..100].to_vec());
    // side by side for the rest
    let (a, b) = tokio::join!(
        tokio::spawn(apply(f.store.clone())),
        tokio::spawn(apply(other.clone()))
    );
    let mut all: Vec<i64> = turns
        .into_iter()
        .chain(a.unwrap())
        .chain(b.unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, logged, "every entry applied, none twice");
    assert_eq!(f.store.log_backlog().await.unwrap(), 0);
    let ids = stored_ids(&f).await;
    assert_eq!(ids.len(), 400);
    assert!(ids.values().all(|c| *c == 1));
}

#[tokio::test]
async fn an_entry_set_aside_is_kept_out_of_profiles_and_the_rest_go_on() {
    let f = fixture().await;
    let seqs = f.store.log_events(&tracked(&f, 3, "poison")).await.unwrap();
    assert_eq!(f.store.logged_through().await.unwrap(), seqs[2]);
    assert!(!f.store.applied_through(seqs[0]).await.unwrap());
    let aside = f
        .store
        .set_aside_oldest_logged("it failed on its own")
        .await
        .unwrap();
    assert_eq!(aside, Some(seqs[0]));
    assert!(f.store.applied_through(seqs[0]).await.unwrap());
    assert!(!f.store.applied_through(seqs[2]).await.unwrap());
    let applied = f.store.apply_logged(100).await.unwrap();
    assert_eq!(
        applied.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        seqs[1..].to_vec()
    );
    assert!(f.store.applied_through(seqs[2]).await.unwrap());
    let ids = stored_ids(&f).await;
    assert!(!ids.contains_key("poison-0") && ids.contains_key("poison-1"));
    assert_eq!(
        f.store.set_aside_oldest_logged("nothing").await.unwrap(),
        None
    );
}

/// An `Order Completed` item, its order read as the tracking API reads it.
fn order_item(
    f: &Fixture,
    user: &str,
    message: &str,
    order: &str,
    total: f64,
    currency: &str,
) -> IngestItem {
    let mut item = item(f, order_event(user, message, order, total, currency));
    item.event = item
        .event
        .with_commerce(siyu_domain::order::SalesChannel::MiniShop)
        .unwrap();
    item
}

fn order_event(user: &str, message: &str, order: &str, total: f64, currency: &str) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": message,
           "properties": {"order_id": order, "total": total, "currency": currency,
                          "products": [{"sku": "TEA-01", "name": "桂花乌龙", "price": total, "quantity": 1}]}})
}

#[tokio::test]
async fn orders_in_a_group_are_recorded_once_each_with_what_was_sent_last() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let first = f
        .store
        .ingest(&[order_item(&f, "u-a", "m-0", "o-1", 56.0, "CNY")])
        .await
        .unwrap();
    let a = customer_of(first[0].clone());
    // one group: new orders (more than one statement takes), an order twice, an order
    // recorded before sent again, one in a currency with no rate, and an order refunded
    // in part and then sent again (the refund writes what came before it, so the resend
    // is recorded already though the group did not know it when it began)
    let mut refund = item(
        &f,
        json!({"type": "track", "event": "Order Refunded", "userId": "u-a", "messageId": "m-6",
               "properties": {"order_id": "o-5", "total": 5.0}}),
    );
    refund.event = refund
        .event
        .with_commerce(siyu_domain::order::SalesChannel::MiniShop)
        .unwrap();
    let mut group = vec![
        order_item(&f, "u-a", "m-1", "o-2", 10.0, "CNY"),
        order_item(&f, "u-a", "m-2", "o-2", 12.0, "CNY"),
        order_item(&f, "u-a", "m-3", "o-1", 60.0, "CNY"),
        order_item(&f, "u-a", "m-4", "o-3", 9.0, "USD"),
        order_item(&f, "u-a", "m-5", "o-5", 20.0, "CNY"),
        refund,
        order_item(&f, "u-a", "m-7", "o-5", 30.0, "CNY"),
    ];
    for n in 0..250 {
        group.push(order_item(
            &f,
            "u-b",
            &format!("m-b{n}"),
            &format!("b-{n}"),
            1.0,
            "CNY",
        ));
    }
    let outcomes = f.store.ingest(&group).await.unwrap();
    assert!(
        matches!(&outcomes[3], IngestOutcome::Refused(r) if r.contains("USD")),
        "{:?}",
        outcomes[3]
    );
    assert_eq!(customer_of(outcomes[0].clone()), a);
    let b = customer_of(outcomes[7].clone());
    let orders = scope
        .list_orders(
            &siyu_store::OrderFilter {
                customer: None,
                unit: None,
                channel: None,
                status: None,
            },
            PageRequest::first(500),
        )
        .await
        .unwrap()
        .items;
    let amount = |id: &str| {
        let found: Vec<_> = orders.iter().filter(|o| o.order_id == id).collect();
        assert!(found.len() <= 1, "{id} recorded {} times", found.len());
        found.first().map(|o| (o.amount, o.customer_id.0))
    };
    assert_eq!(amount("o-1"), Some((6000, a)));
    assert_eq!(amount("o-2"), Some((1200, a)));
    assert_eq!(amount("o-3"), None);
    assert_eq!(
        amount("o-5"),
        Some((3000, a)),
        "the resend after the refund"
    );
    let o5 = orders.iter().find(|o| o.order_id == "o-5").unwrap();
    assert_eq!(o5.refunded_amount, 500);
    assert_eq!(o5.status.as_str(), "partially_refunded");
    assert_eq!(
        orders
            .iter()
            .filter(|o| o.order_id.starts_with("b-"))
            .count(),
        250
    );
    assert!(
        orders
            .iter()
            .filter(|o| o.order_id.starts_with("b-"))
            .all(|o| o.customer_id.0 == b && o.amount == 100)
    );
    let a_stats = scope
        .get_customer(siyu_domain::customer::CustomerId(a))
        .await
        .unwrap()
        .orders;
    assert_eq!((a_stats.count, a_stats.total), (3, 7200 + 2500));
    let b_stats = scope
        .get_customer(siyu_domain::customer::CustomerId(b))
        .await
        .unwrap()
        .orders;
    assert_eq!((b_stats.count, b_stats.total), (250, 25_000));
}

#[tokio::test]
async fn entries_set_aside_are_listed_and_replayed_once_what_failed_them_is_fixed() {
    let f = fixture().await;
    let seqs = f.store.log_events(&tracked(&f, 4, "aside")).await.unwrap();
    for error in ["first failure", "second failure"] {
        f.store.set_aside_oldest_logged(error).await.unwrap();
    }
    f.store.apply_logged(100).await.unwrap();
    let aside = f.store.dead_letters(100).await.unwrap();
    assert_eq!(
        aside
            .iter()
            .map(|d| (d.seq, d.error.as_str()))
            .collect::<Vec<_>>(),
        [(seqs[0], "first failure"), (seqs[1], "second failure")]
    );
    assert!(
        aside
            .iter()
            .all(|d| d.tenant_id == f.source.tenant.0 && d.source_id == f.source.source.0)
    );
    assert!(!stored_ids(&f).await.contains_key("aside-0"));
    // one of them, by its number; then the rest
    assert_eq!(
        f.store.replay_dead_letters(Some(&[seqs[1]])).await.unwrap(),
        1
    );
    assert_eq!(f.store.dead_letters(100).await.unwrap().len(), 1);
    let applied = f.store.apply_logged(100).await.unwrap();
    assert_eq!(applied.len(), 1);
    assert!(applied[0].0 > seqs[3], "logged again at the end");
    assert!(stored_ids(&f).await.contains_key("aside-1"));
    assert_eq!(f.store.replay_dead_letters(None).await.unwrap(), 1);
    assert!(f.store.dead_letters(100).await.unwrap().is_empty());
    f.store.apply_logged(100).await.unwrap();
    let ids = stored_ids(&f).await;
    assert!(
        (0..4).all(|i| ids.get(&format!("aside-{i}")) == Some(&1)),
        "{ids:?}"
    );
    assert_eq!(f.store.replay_dead_letters(None).await.unwrap(), 0);
}

/// An erasure leaves nothing of the person outside the tables either: their entries set
/// aside are removed (others stay), applied entries are gone from the SQLite log file,
/// and with secure_delete and a truncating checkpoint their phone number is in no file.
#[tokio::test]
async fn an_erasure_removes_the_persons_raw_events_from_the_log_and_the_files() {
    let f = fixture().await;
    let phone = "13812349876";
    let stored = f
        .store
        .ingest(&[item(
            &f,
            json!({"type": "identify", "userId": "gone", "traits": {"phone": phone, "name": "李娜"}}),
        )])
        .await
        .unwrap();
    let customer = customer_of(stored[0].clone());
    // an event of theirs that failed on its own, and one of someone else
    f.store
        .log_events(&[item(
            &f,
            json!({"type": "track", "userId": "gone", "event": "Viewed", "properties": {"phone": phone}}),
        )])
        .await
        .unwrap();
    f.store.set_aside_oldest_logged("failed").await.unwrap();
    f.store
        .log_events(&[item(
            &f,
            json!({"type": "track", "userId": "stays", "event": "Viewed"}),
        )])
        .await
        .unwrap();
    f.store.set_aside_oldest_logged("failed").await.unwrap();
    // an applied event of theirs whose entry is still in the log file
    f.store
        .log_events(&[item(
            &f,
            json!({"type": "track", "userId": "gone", "event": "Called", "properties": {"phone": phone}}),
        )])
        .await
        .unwrap();
    f.store.apply_logged(100).await.unwrap();
    assert_eq!(f.store.dead_letters(100).await.unwrap().len(), 2);

    f.store
        .tenant(f.source.tenant)
        .erase_customer(siyu_domain::customer::CustomerId(customer), &Actor::cli())
        .await
        .unwrap();
    let left = f.store.dead_letters(100).await.unwrap();
    assert_eq!(left.len(), 1, "only the other person's entry stays");
    if !f._db.is_postgres() {
        let path = f
            ._db
            .url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        for file in [
            path.clone(),
            format!("{path}-wal"),
            format!("{path}.ingest"),
            format!("{path}.ingest-wal"),
        ] {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let found = bytes.windows(phone.len()).any(|w| w == phone.as_bytes());
            assert!(!found, "{file} still holds the erased phone number");
        }
    }
}

/// A tagging of many customers commits in parts, and each part writes its own audit
/// entry with it: one interrupted after some parts leaves no tag unaccounted for.
#[tokio::test]
async fn each_part_of_a_large_tagging_is_audited_with_it() {
    let f = fixture().await;
    let n = 10_001;
    let mut customers = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let items: Vec<IngestItem> = chunk
            .iter()
            .map(|i| item(&f, json!({"type": "identify", "userId": format!("p-{i}"), "messageId": format!("p-{i}")})))
            .collect();
        for outcome in f.store.ingest(&items).await.unwrap() {
            customers.push(siyu_domain::customer::CustomerId(customer_of(outcome)));
        }
    }
    let scope = f.store.tenant(f.source.tenant);
    let group = scope
        .create_tag_group("g", None, 0, &Actor::cli())
        .await
        .unwrap();
    let tag = scope
        .create_tag(group.id, "bulk", "#1677ff", 0, &Actor::cli())
        .await
        .unwrap();
    let result = scope
        .change_tags(
            &customers,
            &[tag.id],
            &[],
            siyu_domain::audience::TagOrigin::Api,
            Some("a campaign"),
            &Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(result.added, n as u64);
    let audit = scope
        .list_audit(
            PageRequest::parse(None, Some(100)).unwrap(),
            &siyu_store::AuditFilter {
                action: Some("customers.tagged".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut parts: Vec<(u64, u64, u64)> = audit
        .items
        .iter()
        .map(|e| {
            (
                e.details["part"].as_u64().unwrap(),
                e.details["parts"].as_u64().unwrap(),
                e.details["added"].as_u64().unwrap(),
            )
        })
        .collect();
    parts.sort();
    assert_eq!(parts, vec![(1, 3, 5_000), (2, 3, 5_000), (3, 3, 1)]);
}
