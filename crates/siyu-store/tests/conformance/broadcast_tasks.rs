//! WeCom mass sends as the store keeps them: each recipient routed through one member
//! (the owner's relation first), a batch per member task, claimed by one try only (two
//! nodes racing: one calls), an intent renewed or given back only as it was read, an
//! answer recorded once with each recipient's status (the fail_list refused), results
//! recorded once per task, a batch waiting for a person resolved once and only with one
//! of its candidates, and the frequency cap counting only who may receive it.

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::connector::ConnectorConfig;
use siyu_domain::engagement::broadcast::{
    BroadcastAudience, BroadcastChannel, BroadcastSpec, BroadcastState, FrequencyCap, Plan,
};
use siyu_domain::engagement::member_tasks::{
    BatchResolution, RecipientStatus, TaskState, Unresolved, assign_members,
};
use siyu_domain::page::PageRequest;
use siyu_store::testing::TestDatabase;
use siyu_store::{PlannedBatches, RecipientResult, StoreError};

use crate::support::tenant;
use crate::wecom_transfers::{follows, member};

#[tokio::test]
async fn member_tasks_are_claimed_once_answered_once_and_resolved_once() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant_id = tenant(&store, "wecomsends").await.id;
    let scope = store.tenant(tenant_id);
    let config = ConnectorConfig::new(
        "wecom",
        "企业微信",
        &json!({"corp_id": "ww1", "secret": "s", "token": "t",
                "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"}),
    )
    .unwrap();
    let connector = scope
        .create_connector(&config, &Actor::cli())
        .await
        .unwrap()
        .id;
    let zs = member(&scope, connector, "zs").await;
    let ls = member(&scope, connector, "ls").await;
    let a = follows(&scope, connector, "zs", "wmA", 1_000).await;
    let b = follows(&scope, connector, "zs", "wmB", 2_000).await;
    let c = follows(&scope, connector, "ls", "wmC", 3_000).await;
    // 李四 adds B later: B stays 张三's, the owner
    assert_eq!(follows(&scope, connector, "ls", "wmB", 4_000).await, b);

    let routes = scope.wecom_routes(connector).await.unwrap();
    assert_eq!(routes.len(), 4);
    let mut plan = Plan {
        recipients: vec![a.0, b.0, c.0],
        ..Plan::default()
    };
    let tasks = assign_members(&mut plan, &routes);
    let members: Vec<(&str, Vec<&str>)> = tasks
        .iter()
        .map(|t| {
            (
                t.userid.as_str(),
                t.recipients.iter().map(|(_, e)| e.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        members,
        vec![("ls", vec!["wmC"]), ("zs", vec!["wmA", "wmB"])]
    );
    assert_eq!((tasks[0].staff, tasks[1].staff), (ls, zs));

    let spec = BroadcastSpec {
        name: "双十二".into(),
        channel: BroadcastChannel::Wecom,
        connector: None,
        audience: BroadcastAudience::Customers(vec![a, b, c]),
        text: "你好".into(),
        template: None,
        attachments: Vec::new(),
        frequency_cap: FrequencyCap::DaysInMonth,
        send_at: siyu_store::now_ms(),
    };
    let send = scope
        .create_broadcast(&spec, None, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(send.connector_id, Some(connector), "the only connector");
    let read_at = siyu_store::now_ms();
    assert!(
        scope
            .store_plan(&send, read_at, &plan, PlannedBatches::MemberTasks(&tasks))
            .await
            .unwrap()
    );
    assert_eq!(scope.get_broadcast(send.id).await.unwrap().batches, 2);

    // 张三's batch: of eight tries at once (nodes sharing one database), one claims it
    let batch = scope.batch_to_send(send.id, 1).await.unwrap().unwrap();
    assert_eq!(batch.sender.as_deref(), Some("zs"));
    assert_eq!(batch.external_userids, vec!["wmA", "wmB"]);
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.tenant(tenant_id).claim_batch(send.id, 1).await })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tries {
        claims.extend(t.await.unwrap().unwrap());
    }
    assert_eq!(claims.len(), 1, "{claims:?}");
    let claimed = claims[0];
    assert_eq!(scope.claim_batch(send.id, 1).await.unwrap(), None);
    let again = scope.batch_to_send(send.id, 1).await.unwrap().unwrap();
    assert_eq!(
        (again.intent_recorded, again.intent_at),
        (true, Some(claimed))
    );
    // renewed and given back only as read
    assert_eq!(
        scope
            .renew_batch_intent(send.id, 1, claimed - 1)
            .await
            .unwrap(),
        None
    );
    let renewed = scope
        .renew_batch_intent(send.id, 1, claimed)
        .await
        .unwrap()
        .unwrap();
    assert!(renewed > claimed);
    scope
        .release_batch_intent(send.id, 1, claimed)
        .await
        .unwrap();
    assert!(
        scope
            .batch_to_send(send.id, 1)
            .await
            .unwrap()
            .unwrap()
            .intent_recorded
    );

    // answered once; the fail_list refused
    let answer = json!({"msgid": "msgZS"});
    let fail = vec!["wmB".to_owned()];
    assert!(
        scope
            .record_member_task(send.id, 1, "msgZS", &fail, &answer)
            .await
            .unwrap()
    );
    assert!(
        !scope
            .record_member_task(send.id, 1, "msgOTHER", &[], &answer)
            .await
            .unwrap()
    );
    assert!(scope.batch_to_send(send.id, 1).await.unwrap().is_none());
    assert_eq!(scope.get_broadcast(send.id).await.unwrap().sent, 1);
    let status = |page: &siyu_domain::page::Page<_>| {
        let items: &Vec<siyu_domain::engagement::member_tasks::BroadcastRecipient> = &page.items;
        items
            .iter()
            .map(|r| (r.external_userid.clone().unwrap(), r.status))
            .collect::<Vec<_>>()
    };
    let recipients = scope
        .broadcast_recipients(send.id, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        status(&recipients),
        vec![
            ("wmC".into(), RecipientStatus::Planned),
            ("wmA".into(), RecipientStatus::Waiting),
            ("wmB".into(), RecipientStatus::Refused),
        ]
    );
    assert!(scope.recorded_msgids(0).await.unwrap().contains("msgZS"));
    let following = scope.follow_state(send.id).await.unwrap();
    assert_eq!((following.in_flight, following.unresolved), (1, 0));
    assert_eq!(following.tasks.len(), 1);
    assert_eq!(following.tasks[0].userid, "zs");

    // results once per task
    let sent = [RecipientResult {
        external_userid: "wmA".into(),
        status: RecipientStatus::Sent,
        at: 5_000,
    }];
    scope
        .record_task_results(send.id, 1, TaskState::Confirmed, Some(5_000), &sent)
        .await
        .unwrap();
    let late = [RecipientResult {
        external_userid: "wmA".into(),
        status: RecipientStatus::NotFriend,
        at: 6_000,
    }];
    scope
        .record_task_results(send.id, 1, TaskState::Confirmed, Some(6_000), &late)
        .await
        .unwrap();
    let only_sent = scope
        .broadcast_recipients(send.id, Some(RecipientStatus::Sent), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        status(&only_sent),
        vec![("wmA".into(), RecipientStatus::Sent)]
    );

    // 李四's batch: its lost call unclear, it waits for a person
    let seen = scope.claim_batch(send.id, 0).await.unwrap().unwrap();
    let unresolved = Unresolved {
        msgids: vec!["msgX".into(), "msgY".into()],
        reason: "two could be it".into(),
    };
    // a try that read an older intent stops nothing
    scope
        .mark_batch_unresolved(send.id, 0, seen - 1, &unresolved)
        .await
        .unwrap();
    assert!(scope.batch_to_send(send.id, 0).await.unwrap().is_some());
    scope
        .mark_batch_unresolved(send.id, 0, seen, &unresolved)
        .await
        .unwrap();
    assert!(scope.batch_to_send(send.id, 0).await.unwrap().is_none());
    let wrong = scope
        .resolve_batch(
            send.id,
            0,
            &BatchResolution::Sent {
                msgid: "msgZ".into(),
            },
            &Actor::cli(),
        )
        .await;
    assert!(matches!(wrong, Err(StoreError::Domain(_))), "{wrong:?}");
    scope
        .resolve_batch(send.id, 0, &BatchResolution::NotSent, &Actor::cli())
        .await
        .unwrap();
    let twice = scope
        .resolve_batch(send.id, 0, &BatchResolution::SendAgain, &Actor::cli())
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let done = scope.get_broadcast(send.id).await.unwrap();
    assert_eq!((done.state, done.sent), (BroadcastState::Sent, 1));
    // every member sent or gave up: nothing left to cancel
    let cancel = scope.cancel_broadcast(send.id, &Actor::cli()).await;
    assert!(matches!(cancel, Err(StoreError::Conflict(_))), "{cancel:?}");

    // the cap counts only who received it (A), not the refused or the unsent
    let received = scope
        .received_since(BroadcastChannel::Wecom, 0)
        .await
        .unwrap();
    assert_eq!(received.get(&a.0), Some(&1));
    assert_eq!(received.get(&b.0), None);
    assert_eq!(received.get(&c.0), None);

    // a cancelled send's batches are never claimed, and one given back is cancelled
    let other = scope
        .create_broadcast(&spec, None, &Actor::cli())
        .await
        .unwrap();
    assert!(
        scope
            .store_plan(
                &other,
                siyu_store::now_ms(),
                &plan,
                PlannedBatches::MemberTasks(&tasks)
            )
            .await
            .unwrap()
    );
    let claimed = scope.claim_batch(other.id, 0).await.unwrap().unwrap();
    scope
        .cancel_broadcast(other.id, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(scope.claim_batch(other.id, 1).await.unwrap(), None);
    // nor claimed anew after a reconciliation found nothing
    assert_eq!(
        scope
            .renew_batch_intent(other.id, 0, claimed)
            .await
            .unwrap(),
        None
    );
    scope
        .release_batch_intent(other.id, 0, claimed)
        .await
        .unwrap();
    assert_eq!(scope.claim_batch(other.id, 0).await.unwrap(), None);
    let statuses = scope
        .broadcast_recipients(other.id, None, PageRequest::first(10))
        .await
        .unwrap();
    assert!(
        statuses
            .items
            .iter()
            .all(|r| r.status == RecipientStatus::NotSent),
        "{:?}",
        statuses.items
    );
}
