//! The data-scope walk: a staff member scoped to one store's subtree, and one scoped to
//! their own customers, walk every customer-facing endpoint (those taking a customer,
//! order, after-sale or merge id are read from the OpenAPI document, so a new one cannot
//! be forgotten) and never see, count or change anyone else's customers.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, PASSWORD, TestApp, answer};
use crate::tracking::{send, source};

/// Path prefixes whose `{id}` is a customer or something of one customer.
const CUSTOMER_PATHS: [&str; 4] = [
    "/api/v1/customers/{id}",
    "/api/v1/orders/{id}",
    "/api/v1/after-sales/{id}",
    "/api/v1/customer-merges/{id}",
];

struct World {
    app: TestApp,
    insider: i64,
    outsider: i64,
    nobodys: i64,
    outsider_order: i64,
    outsider_after_sale: i64,
    outsider_merge: i64,
    vip: i64,
    spare_tag: i64,
    segment: i64,
    lead: i64,
}

async fn id_of(a: Answer) -> i64 {
    a.body["id"].as_i64().unwrap()
}

async fn customer(app: &TestApp, key: &str, user: &str, name: &str) -> i64 {
    send(
        app,
        "/v1/identify",
        key,
        json!({"userId": user, "traits": {"name": name, "phone": "13800001111"}}),
    )
    .await
    .expect(200);
    app.get(
        &format!("/api/v1/customers/lookup?kind=user_id&value={user}"),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body["id"]
        .as_i64()
        .unwrap()
}

/// A brand with stores S1 and S2; the insider is owned by a guide of S1, the outsider by
/// a guide of S2, and one customer is nobody's.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.admin_token.clone();
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let unit = |parent: i64, kind: &str, name: &str| {
        let body = json!({"parent_id": parent, "kind": kind, "name": name});
        let (app, admin) = (&app, admin.clone());
        async move { id_of(app.post("/api/v1/units", &admin, body).await.expect(201)).await }
    };
    let brand = unit(root.id.0, "brand", "brand").await;
    let s1 = unit(brand, "store", "s1").await;
    let s2 = unit(brand, "store", "s2").await;
    // every permission: the walk is about scope, not about roles
    let permissions: Vec<Value> = app
        .get("/api/v1/permissions", &admin)
        .await
        .expect(200)
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    app.post(
        "/api/v1/roles",
        &admin,
        json!({"name": "scoped-all", "permissions": permissions}),
    )
    .await
    .expect(201);
    let staff = |email: &str, unit: i64, scope: &str| {
        let body = json!({"unit_id": unit, "role": "scoped-all", "email": email, "name": email,
                          "password": PASSWORD, "data_scope": scope});
        let (app, admin) = (&app, admin.clone());
        async move { id_of(app.post("/api/v1/staff", &admin, body).await.expect(201)).await }
    };
    let lead = staff("lead@acme.example.com", s1, "unit_subtree").await;
    let guide_in = staff("in@acme.example.com", s1, "own").await;
    let guide_out = staff("out@acme.example.com", s2, "own").await;

    let (_, key) = source(&app).await;
    let insider = customer(&app, &key, "insider-user", "insider").await;
    let outsider = customer(&app, &key, "outsider-user", "outsider").await;
    let nobodys = customer(&app, &key, "nobody-user", "nobodys").await;
    for (c, owner) in [(insider, guide_in), (outsider, guide_out)] {
        app.patch(
            &format!("/api/v1/customers/{c}"),
            &admin,
            json!({"owner_staff_id": owner}),
        )
        .await
        .expect(200);
    }
    // the outsider has been merged with a visitor, ordered, asked for a refund
    let batch = json!({"batch": [
        {"type": "page", "anonymousId": "outsider-visitor"},
        {"type": "identify", "anonymousId": "outsider-visitor", "userId": "outsider-user"}
    ]});
    send(&app, "/v1/batch", &key, batch).await.expect(200);
    let merge = app
        .get(&format!("/api/v1/customers/{outsider}/timeline"), &admin)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merge")
        .expect("a merge")["id"]
        .as_i64()
        .unwrap();
    let mut orders = Vec::new();
    for (n, c) in [insider, outsider, nobodys].into_iter().enumerate() {
        let body = json!({"order_id": format!("W-{n}"), "customer_id": c, "channel": "wecom",
                          "amount": 100.0 * (n + 1) as f64,
                          "ordered_at": siyu_domain::time::format_rfc3339(siyu_store::now_ms() - 3_600_000)});
        orders.push(id_of(app.post("/api/v1/orders", &admin, body).await.expect(201)).await);
    }
    let after_sale = id_of(
        app.post(
            &format!("/api/v1/orders/{}/after-sales", orders[1]),
            &admin,
            json!({"kind": "refund", "amount": 10}),
        )
        .await
        .expect(201),
    )
    .await;
    app.post(
        &format!("/api/v1/customers/{outsider}/notes"),
        &admin,
        json!({"body": "outsider note"}),
    )
    .await
    .expect(201);
    let group = id_of(
        app.post("/api/v1/tag-groups", &admin, json!({"name": "g"}))
            .await
            .expect(201),
    )
    .await;
    let vip = id_of(
        app.post(
            "/api/v1/tags",
            &admin,
            json!({"group_id": group, "name": "vip"}),
        )
        .await
        .expect(201),
    )
    .await;
    let spare_tag = id_of(
        app.post(
            "/api/v1/tags",
            &admin,
            json!({"group_id": group, "name": "spare"}),
        )
        .await
        .expect(201),
    )
    .await;
    app.post(
        "/api/v1/customers/bulk-tag",
        &admin,
        json!({"customer_ids": [insider, outsider, nobodys], "add": [vip]}),
    )
    .await
    .expect(200);
    let segment = id_of(
        app.post(
            "/api/v1/segments",
            &admin,
            json!({"name": "vips", "definition": "tag(\"vip\")"}),
        )
        .await
        .expect(201),
    )
    .await;
    World {
        app,
        insider,
        outsider,
        nobodys,
        outsider_order: orders[1],
        outsider_after_sale: after_sale,
        outsider_merge: merge,
        vip,
        spare_tag,
        segment,
        lead,
    }
}

async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn text(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Nothing of the outsider or of the nobody's customer in a response.
fn assert_hides(w: &World, what: &str, body: &str) {
    for secret in ["outsider", "nobodys", "nobody-user"] {
        assert!(!body.contains(secret), "{what} shows {secret}: {body}");
    }
    for id in [w.outsider, w.nobodys] {
        assert!(
            !body.contains(&format!("\"id\":{id},"))
                && !body.contains(&format!("\"customer_id\":{id}")),
            "{what} shows customer {id}: {body}"
        );
    }
}

async fn walk(w: &World, email: &str) {
    let app = &w.app;
    let (client, signed_in) = app.login(email, PASSWORD).await;
    signed_in.expect(200);

    // 1. every method of every path that takes an id of the outsider's: 404
    let ids = [
        ("/api/v1/customers/{id}", w.outsider),
        ("/api/v1/orders/{id}", w.outsider_order),
        ("/api/v1/after-sales/{id}", w.outsider_after_sale),
        ("/api/v1/customer-merges/{id}", w.outsider_merge),
    ];
    let bodies = [
        ("/notes", json!({"body": "x"})),
        ("/consent", json!({"channel": "sms", "status": "opt_in"})),
        ("/after-sales", json!({"kind": "refund", "amount": 1})),
        ("/tags", json!({"add": [w.spare_tag]})),
        ("/api/v1/after-sales/{id}", json!({"status": "completed"})),
        (
            "/api/v1/customers/{id}",
            json!({"traits": {"name": "taken"}}),
        ),
    ];
    let doc = app
        .get("/api/openapi.json", &app.admin_token)
        .await
        .expect(200)
        .body;
    let mut walked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let Some((prefix, id)) = ids.iter().find(|(p, _)| path.starts_with(p)) else {
            continue;
        };
        assert!(CUSTOMER_PATHS.contains(prefix));
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = matches!(method, Method::POST | Method::PATCH | Method::PUT).then(|| {
                bodies
                    .iter()
                    .find(|(suffix, _)| path.ends_with(suffix) || path == suffix)
                    .map_or(json!({}), |(_, b)| b.clone())
            });
            let url = path.replace("{id}", &id.to_string());
            let a = call(app, &client, method.clone(), &url, body).await;
            // not found; or refused whatever the id, to anyone without the whole tenant
            // (an undo), which tells nothing of the object
            let refused_outright = a.status == 403
                && a.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("all customers"));
            assert!(
                a.status == 404 || refused_outright,
                "{email}: {method} {url}: {} {}",
                a.status,
                a.body
            );
            walked += 1;
        }
    }
    assert_eq!(
        walked, 20,
        "{email}: every method of every path of a customer's"
    );

    // 2. lists, searches, exports, samples, counts and reports
    let (status, customers) = text(app, &client, "/api/v1/customers?limit=500").await;
    assert_eq!(status, 200);
    assert_hides(w, "the customer list", &customers);
    assert!(customers.contains("insider"), "{customers}");
    for q in ["outsider", "outsider-user", "nobody-user", "13800001111"] {
        let (_, found) = text(app, &client, &format!("/api/v1/customers?q={q}")).await;
        assert_hides(w, &format!("a search for {q}"), &found);
    }
    let (_, filtered) = text(app, &client, "/api/v1/customers?filter=tag(%22vip%22)").await;
    assert_hides(w, "a filtered list", &filtered);
    call(
        app,
        &client,
        Method::GET,
        "/api/v1/customers/lookup?kind=user_id&value=outsider-user",
        None,
    )
    .await
    .expect(404);
    let (status, export) = text(app, &client, "/api/v1/customers/export?reveal=true").await;
    assert_eq!(status, 200);
    assert_hides(w, "the export", &export);
    assert_eq!(export.lines().count(), 2, "{export}");
    let preview = call(
        app,
        &client,
        Method::POST,
        "/api/v1/segments/preview",
        Some(json!({"definition": "tag(\"vip\")", "sample": 50})),
    )
    .await
    .expect(200);
    assert_eq!(preview.body["count"], 1, "{}", preview.body);
    assert_hides(w, "a preview", &preview.body.to_string());
    let segments = call(app, &client, Method::GET, "/api/v1/segments", None)
        .await
        .expect(200)
        .body;
    let vips = segments
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == w.segment)
        .unwrap()
        .clone();
    assert_eq!(vips["count"], 1, "{vips}");
    let one = call(
        app,
        &client,
        Method::GET,
        &format!("/api/v1/segments/{}", w.segment),
        None,
    )
    .await
    .expect(200);
    assert_eq!(one.body["count"], 1, "{}", one.body);
    let (_, members) = text(
        app,
        &client,
        &format!("/api/v1/segments/{}/members", w.segment),
    )
    .await;
    assert_hides(w, "segment members", &members);
    let (_, export) = text(
        app,
        &client,
        &format!("/api/v1/segments/{}/export", w.segment),
    )
    .await;
    assert_hides(w, "the segment export", &export);
    assert_eq!(export.lines().count(), 2, "{export}");
    for tenant_wide in [
        format!("/api/v1/segments/{}/counts", w.segment),
        format!("/api/v1/segments/{}/events", w.segment),
        "/api/v1/lifecycle/changes".into(),
        "/api/v1/orders".into(),
    ] {
        call(app, &client, Method::GET, &tenant_wide, None)
            .await
            .expect(403);
    }
    let tags = call(app, &client, Method::GET, "/api/v1/tags", None)
        .await
        .expect(200)
        .body;
    let vip = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == w.vip)
        .unwrap()
        .clone();
    assert_eq!(vip["customers"], 1, "{vip}");
    let rfm = call(app, &client, Method::GET, "/api/v1/rfm", None)
        .await
        .expect(200)
        .body;
    let buyers: u64 = rfm["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(buyers, 1, "{rfm}");
    let lifecycle = call(app, &client, Method::GET, "/api/v1/lifecycle", None)
        .await
        .expect(200)
        .body;
    let staged: u64 = lifecycle["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(staged, 1, "{lifecycle}");
    let pareto = call(
        app,
        &client,
        Method::GET,
        "/api/v1/reports/pareto?days=0",
        None,
    )
    .await
    .expect(200)
    .body;
    assert_eq!(pareto["buyers"], 1, "{pareto}");
    assert_eq!(pareto["gmv"], 100.0, "{pareto}");
    let dashboard = call(app, &client, Method::GET, "/api/v1/reports/dashboard", None)
        .await
        .expect(200)
        .body;
    assert_eq!(dashboard["sales"]["gmv"], 100.0, "{dashboard}");
    assert_eq!(dashboard["funnel"]["acquired"], 1, "{dashboard}");
    let orders = call(
        app,
        &client,
        Method::GET,
        &format!("/api/v1/orders?customer_id={}", w.insider),
        None,
    )
    .await
    .expect(200);
    assert_hides(w, "the insider's orders", &orders.body.to_string());

    // 3. writes over many customers reach only those in scope
    let bulk = call(
        app,
        &client,
        Method::POST,
        "/api/v1/customers/bulk-tag",
        Some(json!({"customer_ids": [w.outsider, w.nobodys], "add": [w.spare_tag]})),
    )
    .await;
    // refused, or taken as a list of nobody (those it cannot see are left out)
    assert!(
        bulk.status == 404
            || (bulk.status == 200 && bulk.body["customers"] == 0 && bulk.body["added"] == 0),
        "{} {}",
        bulk.status,
        bulk.body
    );
    let by_definition = call(
        app,
        &client,
        Method::POST,
        "/api/v1/customers/bulk-tag",
        Some(json!({"definition": "tag(\"vip\")", "add": [w.spare_tag]})),
    )
    .await
    .expect(202);
    // the job acts within the asker's reach
    let job = app.job_finished(&by_definition.body["job_id"]).await;
    assert_eq!(job["progress"]["total"], 1, "{job}");
    assert_eq!(job["progress"]["message"], "added 1, removed 0", "{job}");
    let by_segment = call(
        app,
        &client,
        Method::POST,
        "/api/v1/customers/bulk-tag",
        Some(json!({"segment_id": w.segment, "remove": [w.spare_tag]})),
    )
    .await
    .expect(202);
    let job = app.job_finished(&by_segment.body["job_id"]).await;
    assert_eq!(job["progress"]["total"], 1, "{job}");
    assert_eq!(job["progress"]["message"], "added 0, removed 1", "{job}");
    let assign = call(
        app,
        &client,
        Method::POST,
        "/api/v1/customers/assign",
        Some(json!({"customer_ids": [w.outsider], "owner_staff_id": w.lead})),
    )
    .await;
    assert!(
        matches!(assign.status.as_u16(), 403 | 404)
            || (assign.status == 200 && assign.body["assigned"] == 0),
        "{} {}",
        assign.status,
        assign.body
    );
    let order = call(
        app,
        &client,
        Method::POST,
        "/api/v1/orders",
        Some(
            json!({"order_id": "X-1", "customer_id": w.outsider, "channel": "wecom",
                    "amount": 1, "ordered_at": "2026-11-01T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(order.status, 404, "{}", order.body);
    let by_identity = call(
        app,
        &client,
        Method::POST,
        "/api/v1/orders",
        Some(
            json!({"order_id": "X-2", "customer": {"kind": "user_id", "value": "outsider-user"},
                    "channel": "wecom", "amount": 1, "ordered_at": "2026-11-01T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(by_identity.status, 403, "{}", by_identity.body);
    let import = client
        .post(app.url("/api/v1/imports?kind=customers"))
        .body("user_id,name\noutsider-user,taken\n")
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), 403);
}

/// What an admin sees of the outsider after the walks: nothing changed.
async fn outsider_untouched(w: &World) {
    let app = &w.app;
    let admin = &app.admin_token;
    let c = app
        .get(&format!("/api/v1/customers/{}", w.outsider), admin)
        .await
        .expect(200)
        .body;
    assert_eq!(c["name"], "outsider");
    assert!(c["erased_at"].is_null());
    assert_ne!(c["owner_staff_id"], w.lead);
    let notes = app
        .get(&format!("/api/v1/customers/{}/notes", w.outsider), admin)
        .await
        .expect(200)
        .body;
    assert_eq!(notes.as_array().map_or(0, Vec::len), 1, "{notes}");
    let consent = app
        .get(&format!("/api/v1/customers/{}/consent", w.outsider), admin)
        .await
        .expect(200)
        .body;
    assert!(!consent.to_string().contains("opt_in"), "{consent}");
    for c in [w.outsider, w.nobodys] {
        let tags = app
            .get(&format!("/api/v1/customers/{c}/tags"), admin)
            .await
            .expect(200)
            .body;
        assert!(!tags.to_string().contains("spare"), "{tags}");
    }
    let refunds = app
        .get(
            &format!("/api/v1/orders/{}/after-sales", w.outsider_order),
            admin,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(refunds.as_array().unwrap().len(), 1, "{refunds}");
    assert_eq!(refunds[0]["status"], "requested");
    let orders = app
        .get(&format!("/api/v1/orders?customer_id={}", w.outsider), admin)
        .await
        .expect(200)
        .body;
    assert_eq!(orders["items"].as_array().unwrap().len(), 1, "{orders}");
    // the merge is still in force
    let timeline = app
        .get(&format!("/api/v1/customers/{}/timeline", w.outsider), admin)
        .await
        .expect(200)
        .body;
    let merge = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merge")
        .unwrap()
        .clone();
    assert!(merge["undone_at"].is_null(), "{merge}");
}

#[tokio::test]
async fn a_store_scoped_member_sees_and_changes_only_their_subtrees_customers() {
    let w = world().await;
    walk(&w, "lead@acme.example.com").await;
    outsider_untouched(&w).await;
}

#[tokio::test]
async fn a_member_scoped_to_their_own_customers_sees_and_changes_only_those() {
    let w = world().await;
    walk(&w, "in@acme.example.com").await;
    outsider_untouched(&w).await;
}
