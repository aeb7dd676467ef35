//! WeCom customer transfers as the store keeps them: asked with their job, a customer
//! under way refused a second ask, a third in-office transfer in 90 days refused before
//! WeCom is asked, a succeeded one moving the owner only from the handover's staff (or
//! nobody), audited, and outcomes recorded once.

use serde_json::json;
use siyu_domain::access::DataScope;
use siyu_domain::audit::Actor;
use siyu_domain::connector::ConnectorConfig;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, StaffId};
use siyu_domain::transfer::{
    NewTransfers, RefusalCode, TransferFields, TransferKind, TransferStatus,
};
use siyu_store::testing::TestDatabase;
use siyu_store::{
    MemberSynced, StoreError, TenantScope, TransferOutcome, WecomContactRecord, WecomFollowRecord,
    WecomMemberRecord,
};

use crate::support::tenant;

pub(crate) async fn member(scope: &TenantScope<'_>, id: ConnectorId, userid: &str) -> StaffId {
    let unit = scope.root_unit().await.unwrap().id;
    let record = WecomMemberRecord {
        userid: userid.into(),
        name: userid.into(),
        main_department: None,
        status: 1,
    };
    match scope
        .sync_wecom_member(id, &record, unit, "service", DataScope::Own, &Actor::cli())
        .await
        .unwrap()
    {
        MemberSynced::Created(staff) => staff,
        other => panic!("{other:?}"),
    }
}

/// `userid` has `external` as a customer (added at `at`); answers the profile.
pub(crate) async fn follows(
    scope: &TenantScope<'_>,
    id: ConnectorId,
    userid: &str,
    external: &str,
    at: i64,
) -> CustomerId {
    let record = WecomContactRecord {
        external_userid: external.into(),
        unionid: None,
        name: format!("客户{external}"),
        avatar: String::new(),
        gender: 0,
        contact_type: 1,
        corp_name: String::new(),
        follow: WecomFollowRecord {
            userid: userid.into(),
            remark: String::new(),
            description: String::new(),
            added_at: at,
            tag_ids: vec![],
            add_way: 0,
            state: String::new(),
            oper_userid: external.into(),
            personal_tags: None,
        },
    };
    let context = scope.wecom_context(id, &Actor::cli()).await.unwrap();
    scope
        .store_wecom_contacts(id, &context, &[record], None, None, &Actor::cli())
        .await
        .unwrap();
    scope.wecom_customer(id, external).await.unwrap().unwrap()
}

fn in_office(handover: &str, takeover: &str, customers: &[CustomerId]) -> NewTransfers {
    NewTransfers::new(TransferFields {
        kind: TransferKind::InOffice,
        handover_staff_id: None,
        handover_userid: Some(handover.into()),
        takeover_staff_id: None,
        takeover_userid: Some(takeover.into()),
        customer_ids: Some(customers.to_vec()),
        external_userids: None,
        message: None,
    })
    .unwrap()
}

fn succeeded(id: siyu_domain::ids::TransferId) -> TransferOutcome {
    TransferOutcome {
        id,
        status: TransferStatus::Succeeded,
        errcode: None,
        reason: None,
        takeover_at: Some(1_700_000_000_000),
    }
}

#[tokio::test]
async fn transfers_are_asked_once_counted_and_move_owners_from_the_handover_only() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let scope = store.tenant(tenant(&store, "transfers").await.id);
    let config = ConnectorConfig::new(
        "wecom",
        "w",
        &json!({"corp_id": "ww1", "secret": "s", "token": "t",
                "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"}),
    )
    .unwrap();
    let id = scope
        .create_connector(&config, &Actor::cli())
        .await
        .unwrap()
        .id;
    let zs = member(&scope, id, "zs").await;
    let ls = member(&scope, id, "ls").await;
    let ww = member(&scope, id, "ww").await;
    let a = follows(&scope, id, "zs", "wmA", 1_000).await;
    let b = follows(&scope, id, "zs", "wmB", 2_000).await;
    assert_eq!(
        scope.get_customer(a).await.unwrap().owner_staff_id,
        Some(zs)
    );

    let asked = scope
        .ask_wecom_transfers(id, &in_office("zs", "ls", &[a, b]), None, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(asked.asked, 2);
    let job = asked.job.unwrap();
    let rows = scope.wecom_transfers_of_job(id, job).await.unwrap();
    assert!(rows.iter().all(|t| t.status == TransferStatus::Asking));
    // a customer under way is refused a second ask, with no job
    let again = scope
        .ask_wecom_transfers(id, &in_office("zs", "ww", &[a]), None, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(again.job, None);
    assert_eq!(again.refused[0].code, RefusalCode::AlreadyBeingTransferred);
    // resigned needs a handover who left
    let resigned = NewTransfers {
        kind: TransferKind::Resigned,
        ..in_office("zs", "ls", &[a])
    };
    assert!(matches!(
        scope
            .ask_wecom_transfers(id, &resigned, None, &Actor::cli())
            .await,
        Err(StoreError::Domain(_))
    ));

    // b was handed to 王五 meanwhile: the takeover does not take them from him
    scope
        .assign_owner(&[b], Some(ww), &Actor::cli())
        .await
        .unwrap();
    let outcomes: Vec<TransferOutcome> = rows.iter().map(|t| succeeded(t.id)).collect();
    let changed = scope
        .record_wecom_transfer_outcomes(id, &outcomes, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(
        scope.get_customer(a).await.unwrap().owner_staff_id,
        Some(ls)
    );
    assert_eq!(
        scope.get_customer(b).await.unwrap().owner_staff_id,
        Some(ww)
    );
    // recorded once: a second report changes nothing
    assert_eq!(
        scope
            .record_wecom_transfer_outcomes(id, &outcomes, &Actor::cli())
            .await
            .unwrap(),
        0
    );
    let rows = scope.wecom_transfers_of_job(id, job).await.unwrap();
    assert!(
        rows.iter()
            .all(|t| t.status == TransferStatus::Succeeded && t.finished_at.is_some())
    );

    // back to 张三, then a third in-office transfer within 90 days is refused
    follows(&scope, id, "ls", "wmA", 3_000).await;
    let back = scope
        .ask_wecom_transfers(id, &in_office("ls", "zs", &[a]), None, &Actor::cli())
        .await
        .unwrap();
    let row = scope
        .wecom_transfers_of_job(id, back.job.unwrap())
        .await
        .unwrap();
    scope
        .record_wecom_transfer_outcomes(id, &[succeeded(row[0].id)], &Actor::cli())
        .await
        .unwrap();
    assert_eq!(
        scope.get_customer(a).await.unwrap().owner_staff_id,
        Some(zs)
    );
    let third = scope
        .ask_wecom_transfers(id, &in_office("zs", "ls", &[a, b]), None, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(third.asked, 1, "b has had one");
    assert_eq!(third.refused.len(), 1);
    assert_eq!(third.refused[0].customer_id, Some(a));
    assert_eq!(third.refused[0].code, RefusalCode::TransferredTwice);
}
