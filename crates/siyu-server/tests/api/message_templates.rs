//! Message templates end to end: saved with a fallback for every value, refused with a
//! reason when they name what siyu does not know or cannot render, previewed for a
//! customer (their values, their owner member, fallbacks for what is missing, one text
//! for many), within roles and reach.

use serde_json::{Value, json};

use crate::audiences::customer;
use crate::helpers::{PASSWORD, TestApp};
use crate::tracking::source;

const GREETING: &str =
    "你好 {{ customer.name }}，我是{{ member.name }}。您的等级：{{ customer.traits.level }}";

fn greeting() -> Value {
    json!({"name": "问候", "body": GREETING, "fallbacks": {
        "customer.name": "朋友", "member.name": "您的顾问", "customer.traits.level": "会员",
        "brand.name": "not named by the body: dropped"}})
}

#[tokio::test]
async fn a_template_renders_each_customers_values_and_fallbacks_for_what_is_missing() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let created = app
        .post("/api/v1/message-templates", token, greeting())
        .await
        .expect(201)
        .body;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["variables"],
        json!(["customer.name", "customer.traits.level", "member.name"])
    );
    assert_eq!(created["per_customer"], true);
    assert!(
        created["fallbacks"].get("brand.name").is_none(),
        "{created}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/message-templates/{id}"), token)
            .await
            .expect(200)
            .body,
        created
    );

    let (_, key) = source(&app).await;
    let known = customer(&app, &key, "t-1", json!({"name": "王芳", "level": "金卡"})).await;
    let bare = customer(&app, &key, "t-2", json!({"level": "  "})).await;
    let guide = app.staff_with_role("guide@example.com", "service").await;
    app.post(
        "/api/v1/customers/assign",
        token,
        json!({"customer_ids": [known], "owner_staff_id": guide}),
    )
    .await
    .expect(200);

    let preview = |customer: i64, shared: bool| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/message-templates/{id}/preview"),
                &app.admin_token,
                json!({"customer_id": customer, "shared": shared}),
            )
            .await
            .expect(200)
            .body
        }
    };
    let full = preview(known, false).await;
    assert_eq!(
        full["text"],
        "你好 王芳，我是guide@example.com。您的等级：金卡"
    );
    assert!(
        full["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["fell_back"] == false),
        "{full}"
    );
    // no name, a blank trait, no owner: every value its fallback, never an empty greeting
    let sparse = preview(bare, false).await;
    assert_eq!(sparse["text"], "你好 朋友，我是您的顾问。您的等级：会员");
    // one text for many (a WeCom member task): the customer's values are not used
    let shared = preview(known, true).await;
    assert_eq!(
        shared["text"],
        "你好 朋友，我是guide@example.com。您的等级：会员"
    );
    for text in [&full["text"], &sparse["text"], &shared["text"]] {
        assert!(!text.as_str().unwrap().contains("{{"), "{text}");
    }

    // a member who is not one is named as the reason
    let refused = app
        .post(
            &format!("/api/v1/message-templates/{id}/preview"),
            token,
            json!({"customer_id": known, "member_id": i64::MAX}),
        )
        .await
        .expect(422)
        .body;
    assert!(refused.to_string().contains("member_id"), "{refused}");
    // a customer who is not one, or not this tenant's, is not found
    app.post(
        &format!("/api/v1/message-templates/{id}/preview"),
        token,
        json!({"customer_id": i64::MAX}),
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn bad_templates_are_refused_with_their_reason_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let id = app
        .post("/api/v1/message-templates", token, greeting())
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    for (body, fallbacks, says) in [
        ("你好 {{ customer.name }}", json!({}), "needs a fallback"),
        ("你好 {{ customer.phone }}", json!({}), "does not know"),
        ("你好 {{ customer.name ", json!({}), "not a valid template"),
        (
            "{% for i in range(1000000) %}{{ i }}{% endfor %}",
            json!({}),
            "only if, elif",
        ),
        (
            "{{ customer.name | indent(1000000000000) }}",
            json!({"customer.name": "朋友"}),
            "the filter",
        ),
        (
            "{% raw %}{{ customer.name }}{% endraw %}",
            json!({"customer.name": "朋友"}),
            "only if, elif",
        ),
        ("   ", json!({}), "must not be empty"),
    ] {
        let refused = app
            .post(
                "/api/v1/message-templates",
                token,
                json!({"name": "坏", "body": body, "fallbacks": fallbacks}),
            )
            .await
            .expect(422)
            .body;
        assert!(refused.to_string().contains(says), "{body}: {refused}");
    }
    // a second of the same name
    app.post("/api/v1/message-templates", token, greeting())
        .await
        .expect(409);
    // a change that names a value without a fallback is refused; the template stays
    let refused = app
        .patch(
            &format!("/api/v1/message-templates/{id}"),
            token,
            json!({"body": "{{ code.name }} 欢迎您"}),
        )
        .await
        .expect(422)
        .body;
    assert!(refused.to_string().contains("code.name"), "{refused}");
    let kept = app
        .get(&format!("/api/v1/message-templates/{id}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(kept["body"], GREETING);
    let changed = app
        .patch(
            &format!("/api/v1/message-templates/{id}"),
            token,
            json!({"body": "{{ code.name }} 欢迎您", "fallbacks": {"code.name": "本店"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["variables"], json!(["code.name"]));
    assert_eq!(changed["fallbacks"], json!({"code.name": "本店"}));

    // deleted: gone from the library, its name free again
    app.delete(&format!("/api/v1/message-templates/{id}"), token)
        .await
        .expect(204);
    app.get(&format!("/api/v1/message-templates/{id}"), token)
        .await
        .expect(404);
    app.delete(&format!("/api/v1/message-templates/{id}"), token)
        .await
        .expect(404);
    let listed = app
        .get("/api/v1/message-templates", token)
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "{listed}");
    app.post("/api/v1/message-templates", token, greeting())
        .await
        .expect(201);
}

#[tokio::test]
async fn content_staff_write_templates_and_previews_stay_within_customer_reach() {
    let app = TestApp::spawn().await;
    let operations = app.token_with_role("operations").await;
    app.post("/api/v1/message-templates", &operations, greeting())
        .await
        .expect(403);
    let content = app.token_with_role("content").await;
    let id = app
        .post("/api/v1/message-templates", &content, greeting())
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (_, key) = source(&app).await;
    let theirs = customer(&app, &key, "t-3", json!({"name": "陈晨"})).await;
    // content staff do not see customers: no preview with one
    app.post(
        &format!("/api/v1/message-templates/{id}/preview"),
        &content,
        json!({"customer_id": theirs}),
    )
    .await
    .expect(403);
    // staff who see their own customers only preview with those
    let root = app
        .store
        .tenant(app.tenant.id)
        .root_unit()
        .await
        .unwrap()
        .id
        .0;
    let guide = app
        .post(
            "/api/v1/staff",
            &app.admin_token,
            json!({"unit_id": root, "role": "service", "email": "own@example.com",
                   "name": "小周", "password": PASSWORD, "data_scope": "own"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let (client, _) = app.login("own@example.com", PASSWORD).await;
    let ask = |customer: i64| {
        client
            .post(app.url(&format!("/api/v1/message-templates/{id}/preview")))
            .json(&json!({"customer_id": customer}))
            .send()
    };
    assert_eq!(ask(theirs).await.unwrap().status(), 404);
    app.post(
        "/api/v1/customers/assign",
        &app.admin_token,
        json!({"customer_ids": [theirs], "owner_staff_id": guide}),
    )
    .await
    .expect(200);
    let answer = ask(theirs).await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["text"], "你好 陈晨，我是小周。您的等级：会员");
}
