//! Data scope as a type: a scope made for a principal keeps every read, list and change
//! of customers (and their orders) within the principal's reach.

use siyu_domain::access::{DataScope, PermissionSet, Principal, PrincipalKind, Reach};
use siyu_domain::audience::TagOrigin;
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ApiTokenId, RoleId, SessionId, StaffId, UnitId};
use siyu_domain::order::OrderInput;
use siyu_domain::page::PageRequest;
use siyu_domain::tenancy::{NewStaff, NewUnit, UnitKind};
use siyu_store::{OrderFilter, StoreError, TenantScope};

use crate::support::{customer, fixture};

fn staff_principal(
    tenant: siyu_domain::ids::TenantId,
    staff: StaffId,
    unit: UnitId,
    data_scope: DataScope,
) -> Principal {
    Principal {
        tenant_id: tenant,
        kind: PrincipalKind::Staff {
            staff_id: staff,
            email: format!("{}@shop.example.com", staff.0),
            unit_id: unit,
            data_scope,
            session_id: SessionId(1),
        },
        role_id: RoleId(1),
        role: "admin".into(),
        permissions: PermissionSet::all(),
    }
}

async fn add_staff(scope: &TenantScope<'_>, unit: UnitId, name: &str) -> StaffId {
    let new = NewStaff::new(
        unit,
        "admin",
        &format!("{name}@shop.example.com"),
        name,
        None,
        DataScope::Own,
    )
    .unwrap();
    scope.create_staff(&new, &Actor::cli()).await.unwrap().id
}

async fn count(scope: TenantScope<'_>) -> usize {
    scope
        .list_customers(PageRequest::first(50), None)
        .await
        .unwrap()
        .items
        .len()
}

async fn order_for(scope: &TenantScope<'_>, customer: CustomerId, id: &str) {
    let input: OrderInput = serde_json::from_value(serde_json::json!({
        "order_id": id, "customer_id": customer.0, "channel": "tmall", "amount": 10,
        "ordered_at": "2026-11-01T10:00:00+08:00"
    }))
    .unwrap();
    let order = input.to_new_order(siyu_store::now_ms()).unwrap();
    scope.record_order(customer, &order, "api").await.unwrap();
}

#[tokio::test]
async fn a_scope_for_a_principal_reaches_only_their_customers() {
    let f = fixture().await;
    let whole = f.store.tenant(f.source.tenant);
    let actor = Actor::cli();
    let root = whole.root_unit().await.unwrap();
    let east = whole
        .create_unit(
            &NewUnit::new(root.id, UnitKind::Brand, "east").unwrap(),
            &actor,
        )
        .await
        .unwrap();
    let lead = add_staff(&whole, east.id, "lead").await;
    let rep = add_staff(&whole, east.id, "rep").await;
    let head_office = add_staff(&whole, root.id, "head").await;
    let [mine, theirs, nobodys] = [
        customer(&whole, "mine").await,
        customer(&whole, "theirs").await,
        customer(&whole, "nobodys").await,
    ];
    whole
        .assign_owner(&[mine], Some(rep), &actor)
        .await
        .unwrap();
    whole
        .assign_owner(&[theirs], Some(head_office), &actor)
        .await
        .unwrap();
    order_for(&whole, mine, "o-mine").await;
    order_for(&whole, theirs, "o-theirs").await;

    // the lead's unit subtree reaches the staff of east: the lead and the rep
    let principal = staff_principal(f.source.tenant, lead, east.id, DataScope::UnitSubtree);
    let scope = f.store.scope_for(&principal).await.unwrap();
    assert_eq!(scope.reach(), &Reach::Owners(vec![lead, rep]));

    // reads
    assert_eq!(scope.get_customer(mine).await.unwrap().id, mine);
    for outside in [theirs, nobodys] {
        assert!(matches!(
            scope.get_customer(outside).await,
            Err(StoreError::NotFound("customer"))
        ));
        assert!(matches!(
            scope
                .customer_timeline(outside, PageRequest::first(5))
                .await,
            Err(StoreError::NotFound(_))
        ));
    }
    let listed: Vec<CustomerId> = scope
        .list_customers(PageRequest::first(50), None)
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, [mine]);
    let by_ids: Vec<CustomerId> = scope
        .customers_by_ids(&[theirs, mine, nobodys])
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(by_ids, [mine]);
    assert_eq!(
        scope.search_customer_ids(None, i64::MAX, 50).await.unwrap(),
        [mine.0]
    );

    // orders: their own customer's, never another's, never all of them
    let mine_orders = scope
        .list_orders(
            &OrderFilter {
                customer: Some(mine),
                ..OrderFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(mine_orders.items.len(), 1);
    let theirs_order = whole
        .list_orders(
            &OrderFilter {
                customer: Some(theirs),
                ..OrderFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap()
        .items[0]
        .id;
    assert!(matches!(
        scope.get_order(theirs_order).await,
        Err(StoreError::NotFound("order"))
    ));
    assert!(matches!(
        scope
            .list_orders(&OrderFilter::default(), PageRequest::first(10))
            .await,
        Err(StoreError::OutOfReach(_))
    ));

    // writes: bulk changes skip who is out of reach; handing customers out of reach,
    // and undoing merges, are refused
    let group = whole
        .create_tag_group("value", None, 0, &actor)
        .await
        .unwrap();
    let vip = whole
        .create_tag(group.id, "vip", "#1677ff", 0, &actor)
        .await
        .unwrap();
    let tagged = scope
        .change_tags(
            &[mine, theirs, nobodys],
            &[vip.id],
            &[],
            TagOrigin::Manual,
            None,
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(tagged.added, 1);
    assert!(whole.customer_tags(theirs).await.unwrap().is_empty());
    assert_eq!(
        scope
            .assign_owner(&[mine, theirs], Some(lead), &actor)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        whole.get_customer(theirs).await.unwrap().owner_staff_id,
        Some(head_office)
    );
    assert!(matches!(
        scope.assign_owner(&[mine], Some(head_office), &actor).await,
        Err(StoreError::OutOfReach(_))
    ));
    assert!(matches!(
        scope
            .update_customer(mine, None, Some(Some(head_office)), &actor)
            .await,
        Err(StoreError::OutOfReach(_))
    ));
    assert!(matches!(
        scope.undo_merge(1, &actor).await,
        Err(StoreError::OutOfReach(_))
    ));

    // the widening is a visible step, and gives the whole tenant back
    assert_eq!(
        scope
            .whole_tenant()
            .list_customers(PageRequest::first(50), None)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

#[tokio::test]
async fn own_tenant_wide_and_token_scopes_reach_as_their_data_scope_says() {
    let f = fixture().await;
    let whole = f.store.tenant(f.source.tenant);
    let root = whole.root_unit().await.unwrap();
    let rep = add_staff(&whole, root.id, "rep").await;
    let other = add_staff(&whole, root.id, "other").await;
    let mine = customer(&whole, "mine").await;
    let theirs = customer(&whole, "theirs").await;
    whole
        .assign_owner(&[mine], Some(rep), &Actor::cli())
        .await
        .unwrap();
    whole
        .assign_owner(&[theirs], Some(other), &Actor::cli())
        .await
        .unwrap();
    let own = staff_principal(f.source.tenant, rep, root.id, DataScope::Own);
    let own_scope = f.store.scope_for(&own).await.unwrap();
    assert_eq!(own_scope.reach(), &Reach::Owners(vec![rep]));
    assert_eq!(count(own_scope).await, 1);
    let wide = staff_principal(f.source.tenant, rep, root.id, DataScope::Tenant);
    assert_eq!(count(f.store.scope_for(&wide).await.unwrap()).await, 2);
    let token = Principal {
        kind: PrincipalKind::ApiToken {
            token_id: ApiTokenId(1),
            name: "etl".into(),
        },
        ..own
    };
    let token_scope = f.store.scope_for(&token).await.unwrap();
    assert!(token_scope.reach().is_tenant_wide());
    assert_eq!(count(token_scope).await, 2);
}
