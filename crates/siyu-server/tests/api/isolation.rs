//! Another tenant's objects are 404 through every endpoint that takes an id: never 403,
//! never data. The endpoints are read from the OpenAPI document, so a new one cannot be
//! forgotten here.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, answer, create_tenant};

#[tokio::test]
async fn every_tenant_owned_endpoint_hides_other_tenants_objects() {
    let app = TestApp::spawn().await;
    let (_, _, other_token) = create_tenant(&app.store, "rival").await;

    // objects of tenant acme, one per resource
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let brand = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "brand", "name": "tea"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let staff = app.staff_with_role("svc@acme.example.com", "service").await;
    let role = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "viewer", "permissions": ["units.read"]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let token = app
        .post(
            "/api/v1/api-tokens",
            &app.admin_token,
            json!({"name": "etl", "role": "analyst"}),
        )
        .await
        .expect(201)
        .body["token"]["id"]
        .as_i64()
        .unwrap();
    let created = app
        .post(
            "/api/v1/sources",
            &app.admin_token,
            json!({"name": "app", "kind": "app"}),
        )
        .await
        .expect(201)
        .body;
    let source = created["source"]["id"].as_i64().unwrap();
    let key = created["write_key"].as_str().unwrap();
    let tracked = app
        .http
        .post(app.url("/v1/identify"))
        .basic_auth(key, Some(""))
        .json(&json!({"userId": "acme-user", "traits": {"name": "acme customer"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(tracked.status(), 200);
    app.applied().await;
    let customer = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=acme-user",
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
            json!({"order_id": "acme-1", "customer_id": customer, "channel": "wecom",
                   "amount": 10, "ordered_at": "2026-11-01T00:00:00Z"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let after_sale = app
        .post(
            &format!("/api/v1/orders/{order}/after-sales"),
            &app.admin_token,
            json!({"kind": "refund", "amount": 1}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let import = app
        .http
        .post(app.url("/api/v1/imports?kind=customers"))
        .bearer_auth(&app.admin_token)
        .body("user_id\nacme-imported\n")
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), 202);
    let import = import.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    // a merge: a visitor's device signs in as acme-user
    let tracked = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(key, Some(""))
        .json(&json!({"batch": [
            {"type": "page", "anonymousId": "acme-visitor"},
            {"type": "identify", "anonymousId": "acme-visitor", "userId": "acme-user"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(tracked.status(), 200);
    app.applied().await;
    let merge = app
        .get(
            &format!("/api/v1/customers/{customer}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merge")
        .expect("a merge on the timeline")["id"]
        .as_i64()
        .unwrap();
    let group = app
        .post(
            "/api/v1/tag-groups",
            &app.admin_token,
            json!({"name": "value"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let tag = app
        .post(
            "/api/v1/tags",
            &app.admin_token,
            json!({"group_id": group, "name": "acme-vip"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let segment = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "acme vips", "definition": "tag(\"acme-vip\")"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let rule = app
        .post(
            "/api/v1/tag-rules",
            &app.admin_token,
            json!({"name": "acme rule", "definition": "trait.name exists", "add": [tag]}),
        )
        .await
        .expect(201)
        .body["rule"]["id"]
        .as_i64()
        .unwrap();
    let (admin, signed_in) = app.login(&app.admin_email, PASSWORD).await;
    signed_in.expect(200);
    let view = answer(
        admin
            .put(app.url("/api/v1/me/views"))
            .json(&json!({"list": "customers", "name": "acme view", "q": "acme"}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200)
    .body["id"]
        .as_i64()
        .unwrap();
    let job = app
        .store
        .tenant(app.tenant.id)
        .enqueue(&[siyu_store::NewJob::new("export", json!({"of": "acme"}))])
        .await
        .unwrap()[0]
        .unwrap()
        .0;
    let connector = app
        .post(
            "/api/v1/connectors",
            &app.admin_token,
            json!({"kind": "wecom", "name": "w", "config": {
                "corp_id": "ww1", "secret": "s", "token": "t",
                "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let content_file = crate::content::upload_png(&app, &app.admin_token).await;
    let content = app
        .post(
            "/api/v1/content",
            &app.admin_token,
            json!({"kind": "image", "title": "acme 海报", "file_id": content_file}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let reply_group = app
        .post(
            "/api/v1/quick-reply-groups",
            &app.admin_token,
            json!({"library": "tenant", "name": "acme 售后"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .post(
            "/api/v1/quick-replies",
            &app.admin_token,
            json!({"library": "tenant", "group_id": reply_group, "title": "acme 退款",
                   "text": "三个工作日内到账"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let template = app
        .post(
            "/api/v1/message-templates",
            &app.admin_token,
            json!({"name": "acme 问候", "body": "你好 {{ customer.name }}",
                   "fallbacks": {"customer.name": "朋友"}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let broadcast = app
        .post(
            "/api/v1/broadcasts",
            &app.admin_token,
            json!({"name": "acme 群发", "audience": {"customers": [customer]}, "text": "你好",
                   "send_at": siyu_domain::time::format_rfc3339(siyu_store::now_ms() + 3_600_000)}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let account = app
        .post(
            "/api/v1/channel-accounts",
            &app.admin_token,
            json!({"platform": "douyin", "name": "acme 抖音号"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let code = app
        .post(
            "/api/v1/channel-codes",
            &app.admin_token,
            json!({"name": "acme 码", "state": "acme-1", "account_id": account}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    // a chat of acme's corp as a sync would store it, and a group code over it
    {
        let scope = app.store.tenant(app.tenant.id);
        let wecom = siyu_domain::ids::ConnectorId(connector);
        let context = scope
            .wecom_context(wecom, &siyu_domain::audit::Actor::cli())
            .await
            .unwrap();
        scope
            .store_wecom_chat(
                wecom,
                &context,
                &siyu_store::WecomChatRecord {
                    chat_id: "wrACME".into(),
                    name: "acme 群".into(),
                    owner_userid: "member001".into(),
                    notice: String::new(),
                    member_version: "1".into(),
                    created_at: 1_700_000_000_000,
                    members: Vec::new(),
                },
            )
            .await
            .unwrap();
    }
    let group_code = app
        .post(
            "/api/v1/group-codes",
            &app.admin_token,
            json!({"name": "acme 群码", "state": "acme-grp", "connector_id": connector,
                   "chat_ids": ["wrACME"]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let destination = app
        .post(
            "/api/v1/link-destinations",
            &app.admin_token,
            json!({"url_prefix": "https://acme.example.com/"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let link = app
        .post(
            "/api/v1/links",
            &app.admin_token,
            json!({"name": "acme 链接", "destination": "https://acme.example.com/a"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let ids: BTreeMap<&str, i64> = BTreeMap::from([
        ("/api/v1/link-destinations/{id}", destination),
        ("/api/v1/group-codes/{id}", group_code),
        ("/api/v1/links/{id}", link),
        ("/api/v1/links/{id}/personal", link),
        ("/api/v1/me/views/{id}", view),
        ("/api/v1/connectors/{id}", connector),
        ("/api/v1/connectors/{id}/sync", connector),
        ("/api/v1/connectors/{id}/departments", connector),
        ("/api/v1/connectors/{id}/group-chats", connector),
        ("/api/v1/connectors/{id}/members", connector),
        ("/api/v1/connectors/{id}/members/{userid}", connector),
        ("/api/v1/connectors/{id}/app-messages", connector),
        ("/api/v1/connectors/{id}/transfers", connector),
        ("/api/v1/connectors/{id}/resigned", connector),
        (
            "/api/v1/connectors/{id}/departments/{department_id}",
            connector,
        ),
        ("/api/v1/channel-accounts/{id}", account),
        ("/api/v1/content/{id}", content),
        ("/api/v1/content/{id}/performance", content),
        ("/api/v1/content/files/{id}", content_file),
        ("/api/v1/quick-replies/{id}", reply),
        ("/api/v1/quick-replies/{id}/uses", reply),
        ("/api/v1/quick-reply-groups/{id}", reply_group),
        ("/api/v1/message-templates/{id}", template),
        ("/api/v1/message-templates/{id}/preview", template),
        ("/api/v1/broadcasts/{id}", broadcast),
        ("/api/v1/broadcasts/{id}/cancel", broadcast),
        ("/api/v1/broadcasts/{id}/tasks", broadcast),
        ("/api/v1/broadcasts/{id}/recipients", broadcast),
        ("/api/v1/broadcasts/{id}/remind", broadcast),
        ("/api/v1/broadcasts/{id}/batches/{batch}/resolve", broadcast),
        ("/api/v1/channel-codes/{id}", code),
        ("/api/v1/channel-codes/{id}/qr", code),
        ("/api/v1/units/{id}", brand),
        ("/api/v1/staff/{id}", staff),
        ("/api/v1/roles/{id}", role),
        ("/api/v1/api-tokens/{id}", token),
        ("/api/v1/sources/{id}", source),
        ("/api/v1/sources/{id}/rotate-key", source),
        ("/api/v1/customers/{id}", customer),
        ("/api/v1/customers/{id}/timeline", customer),
        ("/api/v1/customers/{id}/activity", customer),
        ("/api/v1/customers/{id}/notes", customer),
        ("/api/v1/customers/{id}/consent", customer),
        ("/api/v1/customers/{id}/data", customer),
        ("/api/v1/customers/{id}/wecom", customer),
        ("/api/v1/orders/{id}", order),
        ("/api/v1/orders/{id}/after-sales", order),
        ("/api/v1/after-sales/{id}", after_sale),
        ("/api/v1/imports/{id}", import),
        ("/api/v1/jobs/{id}", job),
        ("/api/v1/jobs/{id}/cancel", job),
        ("/api/v1/jobs/{id}/retry", job),
        ("/api/v1/customer-merges/{id}/undo", merge),
        ("/api/v1/tag-groups/{id}", group),
        ("/api/v1/tags/{id}", tag),
        ("/api/v1/customers/{id}/tags", customer),
        ("/api/v1/customers/{id}/tag-history", customer),
        ("/api/v1/customers/{id}/scores", customer),
        ("/api/v1/segments/{id}", segment),
        ("/api/v1/segments/{id}/members", segment),
        ("/api/v1/segments/{id}/export", segment),
        ("/api/v1/segments/{id}/counts", segment),
        ("/api/v1/segments/{id}/events", segment),
        ("/api/v1/tag-rules/{id}", rule),
    ]);
    // a body each write would accept, so that only the tenant can refuse it
    let bodies: BTreeMap<&str, Value> = BTreeMap::from([
        ("/api/v1/customers/{id}/notes", json!({"body": "x"})),
        (
            "/api/v1/customers/{id}/consent",
            json!({"channel": "sms", "status": "opt_out"}),
        ),
        ("/api/v1/orders/{id}/after-sales", json!({"kind": "refund"})),
        ("/api/v1/after-sales/{id}", json!({"status": "rejected"})),
        ("/api/v1/tag-groups/{id}", json!({"name": "x"})),
        ("/api/v1/tags/{id}", json!({"name": "y"})),
        ("/api/v1/customers/{id}/tags", json!({"add": [tag]})),
        ("/api/v1/segments/{id}", json!({"name": "z"})),
        ("/api/v1/tag-rules/{id}", json!({"enabled": false})),
        ("/api/v1/connectors/{id}", json!({"name": "theirs"})),
        ("/api/v1/channel-accounts/{id}", json!({"name": "theirs"})),
        ("/api/v1/content/{id}", json!({"title": "theirs"})),
        ("/api/v1/quick-replies/{id}", json!({"title": "theirs"})),
        ("/api/v1/quick-reply-groups/{id}", json!({"name": "theirs"})),
        ("/api/v1/message-templates/{id}", json!({"name": "theirs"})),
        ("/api/v1/broadcasts/{id}", json!({"text": "theirs"})),
        (
            "/api/v1/broadcasts/{id}/batches/{batch}/resolve",
            json!({"outcome": "not_sent"}),
        ),
        (
            "/api/v1/message-templates/{id}/preview",
            json!({"customer_id": customer}),
        ),
        ("/api/v1/channel-codes/{id}", json!({"name": "theirs"})),
        ("/api/v1/links/{id}", json!({"name": "theirs"})),
        ("/api/v1/group-codes/{id}", json!({"name": "theirs"})),
        (
            "/api/v1/links/{id}/personal",
            json!({"customer_id": customer}),
        ),
        (
            "/api/v1/connectors/{id}/transfers",
            json!({"kind": "in_office", "handover_userid": "a", "takeover_userid": "b",
                   "external_userids": ["wmX"]}),
        ),
        (
            "/api/v1/connectors/{id}/departments/{department_id}",
            json!({"unit_id": null}),
        ),
        (
            "/api/v1/connectors/{id}/app-messages",
            json!({"staff_ids": [staff], "text": "x"}),
        ),
        (
            "/api/v1/connectors/{id}/members/{userid}",
            json!({"welcome": "x"}),
        ),
    ]);

    let doc = app
        .get("/api/openapi.json", &app.admin_token)
        .await
        .expect(200)
        .body;
    let mut walked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") {
            continue; // {key}: the caller's own tenant's settings
        }
        if path.starts_with("/callbacks/") {
            // called by the channel, not by a tenant: the signature is the credential
            // (tests/api/wecom_callbacks.rs)
            continue;
        }
        let id = *ids
            .get(path.as_str())
            .unwrap_or_else(|| panic!("no object of acme to try {path} with"));
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = matches!(method, Method::POST | Method::PATCH | Method::PUT)
                .then(|| bodies.get(path.as_str()).cloned().unwrap_or(json!({})));
            let url = path
                .replace("{id}", &id.to_string())
                .replace("{department_id}", "1")
                .replace("{batch}", "0")
                .replace("{userid}", "member001");
            let a = app.call(method.clone(), &url, &other_token, body).await;
            assert_eq!(
                a.status, 404,
                "{method} {url} as another tenant: {}",
                a.body
            );
            assert_eq!(a.code(), "not_found");
            walked += 1;
        }
    }
    assert_eq!(walked, 105, "every method of every path that takes an id");
    // nor can rival find acme's customer by identity
    app.get(
        "/api/v1/customers/lookup?kind=user_id&value=acme-user",
        &other_token,
    )
    .await
    .expect(404);

    // and references in bodies cannot point into acme either
    let rival_unit = json!({"parent_id": brand, "kind": "store", "name": "x"});
    app.post("/api/v1/units", &other_token, rival_unit)
        .await
        .expect(404);
    let rival_staff =
        json!({"unit_id": brand, "role": "service", "email": "z@rival.example.com", "name": "z"});
    app.post("/api/v1/staff", &other_token, rival_staff)
        .await
        .expect(404);

    // acme's objects are untouched and its lists never show in rival's
    app.get(&format!("/api/v1/units/{brand}"), &app.admin_token)
        .await
        .expect(200);
    app.get(&format!("/api/v1/staff/{staff}"), &app.admin_token)
        .await
        .expect(200);
    // rival's lists hold none of acme's objects
    for (list, acme_id) in [
        ("/api/v1/units", Some(brand)),
        ("/api/v1/staff", Some(staff)),
        ("/api/v1/roles", Some(role)),
        ("/api/v1/api-tokens", Some(token)),
        ("/api/v1/audit-log", None),
        ("/api/v1/sources", Some(source)),
        ("/api/v1/customers", Some(customer)),
    ] {
        let body = app.get(list, &other_token).await.expect(200).body;
        let items = body["items"].as_array().unwrap();
        if !list.ends_with("sources") && !list.ends_with("customers") {
            assert!(!items.is_empty(), "{list}");
        }
        for item in items {
            assert_ne!(item["id"].as_i64(), acme_id, "{list}: {item}");
            assert!(
                !item.to_string().contains("acme"),
                "{list} shows acme's data: {item}"
            );
        }
    }
}
