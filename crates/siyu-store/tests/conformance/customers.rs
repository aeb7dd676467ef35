//! Customer profiles: tenant-scoped reads, owners assigned in bulk.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::identity::Identity;
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::NewTenant;
use siyu_store::StoreError;

use crate::support::{customer_of, fixture, item};

#[tokio::test]
async fn customers_are_tenant_scoped() {
    let f = fixture().await;
    let c = customer_of(
        f.store
            .ingest(&[item(
                &f,
                json!({"type": "identify", "userId": "u1", "messageId": "1"}),
            )])
            .await
            .unwrap()[0]
            .clone(),
    );
    let (other, _) = f
        .store
        .create_tenant(
            &NewTenant::new("other", "a@other.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let scope = f.store.tenant(other.id);
    let id = siyu_domain::customer::CustomerId(c);
    assert!(matches!(
        scope.get_customer(id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope.customer_timeline(id, PageRequest::first(5)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        scope
            .lookup_customer(&Identity::of("user_id", "u1").unwrap())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// 分配客户: customers handed to a staff member in bulk; only real changes are made and
/// audited, merged and other tenants' ids are skipped.
#[tokio::test]
async fn customers_are_assigned_to_staff_in_bulk() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let mut ids = Vec::new();
    for n in 0..5 {
        let e = json!({"type": "identify", "userId": format!("assign-{n}"), "messageId": format!("as-{n}")});
        ids.push(siyu_domain::customer::CustomerId(customer_of(
            f.store.ingest(&[item(&f, e)]).await.unwrap().remove(0),
        )));
    }
    let root = scope.root_unit().await.unwrap();
    let guide = scope
        .create_staff(
            &siyu_domain::tenancy::NewStaff::new(
                root.id,
                "service",
                "guide@shop.example.com",
                "导购",
                None,
                siyu_domain::access::DataScope::Own,
            )
            .unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let ghost = siyu_domain::customer::CustomerId(i64::MAX);
    let mut asked = ids[..3].to_vec();
    asked.push(ghost);
    assert_eq!(
        scope
            .assign_owner(&asked, Some(guide.id), &Actor::cli())
            .await
            .unwrap(),
        3
    );
    // again: nothing changes, nothing more is audited
    assert_eq!(
        scope
            .assign_owner(&ids, Some(guide.id), &Actor::cli())
            .await
            .unwrap(),
        2
    );
    for id in &ids {
        assert_eq!(
            scope.get_customer(*id).await.unwrap().owner_staff_id,
            Some(guide.id)
        );
    }
    assert_eq!(
        scope
            .assign_owner(&ids[..1], None, &Actor::cli())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        scope.get_customer(ids[0]).await.unwrap().owner_staff_id,
        None
    );
    let audit = scope
        .list_audit(
            PageRequest::first(50),
            &siyu_store::AuditFilter {
                action: Some("customer.assigned".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        audit.items.len(),
        3,
        "one entry per part that changed something"
    );
    // a staff member of another tenant (or none) is refused
    assert!(
        scope
            .assign_owner(
                &ids,
                Some(siyu_domain::ids::StaffId(i64::MAX)),
                &Actor::cli()
            )
            .await
            .is_err()
    );
}
