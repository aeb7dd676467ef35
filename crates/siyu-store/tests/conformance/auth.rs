//! Sessions, API tokens and the login throttle.

use siyu_domain::access::{DataScope, Permission, PrincipalKind};
use siyu_domain::audit::{Actor, ActorKind};
use siyu_domain::ids::StaffId;
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{NewStaff, StaffChanges, StaffStatus};
use siyu_store::testing::TestDatabase;
use siyu_store::{AuditFilter, LoginThrottle};

use crate::support::tenant;

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
