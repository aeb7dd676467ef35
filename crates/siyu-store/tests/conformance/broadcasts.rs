//! Mass sends: planned once and whole; a batch's intent recorded before its channel is
//! asked and its answer once; the sandbox delivering a batch asked for twice once; a
//! cancel stopping the batches not yet handed over; what planning reads (opt-outs in
//! force, what each customer received since a time, a list led to survivors).

use std::collections::{HashMap, HashSet};

use serde_json::json;
use siyu_domain::audit::Actor;
use siyu_domain::consent::{ConsentChannel, ConsentStatus};
use siyu_domain::engagement::broadcast::{
    BroadcastAudience, BroadcastChannel, BroadcastSpec, BroadcastState, FrequencyCap, Plan,
};
use siyu_domain::ids::CustomerId;
use siyu_store::{ConsentChange, PlannedBatches, StoreError};

use crate::support::{customer, customer_of, fixture, item};

fn spec(customers: &[CustomerId]) -> BroadcastSpec {
    BroadcastSpec {
        name: "双十二".into(),
        channel: BroadcastChannel::Sandbox,
        connector: None,
        audience: BroadcastAudience::Customers(customers.to_vec()),
        text: "你好".into(),
        template: None,
        attachments: Vec::new(),
        frequency_cap: FrequencyCap::DaysInMonth,
        send_at: siyu_store::now_ms(),
    }
}

#[tokio::test]
async fn a_send_is_planned_once_and_each_batch_reaches_the_channel_once() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(customer(&scope, &format!("c{n}")).await);
    }
    let send = scope
        .create_broadcast(&spec(&ids), None, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(send.state, BroadcastState::Scheduled);
    let plan = Plan {
        recipients: ids.iter().map(|c| c.0).collect(),
        excluded: HashMap::new(),
    };
    let read_at = siyu_store::now_ms();
    assert!(
        scope
            .store_plan(&send, read_at, &plan, PlannedBatches::Ranges(2))
            .await
            .unwrap()
    );
    // planning again plans nothing
    assert!(
        !scope
            .store_plan(&send, read_at, &plan, PlannedBatches::Ranges(2))
            .await
            .unwrap()
    );
    let planned = scope.get_broadcast(send.id).await.unwrap();
    assert_eq!(planned.state, BroadcastState::Sending);
    assert_eq!((planned.recipients, planned.batches), (Some(3), 2));

    // batch 0: intent, then the channel takes it; the answer is lost (a crash)
    let batch = scope.batch_to_send(send.id, 0).await.unwrap().unwrap();
    assert_eq!(batch.recipients, vec![ids[0].0, ids[1].0]);
    assert!(!batch.intent_recorded);
    assert!(scope.record_batch_intent(send.id, 0).await.unwrap());
    let first = scope
        .sandbox_deliver(send.id, 0, &batch.text, &batch.recipients, None)
        .await
        .unwrap();
    assert!(!first.again);
    // taken again: the intent is there, so the channel is asked what it has
    let again = scope.batch_to_send(send.id, 0).await.unwrap().unwrap();
    assert!(again.intent_recorded);
    let second = scope
        .sandbox_deliver(send.id, 0, &again.text, &again.recipients, None)
        .await
        .unwrap();
    assert!(second.again);
    assert_eq!(
        (second.messages, second.delivered_at),
        (2, first.delivered_at)
    );
    scope
        .record_batch_answer(send.id, 0, 2, &json!({}))
        .await
        .unwrap();
    // a second answer moves no figure
    scope
        .record_batch_answer(send.id, 0, 2, &json!({}))
        .await
        .unwrap();
    assert!(scope.batch_to_send(send.id, 0).await.unwrap().is_none());
    let count = scope.sandbox_count(send.id).await.unwrap();
    assert_eq!(
        (
            count.messages,
            count.customers,
            count.missed,
            count.strangers
        ),
        (2, 2, 1, 0),
        "the third recipient's batch is not sent yet"
    );

    // cancelled: batch 1 never goes
    let cancelled = scope
        .cancel_broadcast(send.id, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(cancelled.state, BroadcastState::Cancelled);
    assert_eq!((cancelled.sent, cancelled.batches_sent), (2, 1));
    assert!(scope.batch_to_send(send.id, 1).await.unwrap().is_none());
    assert!(!scope.record_batch_intent(send.id, 1).await.unwrap());
    assert!(matches!(
        scope.cancel_broadcast(send.id, &Actor::cli()).await,
        Err(StoreError::Conflict(_))
    ));

    // the frequency cap reads what the channel answered
    let received = scope
        .received_since(BroadcastChannel::Sandbox, 0)
        .await
        .unwrap();
    assert_eq!(received, HashMap::from([(ids[0].0, 1), (ids[1].0, 1)]));
    let later = scope
        .received_since(BroadcastChannel::Sandbox, siyu_store::now_ms() + 1)
        .await
        .unwrap();
    assert!(later.is_empty());
}

#[tokio::test]
async fn a_plan_read_before_a_change_or_another_plan_is_not_stored() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let one = customer(&scope, "x1").await;
    let plan = Plan {
        recipients: vec![one.0],
        excluded: HashMap::new(),
    };
    let mut later = spec(&[one]);
    later.send_at += 3_600_000;
    let send = scope
        .create_broadcast(&later, None, &Actor::cli())
        .await
        .unwrap();
    // an edit lands between planning's read and its write: the old read is not stored
    // (here the send is also not due; what matters is that nothing is planned)
    let mut edited = later.clone();
    edited.text = "改过的".into();
    scope
        .update_broadcast(&send, &edited, &Actor::cli())
        .await
        .unwrap();
    assert!(
        !scope
            .store_plan(&send, 0, &plan, PlannedBatches::Ranges(10))
            .await
            .unwrap()
    );
    // and an edit made from the stale read cannot overwrite it either
    assert!(matches!(
        scope.update_broadcast(&send, &later, &Actor::cli()).await,
        Err(StoreError::Conflict(_))
    ));

    // another send planned after this one began to read: refused, to be read again
    let first = scope
        .create_broadcast(&spec(&[one]), None, &Actor::cli())
        .await
        .unwrap();
    let second = scope
        .create_broadcast(&spec(&[one]), None, &Actor::cli())
        .await
        .unwrap();
    let read_at = siyu_store::now_ms();
    assert!(
        scope
            .store_plan(&first, read_at, &plan, PlannedBatches::Ranges(10))
            .await
            .unwrap()
    );
    assert!(matches!(
        scope
            .store_plan(&second, read_at, &plan, PlannedBatches::Ranges(10))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // read again after it: stored, and the first send's message counts against the cap
    let received = scope
        .received_since(BroadcastChannel::Sandbox, 0)
        .await
        .unwrap();
    assert_eq!(
        received,
        HashMap::from([(one.0, 1)]),
        "planned, not yet sent, counts"
    );
    let second = scope.get_broadcast(second.id).await.unwrap();
    assert!(
        scope
            .store_plan(
                &second,
                siyu_store::now_ms() + 1,
                &plan,
                PlannedBatches::Ranges(10)
            )
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn planning_reads_the_opt_outs_in_force_and_leads_a_list_to_customers_within_reach() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(customer(&scope, &format!("p{n}")).await);
    }
    let change = |channel, status| ConsentChange {
        channel,
        status,
        source: "api".into(),
        note: None,
        at: None,
    };
    use ConsentChannel::*;
    use ConsentStatus::*;
    let actor = Actor::cli();
    scope
        .record_consent(ids[0], &change(Wecom, OptOut), &actor)
        .await
        .unwrap();
    scope
        .record_consent(ids[1], &change(All, OptOut), &actor)
        .await
        .unwrap();
    // out, then back in: in force is the newest
    scope
        .record_consent(ids[2], &change(Wecom, OptOut), &actor)
        .await
        .unwrap();
    scope
        .record_consent(ids[2], &change(Wecom, OptIn), &actor)
        .await
        .unwrap();
    scope
        .record_consent(ids[3], &change(Email, OptOut), &actor)
        .await
        .unwrap();
    assert_eq!(
        scope.opted_out_of(Wecom).await.unwrap(),
        HashSet::from([ids[0].0, ids[1].0])
    );
    assert_eq!(
        scope.opted_out_of(Email).await.unwrap(),
        HashSet::from([ids[1].0, ids[3].0])
    );

    let listed = [ids[0], ids[3], CustomerId(987_654), ids[0]];
    let (customers, not_found) = scope.resolve_listed(&listed).await.unwrap();
    assert_eq!(
        (customers, not_found),
        (vec![ids[0].0, ids[3].0, ids[0].0], 1)
    );
    // two ids of one person (a visitor who then signed in): both lead to the survivor
    let ingest = |event: serde_json::Value| {
        let f = &f;
        async move { customer_of(f.store.ingest(&[item(f, event)]).await.unwrap()[0].clone()) }
    };
    let visitor =
        ingest(json!({"type": "page", "name": "Home", "anonymousId": "anon-9", "messageId": "m1"}))
            .await;
    let user = ingest(json!({"type": "identify", "userId": "u-9", "messageId": "m2"})).await;
    let merged = ingest(
        json!({"type": "identify", "userId": "u-9", "anonymousId": "anon-9", "messageId": "m3"}),
    )
    .await;
    assert_eq!(merged, user);
    assert_ne!(visitor, user);
    let (customers, not_found) = scope
        .resolve_listed(&[CustomerId(visitor), CustomerId(user)])
        .await
        .unwrap();
    assert_eq!((customers, not_found), (vec![user, user], 0));
}
