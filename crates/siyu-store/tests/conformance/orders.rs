//! Orders: recorded once each from ingestion, and the tenant's currency.

use serde_json::{Value, json};
use siyu_domain::audit::Actor;
use siyu_domain::page::PageRequest;
use siyu_store::testing::TestDatabase;
use siyu_store::{IngestItem, IngestOutcome, StoreError};

use crate::support::{Fixture, customer_of, fixture, item, tenant};

/// An `Order Completed` item, its order read as the tracking API reads it.
fn order_item(
    f: &Fixture,
    user: &str,
    message: &str,
    order: &str,
    total: f64,
    currency: &str,
) -> IngestItem {
    let mut item = item(f, order_event(user, message, order, total, currency));
    item.event = item
        .event
        .with_commerce(siyu_domain::order::SalesChannel::MiniShop)
        .unwrap();
    item
}

fn order_event(user: &str, message: &str, order: &str, total: f64, currency: &str) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": message,
           "properties": {"order_id": order, "total": total, "currency": currency,
                          "products": [{"sku": "TEA-01", "name": "桂花乌龙", "price": total, "quantity": 1}]}})
}

#[tokio::test]
async fn orders_in_a_group_are_recorded_once_each_with_what_was_sent_last() {
    let f = fixture().await;
    let scope = f.store.tenant(f.source.tenant);
    let first = f
        .store
        .ingest(&[order_item(&f, "u-a", "m-0", "o-1", 56.0, "CNY")])
        .await
        .unwrap();
    let a = customer_of(first[0].clone());
    // one group: new orders (more than one statement takes), an order twice, an order
    // recorded before sent again, one in a currency with no rate, and an order refunded
    // in part and then sent again (the refund writes what came before it, so the resend
    // is recorded already though the group did not know it when it began)
    let mut refund = item(
        &f,
        json!({"type": "track", "event": "Order Refunded", "userId": "u-a", "messageId": "m-6",
               "properties": {"order_id": "o-5", "total": 5.0}}),
    );
    refund.event = refund
        .event
        .with_commerce(siyu_domain::order::SalesChannel::MiniShop)
        .unwrap();
    let mut group = vec![
        order_item(&f, "u-a", "m-1", "o-2", 10.0, "CNY"),
        order_item(&f, "u-a", "m-2", "o-2", 12.0, "CNY"),
        order_item(&f, "u-a", "m-3", "o-1", 60.0, "CNY"),
        order_item(&f, "u-a", "m-4", "o-3", 9.0, "USD"),
        order_item(&f, "u-a", "m-5", "o-5", 20.0, "CNY"),
        refund,
        order_item(&f, "u-a", "m-7", "o-5", 30.0, "CNY"),
    ];
    for n in 0..250 {
        group.push(order_item(
            &f,
            "u-b",
            &format!("m-b{n}"),
            &format!("b-{n}"),
            1.0,
            "CNY",
        ));
    }
    let outcomes = f.store.ingest(&group).await.unwrap();
    assert!(
        matches!(&outcomes[3], IngestOutcome::Refused(r) if r.contains("USD")),
        "{:?}",
        outcomes[3]
    );
    assert_eq!(customer_of(outcomes[0].clone()), a);
    let b = customer_of(outcomes[7].clone());
    let orders = scope
        .list_orders(
            &siyu_store::OrderFilter {
                customer: None,
                unit: None,
                channel: None,
                status: None,
            },
            PageRequest::first(500),
        )
        .await
        .unwrap()
        .items;
    let amount = |id: &str| {
        let found: Vec<_> = orders.iter().filter(|o| o.order_id == id).collect();
        assert!(found.len() <= 1, "{id} recorded {} times", found.len());
        found.first().map(|o| (o.amount, o.customer_id.0))
    };
    assert_eq!(amount("o-1"), Some((6000, a)));
    assert_eq!(amount("o-2"), Some((1200, a)));
    assert_eq!(amount("o-3"), None);
    assert_eq!(
        amount("o-5"),
        Some((3000, a)),
        "the resend after the refund"
    );
    let o5 = orders.iter().find(|o| o.order_id == "o-5").unwrap();
    assert_eq!(o5.refunded_amount, 500);
    assert_eq!(o5.status.as_str(), "partially_refunded");
    assert_eq!(
        orders
            .iter()
            .filter(|o| o.order_id.starts_with("b-"))
            .count(),
        250
    );
    assert!(
        orders
            .iter()
            .filter(|o| o.order_id.starts_with("b-"))
            .all(|o| o.customer_id.0 == b && o.amount == 100)
    );
    let a_stats = scope
        .get_customer(siyu_domain::customer::CustomerId(a))
        .await
        .unwrap()
        .orders;
    assert_eq!((a_stats.count, a_stats.total), (3, 7200 + 2500));
    let b_stats = scope
        .get_customer(siyu_domain::customer::CustomerId(b))
        .await
        .unwrap()
        .orders;
    assert_eq!((b_stats.count, b_stats.total), (250, 25_000));
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
