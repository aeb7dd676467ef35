//! Roles and staff.

use siyu_domain::access::{DataScope, Permission, PermissionSet};
use siyu_domain::audit::Actor;
use siyu_domain::ids::{RoleId, UnitId};
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{NewStaff, NewUnit, UnitKind};
use siyu_store::StoreError;
use siyu_store::testing::TestDatabase;

use crate::support::tenant;

#[tokio::test]
async fn roles_in_use_cannot_be_deleted_and_builtins_cannot_change() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "roles").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let perms: PermissionSet = [Permission::UnitsRead, Permission::StaffRead]
        .into_iter()
        .collect();
    let role = scope
        .create_role("store-manager", "runs a store", &perms, &actor)
        .await
        .unwrap();
    assert_eq!(role.permissions, perms);
    assert!(matches!(
        scope.create_role("store-manager", "", &perms, &actor).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let root = scope.root_unit().await.unwrap();
    let staff = scope
        .create_staff(
            &NewStaff::new(
                root.id,
                "store-manager",
                "m@roles.example.com",
                "m",
                None,
                DataScope::Own,
            )
            .unwrap(),
            &actor,
        )
        .await
        .unwrap();
    assert!(matches!(
        scope.delete_role(role.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    scope.delete_staff(staff.id, &actor).await.unwrap();
    scope.delete_role(role.id, &actor).await.unwrap();

    let admin = scope.role_by_name("admin").await.unwrap();
    assert!(matches!(
        scope.update_role(admin.id, Some("x"), None, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        scope.delete_role(admin.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        scope.get_role(RoleId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn staff_emails_are_unique_and_listing_filters_by_unit() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "st").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let root = scope.root_unit().await.unwrap();
    let brand = scope
        .create_unit(
            &NewUnit::new(root.id, UnitKind::Brand, "b").unwrap(),
            &actor,
        )
        .await
        .unwrap();
    let new = NewStaff::new(
        brand.id,
        "service",
        "x@st.example.com",
        "x",
        None,
        DataScope::Own,
    )
    .unwrap();
    scope.create_staff(&new, &actor).await.unwrap();
    assert!(matches!(
        scope.create_staff(&new, &actor).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let bad_role = NewStaff::new(
        brand.id,
        "wizard",
        "y@st.example.com",
        "y",
        None,
        DataScope::Own,
    )
    .unwrap();
    assert!(matches!(
        scope.create_staff(&bad_role, &actor).await,
        Err(StoreError::Domain(_))
    ));

    let in_brand = scope
        .list_staff(PageRequest::first(10), Some(&[brand.id]))
        .await
        .unwrap();
    assert_eq!(in_brand.items.len(), 1);
    assert_eq!(in_brand.items[0].email.as_deref(), Some("x@st.example.com"));
    let all = scope
        .list_staff(PageRequest::first(10), None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let nowhere = scope
        .list_staff(PageRequest::first(10), Some(&[UnitId(0)]))
        .await
        .unwrap();
    assert!(nowhere.items.is_empty());
}
