//! The store's conformance suite. It runs on SQLite by default and on PostgreSQL when
//! SIYU_TEST_DATABASE_URL names a server (`.ci/run` does both): one suite, every backend.

use siyu_domain::access::{DataScope, Permission, PermissionSet, PrincipalKind};
use siyu_domain::audit::{Actor, ActorKind};
use siyu_domain::ids::{RoleId, StaffId, UnitId};
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{
    NewStaff, NewTenant, NewUnit, StaffChanges, StaffStatus, UnitChanges, UnitKind,
};
use siyu_store::testing::TestDatabase;
use siyu_store::{AuditFilter, LoginThrottle, SecretName, Store, StoreError};

async fn tenant(store: &Store, name: &str) -> siyu_domain::tenancy::Tenant {
    let new = NewTenant::new(name, &format!("admin@{name}.example.com"), "store-pass-7a").unwrap();
    store.create_tenant(&new, &Actor::cli()).await.unwrap().0
}

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
    assert_eq!(admin.email, "boss@acme.example.com");
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
async fn sessions_end_on_logout_disable_and_password_change() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "sess").await;
    let scope = store.tenant(t.id);
    let creds = store
        .find_credentials("ADMIN@sess.example.com")
        .await
        .unwrap()
        .remove(0);
    let actor = Actor::cli();

    let secret = store
        .create_session(&creds, &actor, Some("test"))
        .await
        .unwrap();
    let principal = store.resolve_session(&secret).await.unwrap().unwrap();
    assert_eq!(principal.tenant_id, t.id);
    assert!(principal.can(Permission::AuditRead));
    assert!(matches!(principal.kind, PrincipalKind::Staff { .. }));
    assert!(
        store
            .resolve_session("not-a-session")
            .await
            .unwrap()
            .is_none()
    );
    store.end_session(&principal, &actor).await.unwrap();
    assert!(store.resolve_session(&secret).await.unwrap().is_none());

    let root = scope.root_unit().await.unwrap();
    let staff = scope
        .create_staff(
            &NewStaff::new(
                root.id,
                "service",
                "s@sess.example.com",
                "s",
                Some("sess-pass-two"),
                DataScope::Own,
            )
            .unwrap(),
            &actor,
        )
        .await
        .unwrap();
    let s_creds = store
        .find_credentials("s@sess.example.com")
        .await
        .unwrap()
        .remove(0);
    let s1 = store.create_session(&s_creds, &actor, None).await.unwrap();
    let mut changes = StaffChanges::default();
    changes.set_password("rotated-pass-3").unwrap();
    scope
        .update_staff(staff.id, &changes, &actor)
        .await
        .unwrap();
    assert!(
        store.resolve_session(&s1).await.unwrap().is_none(),
        "password change ends sessions"
    );

    let s2 = store.create_session(&s_creds, &actor, None).await.unwrap();
    let disable = StaffChanges {
        status: Some(StaffStatus::Disabled),
        ..StaffChanges::default()
    };
    scope
        .update_staff(staff.id, &disable, &actor)
        .await
        .unwrap();
    assert!(
        store.resolve_session(&s2).await.unwrap().is_none(),
        "disabling ends sessions"
    );
    assert!(matches!(
        scope.get_staff(StaffId(staff.id.0)).await.unwrap().status,
        StaffStatus::Disabled
    ));
}

#[tokio::test]
async fn api_tokens_are_stored_hashed_and_stop_when_revoked_or_expired() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "tok").await;
    let scope = store.tenant(t.id);
    let actor = Actor::cli();
    let role = scope.role_by_name("analyst").await.unwrap();
    let (token, secret) = scope
        .create_api_token("bi", &role, None, None, &actor)
        .await
        .unwrap();
    assert!(secret.starts_with("siyu_pat_"));
    assert!(secret.starts_with(&token.display_prefix));
    let principal = store.resolve_api_token(&secret).await.unwrap().unwrap();
    assert_eq!(principal.role, "analyst");
    assert!(principal.can(Permission::AnalyticsRead));
    assert!(!principal.can(Permission::StaffWrite));
    assert!(
        scope
            .get_api_token(token.id)
            .await
            .unwrap()
            .last_used_at
            .is_some()
    );
    scope.revoke_api_token(token.id, &actor).await.unwrap();
    assert!(store.resolve_api_token(&secret).await.unwrap().is_none());

    let (_, expired) = scope
        .create_api_token("old", &role, Some(siyu_store::now_ms() - 1), None, &actor)
        .await
        .unwrap();
    assert!(store.resolve_api_token(&expired).await.unwrap().is_none());

    let log = scope
        .list_audit(
            PageRequest::first(50),
            &AuditFilter {
                action: Some("token.".into()),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<_> = log.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.created", "token.revoked", "token.created"]);
}

#[tokio::test]
async fn login_failures_are_counted_per_email_and_address() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant(&store, "thr").await;
    let creds = store
        .find_credentials("admin@thr.example.com")
        .await
        .unwrap()
        .into_iter()
        .next();
    let actor = Actor {
        kind: ActorKind::Anonymous,
        id: None,
        label: "admin@thr.example.com".into(),
        ip: Some("10.0.0.9".into()),
    };
    for _ in 0..3 {
        store
            .begin_login_attempt("admin@thr.example.com", Some("10.0.0.9"))
            .await
            .unwrap();
        store
            .audit_login_failure(creds.as_ref(), &actor, false)
            .await
            .unwrap();
    }
    store
        .begin_login_attempt("nobody@thr.example.com", Some("10.0.0.9"))
        .await
        .unwrap();
    store
        .audit_login_failure(None, &actor, false)
        .await
        .unwrap();
    let forgotten = store
        .begin_login_attempt("admin@thr.example.com", Some("10.0.0.9"))
        .await
        .unwrap();
    store.forget_login_attempt(forgotten).await.unwrap();
    let throttle = LoginThrottle::default();
    let counts = store
        .recent_login_failures("ADMIN@thr.example.com", Some("10.0.0.9"), throttle)
        .await
        .unwrap();
    assert_eq!(counts, (3, 4));
    let none = store
        .recent_login_failures(
            "admin@thr.example.com",
            Some("10.0.0.9"),
            LoginThrottle {
                window_ms: -1,
                ..throttle
            },
        )
        .await
        .unwrap();
    assert_eq!(none, (0, 0));
    let log = store
        .tenant(t.id)
        .list_audit(
            PageRequest::first(50),
            &AuditFilter {
                action: Some("auth.login_failed".into()),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        log.items.len(),
        3,
        "failures for an unknown email go to no tenant's log"
    );
    assert_eq!(log.items[0].actor.ip.as_deref(), Some("10.0.0.9"));
}

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
    assert_eq!(in_brand.items[0].email, "x@st.example.com");
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

#[tokio::test]
async fn migrations_apply_twice_without_harm() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(
        store.backend() == siyu_store::Backend::Postgres,
        db.is_postgres()
    );
}

/// Migration 11 makes staff emails unique per tenant; on SQLite it rebuilds the staff
/// table, which must keep every staff member, session and saved view.
#[tokio::test]
async fn upgrading_to_per_tenant_staff_emails_keeps_staff_sessions_and_views() {
    let db = TestDatabase::create().await;
    let options = siyu_store::StoreOptions {
        max_connections: 2,
        secret_key: Some(
            siyu_domain::secret::SecretKey::from_base64(
                &siyu_domain::secret::SecretKey::generate_base64(),
            )
            .unwrap(),
        ),
        ..siyu_store::StoreOptions::default()
    };
    let store = Store::connect(&db.url, options).await.unwrap();
    store.migrate_to(10).await.unwrap();
    let t = tenant(&store, "before").await;
    let creds = store
        .find_credentials("admin@before.example.com")
        .await
        .unwrap()
        .remove(0);
    let secret = store
        .create_session(&creds, &Actor::cli(), None)
        .await
        .unwrap();
    let view = siyu_domain::view::NewView::parse("customers", "上海", Some("上海"), None).unwrap();
    store
        .tenant(t.id)
        .save_view(creds.staff_id, &view)
        .await
        .unwrap();
    // the newest staff member leaves before the upgrade: their id is not given again
    let scope = store.tenant(t.id);
    let root = scope.root_unit().await.unwrap();
    let leaver = scope
        .create_staff(
            &siyu_domain::tenancy::NewStaff::new(
                root.id,
                "analyst",
                "leaver@before.example.com",
                "走了",
                None,
                DataScope::Own,
            )
            .unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    scope.delete_staff(leaver.id, &Actor::cli()).await.unwrap();
    // before: one address, one tenant
    let taken = NewTenant::new("second", "admin@before.example.com", "store-pass-7a").unwrap();
    assert!(store.create_tenant(&taken, &Actor::cli()).await.is_err());

    store.migrate().await.unwrap();
    let principal = store.resolve_session(&secret).await.unwrap();
    assert_eq!(
        principal.map(|p| p.tenant_id),
        Some(t.id),
        "the session survived"
    );
    let views = store
        .tenant(t.id)
        .list_views(creds.staff_id, "customers")
        .await
        .unwrap();
    assert_eq!(views.len(), 1, "the saved view survived");
    // after: the same address may be staff of another tenant, and new staff get ids
    // after the old ones
    let (second, admin) = store.create_tenant(&taken, &Actor::cli()).await.unwrap();
    assert!(admin.id.0 > leaver.id.0, "{} reuses an id", admin.id.0);
    let both = store
        .find_credentials("admin@before.example.com")
        .await
        .unwrap();
    assert_eq!(
        both.iter().map(|c| c.tenant_id).collect::<Vec<_>>(),
        [t.id, second.id]
    );
}

/// A tenant's first order and a change of its currency at once: either the change
/// comes first and the order is in the new currency, or the order comes first and the
/// change is refused. Never an order in a currency the tenant no longer keeps.
#[tokio::test]
async fn a_currency_change_and_a_first_order_at_once_agree() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let actor = Actor::cli();
    for round in 0..10 {
        let t = tenant(&store, &format!("fx{round}")).await;
        let scope = store.tenant(t.id);
        let customer = scope
            .ensure_customer(
                &siyu_domain::identity::Identity::new(
                    siyu_domain::identity::IdentityKind::of(
                        siyu_domain::identity::IdentityKind::USER_ID,
                    ),
                    "u-1",
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let input: siyu_domain::order::OrderInput = serde_json::from_value(serde_json::json!({
            "order_id": "first", "customer_id": customer.0, "channel": "tmall", "amount": 10,
            "ordered_at": "2026-11-01T10:00:00+08:00"
        }))
        .unwrap();
        let order = input.to_new_order(siyu_store::now_ms()).unwrap();
        let hkd = siyu_domain::currency::CurrencySettings {
            currency: "HKD".into(),
            rates: Default::default(),
        };
        let (changed, recorded) = tokio::join!(
            scope.set_currency_settings(&hkd, &actor),
            scope.record_order(customer, &order, "api")
        );
        let (recorded, _) = recorded.unwrap();
        match changed {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("round {round}: the change failed otherwise: {other}"),
        }
        let kept = scope.currency_settings().await.unwrap().currency;
        assert_eq!(recorded.currency, kept, "round {round}");
    }
}

/// Runs one statement on the test database directly (what no store method would do).
async fn execute_raw(db: &TestDatabase, sql: &str) {
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// Migration 13 counts the trait names profiles already hold, per tenant, so the trait
/// limits start from what a tenant uses.
#[tokio::test]
async fn upgrading_to_trait_limits_counts_the_names_in_use() {
    let db = TestDatabase::create().await;
    let options = siyu_store::StoreOptions {
        max_connections: 2,
        ..siyu_store::StoreOptions::default()
    };
    let store = Store::connect(&db.url, options).await.unwrap();
    store.migrate_to(12).await.unwrap();
    let a = tenant(&store, "first").await;
    let b = tenant(&store, "second").await;
    for (t, user) in [(a.id, "u1"), (a.id, "u2"), (b.id, "u3")] {
        let identity = siyu_domain::identity::Identity::new(
            siyu_domain::identity::IdentityKind::of("user_id"),
            user,
        )
        .unwrap();
        store.tenant(t).ensure_customer(&identity).await.unwrap();
    }
    execute_raw(
        &db,
        &format!(
            "UPDATE customers SET traits = CASE WHEN tenant_id = {} \
             THEN '{{\"city\": \"上海\", \"vip\": true}}' ELSE '{{\"city\": \"北京\"}}' END",
            a.id.0
        ),
    )
    .await;
    store.migrate().await.unwrap();
    assert_eq!(
        store.tenant(a.id).trait_name_counts().await.unwrap(),
        (2, 0)
    );
    assert_eq!(
        store.tenant(b.id).trait_name_counts().await.unwrap(),
        (1, 0)
    );
}
