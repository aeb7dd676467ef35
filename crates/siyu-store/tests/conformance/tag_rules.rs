//! Tag rules (自动打标签): saved, changed, switched off and deleted, each audited; they
//! change only tags the tenant has; a tag a rule changes is kept.

use std::time::Duration;

use siyu_audience::Condition;
use siyu_domain::audience::{TagId, TagRuleId};
use siyu_domain::audit::Actor;
use siyu_store::testing::TestDatabase;
use siyu_store::{NewTagRule, StoreError, TenantScope};

use crate::support::{audit, invalid_field, staff, tenant};

fn parse(text: &str) -> Condition {
    siyu_audience::parse(text).unwrap()
}

fn rule(name: &str, definition: &str, add: &[TagId], remove: &[TagId]) -> NewTagRule {
    NewTagRule {
        name: name.into(),
        condition: parse(definition),
        add: add.to_vec(),
        remove: remove.to_vec(),
        enabled: true,
    }
}

/// Two tags in one group: (上海客户, 外地客户).
async fn two_tags(scope: &TenantScope<'_>) -> (TagId, TagId) {
    let actor = Actor::cli();
    let group = scope
        .create_tag_group("地区", None, 0, &actor)
        .await
        .unwrap();
    let local = scope
        .create_tag(group.id, "上海客户", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let away = scope
        .create_tag(group.id, "外地客户", "#faad14", 1, &actor)
        .await
        .unwrap();
    (local.id, away.id)
}

#[tokio::test]
async fn tag_rules_are_saved_changed_switched_off_and_deleted_with_audit() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "rules").await;
    let scope = store.tenant(t.id);
    let actor = staff("growth@rules.example.com");
    let (local, away) = two_tags(&scope).await;

    let (shanghai, backfill) = scope
        .create_tag_rule(
            &rule(" 上海 ", r#"trait.city = "上海""#, &[local], &[away]),
            &actor,
        )
        .await
        .unwrap();
    // an enabled rule is applied to everyone it matches by a job made with it
    let job = scope
        .get_job(backfill.expect("a backfill job"))
        .await
        .unwrap();
    assert_eq!(job.kind, siyu_domain::jobs::kind::TAG_RULE_BACKFILL);
    assert_eq!(job.payload["rule_id"], shanghai.id.0);
    assert_eq!(shanghai.name, "上海");
    assert_eq!(shanghai.definition, r#"trait.city = "上海""#);
    assert_eq!(shanghai.condition["trait"]["key"], "city");
    assert_eq!(
        (shanghai.add.clone(), shanghai.remove.clone()),
        (vec![local], vec![away])
    );
    assert!(shanghai.enabled);
    assert_eq!(shanghai.created_by, "growth@rules.example.com");
    assert_eq!(scope.get_tag_rule(shanghai.id).await.unwrap(), shanghai);
    let mut off = rule("外地", r#"trait.city != "上海""#, &[away], &[]);
    off.enabled = false;
    let (elsewhere, none) = scope.create_tag_rule(&off, &actor).await.unwrap();
    assert!(!elsewhere.enabled);
    assert_eq!(none, None, "a disabled rule has nothing to apply");
    assert_eq!(
        scope
            .tag_rules()
            .await
            .unwrap()
            .iter()
            .map(|r| (r.name.as_str(), r.enabled))
            .collect::<Vec<_>>(),
        [("上海", true), ("外地", false)]
    );

    // switched off: nothing else changes
    tokio::time::sleep(Duration::from_millis(5)).await;
    let switched = scope
        .update_tag_rule(shanghai.id, None, None, None, None, Some(false), &actor)
        .await
        .unwrap()
        .0;
    assert!(!switched.enabled);
    assert_eq!(switched.name, "上海");
    assert_eq!(switched.definition, shanghai.definition);
    assert_eq!(
        (switched.add.clone(), switched.remove.clone()),
        (vec![local], vec![away])
    );
    assert_eq!(switched.created_at, shanghai.created_at);
    assert!(switched.updated_at > shanghai.updated_at);
    // renamed, redefined, its tags changed, and on again
    let changed = scope
        .update_tag_rule(
            shanghai.id,
            Some("上海会员"),
            Some(&parse(r#"trait.city = "上海" and trait.member = true"#)),
            Some(&[away]),
            Some(&[]),
            Some(true),
            &actor,
        )
        .await
        .unwrap()
        .0;
    assert_eq!(changed.name, "上海会员");
    assert_eq!(
        changed.definition,
        r#"trait.city = "上海" and trait.member = true"#
    );
    assert_eq!(
        (changed.add.clone(), changed.remove.clone()),
        (vec![away], vec![])
    );
    assert!(changed.enabled);
    assert_eq!(scope.get_tag_rule(shanghai.id).await.unwrap(), changed);
    // what the other rule holds is untouched
    assert_eq!(scope.get_tag_rule(elsewhere.id).await.unwrap(), elsewhere);

    scope.delete_tag_rule(elsewhere.id, &actor).await.unwrap();
    assert!(matches!(
        scope.get_tag_rule(elsewhere.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope.delete_tag_rule(elsewhere.id, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope
            .update_tag_rule(elsewhere.id, Some("x"), None, None, None, None, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        scope
            .tag_rules()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [shanghai.id]
    );

    let names = |entries: Vec<siyu_domain::audit::AuditEntry>| {
        entries
            .iter()
            .map(|e| e.details["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(audit(&scope, "tag_rule.created").await),
        ["外地", "上海"]
    );
    assert_eq!(
        names(audit(&scope, "tag_rule.updated").await),
        ["上海会员", "上海"]
    );
    let deleted = audit(&scope, "tag_rule.deleted").await;
    assert_eq!(names(deleted.clone()), ["外地"]);
    assert_eq!(deleted[0].actor.label, "growth@rules.example.com");
    assert_eq!(deleted[0].target_id, Some(elsewhere.id.0.to_string()));
}

#[tokio::test]
async fn a_tag_rule_changes_only_tags_the_tenant_has_under_a_unique_name() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "checks").await;
    let scope = store.tenant(t.id);
    let other = store.tenant(tenant(&store, "other").await.id);
    let actor = Actor::cli();
    let (local, away) = two_tags(&scope).await;
    let (theirs, _) = two_tags(&other).await;
    let definition = "trait.city exists";

    for (new, field) in [
        (rule("空", definition, &[], &[]), "add"),
        (rule("无", definition, &[TagId(999_999)], &[]), "add"),
        (rule("别家", definition, &[local, theirs], &[]), "add"),
        (rule("别家去", definition, &[local], &[theirs]), "remove"),
        (rule("", definition, &[local], &[]), "name"),
        (rule(&"长".repeat(81), definition, &[local], &[]), "name"),
    ] {
        assert_eq!(
            invalid_field(scope.create_tag_rule(&new, &actor).await),
            field,
            "{}",
            new.name
        );
    }
    assert!(scope.tag_rules().await.unwrap().is_empty());
    assert!(audit(&scope, "tag_rule.").await.is_empty());

    // removing only is a rule too
    let saved = scope
        .create_tag_rule(&rule("去掉", definition, &[], &[away]), &actor)
        .await
        .unwrap()
        .0;
    let second = scope
        .create_tag_rule(&rule("加上", definition, &[local], &[]), &actor)
        .await
        .unwrap()
        .0;
    assert!(matches!(
        scope
            .create_tag_rule(&rule("去掉", definition, &[local], &[]), &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        scope
            .update_tag_rule(second.id, Some("去掉"), None, None, None, None, &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        invalid_field(
            scope
                .update_tag_rule(saved.id, None, None, Some(&[]), Some(&[]), None, &actor)
                .await
        ),
        "add"
    );
    assert_eq!(
        invalid_field(
            scope
                .update_tag_rule(saved.id, None, None, Some(&[theirs]), None, None, &actor)
                .await
        ),
        "add"
    );
    assert_eq!(scope.get_tag_rule(saved.id).await.unwrap(), saved);
    assert_eq!(scope.get_tag_rule(second.id).await.unwrap(), second);
    assert!(audit(&scope, "tag_rule.updated").await.is_empty());

    // another tenant's rules are not there
    assert!(other.tag_rules().await.unwrap().is_empty());
    for result in [
        other.get_tag_rule(saved.id).await.map(|_| ()),
        other
            .update_tag_rule(saved.id, None, None, None, None, Some(false), &actor)
            .await
            .map(|_| ()),
        other.delete_tag_rule(saved.id, &actor).await,
        scope.get_tag_rule(TagRuleId(999_999)).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    }
    assert!(scope.get_tag_rule(saved.id).await.unwrap().enabled);
}

#[tokio::test]
async fn a_tag_a_rule_adds_or_removes_is_not_deleted() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "inuse").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let (local, away) = two_tags(&scope).await;
    let mut adds = rule("上海", r#"trait.city = "上海""#, &[local], &[]);
    adds.enabled = false;
    let adds = scope.create_tag_rule(&adds, &actor).await.unwrap().0;
    let removes = scope
        .create_tag_rule(
            &rule("不在外地", r#"trait.city = "上海""#, &[], &[away]),
            &actor,
        )
        .await
        .unwrap()
        .0;

    for (tag, rule) in [(local, &adds), (away, &removes)] {
        let refused = scope.delete_tag(tag, &actor).await;
        let Err(StoreError::Conflict(message)) = refused else {
            panic!("{refused:?}");
        };
        assert!(
            message.contains(&format!("tag rule {} ({})", rule.name, rule.id.0)),
            "{message}"
        );
    }
    // once the rule no longer changes it, the tag can go
    scope
        .update_tag_rule(adds.id, None, None, Some(&[away]), None, None, &actor)
        .await
        .unwrap();
    scope.delete_tag_rule(removes.id, &actor).await.unwrap();
    scope.delete_tag(local, &actor).await.unwrap();
    assert!(matches!(
        scope.delete_tag(away, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        scope
            .tag_catalog()
            .await
            .unwrap()
            .into_keys()
            .collect::<Vec<_>>(),
        ["外地客户"]
    );
}
