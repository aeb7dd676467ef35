//! Identity resolution and merges: who is one person, who stays two.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::customer::TimelineEntry;
use siyu_domain::identity::Identity;
use siyu_domain::page::PageRequest;
use siyu_store::{IngestOutcome, StoreError};

use crate::support::{customer_of, fixture, item};

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
        .list_customers(PageRequest::first(10), None)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "merged profiles leave the list");
    for q in ["李", "13812341680", "li.na@brand.cn", "u-42"] {
        let found = scope
            .list_customers(PageRequest::first(10), Some(q))
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1, "search {q}");
    }
    assert!(
        scope
            .list_customers(PageRequest::first(10), Some("王"))
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
            .list_customers(PageRequest::first(10), None)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
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
            .list_customers(PageRequest::first(10), None)
            .await
            .unwrap()
            .items
            .len(),
        1
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
