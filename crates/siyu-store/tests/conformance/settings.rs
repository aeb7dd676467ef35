//! Tenant settings: JSON by key, per tenant, each change audited; their version moves
//! with every change so other servers notice it.

use std::time::Duration;

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_store::testing::TestDatabase;

use crate::support::{audit, staff, tenant};

#[tokio::test]
async fn settings_are_kept_per_tenant_versioned_and_audited() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "settings").await.id);
    let other = store.tenant(tenant(&store, "neighbour").await.id);
    let actor = staff("ops@settings.example.com");
    assert_eq!(scope.setting("rfm").await.unwrap(), None);
    assert_eq!(scope.settings_version().await.unwrap(), 0, "never changed");

    let before = siyu_store::now_ms();
    let rfm = json!({"recency_days": [30, 60, 90, 180], "名称": "默认"});
    scope.put_setting("rfm", &rfm, &actor).await.unwrap();
    assert_eq!(scope.setting("rfm").await.unwrap(), Some(rfm.clone()));
    let first = scope.settings_version().await.unwrap();
    assert!(first >= before, "{first} is when it changed");

    // each change moves the version on, whichever key it is
    tokio::time::sleep(Duration::from_millis(5)).await;
    let changed = json!({"recency_days": [7, 30, 90, 365]});
    scope.put_setting("rfm", &changed, &actor).await.unwrap();
    assert_eq!(scope.setting("rfm").await.unwrap(), Some(changed.clone()));
    let second = scope.settings_version().await.unwrap();
    assert!(second > first, "{second} after {first}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    scope
        .put_setting("lifecycle", &json!({"lapsed_after_days": 90}), &actor)
        .await
        .unwrap();
    let third = scope.settings_version().await.unwrap();
    assert!(third > second, "{third} after {second}");
    assert_eq!(scope.setting("rfm").await.unwrap(), Some(changed.clone()));

    // another tenant's are its own
    assert_eq!(other.setting("rfm").await.unwrap(), None);
    assert_eq!(other.settings_version().await.unwrap(), 0);
    other
        .put_setting("rfm", &json!({"recency_days": [1, 2, 3, 4]}), &Actor::cli())
        .await
        .unwrap();
    assert_eq!(scope.setting("rfm").await.unwrap(), Some(changed.clone()));
    assert_eq!(scope.settings_version().await.unwrap(), third);

    let log = audit(&scope, "settings.changed").await;
    assert_eq!(
        log.iter()
            .map(|e| e.details["key"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["lifecycle", "rfm", "rfm"]
    );
    assert_eq!(log[1].details["value"], changed);
    assert_eq!(log[2].details["value"], rfm);
    assert_eq!(log[0].actor.label, "ops@settings.example.com");
    assert_eq!(audit(&other, "settings.changed").await.len(), 1);
}

/// A definition kept in a setting (who counts as a KOC) follows a renamed tag, and the
/// rewrite moves the version on so every server reloads it.
#[tokio::test]
async fn a_rewritten_definition_setting_moves_the_version_on() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "koc").await.id);
    let actor = Actor::cli();
    let group = scope.create_tag_group("g", None, 0, &actor).await.unwrap();
    let sharer = scope
        .create_tag(group.id, "分享达人", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let other = scope
        .create_tag(group.id, "其他", "#1677ff", 1, &actor)
        .await
        .unwrap();
    scope
        .put_setting(
            "koc",
            &json!({"definition": r#"tag("分享达人") or performed("Friend Invited", last 90d) >= 2"#}),
            &actor,
        )
        .await
        .unwrap();
    let before = scope.settings_version().await.unwrap();

    // a rename of a tag it does not name leaves it be
    tokio::time::sleep(Duration::from_millis(5)).await;
    scope
        .update_tag(other.id, Some("别的"), None, None, None, &actor)
        .await
        .unwrap();
    assert_eq!(scope.settings_version().await.unwrap(), before);

    tokio::time::sleep(Duration::from_millis(5)).await;
    scope
        .update_tag(sharer.id, Some("种子用户"), None, None, None, &actor)
        .await
        .unwrap();
    assert_eq!(
        scope.setting("koc").await.unwrap(),
        Some(
            json!({"definition": r#"tag("种子用户") or performed("Friend Invited", last 90d) >= 2"#})
        )
    );
    let after = scope.settings_version().await.unwrap();
    assert!(after > before, "{after} after {before}");
}

/// Two changes one right after the other are two versions: a server that read the
/// version between them must see the second.
#[tokio::test]
async fn back_to_back_changes_are_two_versions() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "quick").await.id);
    let actor = Actor::cli();
    let mut missed = 0;
    for n in 0..50 {
        scope
            .put_setting("rfm", &json!({"n": n}), &actor)
            .await
            .unwrap();
        let seen = scope.settings_version().await.unwrap();
        scope
            .put_setting("lifecycle", &json!({"n": n}), &actor)
            .await
            .unwrap();
        if scope.settings_version().await.unwrap() == seen {
            missed += 1;
        }
    }
    assert_eq!(
        missed, 0,
        "{missed} of 50 changes left the version as it was"
    );
}
