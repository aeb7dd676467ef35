//! Orders, after-sales, purchase figures, notes, the timeline, event counts, consent and
//! data-subject requests, end to end through the API.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, answer};
use crate::tracking::{send, source};

fn order(order_id: &str, customer: Value, amount: f64) -> Value {
    json!({
        "order_id": order_id, "customer": customer, "channel": "tmall", "amount": amount,
        "ordered_at": "2026-11-01T10:00:00+08:00",
        "items": [{"sku": "TEA-1", "name": "龙井", "category": "tea", "price": amount, "quantity": 1}]
    })
}

fn phone(value: &str) -> Value {
    json!({"kind": "phone", "value": value})
}

async fn customer(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/v1/customers/{id}"), &app.admin_token)
        .await
        .expect(200)
        .body
}

#[tokio::test]
async fn orders_are_idempotent_on_the_order_id_and_keep_the_figures_current() {
    let app = TestApp::spawn().await;
    let first = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            order("T-1", phone("13812341680"), 199.9),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(first["amount"], 199.9);
    assert_eq!(first["status"], "paid");
    assert_eq!(first["domain_class"], "public");
    assert_eq!(first["items"][0]["price"], 199.9);
    assert_eq!(first["paid_at"], first["ordered_at"]);
    let customer_id = first["customer_id"].as_i64().unwrap();
    // the customer was made from the phone, and is found by it
    let found = app
        .get(
            "/api/v1/customers/lookup?kind=phone&value=138-1234-1680",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(found["id"], customer_id);
    assert_eq!(found["phone"], "138****1680");

    // the same order again: 200, the same order, updated, no second one
    let again = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            order("T-1", phone("13812341680"), 99.5),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["amount"], 99.5);
    app.post(
        "/api/v1/orders",
        &app.admin_token,
        json!({"order_id": "T-2", "customer_id": customer_id, "channel": "mini_shop",
               "amount": "50.5", "ordered_at": "2026-11-03T10:00:00Z"}),
    )
    .await
    .expect(201);
    // a cancelled order does not count
    app.post(
        "/api/v1/orders",
        &app.admin_token,
        json!({"order_id": "T-3", "customer_id": customer_id, "channel": "jd", "status": "cancelled",
               "amount": 1000, "ordered_at": "2026-11-05T10:00:00Z"}),
    )
    .await
    .expect(201);
    let stats = customer(&app, customer_id).await["orders"].clone();
    assert_eq!(stats["count"], 2);
    assert_eq!(stats["total"], 150.0);
    assert_eq!(stats["average"], 75.0);
    assert_eq!(stats["first_order_at"], "2026-11-01T02:00:00.000Z");
    assert_eq!(stats["last_order_at"], "2026-11-03T10:00:00.000Z");

    let list = app
        .get(
            &format!("/api/v1/orders?customer_id={customer_id}&channel=mini_shop"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["order_id"], "T-2");
    assert_eq!(list["items"][0]["domain_class"], "private");

    // the order id of one customer cannot be taken by another
    let taken = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            order("T-1", phone("13900001111"), 1.0),
        )
        .await
        .expect(409);
    assert!(
        taken.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another customer")
    );
}

#[tokio::test]
async fn bad_orders_get_a_field_and_a_reason() {
    let app = TestApp::spawn().await;
    let base = order("B-1", phone("13812341680"), 10.0);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"order_id": ""}), "order_id"),
        (json!({"channel": "mars"}), "channel"),
        (json!({"amount": 1.005}), "amount"),
        (json!({"amount": -3}), "amount"),
        (json!({"currency": "元元"}), "currency"),
        (json!({"ordered_at": "yesterday"}), "ordered_at"),
        (json!({"ordered_at": "2099-01-01T00:00:00Z"}), "ordered_at"),
        (json!({"status": "refunded"}), "status"),
        (
            json!({"customer": {"kind": "phone", "value": "abc"}}),
            "customer.value",
        ),
        (json!({"unit_id": 999999}), "unit_id"),
        (
            json!({"items": [{"name": "x", "price": 1, "quantity": 0}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"name": "x", "price": "free"}]}),
            "items[0].price",
        ),
    ];
    for (change, field) in cases {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let refused = app
            .post("/api/v1/orders", &app.admin_token, body.clone())
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"], field,
            "{body}: {}",
            refused.body
        );
    }
    // neither customer_id nor customer
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove("customer");
    app.post("/api/v1/orders", &app.admin_token, body)
        .await
        .expect(422);
    // a customer that does not exist
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove("customer");
    body["customer_id"] = json!(999999);
    app.post("/api/v1/orders", &app.admin_token, body)
        .await
        .expect(404);
    // nothing of the above was stored
    let all = app
        .get("/api/v1/orders", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(all["items"], json!([]));
    // a role without orders.write
    let service = app.token_with_role("service").await;
    app.post("/api/v1/orders", &service, base).await.expect(403);
}

#[tokio::test]
async fn ecommerce_events_become_orders_and_refunds() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await; // a mini-program: its orders default to mini_shop
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "u-1", "event": "Order Completed", "timestamp": "2026-11-10T08:00:00Z",
               "properties": {"order_id": "E-1", "total": 300, "currency": "CNY",
                 "products": [{"sku": "A", "name": "茶", "price": 100, "quantity": 3}]}}),
    )
    .await
    .expect(200);
    let customer_id = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=u-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    let orders = app
        .get(
            &format!("/api/v1/orders?customer_id={customer_id}"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let placed = &orders["items"][0];
    assert_eq!(placed["order_id"], "E-1");
    assert_eq!(placed["channel"], "mini_shop");
    assert_eq!(placed["origin"], "event");
    assert_eq!(placed["items"][0]["quantity"], 3);

    // another customer's event cannot refund this customer's order
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "someone-else", "event": "Order Refunded", "properties": {"order_id": "E-1"}}),
    )
    .await
    .expect(200);
    assert_eq!(customer(&app, customer_id).await["orders"]["total"], 300.0);

    // a partial refund, then the rest
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "u-1", "event": "Order Refunded",
               "properties": {"order_id": "E-1", "total": 100, "reason": "broken"}}),
    )
    .await
    .expect(200);
    let order_id = placed["id"].as_i64().unwrap();
    let after = app
        .get(&format!("/api/v1/orders/{order_id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(after["status"], "partially_refunded");
    assert_eq!(after["refunded_amount"], 100.0);
    assert_eq!(customer(&app, customer_id).await["orders"]["total"], 200.0);
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "u-1", "event": "Order Refunded", "properties": {"order_id": "E-1"}}),
    )
    .await
    .expect(200);
    let stats = customer(&app, customer_id).await["orders"].clone();
    assert_eq!(
        (stats["count"].clone(), stats["total"].clone()),
        (json!(0), json!(0.0))
    );
    let after_sales = app
        .get(
            &format!("/api/v1/orders/{order_id}/after-sales"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(after_sales.as_array().unwrap().len(), 2);
    assert_eq!(after_sales[0]["reason"], "broken");

    // an order event that cannot be an order is refused with the reason; the rest of
    // the batch is stored
    let batch = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "track", "userId": "u-1", "event": "Order Completed", "properties": {"total": 5}},
            {"type": "track", "userId": "u-1", "event": "Order Completed",
             "properties": {"order_id": "E-2", "total": 5, "channel": "douyin_shop"}}
        ]}),
    )
    .await
    .expect(200);
    assert_eq!(batch.body["rejected"][0]["index"], 0);
    assert!(
        batch.body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("order_id")
    );
    let stats = customer(&app, customer_id).await["orders"].clone();
    assert_eq!(stats["count"], 1);
    assert_eq!(stats["total"], 5.0);
}

#[tokio::test]
async fn after_sales_move_the_order_and_refuse_what_cannot_be() {
    let app = TestApp::spawn().await;
    let placed = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            order("A-1", phone("13812341680"), 80.0),
        )
        .await
        .expect(201)
        .body;
    let id = placed["id"].as_i64().unwrap();
    let customer_id = placed["customer_id"].as_i64().unwrap();
    let url = format!("/api/v1/orders/{id}/after-sales");
    let requested = app
        .post(
            &url,
            &app.admin_token,
            json!({"kind": "return", "amount": 30, "reason": "尺码不合适"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(requested["status"], "requested");
    // a request changes nothing yet
    let order = app
        .get(&format!("/api/v1/orders/{id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(order["status"], "paid");
    let done = app
        .patch(
            &format!("/api/v1/after-sales/{}", requested["id"]),
            &app.admin_token,
            json!({"status": "completed"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(done["status"], "completed");
    let order = app
        .get(&format!("/api/v1/orders/{id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(order["status"], "partially_refunded");
    assert_eq!(order["refunded_amount"], 30.0);
    assert!(order["refunded_at"].is_string());
    assert_eq!(customer(&app, customer_id).await["orders"]["total"], 50.0);
    // completed once is completed
    app.patch(
        &format!("/api/v1/after-sales/{}", requested["id"]),
        &app.admin_token,
        json!({"status": "rejected"}),
    )
    .await
    .expect(409);
    // more than is left, an exchange with money, an unknown kind
    for (body, field) in [
        (
            json!({"kind": "refund", "status": "completed", "amount": 50.01}),
            "amount",
        ),
        (json!({"kind": "exchange", "amount": 1}), "amount"),
        (json!({"kind": "swap"}), "kind"),
    ] {
        let refused = app.post(&url, &app.admin_token, body).await.expect(422);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"],
            field
        );
    }
    // the rest, in full: refunded, and no longer counted
    app.post(
        &url,
        &app.admin_token,
        json!({"kind": "refund", "status": "completed", "amount": 50}),
    )
    .await
    .expect(201);
    let stats = customer(&app, customer_id).await["orders"].clone();
    assert_eq!(stats["count"], 0);
    // an order not paid (pending) has no payment to return; it stays uncounted
    let mut unpaid = self::order("A-2", phone("13812341680"), 40.0);
    unpaid["status"] = json!("pending");
    let unpaid = app
        .post("/api/v1/orders", &app.admin_token, unpaid)
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let refused = app
        .post(
            &format!("/api/v1/orders/{unpaid}/after-sales"),
            &app.admin_token,
            json!({"kind": "refund", "status": "completed", "amount": 10}),
        )
        .await
        .expect(422);
    assert!(
        refused.body.to_string().contains("no payment to return"),
        "{}",
        refused.body
    );
    assert_eq!(customer(&app, customer_id).await["orders"]["count"], 0);
    let audit = app
        .get(
            "/api/v1/audit-log?action=after_sale.recorded",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_timeline_interleaves_events_orders_notes_and_merges_newest_first() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    // two profiles (a browser and a phone) that an identify proves to be one person
    send(
        &app,
        "/v1/track",
        &key,
        json!({"anonymousId": "a-1", "event": "Product Viewed", "timestamp": "2026-11-01T00:00:00Z"}),
    )
    .await
    .expect(200);
    let placed = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            json!({"order_id": "M-1", "customer": {"kind": "user_id", "value": "u-9"},
                   "channel": "wecom", "amount": 20, "ordered_at": "2026-11-02T00:00:00Z"}),
        )
        .await
        .expect(201)
        .body;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"anonymousId": "a-1", "userId": "u-9", "timestamp": "2026-11-03T00:00:00Z"}),
    )
    .await
    .expect(200);
    let survivor = app
        .get(
            "/api/v1/customers/lookup?kind=anonymous_id&value=a-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let id = survivor["id"].as_i64().unwrap();
    // the order followed the person
    assert_eq!(survivor["orders"]["count"], 1);
    assert_eq!(
        app.get(
            &format!("/api/v1/orders/{}", placed["id"]),
            &app.admin_token
        )
        .await
        .expect(200)
        .body["customer_id"],
        id
    );
    let note = app
        .post(
            &format!("/api/v1/customers/{id}/notes"),
            &app.admin_token,
            json!({"body": "  喜欢绿茶，周末联系  "}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(note["body"], "喜欢绿茶，周末联系");
    assert_eq!(note["author"], "admin token"); // who the audit log names

    let mut kinds = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/customers/{id}/timeline?limit=2&cursor={c}"),
            None => format!("/api/v1/customers/{id}/timeline?limit=2"),
        };
        let page = app.get(&url, &app.admin_token).await.expect(200).body;
        for item in page["items"].as_array().unwrap() {
            kinds.push(item["kind"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // newest first: the note (now), the merge (now, earlier), the identify (11-03),
    // the order (11-02), the view (11-01)
    assert_eq!(kinds, ["note", "merge", "event", "order", "event"]);
    let notes = app
        .get(&format!("/api/v1/customers/{id}/notes"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(notes.as_array().unwrap().len(), 1);
    for bad in [json!({"body": "   "}), json!({"text": "x"})] {
        app.post(
            &format!("/api/v1/customers/{id}/notes"),
            &app.admin_token,
            bad,
        )
        .await
        .expect(422);
    }
}

#[tokio::test]
async fn activity_counts_events_by_name_and_window() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let now = chrono::Utc::now();
    let at = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let batch: Vec<Value> = [(0, "Content Read"), (3, "Content Read"), (40, "Content Read")]
        .iter()
        .map(|(days, name)| json!({"type": "track", "userId": "reader", "event": name, "timestamp": at(*days)}))
        .chain([json!({"type": "page", "userId": "reader", "name": "home", "timestamp": at(1)})])
        .collect();
    send(&app, "/v1/batch", &key, json!({"batch": batch}))
        .await
        .expect(200);
    let id = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=reader",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    let activity = app
        .get(
            &format!("/api/v1/customers/{id}/activity"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let read = activity
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Content Read")
        .unwrap();
    assert_eq!(
        (
            &read["total"],
            &read["last_7d"],
            &read["last_30d"],
            &read["last_90d"]
        ),
        (&json!(3), &json!(2), &json!(2), &json!(3))
    );
    assert!(
        activity
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "Page Viewed" && a["total"] == 1)
    );
}

#[tokio::test]
async fn consent_is_a_history_and_the_newest_per_channel_is_in_force() {
    let app = TestApp::spawn().await;
    let placed = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            order("C-1", phone("13812341680"), 1.0),
        )
        .await
        .expect(201)
        .body;
    let id = placed["customer_id"].as_i64().unwrap();
    let url = format!("/api/v1/customers/{id}/consent");
    app.post(
        &url,
        &app.admin_token,
        json!({"channel": "sms", "status": "opt_in", "source": "注册表单", "at": "2026-11-01T00:00:00Z"}),
    )
    .await
    .expect(200);
    let now = app
        .post(
            &url,
            &app.admin_token,
            json!({"channel": "sms", "status": "opt_out", "note": "回复TD退订"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(now.as_array().unwrap().len(), 1);
    assert_eq!(now[0]["status"], "opt_out");
    assert_eq!(now[0]["source"], "api");
    let scope = app.store.tenant(app.tenant.id);
    use siyu_domain::consent::ConsentChannel;
    use siyu_domain::customer::CustomerId;
    assert!(
        !scope
            .may_contact(CustomerId(id), ConsentChannel::Sms)
            .await
            .unwrap()
    );
    assert!(
        scope
            .may_contact(CustomerId(id), ConsentChannel::Wecom)
            .await
            .unwrap()
    );
    app.post(
        &url,
        &app.admin_token,
        json!({"channel": "all", "status": "opt_out"}),
    )
    .await
    .expect(200);
    assert!(
        !scope
            .may_contact(CustomerId(id), ConsentChannel::Wecom)
            .await
            .unwrap()
    );
    for (body, field) in [
        (json!({"channel": "pigeon", "status": "opt_in"}), "channel"),
        (json!({"channel": "sms", "status": "maybe"}), "status"),
        (
            json!({"channel": "sms", "status": "opt_in", "at": "2099-01-01T00:00:00Z"}),
            "at",
        ),
    ] {
        let refused = app.post(&url, &app.admin_token, body).await.expect(422);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"],
            field
        );
    }
    let audit = app
        .get(
            "/api/v1/audit-log?action=customer.consent_changed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_data_subject_can_have_everything_exported_and_then_erased() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    // first seen on a device, then signed in: two profiles merged into one
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"anonymousId": "dsr-device", "traits": {"nickname": "芳芳"}}),
    )
    .await
    .expect(200);
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "dsr-1", "traits": {"name": "王芳", "phone": "13812341680", "city": "杭州"}}),
    )
    .await
    .expect(200);
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "dsr-1", "anonymousId": "dsr-device"}),
    )
    .await
    .expect(200);
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "dsr-1", "event": "Comment Posted", "properties": {"text": "我住在西湖区"}}),
    )
    .await
    .expect(200);
    let id = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=dsr-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    let order = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            json!({"order_id": "D-1", "customer_id": id, "channel": "offline", "amount": 66,
                   "ordered_at": "2026-11-01T00:00:00Z", "properties": {"address": "西湖区1号"}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/orders/{order}/after-sales"),
        &app.admin_token,
        json!({"kind": "return", "amount": 6, "reason": "寄回西湖区的地址错了"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/customers/{id}/notes"),
        &app.admin_token,
        json!({"body": "王女士的新地址"}),
    )
    .await
    .expect(201);

    // an analyst may export customers but not reveal them: no access request for them
    let analyst = app.token_with_role("analyst").await;
    app.get(&format!("/api/v1/customers/{id}/data"), &analyst)
        .await
        .expect(403);
    let data = app
        .get(&format!("/api/v1/customers/{id}/data"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(data["customer"]["phone"], "+8613812341680");
    assert_eq!(data["events"].as_array().unwrap().len(), 4);
    assert_eq!(data["orders"][0]["properties"]["address"], "西湖区1号");
    assert_eq!(data["notes"][0]["body"], "王女士的新地址");

    // erasure: a service agent may not; an admin may
    let service = app.token_with_role("service").await;
    app.delete(&format!("/api/v1/customers/{id}"), &service)
        .await
        .expect(403);
    let merge = app
        .get(
            &format!("/api/v1/customers/{id}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merge")
        .expect("the device and the account were merged")["id"]
        .as_i64()
        .unwrap();
    app.delete(&format!("/api/v1/customers/{id}"), &app.admin_token)
        .await
        .expect(204);
    // the merge kept both profiles as they were, for an undo: erased with the rest
    let undo = app
        .post(
            &format!("/api/v1/customer-merges/{merge}/undo"),
            &app.admin_token,
            json!({}),
        )
        .await
        .expect(409);
    assert!(
        undo.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("can no longer be undone"),
        "{}",
        undo.body
    );
    let erased = app
        .get(
            &format!("/api/v1/customers/{id}?reveal=true"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert!(erased["erased_at"].is_string());
    assert_eq!(erased["name"], Value::Null);
    assert_eq!(erased["phone"], Value::Null);
    assert_eq!(erased["traits"], json!({}));
    assert_eq!(erased["identities"], json!([]));
    // anonymous figures stay
    assert_eq!(erased["orders"]["count"], 1);
    assert_eq!(erased["orders"]["total"], 66.0);
    let after = app
        .get(&format!("/api/v1/customers/{id}/data"), &app.admin_token)
        .await
        .expect(200)
        .body;
    let text = after.to_string();
    for personal in [
        "王芳",
        "芳芳",
        "13812341680",
        "西湖区",
        "dsr-1",
        "dsr-device",
        "杭州",
        "王女士",
    ] {
        assert!(
            !text.contains(personal),
            "{personal} survived erasure: {text}"
        );
    }
    assert_eq!(after["events"].as_array().unwrap().len(), 4);
    // the person is no longer found by their ids; a new event makes a new profile
    app.get(
        "/api/v1/customers/lookup?kind=user_id&value=dsr-1",
        &app.admin_token,
    )
    .await
    .expect(404);
    let list = app
        .get("/api/v1/customers", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != id)
    );
    for action in ["customer.data_exported", "customer.erased"] {
        let audit = app
            .get(
                &format!("/api/v1/audit-log?action={action}"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body;
        assert!(!audit["items"].as_array().unwrap().is_empty(), "{action}");
    }
}

/// Sends a CSV file to start an import; returns the answer.
async fn consent_changes(app: &TestApp) -> usize {
    app.get(
        "/api/v1/audit-log?action=customer.consent_changed",
        &app.admin_token,
    )
    .await
    .expect(200)
    .body["items"]
        .as_array()
        .unwrap()
        .len()
}

pub(crate) async fn start_import(app: &TestApp, query: &str, csv: &str) -> crate::helpers::Answer {
    let response = app
        .http
        .post(app.url(&format!("/api/v1/imports?{query}")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    crate::helpers::answer(response).await
}

/// Waits for an import to end; returns it.
pub(crate) async fn finished(app: &TestApp, id: i64) -> Value {
    for _ in 0..200 {
        let job = app
            .get(&format!("/api/v1/imports/{id}"), &app.admin_token)
            .await
            .expect(200)
            .body;
        if job["status"] != "queued" && job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("import {id} did not finish");
}

#[tokio::test]
async fn imports_run_in_the_background_report_refused_rows_and_are_idempotent() {
    let app = TestApp::spawn().await;
    let mut csv = String::from("user_id,name,phone,tier\n");
    for n in 0..1200 {
        csv.push_str(&format!("u{n},客户{n},1380000{n:04},gold\n"));
    }
    csv.push_str(",无名,,\n"); // no identity: line 1202
    csv.push_str("u-bad,坏号,12,\n"); // a bad phone: line 1203
    let job = start_import(&app, "kind=customers&file_name=members.csv", &csv)
        .await
        .expect(202)
        .body;
    assert_eq!(job["status"], "queued");
    assert!(job["job_id"].is_i64(), "{job}");
    assert_eq!(job["total_rows"], 1202);
    assert_eq!(job["file_name"], "members.csv");
    let done = finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            &done["processed_rows"],
            &done["stored_rows"],
            &done["rejected_rows"]
        ),
        (&json!(1202), &json!(1200), &json!(2))
    );
    assert_eq!(done["rejects"][0]["line"], 1202);
    assert_eq!(done["rejects"][1]["line"], 1203);
    assert!(
        done["rejects"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("phone")
    );
    let c = app
        .get(
            "/api/v1/customers/lookup?kind=phone&value=13800000042&reveal=true",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(c["name"], "客户42");
    assert_eq!(c["traits"]["tier"], "gold");
    assert!(
        c["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "user_id" && i["value"] == "u42")
    );

    // again: nothing new
    let again = start_import(&app, "kind=customers", &csv)
        .await
        .expect(202)
        .body;
    let again = finished(&app, again["id"].as_i64().unwrap()).await;
    assert_eq!(again["stored_rows"], 1200);
    let sources = app
        .get("/api/v1/sources", &app.admin_token)
        .await
        .expect(200)
        .body;
    let import_source = sources["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "CSV import")
        .unwrap();
    assert_eq!(
        import_source["received"], 1200,
        "the second run stored no event"
    );
    let list = app
        .get("/api/v1/imports", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // a row imported again with only its consent changed: the change is recorded
    // (the row itself is a duplicate); importing that again records nothing more
    for (status, changes) in [("opt_in", 1), ("opt_out", 2), ("opt_out", 2)] {
        let csv = format!("user_id,name,consent:sms\nc-1,甲,{status}\n");
        let job = start_import(&app, "kind=customers", &csv)
            .await
            .expect(202)
            .body;
        let done = finished(&app, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(consent_changes(&app).await, changes, "after {status}");
    }
    let c1 = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=c-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    let in_force = app
        .get(&format!("/api/v1/customers/{c1}/consent"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(in_force[0]["status"], "opt_out");

    // many customers' consents in one file (more than one statement's worth), one of
    // them twice: every change is kept in file order, what is already in force is not
    // recorded again (c-1's opt-out, c-3's second), and the audience index follows
    let mut csv = String::from("user_id,name,consent:sms,consent:wecom\n");
    csv.push_str("c-1,甲,opt_out,opt_in\nc-2,乙,opt_out,\nc-3,丙,opt_out,\nc-3,丙,opt_out,\n");
    for n in 0..350 {
        csv.push_str(&format!("bulk-{n},客户,opt_out,\n"));
    }
    let history_of = |user: String| {
        let app = &app;
        async move {
            let id = app
                .get(
                    &format!("/api/v1/customers/lookup?kind=user_id&value={user}"),
                    &app.admin_token,
                )
                .await
                .expect(200)
                .body["id"]
                .as_i64()
                .unwrap();
            let data = app
                .get(&format!("/api/v1/customers/{id}/data"), &app.admin_token)
                .await
                .expect(200)
                .body;
            data["consent"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    format!(
                        "{}:{}",
                        c["channel"].as_str().unwrap(),
                        c["status"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    for run in 0..2 {
        let job = start_import(&app, "kind=customers", &csv)
            .await
            .expect(202)
            .body;
        let done = finished(&app, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        // newest first; the earlier opt_in of c-1 is there from the runs above
        assert_eq!(
            history_of("c-1".into()).await,
            ["wecom:opt_in", "sms:opt_out", "sms:opt_in"],
            "run {run}"
        );
        assert_eq!(history_of("c-3".into()).await, ["sms:opt_out"], "run {run}");
        for n in [0, 299, 300, 349] {
            assert_eq!(
                history_of(format!("bulk-{n}")).await,
                ["sms:opt_out"],
                "bulk-{n}, run {run}"
            );
        }
    }
    // everyone who opted out of SMS: 350 + c-1, c-2, c-3
    let mut opted_out = Value::Null;
    for _ in 0..100 {
        opted_out = app
            .post(
                "/api/v1/segments/preview",
                &app.admin_token,
                json!({"definition": "not consent(\"sms\")"}),
            )
            .await
            .expect(200)
            .body["count"]
            .clone();
        if opted_out == 353 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(opted_out, 353);

    // orders by the same route
    let orders = "订单号,user_id,渠道,下单时间,金额\nO-1,u1,wecom,2026-11-01 12:00,88.8\nO-2,u1,jd,not-a-time,1\n";
    let job = start_import(&app, "kind=orders", orders)
        .await
        .expect(202)
        .body;
    let done = finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(
        (&done["stored_rows"], &done["rejected_rows"]),
        (&json!(1), &json!(1))
    );
    let u1 = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=u1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(u1["orders"]["total"], 88.8);

    // bad files start nothing
    for (query, body, field) in [
        ("kind=customers", "name,city\nx,y\n", "header"),
        ("kind=pets", "user_id\nx\n", "kind"),
        ("kind=orders", "order_id,user_id\n1,x\n", "header"),
        ("kind=customers&map=nonsense", "user_id\nx\n", "map"),
    ] {
        let refused = start_import(&app, query, body).await.expect(422);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"],
            field
        );
    }
    let service = app.token_with_role("service").await;
    app.get("/api/v1/imports", &service).await.expect(403);
}

#[tokio::test]
async fn exports_are_csv_masked_unless_revealed_and_audited() {
    let app = TestApp::spawn().await;
    for n in 0..3 {
        app.post(
            "/api/v1/orders",
            &app.admin_token,
            order(&format!("X-{n}"), phone(&format!("1390000000{n}")), 10.0),
        )
        .await
        .expect(201);
    }
    let get = |reveal: bool| {
        let app = &app;
        async move {
            app.http
                .get(app.url(&format!("/api/v1/customers/export?reveal={reveal}")))
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap()
        }
    };
    let masked = get(false).await;
    assert_eq!(masked.status(), 200);
    assert!(
        masked.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = masked.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("id,name,phone,email"));
    assert!(
        text.contains("139****0001") && !text.contains("13900000001"),
        "{text}"
    );
    let revealed = get(true).await.text().await.unwrap();
    assert!(revealed.contains("+8613900000001"), "{revealed}");
    let analyst = app.token_with_role("analyst").await;
    let denied = app
        .http
        .get(app.url("/api/v1/customers/export?reveal=true"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let audit = app
        .get(
            "/api/v1/audit-log?action=customers.exported",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_admin_can_undo_a_wrong_merge_and_it_does_not_happen_again() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let lookup = |kind: &'static str, value: &'static str| {
        let app = &app;
        async move {
            app.get(
                &format!("/api/v1/customers/lookup?kind={kind}&value={value}"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body
        }
    };
    // a visitor with a city, a view and an order; a member with a plan
    send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "identify", "anonymousId": "a-1", "traits": {"city": "上海"}, "timestamp": "2026-11-01T00:00:00Z"},
            {"type": "track", "anonymousId": "a-1", "event": "Product Viewed", "timestamp": "2026-11-01T00:01:00Z"},
            {"type": "identify", "userId": "u-1", "traits": {"plan": "gold"}, "timestamp": "2026-11-01T00:02:00Z"}
        ]}),
    )
    .await
    .expect(200);
    let visitor = lookup("anonymous_id", "a-1").await["id"].as_i64().unwrap();
    let member = lookup("user_id", "u-1").await["id"].as_i64().unwrap();
    assert_ne!(visitor, member);
    app.post(
        "/api/v1/orders",
        &app.admin_token,
        json!({"order_id": "V-1", "customer_id": visitor, "channel": "app", "amount": 9,
               "ordered_at": "2026-11-01T00:03:00Z"}),
    )
    .await
    .expect(201);
    // a shared tablet signs the member in on the visitor's device: merged
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"anonymousId": "a-1", "userId": "u-1", "timestamp": "2026-11-02T00:00:00Z"}),
    )
    .await
    .expect(200);
    let merged = lookup("anonymous_id", "a-1").await;
    assert_eq!(merged["id"], member);
    assert_eq!(merged["orders"]["count"], 1);
    assert_eq!(merged["traits"]["city"], "上海");
    // a trait set on the member after the merge
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u-1", "traits": {"level": "vip"}}),
    )
    .await
    .expect(200);
    let timeline = app
        .get(
            &format!("/api/v1/customers/{member}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let merge = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merge")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let url = format!("/api/v1/customer-merges/{merge}/undo");
    let operations = app.token_with_role("operations").await;
    app.post(&url, &operations, json!({})).await.expect(403);
    let undone = app
        .post(&url, &app.admin_token, json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(undone["survivor"]["id"], member);
    assert_eq!(undone["restored"]["id"], visitor);
    let restored = &undone["restored"];
    assert_eq!(restored["traits"]["city"], "上海");
    assert_eq!(restored["orders"]["count"], 1);
    assert!(
        restored["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["value"] == "a-1")
    );
    let survivor = &undone["survivor"];
    assert_eq!(survivor["orders"]["count"], 0);
    assert_eq!(survivor["traits"].get("city"), None);
    assert_eq!(survivor["traits"]["plan"], "gold");
    assert_eq!(
        survivor["traits"]["level"], "vip",
        "set after the merge: kept"
    );
    let activity = app
        .get(
            &format!("/api/v1/customers/{visitor}/activity"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(activity[0]["name"], "Product Viewed");
    assert_eq!(activity[0]["total"], 1);
    app.post(&url, &app.admin_token, json!({}))
        .await
        .expect(409);

    // the same evidence again does not merge them
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"anonymousId": "a-1", "userId": "u-1"}),
    )
    .await
    .expect(200);
    assert_eq!(lookup("anonymous_id", "a-1").await["id"], visitor);
    assert_eq!(lookup("user_id", "u-1").await["id"], member);
    let audit = app
        .get(
            "/api/v1/audit-log?action=customer.merge_undone",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn imports_and_merge_undos_need_a_data_scope_over_all_customers() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    for (email, role) in [
        ("ops-own@acme.example.com", "operations"),
        ("admin-own@acme.example.com", "admin"),
    ] {
        app.post(
            "/api/v1/staff",
            &app.admin_token,
            json!({"unit_id": root.id, "role": role, "email": email, "name": role,
                   "password": PASSWORD, "data_scope": "own"}),
        )
        .await
        .expect(201);
    }
    let (ops, a) = app.login("ops-own@acme.example.com", PASSWORD).await;
    a.expect(200);
    let import = ops
        .post(app.url("/api/v1/imports?kind=customers"))
        .header("content-type", "text/csv")
        .body("phone,name\n13812341680,张三\n")
        .send()
        .await
        .unwrap();
    let refused = answer(import).await.expect(403);
    assert!(
        refused.body.to_string().contains("data scope"),
        "{}",
        refused.body
    );
    let (admin, a) = app.login("admin-own@acme.example.com", PASSWORD).await;
    a.expect(200);
    let undo = admin
        .post(app.url("/api/v1/customer-merges/1/undo"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    answer(undo).await.expect(403);
    // nothing was imported
    let list = app
        .get("/api/v1/customers", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert!(list["items"].as_array().unwrap().is_empty());
}

/// 分配客户: customers handed to a staff member in bulk, within the caller's scope.
#[tokio::test]
async fn customers_are_handed_to_staff_in_bulk() {
    let app = TestApp::spawn().await;
    let (_, key) = crate::tracking::source(&app).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        crate::tracking::send(
            &app,
            "/v1/identify",
            &key,
            json!({"userId": format!("h-{n}")}),
        )
        .await
        .expect(200);
        ids.push(
            app.get(
                &format!("/api/v1/customers/lookup?kind=user_id&value=h-{n}"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let guide = app.staff_with_role("guide@example.com", "service").await;
    let mut asked = ids.clone();
    asked.push(i64::MAX); // not a customer of this tenant: skipped
    let done = app
        .post(
            "/api/v1/customers/assign",
            &app.admin_token,
            json!({"customer_ids": asked, "owner_staff_id": guide}),
        )
        .await
        .expect(200);
    assert_eq!(done.body["assigned"], 3);
    for id in &ids {
        let c = app
            .get(&format!("/api/v1/customers/{id}"), &app.admin_token)
            .await
            .expect(200);
        assert_eq!(c.body["owner_staff_id"], guide);
    }
    let audit = app
        .get(
            "/api/v1/audit-log?action=customer.assigned",
            &app.admin_token,
        )
        .await
        .expect(200);
    assert_eq!(audit.body["items"][0]["details"]["customers"], json!(ids));
    // bad input
    for (body, status, code) in [
        (
            json!({"customer_ids": [], "owner_staff_id": guide}),
            422,
            "validation_failed",
        ),
        (
            json!({"customer_ids": ids, "owner_staff_id": i64::MAX}),
            404,
            "not_found",
        ),
        (
            json!({"customer_ids": ids, "owner": guide}),
            422,
            "validation_failed",
        ),
    ] {
        let answer = app
            .post("/api/v1/customers/assign", &app.admin_token, body.clone())
            .await
            .expect(status);
        assert_eq!(answer.code(), code, "{body}");
    }
    // an analyst may not change customers
    let analyst = app.token_with_role("analyst").await;
    app.post(
        "/api/v1/customers/assign",
        &analyst,
        json!({"customer_ids": ids, "owner_staff_id": null}),
    )
    .await
    .expect(403);
    // null takes them back
    let back = app
        .post(
            "/api/v1/customers/assign",
            &app.admin_token,
            json!({"customer_ids": ids, "owner_staff_id": null}),
        )
        .await
        .expect(200);
    assert_eq!(back.body["assigned"], 3);
}

/// The identifying kinds are read and set through the API: checked, audited, and
/// settable only with `settings.write`.
#[tokio::test]
async fn identifying_kinds_are_a_tenant_setting() {
    let app = TestApp::spawn().await;
    let read = app
        .get("/api/v1/settings/identity", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        read,
        json!({"identifying_kinds": ["user_id"]}),
        "the default"
    );
    let put = |token: String, body: Value| {
        let request = app
            .http
            .put(app.url("/api/v1/settings/identity"))
            .bearer_auth(token)
            .json(&body);
        async move { crate::helpers::answer(request.send().await.unwrap()).await }
    };
    let set = put(
        app.admin_token.clone(),
        json!({"identifying_kinds": ["user_id", "WeChat-UnionID"]}),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(
        set["identifying_kinds"],
        json!(["user_id", "wechat_unionid"])
    );
    assert_eq!(
        app.get("/api/v1/settings/identity", &app.admin_token)
            .await
            .expect(200)
            .body,
        set
    );
    for bad in [
        json!({"identifying_kinds": ["anonymous_id"]}),
        json!({"identifying_kinds": ["phone", "phone"]}),
        json!({"identifying_kinds": ["kind!"]}),
        json!({"kinds": ["phone"]}),
    ] {
        let refused = put(app.admin_token.clone(), bad.clone()).await;
        assert_eq!(refused.status.as_u16(), 422, "{bad}: {}", refused.body);
    }
    let service = app.token_with_role("service").await;
    put(service, json!({"identifying_kinds": ["user_id"]}))
        .await
        .expect(403);
    let audit = app
        .get(
            "/api/v1/audit-log?action=settings.changed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn orders_in_other_currencies_count_in_the_tenant_currency() {
    let app = TestApp::spawn().await;
    let settings = app
        .get("/api/v1/settings/currency", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(settings, json!({"currency": "CNY", "rates": {}}));

    // a CNY order, and a US-dollar order that brings its own rate: $10 at 7.1 is ¥71
    let cny = app
        .post(
            "/api/v1/orders",
            &app.admin_token,
            order("FX-1", phone("13812341680"), 100.0),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(
        (&cny["currency"], &cny["exchange_rate"]),
        (&json!("CNY"), &json!(1.0))
    );
    let customer_id = cny["customer_id"].as_i64().unwrap();
    let mut usd = order("FX-2", json!(null), 10.0);
    usd["customer_id"] = json!(customer_id);
    usd.as_object_mut().unwrap().remove("customer");
    usd["currency"] = json!("usd");
    usd["exchange_rate"] = json!(7.1);
    let usd = app
        .post("/api/v1/orders", &app.admin_token, usd)
        .await
        .expect(201)
        .body;
    assert_eq!(
        (&usd["currency"], &usd["amount"]),
        (&json!("USD"), &json!(10.0))
    );
    assert_eq!(usd["exchange_rate"], 7.1);
    let figures = &customer(&app, customer_id).await["orders"];
    assert_eq!(
        (&figures["count"], &figures["total"]),
        (&json!(2), &json!(171.0))
    );
    assert_eq!(figures["average"], 85.5);

    // a Hong Kong dollar order with no rate anywhere is refused, and makes no profile
    let mut hkd = order("FX-3", phone("13900001111"), 50.0);
    hkd["currency"] = json!("HKD");
    let refused = app
        .post("/api/v1/orders", &app.admin_token, hkd.clone())
        .await
        .expect(422)
        .body;
    assert_eq!(
        refused["error"]["details"]["fields"][0]["field"], "currency",
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HKD has no exchange rate to CNY"),
        "{refused}"
    );
    app.get(
        "/api/v1/customers/lookup?kind=phone&value=13900001111",
        &app.admin_token,
    )
    .await
    .expect(404);

    // bad settings are refused with the field at fault
    for (bad, field) in [
        (json!({"currency": "CNY", "rates": {"HKD": 0}}), "rates.HKD"),
        (json!({"currency": "CNY", "rates": {"HKD": "lots"}}), ""),
        (json!({"currency": "CNY", "rates": {"CNY": 1}}), "rates.CNY"),
        (json!({"currency": "元", "rates": {}}), "currency"),
        (
            json!({"currency": "CNY", "rates": {"HKD": 0.92}, "base": "CNY"}),
            "",
        ),
    ] {
        let answer = app
            .put("/api/v1/settings/currency", &app.admin_token, bad.clone())
            .await;
        assert!(
            [400, 422].contains(&answer.status.as_u16()),
            "{bad} was taken: {}",
            answer.status
        );
        if !field.is_empty() {
            assert_eq!(
                answer.body["error"]["details"]["fields"][0]["field"], field,
                "{bad}"
            );
        }
    }
    // the currency cannot change once there are orders
    let conflict = app
        .put(
            "/api/v1/settings/currency",
            &app.admin_token,
            json!({"currency": "HKD", "rates": {}}),
        )
        .await
        .expect(409)
        .body;
    assert!(
        conflict["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CNY"),
        "{conflict}"
    );

    // with a tenant rate the same order is taken, at that rate
    let set = app
        .put(
            "/api/v1/settings/currency",
            &app.admin_token,
            json!({"currency": "cny", "rates": {"hkd": 0.92}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(set, json!({"currency": "CNY", "rates": {"HKD": 0.92}}));
    let taken = app
        .post("/api/v1/orders", &app.admin_token, hkd)
        .await
        .expect(201)
        .body;
    assert_eq!(taken["exchange_rate"], 0.92);
    let hk_customer = taken["customer_id"].as_i64().unwrap();
    assert_eq!(customer(&app, hk_customer).await["orders"]["total"], 46.0);
    let audit = app
        .get(
            "/api/v1/audit-log?action=settings.changed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert!(audit.to_string().contains("HKD"), "{audit}");

    // a refund of half the dollar order leaves $5, ¥35.5, in the figures
    let refund = app
        .post(
            &format!("/api/v1/orders/{}/after-sales", usd["id"]),
            &app.admin_token,
            json!({"kind": "refund", "status": "completed", "amount": 5}),
        )
        .await;
    assert_eq!(refund.status.as_u16(), 201, "{}", refund.body);
    assert_eq!(customer(&app, customer_id).await["orders"]["total"], 135.5);
    // segments sum in the tenant currency too
    let preview = app
        .post(
            "/api/v1/segments/preview",
            &app.admin_token,
            json!({"definition": "orders.sum() >= 135.5", "sample": 5}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(preview["count"], 1, "{preview}");

    // events: an order in a currency with no rate is refused, the rest of the batch
    // stored; sent again once a rate is set, it is taken
    let (_, key) = source(&app).await;
    let jpy = json!({"type": "track", "userId": "jp-1", "event": "Order Completed", "messageId": "jp-order",
        "properties": {"order_id": "JP-1", "total": 1000, "currency": "JPY"}});
    let batch = json!({"batch": [
        jpy.clone(),
        {"type": "track", "userId": "jp-1", "event": "Product Viewed", "messageId": "jp-view"}
    ]});
    let answer = send(&app, "/v1/batch", &key, batch).await.expect(200).body;
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["rejected"][0]["index"], 0);
    assert_eq!(answer["rejected"][0]["messageId"], "jp-order");
    assert!(
        answer["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("JPY has no exchange rate"),
        "{answer}"
    );
    // alone, it is a 400 (an SDK would not retry it)
    send(&app, "/v1/track", &key, jpy.clone()).await.expect(400);
    app.put(
        "/api/v1/settings/currency",
        &app.admin_token,
        json!({"currency": "CNY", "rates": {"HKD": 0.92, "JPY": 0.048}}),
    )
    .await
    .expect(200);
    let answer = send(&app, "/v1/track", &key, jpy).await.expect(200).body;
    assert_eq!(
        (&answer["accepted"], &answer["duplicates"]),
        (&json!(1), &json!(0))
    );
    let jp = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=jp-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(jp["orders"]["total"], 48.0);

    // imports: a 汇率 column, the tenant's rate, and a row with no rate refused
    let csv = "订单号,user_id,渠道,下单时间,金额,币种,汇率\n\
               IM-1,im-1,tmall,2026-11-01 12:00,20,USD,7.2\n\
               IM-2,im-1,tmall,2026-11-02 12:00,100,HKD,\n\
               IM-3,im-1,tmall,2026-11-03 12:00,5,EUR,\n\
               IM-4,im-1,tmall,2026-11-04 12:00,5,EUR,0\n";
    let job = start_import(&app, "kind=orders", csv)
        .await
        .expect(202)
        .body;
    let done = finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(
        (&done["stored_rows"], &done["rejected_rows"]),
        (&json!(2), &json!(2)),
        "{done}"
    );
    // rows refused when read and when recorded are both reported, by line
    let reason = |line: i64| {
        done["rejects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["line"] == line)
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("line {line} is not reported: {done}"))
    };
    assert!(reason(4).contains("EUR has no exchange rate"), "{done}");
    assert!(reason(5).starts_with("exchange_rate"), "{done}");
    let im = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=im-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    // $20 at 7.2 and HK$100 at 0.92
    assert_eq!(im["orders"]["total"], 236.0);

    // a recorded order keeps its rate: the HK$ order sent again, completed, after the
    // tenant's rate changed and after it was removed, still counts at 0.92
    for rates in [json!({"HKD": 0.95}), json!({})] {
        app.put(
            "/api/v1/settings/currency",
            &app.admin_token,
            json!({"currency": "CNY", "rates": rates}),
        )
        .await
        .expect(200);
        let csv = "订单号,user_id,渠道,下单时间,金额,币种,状态\n\
                   IM-2,im-1,tmall,2026-11-02 12:00,100,HKD,completed\n";
        let job = start_import(&app, "kind=orders", csv)
            .await
            .expect(202)
            .body;
        let done = finished(&app, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["stored_rows"], 1, "{rates}: {done}");
        let again = app
            .get("/api/v1/orders?channel=tmall&limit=50", &app.admin_token)
            .await
            .expect(200)
            .body;
        let im2 = again["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["order_id"] == "IM-2")
            .unwrap()
            .clone();
        assert_eq!(
            (&im2["status"], &im2["exchange_rate"]),
            (&json!("completed"), &json!(0.92))
        );
        let im = app
            .get(
                "/api/v1/customers/lookup?kind=user_id&value=im-1",
                &app.admin_token,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(im["orders"]["total"], 236.0, "{rates}");
    }
    // …and the same from an event, which is not refused for want of a rate now: the
    // order's owner (by phone) sends it again with a new total, counted at 0.92
    let resend = json!({"type": "track", "anonymousId": "hk-device", "event": "Order Completed",
        "context": {"traits": {"phone": "13900001111"}},
        "properties": {"order_id": "FX-3", "total": 60, "currency": "HKD"}});
    let answer = send(&app, "/v1/track", &key, resend).await.expect(200).body;
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(customer(&app, hk_customer).await["orders"]["total"], 55.2);

    // an order that would count for more than the money limit is refused
    let mut huge = order("FX-HUGE", phone("13812341680"), 10_000_000_000.0);
    huge["currency"] = json!("IDR");
    huge["exchange_rate"] = json!(2);
    let refused = app
        .post("/api/v1/orders", &app.admin_token, huge)
        .await
        .expect(422)
        .body;
    assert_eq!(
        refused["error"]["details"]["fields"][0]["field"], "amount",
        "{refused}"
    );
}
