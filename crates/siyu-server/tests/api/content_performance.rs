//! An item's figures over the mass sends that carried it: recipients, sent, delivered
//! (on WeCom only once the member confirmed), and the orders recipients placed within
//! the window after their message; orders before it, after it, or by customers who
//! got no message do not count.

use serde_json::{Value, json};

use crate::broadcasts::finished;
use crate::broadcasts_wecom::{World, all_made};

async fn performance(w: &World, item: i64, query: &str) -> Value {
    w.app
        .get(
            &format!("/api/v1/content/{item}/performance{query}"),
            &w.app.admin_token,
        )
        .await
        .expect(200)
        .body
}

async fn order(w: &World, id: &str, customer: i64, amount: f64, at_ms: i64) {
    w.app
        .post(
            "/api/v1/orders",
            &w.app.admin_token,
            json!({"order_id": id, "customer_id": customer, "channel": "tmall",
                   "amount": amount,
                   "ordered_at": siyu_domain::time::format_rfc3339(at_ms)}),
        )
        .await
        .expect(201);
}

async fn item(w: &World, title: &str) -> i64 {
    w.app
        .post(
            "/api/v1/content",
            &w.app.admin_token,
            json!({"kind": "link", "title": title, "url": "https://shop.example.com/spring"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_item_counts_its_sends_deliveries_and_the_orders_within_the_window() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    let (spring, unused) = (item(&w, "春茶上新").await, item(&w, "未用").await);
    let nothing = performance(&w, spring, "").await;
    assert_eq!(
        (
            &nothing["sends"],
            &nothing["recipients"],
            &nothing["orders"],
            &nothing["window_days"]
        ),
        (&json!(0), &json!(0), &json!(0), &json!(7))
    );
    let before_send = siyu_store::now_ms() - 60_000;
    let ids = w.ids(&["wmLS01", "wmLS03", "wmZS02"]).await;
    let (ls01, ls03, zs02) = (ids[0], ids[1], ids[2]);

    // on WeCom to two of 李四's customers, on the sandbox to 张三's one
    let wecom = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "春茶", "channel": "wecom", "audience": {"customers": [ls01, ls03]},
                   "text": "春茶上新", "content_ids": [spring]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let tasks = w.tasks_until(wecom, "tasks made", all_made).await;
    let sandbox = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "春茶 沙箱", "audience": {"customers": [zs02]},
                   "text": "春茶上新", "content_ids": [spring]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    finished(&w.app, sandbox).await;
    let figures = performance(&w, spring, "").await;
    assert_eq!(
        (
            &figures["sends"],
            &figures["recipients"],
            &figures["sent"],
            &figures["delivered"]
        ),
        (&json!(2), &json!(3), &json!(3), &json!(1)),
        "李四 has not confirmed: only the sandbox's one is delivered: {figures}"
    );
    // an order placed after 李四's task was made but before he sent it came before
    // the message: not counted (WeCom's send time is in whole seconds)
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    order(&w, "P-0", ls01, 5.0, siyu_store::now_ms() - 1_000).await;
    let msgid = tasks[0]["msgid"].as_str().unwrap().to_owned();
    assert_eq!(w.standin.member_confirms("lisi", &msgid), Some(2));
    w.tasks_until(wecom, "李四 confirmed", |tasks| {
        tasks.iter().all(|t| t["task_state"] == "confirmed")
    })
    .await;
    assert_eq!(performance(&w, spring, "").await["delivered"], 3);
    // 张三's customer gets the item a second time: their orders still count once
    let again = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "春茶 再发", "audience": {"customers": [zs02]},
                   "text": "春茶上新，再提醒", "content_ids": [spring]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    finished(&w.app, again).await;

    // after the message: counted (two orders of one customer, one of another); before
    // it, not; by someone who got no message, not (an order after the window would be
    // over a day in the future, which orders refuse)
    let now = siyu_store::now_ms();
    let unsent = w.ids(&["wmZS03"]).await[0];
    order(&w, "P-1", ls01, 20.0, now).await;
    order(&w, "P-2", ls01, 15.5, now + 1_000).await;
    order(&w, "P-3", zs02, 100.0, now).await;
    order(&w, "P-4", ls03, 9.0, before_send).await;
    order(&w, "P-6", unsent, 70.0, now).await;
    let figures = performance(&w, spring, "").await;
    assert_eq!(
        (
            &figures["orders"],
            &figures["ordering_customers"],
            &figures["gmv"]
        ),
        (&json!(3), &json!(2), &json!(135.5)),
        "{figures}"
    );
    let wider = performance(&w, spring, "?window_days=30").await;
    assert_eq!(
        (&wider["orders"], &wider["window_days"]),
        (&json!(3), &json!(30))
    );
    assert_eq!(performance(&w, unused, "").await["sends"], 0);
    assert_eq!(performance(&w, spring, "").await["sends"], 3);

    // bad asks
    for bad in ["?window_days=0", "?window_days=91"] {
        let refused = w
            .app
            .get(&format!("/api/v1/content/{spring}/performance{bad}"), token)
            .await
            .expect(422)
            .body;
        assert_eq!(
            refused["error"]["details"]["fields"][0]["field"], "window_days",
            "{refused}"
        );
    }
    w.app
        .get("/api/v1/content/99999999/performance", token)
        .await
        .expect(404);
}

#[tokio::test]
async fn staff_of_a_narrow_scope_count_their_own_sends_and_the_orders_within_their_reach() {
    use crate::audiences::customer;
    use crate::helpers::{PASSWORD, TestApp};
    use crate::tracking::source;

    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let staff = |email: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/staff",
                token,
                json!({"unit_id": root.id, "role": "operations", "email": email,
                       "name": email, "password": PASSWORD, "data_scope": "own"}),
            )
            .await
            .expect(201)
            .body["id"]
                .as_i64()
                .unwrap()
        }
    };
    let (own, other) = (
        staff("own@example.com").await,
        staff("other@example.com").await,
    );
    let mine = customer(&app, &key, "n-1", json!({})).await;
    let kept = customer(&app, &key, "n-2", json!({})).await;
    app.post(
        "/api/v1/customers/assign",
        token,
        json!({"customer_ids": [mine, kept], "owner_staff_id": own}),
    )
    .await
    .expect(200);
    let item = app
        .post(
            "/api/v1/content",
            token,
            json!({"kind": "link", "title": "会员日", "url": "https://shop.example.com/day"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (client, _) = app.login("own@example.com", PASSWORD).await;
    let made = client
        .post(app.url("/api/v1/broadcasts"))
        .json(
            &json!({"name": "我的", "audience": {"customers": [mine, kept]},
                      "text": "会员日", "content_ids": [item]}),
        )
        .send()
        .await
        .unwrap();
    let made = crate::helpers::answer(made).await.expect(201).body;
    // the admin's own send carrying the item counts for the admin only
    let admins = app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "总部", "audience": {"customers": [mine]}, "text": "会员日",
                   "content_ids": [item]}),
        )
        .await
        .expect(201)
        .body;
    for id in [&made["id"], &admins["id"]] {
        finished(&app, id.as_i64().unwrap()).await;
    }
    // one recipient is handed to someone else; then both order
    app.post(
        "/api/v1/customers/assign",
        token,
        json!({"customer_ids": [mine], "owner_staff_id": other}),
    )
    .await
    .expect(200);
    let now = siyu_store::now_ms();
    for (id, customer, amount) in [("N-1", mine, 30.0), ("N-2", kept, 12.0)] {
        app.post(
            "/api/v1/orders",
            token,
            json!({"order_id": id, "customer_id": customer, "channel": "tmall",
                   "amount": amount, "ordered_at": siyu_domain::time::format_rfc3339(now)}),
        )
        .await
        .expect(201);
    }
    let theirs = client
        .get(app.url(&format!("/api/v1/content/{item}/performance")))
        .send()
        .await
        .unwrap();
    let theirs = crate::helpers::answer(theirs).await.expect(200).body;
    assert_eq!(
        (
            &theirs["sends"],
            &theirs["recipients"],
            &theirs["orders"],
            &theirs["gmv"]
        ),
        (&json!(1), &json!(2), &json!(1), &json!(12.0)),
        "their own send, and only the order of the customer still theirs: {theirs}"
    );
    let all = app
        .get(&format!("/api/v1/content/{item}/performance"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        (
            &all["sends"],
            &all["recipients"],
            &all["orders"],
            &all["gmv"]
        ),
        (&json!(2), &json!(3), &json!(2), &json!(42.0)),
        "{all}"
    );
}
