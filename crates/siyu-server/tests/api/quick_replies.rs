//! Quick replies end to end: the tenant's library and staff's personal ones, groups,
//! search in Chinese by words, use counts, and who may see and change what.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, PASSWORD, TestApp, answer};

/// A signed-in member of staff.
struct Staff {
    client: reqwest::Client,
}

impl Staff {
    async fn sign_in(app: &TestApp, email: &str, role: &str) -> Staff {
        app.staff_with_role(email, role).await;
        let (client, login) = app.login(email, PASSWORD).await;
        login.expect(200);
        Staff { client }
    }

    async fn call(&self, app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, app.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    async fn search(&self, app: &TestApp, q: &str) -> Vec<String> {
        let request = self
            .client
            .get(app.url("/api/v1/quick-replies"))
            .query(&[("q", q)]);
        answer(request.send().await.unwrap()).await.expect(200).body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn staff_share_the_tenants_replies_keep_their_own_and_find_them_by_chinese_words() {
    let app = TestApp::spawn().await;
    let admin = &app.admin_token;
    let after_sales = app
        .post(
            "/api/v1/quick-reply-groups",
            admin,
            json!({"library": "tenant", "name": "售后", "position": 1}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(after_sales["library"], "tenant");
    for (title, text) in [
        ("退款说明", "退款会在三个工作日内原路返回，请留意银行通知。"),
        ("发货时间", "下单后48小时内发货，节假日顺延。"),
        ("会员权益", "VIP 会员每月领取一张满减券。"),
    ] {
        app.post(
            "/api/v1/quick-replies",
            admin,
            json!({"library": "tenant", "group_id": after_sales["id"], "title": title, "text": text}),
        )
        .await
        .expect(201);
    }
    // a tenant reply is audited; the group counts its replies
    let audit = app
        .get("/api/v1/audit-log?action=quick_reply.created", admin)
        .await
        .expect(200);
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 3);
    let groups = app
        .get("/api/v1/quick-reply-groups", admin)
        .await
        .expect(200);
    assert_eq!(groups.body[0]["replies"], 3);

    let wang = Staff::sign_in(&app, "wang@example.com", "service").await;
    let li = Staff::sign_in(&app, "li@example.com", "service").await;
    let mine = wang
        .call(
            &app,
            Method::POST,
            "/api/v1/quick-replies",
            Some(json!({"title": "我的开场白", "text": "您好，我是小王，很高兴为您服务"})),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(mine["library"], "personal");

    // "怎么退款" is in no reply as written; its word 退款 is
    assert_eq!(wang.search(&app, "请问怎么退款？").await, ["退款说明"]);
    assert_eq!(wang.search(&app, "什么时候发货").await, ["发货时间"]);
    assert_eq!(wang.search(&app, "vip").await, ["会员权益"]);
    // the whole query as written, even inside a word
    assert_eq!(wang.search(&app, "原路").await, ["退款说明"]);
    assert_eq!(wang.search(&app, "开场白").await, ["我的开场白"]);
    assert!(wang.search(&app, "的了吗").await.is_empty());
    // another's personal reply is nowhere to be seen
    assert!(li.search(&app, "开场白").await.is_empty());
    let theirs = format!("/api/v1/quick-replies/{}", mine["id"]);
    li.call(&app, Method::GET, &theirs, None).await.expect(404);
    li.call(&app, Method::PATCH, &theirs, Some(json!({"title": "x"})))
        .await
        .expect(404);
    li.call(&app, Method::DELETE, &theirs, None)
        .await
        .expect(404);
    li.call(&app, Method::POST, &format!("{theirs}/uses"), None)
        .await
        .expect(404);
    let personal = li
        .call(
            &app,
            Method::GET,
            "/api/v1/quick-replies?library=personal",
            None,
        )
        .await
        .expect(200);
    assert!(personal.body["items"].as_array().unwrap().is_empty());
    let all = li
        .call(&app, Method::GET, "/api/v1/quick-replies", None)
        .await
        .expect(200);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 3);

    // uses are counted, by anyone who sees the reply; the most used comes first
    let shipping = app
        .get("/api/v1/quick-replies?q=%E5%8F%91%E8%B4%A7", admin)
        .await
        .expect(200)
        .body["items"][0]
        .clone();
    assert_eq!(shipping["title"], "发货时间");
    let uses = format!("/api/v1/quick-replies/{}/uses", shipping["id"]);
    wang.call(&app, Method::POST, &uses, None).await.expect(200);
    let counted = li
        .call(&app, Method::POST, &uses, None)
        .await
        .expect(200)
        .body;
    assert_eq!(counted["use_count"], 2);
    assert!(counted["last_used_at"].is_string());
    // a word of each: both found
    let both = wang.search(&app, "节假日 会员").await;
    assert_eq!(both.len(), 2, "{both:?}");

    // among equal matches, the most used comes first
    let mut coupons = Vec::new();
    for (title, text) in [("优惠券甲", "满100减10"), ("优惠券乙", "满200减30")] {
        let made = wang
            .call(
                &app,
                Method::POST,
                "/api/v1/quick-replies",
                Some(json!({"title": title, "text": text})),
            )
            .await
            .expect(201)
            .body;
        coupons.push(format!("/api/v1/quick-replies/{}/uses", made["id"]));
    }
    for (used, times, first) in [(1, 2, "优惠券乙"), (0, 3, "优惠券甲")] {
        for _ in 0..times {
            wang.call(&app, Method::POST, &coupons[used], None)
                .await
                .expect(200);
        }
        assert_eq!(wang.search(&app, "优惠券").await[0], first);
    }

    // service staff keep their own but may not change the tenant's
    li.call(
        &app,
        Method::POST,
        "/api/v1/quick-replies",
        Some(json!({"library": "tenant", "title": "x", "text": "x"})),
    )
    .await
    .expect(403);
    let shipping_path = format!("/api/v1/quick-replies/{}", shipping["id"]);
    li.call(
        &app,
        Method::PATCH,
        &shipping_path,
        Some(json!({"text": "改"})),
    )
    .await
    .expect(403);
    li.call(&app, Method::DELETE, &shipping_path, None)
        .await
        .expect(403);
    // the owner changes their own; the terms follow the text
    wang.call(
        &app,
        Method::PATCH,
        &theirs,
        Some(json!({"text": "您好，618 活动已开始"})),
    )
    .await
    .expect(200);
    assert_eq!(wang.search(&app, "活动").await, ["我的开场白"]);
    assert!(wang.search(&app, "服务").await.is_empty());
}

#[tokio::test]
async fn bad_replies_and_groups_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let admin = &app.admin_token;
    let field = |a: &Answer| {
        a.body["error"]["details"]["fields"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let wang = Staff::sign_in(&app, "wang@example.com", "content").await;
    let tenant_group = app
        .post(
            "/api/v1/quick-reply-groups",
            admin,
            json!({"library": "tenant", "name": "活动"}),
        )
        .await
        .expect(201)
        .body;
    let post = |body: Value| {
        let (app, wang) = (&app, &wang);
        async move {
            wang.call(app, Method::POST, "/api/v1/quick-replies", Some(body))
                .await
        }
    };
    for (body, named) in [
        (json!({"title": " ", "text": "x"}), "title"),
        (json!({"title": "t", "text": ""}), "text"),
        (json!({"title": "t", "text": "字".repeat(2_001)}), "text"),
        (json!({"title": "t".repeat(61), "text": "x"}), "title"),
        (
            json!({"title": "t", "text": "x", "content_id": 999_999}),
            "content_id",
        ),
        (
            json!({"title": "t", "text": "x", "group_id": 999_999}),
            "group_id",
        ),
        // a tenant group in a personal reply
        (
            json!({"title": "t", "text": "x", "group_id": tenant_group["id"]}),
            "group_id",
        ),
    ] {
        let refused = post(body.clone()).await.expect(422);
        assert_eq!(field(&refused), named, "{body}");
    }
    post(json!({"title": "t", "text": "x", "colour": "red"}))
        .await
        .expect(422);
    // an API token is no member of staff: it has no personal library
    let refused = app
        .post(
            "/api/v1/quick-replies",
            admin,
            json!({"title": "t", "text": "x"}),
        )
        .await
        .expect(422);
    assert_eq!(field(&refused), "library");

    // names are unique in a library, not across libraries
    app.post(
        "/api/v1/quick-reply-groups",
        admin,
        json!({"library": "tenant", "name": "活动"}),
    )
    .await
    .expect(409);
    wang.call(
        &app,
        Method::POST,
        "/api/v1/quick-reply-groups",
        Some(json!({"name": "活动"})),
    )
    .await
    .expect(201);
    // a group holding replies is not deleted
    post(json!({"library": "tenant", "title": "t", "text": "x", "group_id": tenant_group["id"]}))
        .await
        .expect(201);
    let group_path = format!("/api/v1/quick-reply-groups/{}", tenant_group["id"]);
    app.delete(&group_path, admin).await.expect(409);
    let kept = app
        .get("/api/v1/quick-reply-groups", admin)
        .await
        .expect(200);
    assert!(
        kept.body
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == tenant_group["id"] && g["replies"] == 1)
    );
    // a content item attached must be a live one of the library
    let item = app
        .post(
            "/api/v1/content",
            admin,
            json!({"kind": "link", "title": "活动页", "url": "https://shop.example.com/618"}),
        )
        .await
        .expect(201)
        .body;
    let with_item =
        post(json!({"title": "活动链接", "text": "活动详情见链接", "content_id": item["id"]}))
            .await
            .expect(201)
            .body;
    assert_eq!(with_item["content_id"], item["id"]);
    app.delete(&format!("/api/v1/content/{}", item["id"]), admin)
        .await
        .expect(204);
    let refused = post(json!({"title": "t2", "text": "x", "content_id": item["id"]}))
        .await
        .expect(422);
    assert_eq!(field(&refused), "content_id");
    // a reply that has it keeps it, and is still changed otherwise
    let kept = wang
        .call(
            &app,
            Method::PATCH,
            &format!("/api/v1/quick-replies/{}", with_item["id"]),
            Some(json!({"title": "活动链接（旧）"})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(kept["content_id"], item["id"]);
    // a personal reply moved into a group of the tenant's library is refused
    let moved = wang
        .call(
            &app,
            Method::PATCH,
            &format!("/api/v1/quick-replies/{}", with_item["id"]),
            Some(json!({"group_id": tenant_group["id"]})),
        )
        .await
        .expect(422);
    assert_eq!(field(&moved), "group_id");
}
