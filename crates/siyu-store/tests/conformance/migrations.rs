//! Migrations: applying them again, and upgrades that carry data across.

use siyu_domain::access::DataScope;
use siyu_domain::audit::Actor;
use siyu_domain::tenancy::NewTenant;
use siyu_store::Store;
use siyu_store::testing::TestDatabase;

use crate::support::tenant;

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
