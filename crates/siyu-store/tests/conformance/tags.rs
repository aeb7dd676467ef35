//! Tag groups and tags: made, renamed, moved, ordered and deleted; tags put on and taken
//! off customers with who, how and why (large taggings committed in parts, each part
//! audited); a tag's name carried into every definition that names it.

use serde_json::json;
use siyu_domain::audience::{TagGroupId, TagId, TagOrigin};
use siyu_domain::audit::{Actor, ActorKind};
use siyu_domain::ids::CustomerId;
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{NewUnit, UnitKind};
use siyu_store::testing::TestDatabase;
use siyu_store::{IngestItem, NewSegment, NewTagRule, StoreError};

use crate::support::{audit, customer, customer_of, fixture, invalid_field, item, staff, tenant};

#[tokio::test]
async fn tag_groups_and_tags_are_made_changed_and_kept_in_order() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "tags").await;
    let scope = store.tenant(t.id);
    let actor = staff("ops@tags.example.com");

    // groups are listed by position, then as made
    let value = scope
        .create_tag_group(" 客户价值 ", None, 2, &actor)
        .await
        .unwrap();
    assert_eq!(value.name, "客户价值", "names are trimmed");
    let channel = scope
        .create_tag_group("渠道", None, 1, &actor)
        .await
        .unwrap();
    let root = scope.root_unit().await.unwrap();
    let brand = scope
        .create_unit(
            &NewUnit::new(root.id, UnitKind::Brand, "茶").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let own = scope
        .create_tag_group("茶的标签", Some(brand.id), 2, &actor)
        .await
        .unwrap();
    assert_eq!(own.unit_id, Some(brand.id));
    let names = |groups: &[siyu_domain::audience::TagGroup]| {
        groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&scope.tag_groups().await.unwrap()),
        ["渠道", "客户价值", "茶的标签"]
    );
    assert!(matches!(
        scope.create_tag_group("渠道", None, 0, &actor).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        invalid_field(scope.create_tag_group("  ", None, 0, &actor).await),
        "name"
    );

    // tags: colours are checked and kept in lower case; a group lists its tags by position
    let vip = scope
        .create_tag(value.id, "高净值", "#FF4D4F", 1, &actor)
        .await
        .unwrap();
    assert_eq!(
        (
            vip.group_id,
            vip.name.as_str(),
            vip.colour.as_str(),
            vip.position,
            vip.customers
        ),
        (value.id, "高净值", "#ff4d4f", 1, 0)
    );
    let repeat = scope
        .create_tag(value.id, "复购", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let group = scope.get_tag_group(value.id).await.unwrap();
    assert_eq!(
        group.tags.iter().map(|t| t.id).collect::<Vec<_>>(),
        [repeat.id, vip.id]
    );
    assert_eq!(
        invalid_field(scope.create_tag(value.id, "蓝", "blue", 0, &actor).await),
        "colour"
    );
    assert_eq!(
        invalid_field(
            scope
                .create_tag(value.id, &"长".repeat(51), "#1677ff", 0, &actor)
                .await
        ),
        "name"
    );
    // a tag's name is unique in the tenant, not only in its group
    assert!(matches!(
        scope
            .create_tag(channel.id, "高净值", "#1677ff", 0, &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        scope
            .create_tag(TagGroupId(999_999), "x", "#1677ff", 0, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // renamed, recoloured, moved to another group and place
    let moved = scope
        .update_tag(
            repeat.id,
            Some("复购客户"),
            Some("#00AA00"),
            Some(channel.id),
            Some(5),
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            moved.name.as_str(),
            moved.colour.as_str(),
            moved.group_id,
            moved.position
        ),
        ("复购客户", "#00aa00", channel.id, 5)
    );
    let groups = scope.tag_groups().await.unwrap();
    let tags_of = |id: TagGroupId| {
        groups
            .iter()
            .find(|g| g.id == id)
            .unwrap()
            .tags
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(tags_of(channel.id), ["复购客户"]);
    assert_eq!(tags_of(value.id), ["高净值"]);
    // what is not given is kept
    let recoloured = scope
        .update_tag(vip.id, None, Some("#000000"), None, None, &actor)
        .await
        .unwrap();
    assert_eq!(
        (
            recoloured.name.as_str(),
            recoloured.group_id,
            recoloured.position
        ),
        ("高净值", value.id, 1)
    );
    assert!(matches!(
        scope
            .update_tag(vip.id, Some("复购客户"), None, None, None, &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        scope
            .update_tag(vip.id, None, None, Some(TagGroupId(999_999)), None, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(scope.get_tag(vip.id).await.unwrap().group_id, value.id);

    // groups are renamed and reordered; names stay unique
    let renamed = scope
        .update_tag_group(channel.id, Some("来源渠道"), Some(9), &actor)
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.position), ("来源渠道", 9));
    assert_eq!(
        names(&scope.tag_groups().await.unwrap()),
        ["客户价值", "茶的标签", "来源渠道"]
    );
    assert!(matches!(
        scope
            .update_tag_group(channel.id, Some("客户价值"), None, &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));

    // each change is audited, by whom
    let created = audit(&scope, "tag.created").await;
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].actor.label, "ops@tags.example.com");
    assert_eq!(created[0].details["name"], "复购");
    assert_eq!(created[0].target_id, Some(repeat.id.0.to_string()));
    let updated = audit(&scope, "tag.updated").await;
    assert_eq!(updated.len(), 2, "refused changes are not audited");
    assert_eq!(
        (&updated[1].details["was"], &updated[1].details["name"]),
        (&json!("复购"), &json!("复购客户"))
    );
    assert_eq!(audit(&scope, "tag_group.created").await.len(), 3);
    let group_updated = audit(&scope, "tag_group.updated").await;
    assert_eq!(group_updated.len(), 1);
    assert_eq!(group_updated[0].details["name"], "来源渠道");
}

#[tokio::test]
async fn a_tag_group_is_deleted_only_once_it_is_empty() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "groups").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let group = scope
        .create_tag_group("会员等级", None, 0, &actor)
        .await
        .unwrap();
    let gold = scope
        .create_tag(group.id, "金卡", "#faad14", 0, &actor)
        .await
        .unwrap();
    assert!(matches!(
        scope.delete_tag_group(group.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(scope.get_tag(gold.id).await.unwrap().name, "金卡");
    scope.delete_tag(gold.id, &actor).await.unwrap();
    scope.delete_tag_group(group.id, &actor).await.unwrap();
    assert!(matches!(
        scope.get_tag_group(group.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(scope.tag_groups().await.unwrap().is_empty());
    assert!(matches!(
        scope.delete_tag_group(group.id, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    let deleted = audit(&scope, "tag_group.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].details["name"], "会员等级");
    // its name is free again
    scope
        .create_tag_group("会员等级", None, 0, &actor)
        .await
        .unwrap();
}

#[tokio::test]
async fn tags_go_on_and_off_customers_with_who_how_and_why() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "tagging").await;
    let scope = store.tenant(t.id);
    let actor = staff("guide@tagging.example.com");
    let group = scope
        .create_tag_group("客户价值", None, 0, &actor)
        .await
        .unwrap();
    let vip = scope
        .create_tag(group.id, "高净值", "#ff4d4f", 1, &actor)
        .await
        .unwrap();
    let repeat = scope
        .create_tag(group.id, "复购", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let a = customer(&scope, "tag-a").await;
    let b = customer(&scope, "tag-b").await;
    let ghost = CustomerId(i64::MAX);

    let done = scope
        .change_tags(
            &[a, b, ghost],
            &[vip.id, repeat.id],
            &[],
            TagOrigin::Manual,
            Some("  年消费过万 "),
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(
        (done.added, done.removed),
        (4, 0),
        "the unknown id is skipped"
    );
    let on_a = scope.customer_tags(a).await.unwrap();
    assert_eq!(
        on_a.iter().map(|t| t.tag_id).collect::<Vec<_>>(),
        [repeat.id, vip.id],
        "in tag order"
    );
    assert_eq!(on_a[1].name, "高净值");
    assert_eq!(on_a[1].colour, "#ff4d4f");
    assert_eq!(on_a[1].origin, TagOrigin::Manual);
    assert_eq!(on_a[1].reason.as_deref(), Some("年消费过万"));
    assert_eq!(on_a[1].added_by, "guide@tagging.example.com");
    assert_eq!(scope.get_tag(vip.id).await.unwrap().customers, 2);

    // adding what a customer has, or removing what they lack, changes nothing
    let again = scope
        .change_tags(&[a], &[vip.id], &[], TagOrigin::Api, None, &actor)
        .await
        .unwrap();
    assert_eq!((again.added, again.removed), (0, 0));
    assert_eq!(
        scope.customer_tags(a).await.unwrap()[1].origin,
        TagOrigin::Manual,
        "the first tagging is kept"
    );
    let off = scope
        .change_tags(&[a], &[], &[repeat.id], TagOrigin::Api, None, &actor)
        .await
        .unwrap();
    assert_eq!((off.added, off.removed), (0, 1));
    let none = scope
        .change_tags(&[a], &[], &[repeat.id], TagOrigin::Api, None, &actor)
        .await
        .unwrap();
    assert_eq!((none.added, none.removed), (0, 0));
    assert_eq!(
        scope
            .customer_tags(a)
            .await
            .unwrap()
            .iter()
            .map(|t| t.tag_id)
            .collect::<Vec<_>>(),
        [vip.id]
    );
    assert_eq!(scope.customer_tags(b).await.unwrap().len(), 2);
    assert_eq!(scope.get_tag(repeat.id).await.unwrap().customers, 1);

    // the history, newest first: each real change, with who, how and why
    let history = scope.tag_history(a).await.unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|c| (c.tag.as_str(), c.action.as_str(), c.origin))
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], ("复购", "removed", TagOrigin::Api));
    assert!(seen[1..].contains(&("复购", "added", TagOrigin::Manual)));
    assert!(seen[1..].contains(&("高净值", "added", TagOrigin::Manual)));
    assert!(history.iter().all(|c| c.customer_id == a));
    assert!(
        history
            .iter()
            .all(|c| c.actor == "guide@tagging.example.com")
    );
    assert_eq!(history[0].reason, None);
    assert_eq!(history[1].reason.as_deref(), Some("年消费过万"));

    // one audit entry per tagging, saying what changed but not the free-text reason
    let tagged = audit(&scope, "customers.tagged").await;
    assert_eq!(tagged.len(), 4);
    let first = &tagged[3];
    assert_eq!(first.actor.label, "guide@tagging.example.com");
    assert_eq!(first.details["customers"], 3);
    assert_eq!(first.details["added"], 4);
    assert_eq!(first.details["removed"], 0);
    assert_eq!(first.details["origin"], "manual");
    assert_eq!(first.details["reason_given"], true);
    assert_eq!(first.details["add"], json!([vip.id.0, repeat.id.0]));
    assert!(
        !first.details.to_string().contains("年消费过万"),
        "{}",
        first.details
    );
    assert_eq!(tagged[1].details["removed"], 1);
    assert_eq!(tagged[1].details["reason_given"], false);
    assert!(first.details.get("part").is_none(), "one part only");

    // a reason is at most 200 characters; a refused tagging changes nothing
    assert_eq!(
        invalid_field(
            scope
                .change_tags(
                    &[a],
                    &[repeat.id],
                    &[],
                    TagOrigin::Manual,
                    Some(&"因".repeat(201)),
                    &actor,
                )
                .await
        ),
        "reason"
    );
    assert_eq!(scope.customer_tags(a).await.unwrap().len(), 1);
    assert_eq!(audit(&scope, "customers.tagged").await.len(), 4);
}

#[tokio::test]
async fn tags_and_customers_of_another_tenant_are_refused_or_skipped() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let mine = store.tenant(tenant(&store, "mine").await.id);
    let theirs = store.tenant(tenant(&store, "theirs").await.id);
    let actor = Actor::cli();
    let my_group = mine.create_tag_group("g", None, 0, &actor).await.unwrap();
    let my_tag = mine
        .create_tag(my_group.id, "mine", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let their_group = theirs.create_tag_group("g", None, 0, &actor).await.unwrap();
    let their_tag = theirs
        .create_tag(their_group.id, "theirs", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let me = customer(&mine, "me").await;
    let them = customer(&theirs, "them").await;

    // tags this tenant does not have, to add or to remove: nothing changes
    for (add, remove) in [
        (vec![my_tag.id, TagId(999_999)], vec![]),
        (vec![my_tag.id, their_tag.id], vec![]),
        (vec![my_tag.id], vec![their_tag.id]),
    ] {
        let refused = mine
            .change_tags(&[me], &add, &remove, TagOrigin::Manual, None, &actor)
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound(_))),
            "{add:?} {remove:?}: {refused:?}"
        );
    }
    assert!(mine.customer_tags(me).await.unwrap().is_empty());
    assert!(audit(&mine, "customers.tagged").await.is_empty());

    // another tenant's customer is skipped, its tags untouched
    let done = mine
        .change_tags(
            &[me, them],
            &[my_tag.id],
            &[],
            TagOrigin::Manual,
            None,
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(done.added, 1);
    assert!(theirs.customer_tags(them).await.unwrap().is_empty());
    assert!(matches!(
        mine.customer_tags(them).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        mine.tag_history(them).await,
        Err(StoreError::NotFound(_))
    ));

    // another tenant's tags and groups are not there to read, change or delete
    assert!(matches!(
        mine.get_tag(their_tag.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        mine.update_tag(their_tag.id, Some("x"), None, None, None, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        mine.update_tag(my_tag.id, None, None, Some(their_group.id), None, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        mine.delete_tag(their_tag.id, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        mine.create_tag(their_group.id, "x", "#1677ff", 0, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        mine.delete_tag_group(their_group.id, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    let their_root = theirs.root_unit().await.unwrap();
    assert!(matches!(
        mine.create_tag_group("x", Some(their_root.id), 0, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(theirs.get_tag(their_tag.id).await.unwrap().name, "theirs");
    assert_eq!(
        mine.tag_catalog()
            .await
            .unwrap()
            .into_keys()
            .collect::<Vec<_>>(),
        ["mine"]
    );
}

#[tokio::test]
async fn a_deleted_tag_leaves_its_customers_and_stays_in_their_history() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "deleting").await;
    let scope = store.tenant(t.id);
    let actor = staff("ops@deleting.example.com");
    let group = scope.create_tag_group("g", None, 0, &actor).await.unwrap();
    let trial = scope
        .create_tag(group.id, "试用", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let kept = scope
        .create_tag(group.id, "留下", "#1677ff", 1, &actor)
        .await
        .unwrap();
    let a = customer(&scope, "del-a").await;
    let b = customer(&scope, "del-b").await;
    scope
        .change_tags(
            &[a, b],
            &[trial.id, kept.id],
            &[],
            TagOrigin::Manual,
            None,
            &actor,
        )
        .await
        .unwrap();

    scope.delete_tag(trial.id, &actor).await.unwrap();
    assert!(matches!(
        scope.get_tag(trial.id).await,
        Err(StoreError::NotFound(_))
    ));
    for c in [a, b] {
        let tags = scope.customer_tags(c).await.unwrap();
        assert_eq!(tags.iter().map(|t| t.tag_id).collect::<Vec<_>>(), [kept.id]);
        let latest = &scope.tag_history(c).await.unwrap()[0];
        assert_eq!(latest.tag_id, trial.id);
        assert_eq!(latest.tag, "(deleted)");
        assert_eq!(latest.action, "removed");
        assert_eq!(latest.origin, TagOrigin::Manual);
        assert_eq!(
            latest.reason.as_deref(),
            Some("the tag \"试用\" was deleted")
        );
        assert_eq!(latest.actor, "ops@deleting.example.com");
    }
    let deleted = audit(&scope, "tag.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].details["name"], "试用");
    assert_eq!(deleted[0].details["customers"], 2);
    assert!(!scope.tag_catalog().await.unwrap().contains_key("试用"));

    // through the API, the history says so
    let token = Actor {
        kind: ActorKind::ApiToken,
        id: Some(7),
        label: "crm-sync".into(),
        ip: None,
    };
    scope.delete_tag(kept.id, &token).await.unwrap();
    let latest = &scope.tag_history(a).await.unwrap()[0];
    assert_eq!(
        (latest.origin, latest.actor.as_str()),
        (TagOrigin::Api, "crm-sync")
    );
    assert!(scope.customer_tags(a).await.unwrap().is_empty());
    // the name is free again, for a new tag that no one has yet
    let again = scope
        .create_tag(group.id, "试用", "#1677ff", 0, &actor)
        .await
        .unwrap();
    assert_ne!(again.id, trial.id);
    assert_eq!(again.customers, 0);
}

#[tokio::test]
async fn a_tag_in_use_is_kept_and_its_new_name_reaches_every_definition() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "renaming").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let group = scope.create_tag_group("g", None, 0, &actor).await.unwrap();
    let vip = scope
        .create_tag(group.id, "高净值", "#ff4d4f", 0, &actor)
        .await
        .unwrap();
    let local = scope
        .create_tag(group.id, "上海客户", "#1677ff", 1, &actor)
        .await
        .unwrap();
    let parse = |text: &str| siyu_audience::parse(text).unwrap();
    let segment = scope
        .create_segment(
            &NewSegment {
                name: "大客户".into(),
                description: None,
                condition: Some(parse(r#"tag("高净值") and trait.level >= 2"#)),
                members: vec![],
            },
            &actor,
        )
        .await
        .unwrap();
    let other = scope
        .create_segment(
            &NewSegment {
                name: "上海的".into(),
                description: None,
                condition: Some(parse(r#"tag("上海客户")"#)),
                members: vec![],
            },
            &actor,
        )
        .await
        .unwrap();
    let rule = scope
        .create_tag_rule(
            &NewTagRule {
                name: "上海大客户".into(),
                condition: parse(r#"tag("高净值") and trait.city = "上海""#),
                add: vec![local.id],
                remove: vec![],
                enabled: true,
            },
            &actor,
        )
        .await
        .unwrap()
        .0;
    scope
        .put_setting(
            "koc",
            &json!({"definition": r#"tag("高净值") or performed("Friend Invited", last 90d) >= 2"#}),
            &actor,
        )
        .await
        .unwrap();

    // deleting it is refused, naming everything that uses it
    let refused = scope.delete_tag(vip.id, &actor).await;
    let Err(StoreError::Conflict(message)) = refused else {
        panic!("{refused:?}");
    };
    for user in [
        format!("segment 大客户 ({})", segment.id.0),
        format!("tag rule 上海大客户 ({})", rule.id.0),
        "the koc setting".to_owned(),
    ] {
        assert!(message.contains(&user), "{message} names {user}");
    }
    assert!(!message.contains("上海的"), "{message}");
    assert_eq!(scope.get_tag(vip.id).await.unwrap().name, "高净值");

    // a rename refused (the name is taken) rewrites nothing
    assert!(matches!(
        scope
            .update_tag(vip.id, Some("上海客户"), None, None, None, &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        scope
            .get_segment(segment.id)
            .await
            .unwrap()
            .definition
            .as_deref(),
        Some(r#"tag("高净值") and trait.level >= 2"#)
    );
    assert_eq!(
        scope.get_tag_rule(rule.id).await.unwrap().definition,
        r#"tag("高净值") and trait.city = "上海""#
    );

    // a rename carries the new name into segments, rules and definition settings
    scope
        .update_tag(vip.id, Some("钻石会员"), None, None, None, &actor)
        .await
        .unwrap();
    let rewritten = scope.get_segment(segment.id).await.unwrap();
    assert_eq!(
        rewritten.definition.as_deref(),
        Some(r#"tag("钻石会员") and trait.level >= 2"#)
    );
    assert_eq!(rewritten.condition.unwrap()["and"][0]["tag"], "钻石会员");
    assert_eq!(
        scope
            .get_segment(other.id)
            .await
            .unwrap()
            .definition
            .as_deref(),
        Some(r#"tag("上海客户")"#),
        "a segment that does not name it is left alone"
    );
    assert_eq!(
        scope.get_tag_rule(rule.id).await.unwrap().definition,
        r#"tag("钻石会员") and trait.city = "上海""#
    );
    assert_eq!(
        scope.setting("koc").await.unwrap().unwrap()["definition"],
        r#"tag("钻石会员") or performed("Friend Invited", last 90d) >= 2"#
    );
    let catalog = scope.segment_catalog().await.unwrap();
    let siyu_audience::catalog::SavedSegment::Dynamic(condition) = &catalog[&segment.id.0] else {
        panic!("a dynamic segment");
    };
    assert_eq!(condition.tags(), ["钻石会员"]);
    let updated = audit(&scope, "tag.updated").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0].details,
        json!({"name": "钻石会员", "was": "高净值", "segments_rewritten": 1})
    );
    // still in use under its new name
    assert!(matches!(
        scope.delete_tag(vip.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
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
