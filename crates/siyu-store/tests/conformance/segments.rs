//! Saved segments: dynamic ones by their definition, static ones a frozen list; names
//! unique; a segment another definition uses is kept; sizes recorded over time.

use std::time::Duration;

use siyu_audience::Condition;
use siyu_audience::catalog::SavedSegment;
use siyu_domain::audience::{SegmentId, SegmentKind};
use siyu_domain::audit::Actor;
use siyu_store::testing::TestDatabase;
use siyu_store::{NewSegment, NewTagRule, StoreError};

use crate::support::{audit, customer, invalid_field, staff, tenant};

fn parse(text: &str) -> Condition {
    siyu_audience::parse(text).unwrap()
}

fn dynamic(name: &str, definition: &str) -> NewSegment {
    NewSegment {
        name: name.into(),
        description: None,
        condition: Some(parse(definition)),
        members: vec![],
    }
}

#[tokio::test]
async fn dynamic_and_static_segments_are_saved_and_read_back() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "segs").await;
    let scope = store.tenant(t.id);
    let other = store.tenant(tenant(&store, "elsewhere").await.id);
    let actor = staff("growth@segs.example.com");
    let a = customer(&scope, "seg-a").await;
    let b = customer(&scope, "seg-b").await;
    let foreign = customer(&other, "seg-x").await;

    let high = scope
        .create_segment(
            &NewSegment {
                name: " 高等级 ".into(),
                description: Some("level ≥ 2".into()),
                condition: Some(parse("trait.level >= 2")),
                members: vec![a],
            },
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(high.name, "高等级");
    assert_eq!(high.kind, SegmentKind::Dynamic);
    assert_eq!(high.description.as_deref(), Some("level ≥ 2"));
    assert_eq!(high.definition.as_deref(), Some("trait.level >= 2"));
    assert_eq!(high.condition.as_ref().unwrap()["trait"]["key"], "level");
    assert_eq!(high.created_by, "growth@segs.example.com");
    assert_eq!(high.created_at, high.updated_at);
    assert_eq!(scope.get_segment(high.id).await.unwrap(), high);

    // a static segment keeps the tenant's live customers it was given, once each
    let list = scope
        .create_segment(
            &NewSegment {
                name: "名单".into(),
                description: None,
                condition: None,
                members: vec![b, a, b, foreign],
            },
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(list.kind, SegmentKind::Static);
    assert_eq!((list.definition, list.condition), (None, None));
    let catalog = scope.segment_catalog().await.unwrap();
    assert_eq!(catalog.len(), 2);
    assert_eq!(
        catalog[&high.id.0],
        SavedSegment::Dynamic(parse("trait.level >= 2"))
    );
    let SavedSegment::Static(mut members) = catalog[&list.id.0].clone() else {
        panic!("a static segment");
    };
    members.sort_unstable();
    let mut want = vec![a.0, b.0];
    want.sort_unstable();
    assert_eq!(members, want, "another tenant's customer is not a member");
    // an empty list is a segment too
    let empty = scope
        .create_segment(
            &NewSegment {
                name: "空".into(),
                description: None,
                condition: None,
                members: vec![],
            },
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(
        scope.segment_catalog().await.unwrap()[&empty.id.0],
        SavedSegment::Static(vec![])
    );

    assert_eq!(
        scope
            .segments()
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [high.id, list.id, empty.id]
    );
    let created = audit(&scope, "segment.created").await;
    assert_eq!(created.len(), 3);
    assert_eq!(created[2].details["name"], "高等级");
    assert_eq!(created[2].details["kind"], "dynamic");
    assert_eq!(created[1].details["kind"], "static");
    assert_eq!(created[2].actor.label, "growth@segs.example.com");
    assert_eq!(created[2].target_id, Some(high.id.0.to_string()));

    // another tenant sees none of them
    assert!(other.segments().await.unwrap().is_empty());
    assert!(other.segment_catalog().await.unwrap().is_empty());
    assert!(matches!(
        other.get_segment(high.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        other
            .update_segment(high.id, Some("x"), None, None, &Actor::cli())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        other.delete_segment(high.id, &Actor::cli()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        other.segment_counts(high.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(scope.get_segment(high.id).await.unwrap().name, "高等级");
}

#[tokio::test]
async fn segments_are_changed_under_unique_names() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "change").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let mut first = dynamic("高等级", "trait.level >= 2");
    first.description = Some("level ≥ 2".into());
    let high = scope.create_segment(&first, &actor).await.unwrap();
    let low = scope
        .create_segment(&dynamic("低等级", "trait.level < 2"), &actor)
        .await
        .unwrap();
    let list = scope
        .create_segment(
            &NewSegment {
                name: "名单".into(),
                description: None,
                condition: None,
                members: vec![],
            },
            &actor,
        )
        .await
        .unwrap();

    assert!(matches!(
        scope
            .create_segment(&dynamic("高等级", "trait.level >= 1"), &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        invalid_field(
            scope
                .create_segment(&dynamic(&"名".repeat(81), "trait.level >= 1"), &actor)
                .await
        ),
        "name"
    );
    assert_eq!(scope.segments().await.unwrap().len(), 3);

    // what is not given is kept
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renamed = scope
        .update_segment(high.id, Some("高级会员"), None, None, &actor)
        .await
        .unwrap();
    assert_eq!(renamed.name, "高级会员");
    assert_eq!(renamed.description.as_deref(), Some("level ≥ 2"));
    assert_eq!(renamed.definition.as_deref(), Some("trait.level >= 2"));
    assert_eq!(renamed.created_at, high.created_at);
    assert!(renamed.updated_at > high.updated_at);
    // a new definition; the description cleared
    let redefined = scope
        .update_segment(
            high.id,
            None,
            Some(None),
            Some(&parse("trait.level >= 4")),
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(redefined.name, "高级会员");
    assert_eq!(redefined.description, None);
    assert_eq!(redefined.definition.as_deref(), Some("trait.level >= 4"));
    assert_eq!(
        scope.segment_catalog().await.unwrap()[&high.id.0],
        SavedSegment::Dynamic(parse("trait.level >= 4"))
    );

    // a name taken, or a definition for a frozen list: refused, nothing changed
    assert!(matches!(
        scope
            .update_segment(low.id, Some("高级会员"), None, None, &actor)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        scope
            .update_segment(
                list.id,
                Some("新名单"),
                None,
                Some(&parse("trait.level >= 1")),
                &actor
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(scope.get_segment(low.id).await.unwrap().name, "低等级");
    let kept = scope.get_segment(list.id).await.unwrap();
    assert_eq!((kept.name.as_str(), kept.definition), ("名单", None));
    assert!(matches!(
        scope
            .update_segment(SegmentId(999_999), Some("x"), None, None, &actor)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // a static segment may be renamed and described
    let described = scope
        .update_segment(list.id, None, Some(Some("门店名单")), None, &actor)
        .await
        .unwrap();
    assert_eq!(described.description.as_deref(), Some("门店名单"));
    assert_eq!(described.kind, SegmentKind::Static);

    let updated = audit(&scope, "segment.updated").await;
    assert_eq!(updated.len(), 3, "refused changes are not audited");
    assert_eq!(updated[2].details["name"], "高级会员");
    assert_eq!(updated[0].details["name"], "名单");
}

#[tokio::test]
async fn a_segment_another_definition_uses_is_not_deleted() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "uses").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let base = scope
        .create_segment(&dynamic("高等级", "trait.level >= 2"), &actor)
        .await
        .unwrap();
    let list = scope
        .create_segment(
            &NewSegment {
                name: "名单".into(),
                description: None,
                condition: None,
                members: vec![customer(&scope, "member").await],
            },
            &actor,
        )
        .await
        .unwrap();
    let both = scope
        .create_segment(
            &dynamic(
                "合并",
                &format!("segment({}) or segment({})", base.id.0, list.id.0),
            ),
            &actor,
        )
        .await
        .unwrap();
    let group = scope.create_tag_group("g", None, 0, &actor).await.unwrap();
    let tag = scope
        .create_tag(group.id, "高等级客户", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let rule = scope
        .create_tag_rule(
            &NewTagRule {
                name: "标记高等级".into(),
                condition: parse(&format!("segment({})", base.id.0)),
                add: vec![tag.id],
                remove: vec![],
                enabled: true,
            },
            &actor,
        )
        .await
        .unwrap()
        .0;

    let refused = scope.delete_segment(base.id, &actor).await;
    let Err(StoreError::Conflict(message)) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains(&format!("segment 合并 ({})", both.id.0)),
        "{message}"
    );
    assert!(
        message.contains(&format!("tag rule 标记高等级 ({})", rule.id.0)),
        "{message}"
    );
    assert!(matches!(
        scope.delete_segment(list.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(scope.segments().await.unwrap().len(), 3);

    // once nothing uses them they go
    scope.record_segment_count(list.id, 1).await.unwrap(); // sizes recorded go with it
    scope.delete_segment(both.id, &actor).await.unwrap();
    scope.delete_segment(list.id, &actor).await.unwrap();
    assert!(matches!(
        scope.delete_segment(base.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    scope.delete_tag_rule(rule.id, &actor).await.unwrap();
    scope.delete_segment(base.id, &actor).await.unwrap();
    for id in [base.id, list.id, both.id] {
        assert!(matches!(
            scope.get_segment(id).await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(scope.segment_catalog().await.unwrap().is_empty());
    assert!(matches!(
        scope.delete_segment(base.id, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    let deleted = audit(&scope, "segment.deleted").await;
    assert_eq!(
        deleted
            .iter()
            .map(|e| e.details["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["高等级", "名单", "合并"]
    );
    // the name is free again
    scope
        .create_segment(&dynamic("高等级", "trait.level >= 3"), &actor)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_segments_sizes_are_recorded_oldest_first() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "sizes").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let segment = scope
        .create_segment(&dynamic("高等级", "trait.level >= 2"), &actor)
        .await
        .unwrap();
    let other = scope
        .create_segment(&dynamic("低等级", "trait.level < 2"), &actor)
        .await
        .unwrap();
    assert!(scope.segment_counts(segment.id).await.unwrap().is_empty());
    let before = siyu_store::now_ms();
    for count in [3, 5, 4] {
        scope.record_segment_count(segment.id, count).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    scope.record_segment_count(other.id, 100).await.unwrap();
    let counts = scope.segment_counts(segment.id).await.unwrap();
    assert_eq!(
        counts.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        [3, 5, 4]
    );
    assert!(counts.windows(2).all(|w| w[0].0 < w[1].0), "{counts:?}");
    assert!(counts[0].0 >= before && counts[2].0 <= siyu_store::now_ms());
    assert_eq!(
        scope.segment_counts(other.id).await.unwrap().len(),
        1,
        "each segment has its own"
    );
    assert!(matches!(
        scope.segment_counts(SegmentId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
    // a segment made again under a deleted one's name starts with no sizes
    scope.delete_segment(segment.id, &actor).await.unwrap();
    let again = scope
        .create_segment(&dynamic("高等级", "trait.level >= 2"), &actor)
        .await
        .unwrap();
    assert!(scope.segment_counts(again.id).await.unwrap().is_empty());
}
