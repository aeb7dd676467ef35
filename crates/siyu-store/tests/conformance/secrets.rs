//! Tenant secrets: sealed at rest, bound to their tenant.

use siyu_domain::audit::Actor;
use siyu_store::testing::TestDatabase;
use siyu_store::{SecretName, Store, StoreError};

use crate::support::tenant;

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_bound_to_their_tenant() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "sa").await;
    let b = tenant(&store, "sb").await;
    let name = SecretName::new("wecom.corp_secret").unwrap();
    let value = b"corp-secret-value-0123456789";
    store
        .tenant(a.id)
        .put_secret(&name, value, &Actor::cli())
        .await
        .unwrap();

    let raw = store
        .tenant(a.id)
        .raw_sealed_secret(&name)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !raw.windows(value.len()).any(|w| w == value),
        "stored in the clear"
    );
    assert_eq!(
        store.tenant(a.id).get_secret(&name).await.unwrap().unwrap(),
        value
    );
    assert!(
        store
            .tenant(b.id)
            .get_secret(&name)
            .await
            .unwrap()
            .is_none()
    );

    store
        .tenant(a.id)
        .put_secret(&name, b"rotated", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(
        store.tenant(a.id).get_secret(&name).await.unwrap().unwrap(),
        b"rotated"
    );
    assert_eq!(
        store.tenant(a.id).list_secret_names().await.unwrap(),
        ["wecom.corp_secret"]
    );

    // a store opened with another key cannot read it
    let other_key = siyu_domain::secret::SecretKey::from_base64(
        &siyu_domain::secret::SecretKey::generate_base64(),
    )
    .unwrap();
    let other = Store::connect(
        &db.url,
        siyu_store::StoreOptions {
            secret_key: Some(other_key),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        other.tenant(a.id).get_secret(&name).await,
        Err(StoreError::Secret(_))
    ));
    // and one with no key refuses to store
    let keyless = Store::connect(&db.url, siyu_store::StoreOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        keyless
            .tenant(a.id)
            .put_secret(&name, b"x", &Actor::cli())
            .await,
        Err(StoreError::NoSecretKey)
    ));
    store
        .tenant(a.id)
        .delete_secret(&name, &Actor::cli())
        .await
        .unwrap();
    assert!(matches!(
        store.tenant(a.id).delete_secret(&name, &Actor::cli()).await,
        Err(StoreError::NotFound(_))
    ));
}
