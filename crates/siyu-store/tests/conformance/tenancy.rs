//! Tenants, their units and the unit tree; tenant isolation; paging.

use siyu_domain::access::DataScope;
use siyu_domain::audit::{Actor, ActorKind};
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{NewStaff, NewTenant, NewUnit, UnitChanges, UnitKind};
use siyu_store::testing::TestDatabase;
use siyu_store::{AuditFilter, StoreError};

use crate::support::tenant;

#[tokio::test]
async fn creating_a_tenant_makes_root_unit_builtin_roles_and_admin() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let new = NewTenant::new("acme", "Boss@Acme.example.com", "store-pass-7a").unwrap();
    let (tenant, admin) = store.create_tenant(&new, &Actor::cli()).await.unwrap();
    let scope = store.tenant(tenant.id);

    let root = scope.root_unit().await.unwrap();
    assert_eq!(
        (root.kind, root.parent_id, root.name.as_str()),
        (UnitKind::Group, None, "acme")
    );
    assert_eq!(admin.email.as_deref(), Some("boss@acme.example.com"));
    assert_eq!(admin.role, "admin");
    assert_eq!(admin.data_scope, DataScope::Tenant);
    assert_eq!(admin.unit_id, root.id);

    let roles = scope.list_roles(PageRequest::first(50)).await.unwrap();
    let names: Vec<_> = roles.items.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin",
            "operations",
            "service",
            "content",
            "growth",
            "analyst"
        ]
    );
    assert!(roles.items.iter().all(|r| r.builtin));

    let audit = scope
        .list_audit(PageRequest::first(10), &AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(audit.items[0].action, "tenant.created");
    assert_eq!(audit.items[0].actor.kind, ActorKind::Cli);

    let again = store
        .create_tenant(
            &NewTenant::new("acme", "x@y.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    // nothing of the refused tenant was left behind
    assert!(
        store
            .find_credentials("x@y.example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn one_tenant_never_reaches_another_tenants_rows() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let a = tenant(&store, "a").await;
    let b = tenant(&store, "b").await;
    let a_scope = store.tenant(a.id);
    let b_scope = store.tenant(b.id);
    let a_root = a_scope.root_unit().await.unwrap();
    let a_admin = a_scope
        .find_staff_by_email("admin@a.example.com")
        .await
        .unwrap()
        .unwrap();
    let actor = Actor::cli();

    assert!(matches!(
        b_scope.get_unit(a_root.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b_scope.get_staff(a_admin.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b_scope.get_role(a_admin.role_id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        b_scope
            .find_staff_by_email("admin@a.example.com")
            .await
            .unwrap()
            .is_none()
    );
    // b cannot hang a unit or a staff member on a's tree
    let unit = NewUnit::new(a_root.id, UnitKind::Brand, "sneaky").unwrap();
    assert!(matches!(
        b_scope.create_unit(&unit, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    let staff = NewStaff::new(
        a_root.id,
        "service",
        "s@b.example.com",
        "s",
        None,
        DataScope::Own,
    )
    .unwrap();
    assert!(matches!(
        b_scope.create_staff(&staff, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b_scope.delete_unit(a_root.id, &actor).await,
        Err(StoreError::NotFound(_))
    ));
    // lists hold only the tenant's own rows
    let b_units = b_scope.list_units(PageRequest::first(100)).await.unwrap();
    assert_eq!(b_units.items.len(), 1);
    let b_audit = b_scope
        .list_audit(PageRequest::first(100), &AuditFilter::default())
        .await
        .unwrap();
    assert!(
        b_audit
            .items
            .iter()
            .all(|e| !e.details.to_string().contains("a.example.com"))
    );
}

/// Two moves at once that would together make a cycle (A under B, B under A): one is
/// refused, and the tree stays a tree.
#[tokio::test]
async fn two_moves_at_once_cannot_make_a_cycle() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "race").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let root = scope.root_unit().await.unwrap();
    for round in 0..10 {
        let mut brands = Vec::new();
        for name in ["a", "b"] {
            brands.push(
                scope
                    .create_unit(
                        &NewUnit::new(root.id, UnitKind::Brand, &format!("{name}{round}")).unwrap(),
                        &actor,
                    )
                    .await
                    .unwrap(),
            );
        }
        let (a, b) = (brands[0].id, brands[1].id);
        let under_b = UnitChanges::new(None, Some(b)).unwrap();
        let under_a = UnitChanges::new(None, Some(a)).unwrap();
        let (first, second) = tokio::join!(
            scope.update_unit(a, &under_b, &actor),
            scope.update_unit(b, &under_a, &actor)
        );
        assert_eq!(
            first.is_ok() as u8 + second.is_ok() as u8,
            1,
            "round {round}: exactly one move happens"
        );
        // every unit still leads up to the root
        let parents = scope.unit_parents().await.unwrap();
        for unit in [a, b] {
            let mut at = unit;
            let mut steps = 0;
            while let Some(Some(parent)) = parents.get(&at) {
                at = *parent;
                steps += 1;
                assert!(steps < 10, "round {round}: a cycle");
            }
            assert_eq!(at, root.id);
        }
    }
}

#[tokio::test]
async fn the_unit_tree_stays_a_tree() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "tree").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let root = scope.root_unit().await.unwrap();
    let brand = scope
        .create_unit(
            &NewUnit::new(root.id, UnitKind::Brand, "brand").unwrap(),
            &actor,
        )
        .await
        .unwrap();
    let store_unit = scope
        .create_unit(
            &NewUnit::new(brand.id, UnitKind::Store, "store").unwrap(),
            &actor,
        )
        .await
        .unwrap();

    // no cycles, no children under stores, the root stays put
    let to_child = UnitChanges::new(None, Some(store_unit.id)).unwrap();
    assert!(matches!(
        scope.update_unit(brand.id, &to_child, &actor).await,
        Err(StoreError::Domain(_))
    ));
    let under_store = NewUnit::new(store_unit.id, UnitKind::Store, "x").unwrap();
    assert!(matches!(
        scope.create_unit(&under_store, &actor).await,
        Err(StoreError::Domain(_))
    ));
    let move_root = UnitChanges::new(None, Some(brand.id)).unwrap();
    assert!(matches!(
        scope.update_unit(root.id, &move_root, &actor).await,
        Err(StoreError::Domain(_))
    ));
    assert!(matches!(
        scope.delete_unit(root.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    // a unit with something below it cannot be deleted; once empty it can
    assert!(matches!(
        scope.delete_unit(brand.id, &actor).await,
        Err(StoreError::Conflict(_))
    ));
    scope.delete_unit(store_unit.id, &actor).await.unwrap();
    scope.delete_unit(brand.id, &actor).await.unwrap();
    assert!(matches!(
        scope.get_unit(brand.id).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn pages_walk_every_row_once() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "pages").await;
    let scope = store.tenant(t.id);
    let root = scope.root_unit().await.unwrap();
    for i in 0..23 {
        scope
            .create_unit(
                &NewUnit::new(root.id, UnitKind::Store, &format!("s{i}")).unwrap(),
                &Actor::cli(),
            )
            .await
            .unwrap();
    }
    let mut seen = vec![];
    let mut page = PageRequest::first(5);
    loop {
        let p = scope.list_units(page).await.unwrap();
        assert!(p.items.len() <= 5);
        seen.extend(p.items.iter().map(|u| u.id));
        match p.next_cursor {
            Some(c) => page = PageRequest::parse(Some(&c), Some(5)).unwrap(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted, seen);
}
