//! The content library: a change made from a stale read is refused, not written over
//! a newer one; a unit an item names is not deleted from under it; an item names only
//! files uploaded for the library.

use siyu_domain::audit::Actor;
use siyu_domain::engagement::content::{ContentKind, NewContentItem};
use siyu_domain::ids::UnitId;
use siyu_domain::tenancy::{NewUnit, UnitKind};
use siyu_store::StoreError;

use crate::support::fixture;

fn text_item(title: &str, unit: Option<UnitId>) -> NewContentItem {
    NewContentItem {
        kind: ContentKind::Text,
        title: title.into(),
        category: None,
        source: None,
        tags: vec!["话术".into()],
        unit_id: unit,
        text: Some("您好".into()),
        file_id: None,
        url: None,
        description: None,
        image_file_id: None,
        appid: None,
        page: None,
        article: None,
    }
}

#[tokio::test]
async fn a_change_from_a_stale_read_is_refused() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let actor = Actor::cli();
    let made = scope
        .create_content_item(&text_item("开场白", None).check().unwrap(), None, &actor)
        .await
        .unwrap();
    let (first, second) = (made.clone(), made.clone());
    let renamed = text_item("开场白（新）", None).check().unwrap();
    let changed = scope
        .update_content_item(&first, &renamed, &actor)
        .await
        .unwrap();
    assert_eq!(changed.title, "开场白（新）");
    assert!(changed.updated_at > made.updated_at);
    let stale = text_item("另一个标题", None).check().unwrap();
    assert!(matches!(
        scope.update_content_item(&second, &stale, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        scope.get_content_item(made.id).await.unwrap().title,
        "开场白（新）",
        "the newer change stays"
    );
}

#[tokio::test]
async fn a_unit_an_item_names_stays_and_files_must_be_the_librarys() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let actor = Actor::cli();
    let root = scope.root_unit().await.unwrap();
    let store_unit = scope
        .create_unit(
            &NewUnit::new(root.id, UnitKind::Store, "西湖店").unwrap(),
            &actor,
        )
        .await
        .unwrap();
    let item = scope
        .create_content_item(
            &text_item("门店话术", Some(store_unit.id)).check().unwrap(),
            None,
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(item.unit_id, Some(store_unit.id));
    assert!(scope.delete_unit(store_unit.id, &actor).await.is_err());
    assert!(scope.get_unit(store_unit.id).await.is_ok());

    // a file stored for another purpose is not the library's
    let other = scope
        .put_file("customers.csv", "text/csv", b"email\n")
        .await
        .unwrap();
    assert!(matches!(
        scope.content_file_info(other.id).await,
        Err(StoreError::NotFound(_))
    ));
    let mine = scope
        .put_content_file("a.png", "image/png", vec![1, 2, 3, 4, 5], None, &actor)
        .await
        .unwrap();
    assert_eq!(
        scope.content_file(mine.id).await.unwrap().1,
        vec![1, 2, 3, 4, 5]
    );
}
