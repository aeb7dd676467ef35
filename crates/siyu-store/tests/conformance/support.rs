//! What the concerns' tests share: a tenant, a tenant with a source to ingest through,
//! customers, and the audit log read back.

use serde_json::Value;
use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, ActorKind, AuditEntry};
use siyu_domain::customer::SourceKind;
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::ids::{CustomerId, JobId};
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::NewTenant;
use siyu_domain::tracking::{BatchDefaults, read_event};
use siyu_store::testing::TestDatabase;
use siyu_store::{
    AuditFilter, IngestItem, IngestOutcome, SourceRef, Store, StoreError, TenantScope,
};

/// A new tenant whose admin is `admin@{name}.example.com`.
pub async fn tenant(store: &Store, name: &str) -> siyu_domain::tenancy::Tenant {
    let new = NewTenant::new(name, &format!("admin@{name}.example.com"), "store-pass-7a").unwrap();
    store.create_tenant(&new, &Actor::cli()).await.unwrap().0
}

/// A database with one tenant (`shop`) and one source to ingest through.
pub struct Fixture {
    pub store: Store,
    pub source: SourceRef,
    pub _db: TestDatabase,
}

pub async fn fixture() -> Fixture {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new("shop", "a@shop.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let (source, key) = store
        .tenant(tenant.id)
        .create_source("app", SourceKind::App, &Actor::cli())
        .await
        .unwrap();
    let resolved = store.resolve_write_key(&key).await.unwrap().unwrap();
    assert_eq!(resolved.source, source.id);
    Fixture {
        store,
        source: resolved,
        _db: db,
    }
}

/// An event (as sent to the tracking API) for the fixture's source.
pub fn item(f: &Fixture, event: Value) -> IngestItem {
    let now = siyu_store::now_ms();
    IngestItem {
        source: f.source,
        event: read_event(0, event, None, &BatchDefaults::default(), now, false, uuid).unwrap(),
    }
}

fn uuid() -> String {
    format!("gen-{}", siyu_store::now_ms())
}

/// The customer an ingested event was stored on.
pub fn customer_of(outcome: IngestOutcome) -> i64 {
    match outcome {
        IngestOutcome::Stored(c) => c.0,
        IngestOutcome::Duplicate => panic!("unexpected duplicate"),
        IngestOutcome::Refused(reason) => panic!("refused: {reason}"),
    }
}

/// The customer a user id names, made if there is none.
pub async fn customer(scope: &TenantScope<'_>, user: &str) -> CustomerId {
    let identity = Identity::new(IdentityKind::of(IdentityKind::USER_ID), user).unwrap();
    scope.ensure_customer(&identity).await.unwrap()
}

/// The tenant's audit entries with this action (or with actions under a prefix ending
/// in a dot), newest first.
pub async fn audit(scope: &TenantScope<'_>, action: &str) -> Vec<AuditEntry> {
    scope
        .list_audit(
            PageRequest::first(100),
            &AuditFilter {
                action: Some(action.into()),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap()
        .items
}

/// Someone signed in to the console, as the audit log and tag history name them.
pub fn staff(label: &str) -> Actor {
    Actor {
        kind: ActorKind::Staff,
        id: Some(1),
        label: label.into(),
        ip: None,
    }
}

/// The field a refusal of invalid input names.
pub fn invalid_field(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Domain(DomainError::Invalid(e))) => e.field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

/// Claims jobs of these kinds until none is left, answering every claimed job's id in
/// the order claimed (each marked done as it comes).
pub async fn drain_jobs(store: &Store, kinds: &[&str], batch: usize) -> Vec<JobId> {
    let mut all = Vec::new();
    loop {
        let claimed = store
            .claim_jobs("drain", kinds, batch, 30_000)
            .await
            .unwrap();
        if claimed.is_empty() {
            return all;
        }
        let ids: Vec<JobId> = claimed.iter().map(|j| j.id).collect();
        store.complete_jobs("drain", &ids).await.unwrap();
        all.extend(ids);
    }
}

/// A WeCom connector's configuration (the corp's values made up).
pub fn wecom() -> siyu_domain::connector::ConnectorConfig {
    siyu_domain::connector::ConnectorConfig::new(
        "wecom",
        "w",
        &serde_json::json!({"corp_id": "ww1", "secret": "s", "token": "t",
                "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"}),
    )
    .unwrap()
}

/// Options that open a store able to seal secrets (a fresh key).
pub fn options_with_key() -> siyu_store::StoreOptions {
    siyu_store::StoreOptions {
        secret_key: Some(
            siyu_domain::secret::SecretKey::from_base64(
                &siyu_domain::secret::SecretKey::generate_base64(),
            )
            .unwrap(),
        ),
        ..siyu_store::StoreOptions::default()
    }
}
