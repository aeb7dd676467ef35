//! Tags, segments and scores through the API, on the in-memory audience index that
//! follows the database; and the index held to a plain evaluation of random data
//! written through the API.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use siyu_audience::catalog::Catalog;
use siyu_audience::condition::Condition;
use siyu_audience::facts::{DAY_MS, EventDay, day_of};
use siyu_audience::lifecycle::{Activity, LifecycleSettings};
use siyu_audience::plain::{self, Derived, EvalInput, FilteredCounts};
use siyu_audience::random::{self, Shape};
use siyu_audience::rfm::{RfmSettings, score_all, values_of};

use crate::helpers::TestApp;
use crate::tracking::{send, source};

async fn tag(app: &TestApp, name: &str) -> i64 {
    let groups = app
        .get("/api/v1/tag-groups", &app.admin_token)
        .await
        .expect(200)
        .body;
    let group = match groups.as_array().unwrap().first() {
        Some(g) => g["id"].as_i64().unwrap(),
        None => app
            .post(
                "/api/v1/tag-groups",
                &app.admin_token,
                json!({"name": "客户价值"}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap(),
    };
    app.post(
        "/api/v1/tags",
        &app.admin_token,
        json!({"group_id": group, "name": name, "colour": "#ff4d4f"}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

/// A customer identified with these traits through the tracking API; their id.
pub(crate) async fn customer(app: &TestApp, key: &str, user: &str, traits: Value) -> i64 {
    send(
        app,
        "/v1/identify",
        key,
        json!({"userId": user, "traits": traits}),
    )
    .await
    .expect(200);
    customer_id(app, user).await
}

/// The id of the profile a user id names.
async fn customer_id(app: &TestApp, user: &str) -> i64 {
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

async fn count(app: &TestApp, definition: &str) -> u64 {
    app.post(
        "/api/v1/segments/preview",
        &app.admin_token,
        json!({"definition": definition}),
    )
    .await
    .expect(200)
    .body["count"]
        .as_u64()
        .unwrap()
}

/// Waits (up to 10 s) for a definition's count to reach `want`: the index follows the
/// database within about a second.
async fn eventually(app: &TestApp, definition: &str, want: u64) {
    let mut last = 0;
    for _ in 0..100 {
        last = count(app, definition).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{definition}: {last} customers, expected {want}");
}

#[tokio::test]
async fn tags_go_on_customers_with_who_and_why_and_a_used_tag_is_kept() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let vip = tag(&app, "高净值").await;
    let repeat = tag(&app, "复购").await;
    let id = customer(&app, &key, "t-1", json!({"name": "李雷"})).await;

    let tags = app
        .post(
            &format!("/api/v1/customers/{id}/tags"),
            &app.admin_token,
            json!({"add": [vip, repeat], "reason": "年消费过万"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(tags.as_array().unwrap().len(), 2);
    assert_eq!(tags[0]["name"], "高净值");
    assert_eq!(tags[0]["reason"], "年消费过万");
    assert_eq!(tags[0]["origin"], "api");
    app.post(
        &format!("/api/v1/customers/{id}/tags"),
        &app.admin_token,
        json!({"remove": [repeat]}),
    )
    .await
    .expect(200);
    let history = app
        .get(
            &format!("/api/v1/customers/{id}/tag-history"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let actions: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["tag"].as_str().unwrap(), c["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("复购", "removed"), ("复购", "added"), ("高净值", "added")]
    );
    let listed = app
        .get("/api/v1/tags", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(listed[0]["customers"], 1);
    eventually(&app, r#"tag("高净值")"#, 1).await;

    // bad input
    for (body, field) in [
        (json!({"add": []}), "add"),
        (json!({"add": [vip], "reason": "x".repeat(201)}), "reason"),
    ] {
        let refused = app
            .post(
                &format!("/api/v1/customers/{id}/tags"),
                &app.admin_token,
                body,
            )
            .await
            .expect(422);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"],
            field
        );
    }
    app.post(
        &format!("/api/v1/customers/{id}/tags"),
        &app.admin_token,
        json!({"add": [999_999]}),
    )
    .await
    .expect(404);
    let group = listed[0]["group_id"].as_i64().unwrap();
    let refused = app
        .post(
            "/api/v1/tags",
            &app.admin_token,
            json!({"group_id": group, "name": "蓝", "colour": "blue"}),
        )
        .await
        .expect(422);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "colour"
    );
    app.post(
        "/api/v1/tags",
        &app.admin_token,
        json!({"group_id": group, "name": "高净值"}),
    )
    .await
    .expect(409);
    // a group with tags is not deleted
    app.delete(&format!("/api/v1/tag-groups/{group}"), &app.admin_token)
        .await
        .expect(409);

    // a tag a segment uses is not deleted; the error names the segment
    let segment = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "大客户", "definition": "tag(\"高净值\")"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(segment["count"], 1);
    let refused = app
        .delete(&format!("/api/v1/tags/{vip}"), &app.admin_token)
        .await
        .expect(409);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("大客户"),
        "{}",
        refused.body
    );
    // renaming it rewrites the segment
    app.patch(
        &format!("/api/v1/tags/{vip}"),
        &app.admin_token,
        json!({"name": "钻石会员"}),
    )
    .await
    .expect(200);
    let segment = app
        .get(
            &format!("/api/v1/segments/{}", segment["id"]),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(segment["definition"], r#"tag("钻石会员")"#);
    assert_eq!(segment["count"], 1);
    // an unused tag goes, and off the customer
    app.post(
        &format!("/api/v1/customers/{id}/tags"),
        &app.admin_token,
        json!({"add": [repeat]}),
    )
    .await
    .expect(200);
    app.delete(&format!("/api/v1/tags/{repeat}"), &app.admin_token)
        .await
        .expect(204);
    let tags = app
        .get(&format!("/api/v1/customers/{id}/tags"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(tags.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_preview_counts_while_typing_and_points_at_mistakes() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let now = siyu_store::now_ms();
    for (n, city) in ["上海", "上海", "杭州", "北京"].iter().enumerate() {
        let user = format!("p-{n}");
        customer(
            &app,
            &key,
            &user,
            json!({"city": city, "phone": format!("1381234{n:04}")}),
        )
        .await;
        // product views: two of 美妆 for the first, one for the others
        let views = if n == 0 { 2 } else { 1 };
        for v in 0..views {
            send(
                &app,
                "/v1/track",
                &key,
                json!({"userId": user, "event": "Product Viewed", "messageId": format!("pv-{n}-{v}"),
                       "timestamp": siyu_domain::time::format_rfc3339(now - 3_600_000),
                       "properties": {"category": if n < 2 { "美妆" } else { "服饰" }}}),
            )
            .await
            .expect(200);
        }
    }
    let preview = app
        .post(
            "/api/v1/segments/preview",
            &app.admin_token,
            json!({"definition": "trait.city = \"上海\"", "sample": 5}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(preview["count"], 2);
    assert_eq!(preview["sample"].as_array().unwrap().len(), 2);
    assert!(
        preview["sample"][0]["phone"]
            .as_str()
            .unwrap()
            .contains("****")
    );
    assert_eq!(preview["condition"]["trait"]["key"], "city");
    // the JSON form means the same
    let json_form = app
        .post(
            "/api/v1/segments/preview",
            &app.admin_token,
            json!({"condition": {"or": [{"trait": {"key": "city", "op": "=", "value": "杭州"}},
                                        {"trait": {"key": "city", "op": "=", "value": "北京"}}]}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(json_form["count"], 2);
    assert_eq!(
        json_form["definition"],
        r#"trait.city = "杭州" or trait.city = "北京""#
    );
    // property filters read the stored events
    assert_eq!(
        count(
            &app,
            r#"performed("Product Viewed", last 7d, where category = "美妆") >= 2"#
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            r#"performed("Product Viewed", last 7d, where category = "美妆")"#
        )
        .await,
        2
    );
    assert_eq!(
        count(&app, r#"performed("Product Viewed", last 7d) >= 1"#).await,
        4
    );

    // mistakes: where, and why
    let refused = app
        .post(
            "/api/v1/segments/preview",
            &app.admin_token,
            json!({"definition": "trait.city = \"上海\" and\n  orders.count(last 90d) >"}),
        )
        .await
        .expect(422);
    assert_eq!(refused.code(), "invalid_definition");
    assert_eq!(refused.body["error"]["details"]["line"], 2);
    assert_eq!(refused.body["error"]["details"]["column"], 27);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "definition"
    );
    let refused = app
        .post(
            "/api/v1/segments/preview",
            &app.admin_token,
            json!({"definition": "trait.city = \"上海\" and tag(\"不存在\")"}),
        )
        .await
        .expect(422);
    assert_eq!(refused.body["error"]["details"]["part"], r#"tag("不存在")"#);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no tag named")
    );
    for body in [
        json!({"definition": r#"performed("Product Viewed", where category = "美妆")"#}),
        json!({"definition": "orders.count(last 99999d) > 1"}),
        json!({"condition": {"tag": 5}}),
        json!({"condition": {"orders": {"measure": "count", "op": ">=", "value": 1.5}}}),
        json!({"definition": "tag(\"a\")", "condition": {"tag": "a"}}),
        json!({}),
    ] {
        let refused = app
            .post("/api/v1/segments/preview", &app.admin_token, body.clone())
            .await
            .expect(422);
        assert!(
            ["invalid_definition", "validation_failed"].contains(&refused.code()),
            "{body}: {}",
            refused.body
        );
    }

    // the index follows new data
    customer(&app, &key, "p-9", json!({"city": "上海"})).await;
    eventually(&app, "trait.city = \"上海\"", 3).await;
}

#[tokio::test]
async fn segments_have_members_exports_and_sizes_over_time() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(customer(&app, &key, &format!("s-{n}"), json!({"level": n})).await);
    }
    let dynamic = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "高等级", "description": "level ≥ 2", "definition": "trait.level >= 2"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(dynamic["count"], 3);
    assert_eq!(dynamic["kind"], "dynamic");
    let id = dynamic["id"].as_i64().unwrap();
    let page = app
        .get(
            &format!("/api/v1/segments/{id}/members?limit=2"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/api/v1/segments/{id}/members?limit=2&cursor={cursor}"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["id"], ids[4]);
    let csv = app
        .http
        .get(app.url(&format!("/api/v1/segments/{id}/export")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let counts = app
        .get(&format!("/api/v1/segments/{id}/counts"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(counts[0]["count"], 3);

    // a static segment is a frozen list
    let frozen = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "名单", "kind": "static", "customer_ids": [ids[0], ids[1], 999_999]}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(frozen["count"], 2);
    assert_eq!(frozen["definition"], Value::Null);
    // segments refer to segments, not in a circle
    let both = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "合并", "definition": format!("segment({id}) or segment({})", frozen["id"])}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(both["count"], 5);
    let refused = app
        .patch(
            &format!("/api/v1/segments/{id}"),
            &app.admin_token,
            json!({"definition": format!("segment({})", both["id"])}),
        )
        .await
        .expect(422);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("itself")
    );
    let refused = app
        .delete(&format!("/api/v1/segments/{id}"), &app.admin_token)
        .await
        .expect(409);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("合并")
    );
    // a changed definition changes the members
    let changed = app
        .patch(
            &format!("/api/v1/segments/{id}"),
            &app.admin_token,
            json!({"definition": "trait.level >= 4", "description": null}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["count"], 1);
    assert_eq!(changed["description"], Value::Null);
    app.post(
        "/api/v1/segments",
        &app.admin_token,
        json!({"name": "高等级", "definition": "trait.level >= 1"}),
    )
    .await
    .expect(409);
    let list = app
        .get("/api/v1/segments", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(list.as_array().unwrap().len(), 3);
    // a unit a segment names is not deleted; the error names the segment
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let brand = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "brand", "name": "茶"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/segments",
        &app.admin_token,
        json!({"name": "茶的客户", "definition": format!("orders.count(unit = {brand}) >= 1")}),
    )
    .await
    .expect(201);
    let refused = app
        .delete(&format!("/api/v1/units/{brand}"), &app.admin_token)
        .await
        .expect(409);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("茶的客户"),
        "{}",
        refused.body
    );
    // segments name sources; renaming the source carries them along
    let by_source = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "小程序来的", "definition": "source(\"mini-program\")"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(by_source["count"], 5);
    let source_id = app
        .get("/api/v1/sources", &app.admin_token)
        .await
        .expect(200)
        .body["items"][0]["id"]
        .as_i64()
        .unwrap();
    app.patch(
        &format!("/api/v1/sources/{source_id}"),
        &app.admin_token,
        json!({"name": "小程序"}),
    )
    .await
    .expect(200);
    let renamed = app
        .get(
            &format!("/api/v1/segments/{}", by_source["id"]),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(renamed["definition"], r#"source("小程序")"#);
    assert_eq!(renamed["count"], 5);
}

#[tokio::test]
async fn concurrent_bulk_tagging_loses_no_tag() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let batch: Vec<Value> = (0..120)
        .map(|n| json!({"type": "identify", "userId": format!("b-{n}"), "traits": {"n": n}}))
        .collect();
    send(&app, "/v1/batch", &key, json!({"batch": batch}))
        .await
        .expect(200);
    eventually(&app, "trait.n exists", 120).await;
    let tags = [
        tag(&app, "甲").await,
        tag(&app, "乙").await,
        tag(&app, "丙").await,
    ];
    // overlapping halves, three tags, at once
    let calls = tags.iter().flat_map(|t| {
        [
            json!({"definition": "trait.n < 80", "add": [t]}),
            json!({"definition": "trait.n >= 40", "add": [t]}),
        ]
    });
    // without `limit`, each is a job (202); they run at once, on the node's runner
    let answers = futures_util::future::join_all(
        calls.map(|body| app.post("/api/v1/customers/bulk-tag", &app.admin_token, body)),
    )
    .await;
    let mut added = 0;
    for answer in answers {
        let job = app.job_finished(&answer.expect(202).body["job_id"]).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["kind"], "tags.bulk");
        let message = job["progress"]["message"].as_str().unwrap().to_owned();
        let (a, _) = message
            .strip_prefix("added ")
            .and_then(|m| m.split_once(", removed "))
            .unwrap_or_else(|| panic!("{message}"));
        added += a.parse::<u64>().unwrap();
    }
    assert_eq!(added, 3 * 120, "each tag lands once on each customer");
    for name in ["甲", "乙", "丙"] {
        eventually(&app, &format!("tag(\"{name}\")"), 120).await;
    }
    // by list, and removal by segment
    let removing = app
        .post(
            "/api/v1/customers/bulk-tag",
            &app.admin_token,
            json!({"definition": "trait.n < 10", "remove": [tags[0]]}),
        )
        .await
        .expect(202)
        .body;
    let removed = app.job_finished(&removing["job_id"]).await;
    assert_eq!(removed["progress"]["message"], "added 0, removed 10");
    assert_eq!(
        (&removed["progress"]["done"], &removed["progress"]["total"]),
        (&json!(10), &json!(10))
    );
    // what a job would refuse is refused before one is made
    for body in [
        json!({"definition": "tag(\"没有这个\")", "add": [tags[0]]}),
        json!({"definition": "trait.n < 10", "add": [999_999]}),
        json!({"segment_id": 999_999, "add": [tags[0]]}),
    ] {
        let refused = app
            .post("/api/v1/customers/bulk-tag", &app.admin_token, body.clone())
            .await;
        assert!(
            [404, 422].contains(&refused.status.as_u16()),
            "{body}: {} {}",
            refused.status,
            refused.body
        );
    }
    app.post(
        "/api/v1/customers/bulk-tag",
        &app.admin_token,
        json!({"customer_ids": [1], "definition": "trait.n < 10", "add": [tags[0]]}),
    )
    .await
    .expect(422);

    // a long tagging in parts: each part says how far it has come and where to go on
    let parted = tag(&app, "分批").await;
    let mut after: Option<i64> = None;
    let mut parts = Vec::new();
    loop {
        let part = app
            .post(
                "/api/v1/customers/bulk-tag",
                &app.admin_token,
                json!({"definition": "trait.n >= 20", "add": [parted], "limit": 40, "after_id": after}),
            )
            .await
            .expect(200)
            .body;
        assert_eq!(
            part["customers"], 100,
            "the tag does not change who matches"
        );
        parts.push((
            part["added"].as_u64().unwrap(),
            part["remaining"].as_u64().unwrap(),
        ));
        match part["next_after_id"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(parts, [(40, 60), (40, 20), (20, 0)]);
    eventually(&app, r#"tag("分批")"#, 100).await;
    assert_eq!(count(&app, r#"tag("分批") and trait.n < 20"#).await, 0);
    for body in [
        json!({"definition": "trait.n >= 20", "add": [parted], "limit": 0}),
        json!({"definition": "trait.n >= 20", "add": [parted], "limit": 50_001}),
        json!({"customer_ids": [1], "add": [parted], "after_id": 3}),
    ] {
        app.post("/api/v1/customers/bulk-tag", &app.admin_token, body)
            .await
            .expect(422);
    }
}

#[tokio::test]
async fn rfm_classes_and_stages_are_reported() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let now = siyu_store::now_ms();
    // fixed cut points make the classes hand-checkable
    app.http
        .put(app.url("/api/v1/score-settings/rfm"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"window_days": 365, "high_from": 3,
            "fixed": {"recency_days": [30, 60, 120, 240], "frequency": [1, 2, 4, 8],
                      "monetary": [100, 500, 1000, 5000]}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // (days ago, orders, yuan each) → class
    let buyers = [
        (5, 10, 600.0, "important_value"),      // r5 f5 m5
        (300, 1, 2000.0, "important_win_back"), // r1 f1 m4
        (45, 3, 30.0, "general_value"),         // r4 f3 m1
    ];
    let mut first_buyer = 0;
    for (n, (days, orders, yuan, _)) in buyers.iter().enumerate() {
        let id = customer(&app, &key, &format!("r-{n}"), json!({})).await;
        if n == 0 {
            first_buyer = id;
        }
        for o in 0..*orders {
            let at = siyu_domain::time::format_rfc3339(now - days * DAY_MS - o as i64 * 1000);
            app.post(
                "/api/v1/orders",
                &app.admin_token,
                json!({"order_id": format!("R-{n}-{o}"), "customer_id": id, "channel": "wecom",
                       "amount": yuan, "ordered_at": at}),
            )
            .await
            .expect(201);
        }
    }
    for (n, (_, _, _, class)) in buyers.iter().enumerate() {
        eventually(&app, &format!("rfm.class = \"{class}\""), 1).await;
        let id = customer_id(&app, &format!("r-{n}")).await;
        let scores = app
            .get(&format!("/api/v1/customers/{id}/scores"), &app.admin_token)
            .await
            .expect(200)
            .body;
        assert_eq!(scores["rfm"]["class"], *class);
        assert_eq!(
            scores["lifecycle"],
            if n == 1 { "lapsed" } else { "revenue" }
        );
    }
    let report = app
        .get("/api/v1/rfm", &app.admin_token)
        .await
        .expect(200)
        .body;
    let value = report["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "important_value")
        .unwrap()
        .clone();
    assert_eq!(value["name"], "重要价值");
    assert_eq!(
        (
            value["customers"].clone(),
            value["gmv"].clone(),
            value["orders"].clone()
        ),
        (json!(1), json!(6000.0), json!(10))
    );
    assert_eq!(value["average_order_value"], 600.0);
    let report = app
        .get("/api/v1/lifecycle", &app.admin_token)
        .await
        .expect(200)
        .body;
    let revenue = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "revenue")
        .unwrap();
    assert_eq!(revenue["customers"], 2);
    // all three were first seen this month: one cohort
    let month = &siyu_domain::time::format_rfc3339(now)[..7];
    assert_eq!(report["cohorts"].as_array().unwrap().len(), 1);
    assert_eq!(report["cohorts"][0]["cohort"], month);
    assert_eq!(report["cohorts"][0]["customers"], 3);
    assert_eq!(report["cohorts"][0]["stages"]["lapsed"], 1);
    let weekly = app
        .get("/api/v1/lifecycle?cohort=week", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(weekly["cohorts"][0]["customers"], 3);
    app.get("/api/v1/lifecycle?cohort=year", &app.admin_token)
        .await
        .expect(422);
    // 80/20: of 8,090 yuan, the biggest buyer (6,000) and the next (2,000) make 80%
    // (8,000 of 8,090): two of three buyers
    let pareto = app
        .get("/api/v1/reports/pareto?days=0", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(pareto["buyers"], 3);
    assert_eq!(pareto["gmv"], 8090.0);
    assert_eq!(pareto["key_customers"], 2);
    assert_eq!(pareto["key_threshold"], 2000.0);
    let scores = app
        .get(
            &format!("/api/v1/customers/{first_buyer}/scores"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(scores["value_tier"], "key");
    assert_eq!(scores["koc"], false);
    assert_eq!(scores["units"], json!([]), "bought in no unit");
    // bad settings
    let refused = app
        .http
        .put(app.url("/api/v1/score-settings/rfm"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"window_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
}

/// Random customers written through the API (traits, tags, owners, events on past days,
/// orders, opt-outs); then random definitions counted by the index must equal a plain
/// evaluation of the same definitions over what was written, scores included.
#[tokio::test]
async fn the_index_agrees_with_a_plain_evaluation_of_the_stored_data() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    // a second source no customer came through
    app.post(
        "/api/v1/sources",
        &app.admin_token,
        json!({"name": "官网", "kind": "website"}),
    )
    .await
    .expect(201);
    let today = day_of(siyu_store::now_ms());
    let mut rng = StdRng::seed_from_u64(20_261_124);
    let shape = Shape::small(today);
    // the tenant's tags, units and staff, by the generator's numbers
    let mut tag_ids = HashMap::new();
    for n in 1..=shape.tags {
        tag_ids.insert(n, tag(&app, &format!("标签{n}")).await);
    }
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let mut unit_ids = HashMap::new();
    for n in &shape.units {
        let unit = app
            .post(
                "/api/v1/units",
                &app.admin_token,
                json!({"parent_id": root.id, "kind": "brand", "name": format!("品牌{n}")}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        unit_ids.insert(*n, unit);
    }
    let mut staff = HashMap::new();
    for n in 1..=shape.owners {
        staff.insert(
            n,
            app.staff_with_role(&format!("owner{n}@acme.example.com"), "service")
                .await,
        );
    }
    let mut written = Vec::new();
    for n in 0..60 {
        let mut f = random::customer(&mut rng, n, &shape);
        let user = format!("rand-{n}");
        let mut batch = vec![json!({"type": "identify", "userId": user, "traits": f.traits})];
        for (e, day) in f.events.iter().enumerate() {
            for c in 0..day.count {
                // half the product views are of 美妆
                let category = if c % 2 == 0 { "美妆" } else { "服饰" };
                batch.push(json!({"type": "track", "userId": user, "event": day.name,
                    "messageId": format!("{user}-{e}-{c}"),
                    "timestamp": siyu_domain::time::format_rfc3339(day.day as i64 * DAY_MS + 3_600_000 + c as i64),
                    "properties": {"category": category}}));
            }
        }
        // the channel codes they came through, scanned on a day of their own
        for code in &f.channel_codes {
            let day = today - rng.gen_range(0..shape.history_days);
            batch.push(
                json!({"type": "track", "userId": user, "event": "Channel Code Scanned",
                "timestamp": siyu_domain::time::format_rfc3339(day as i64 * DAY_MS + 7_200_000),
                "properties": {"channel_code": code}}),
            );
            match f
                .events
                .iter_mut()
                .find(|e| e.name == "Channel Code Scanned" && e.day == day)
            {
                Some(e) => e.count += 1,
                None => f.events.push(EventDay {
                    name: "Channel Code Scanned".into(),
                    day,
                    count: 1,
                }),
            }
        }
        send(&app, "/v1/batch", &key, json!({"batch": batch}))
            .await
            .expect(200);
        let id = customer_id(&app, &user).await;
        f.id = id;
        // every event came through the test's one source
        f.sources = vec![source_id];
        f.tags = f.tags.iter().map(|t| tag_ids[t]).collect();
        if !f.tags.is_empty() {
            app.post(
                &format!("/api/v1/customers/{id}/tags"),
                &app.admin_token,
                json!({"add": f.tags}),
            )
            .await
            .expect(200);
        }
        f.owner = f.owner.map(|o| staff[&o]);
        if let Some(owner) = f.owner {
            app.patch(
                &format!("/api/v1/customers/{id}"),
                &app.admin_token,
                json!({"owner_staff_id": owner}),
            )
            .await
            .expect(200);
        }
        for (o, order) in f.orders.iter_mut().enumerate() {
            order.unit = order.unit.map(|u| unit_ids[&u]);
            app.post(
                "/api/v1/orders",
                &app.admin_token,
                json!({"order_id": format!("{user}-{o}"), "customer_id": id, "channel": order.channel,
                       "unit_id": order.unit, "amount": order.amount as f64 / 100.0,
                       "ordered_at": siyu_domain::time::format_rfc3339(order.at)}),
            )
            .await
            .expect(201);
        }
        for channel in &f.opted_out {
            app.post(
                &format!("/api/v1/customers/{id}/consent"),
                &app.admin_token,
                json!({"channel": channel, "status": "opt_out"}),
            )
            .await
            .expect(200);
        }
        written.push(f);
    }

    // the plain side: the tenant as written, scored from scratch
    let mut catalog = Catalog::default();
    for (n, id) in &tag_ids {
        catalog.tags.insert(format!("标签{n}"), *id);
    }
    catalog.units = app
        .store
        .tenant(app.tenant.id)
        .unit_catalog()
        .await
        .unwrap();
    catalog.sources = app
        .store
        .tenant(app.tenant.id)
        .source_catalog()
        .await
        .unwrap();
    let settings = LifecycleSettings::default();
    let values: Vec<_> = written
        .iter()
        .map(|f| values_of(&f.orders, today, 365, |_| true))
        .collect();
    let (_, scores) = score_all(&values, &RfmSettings::default());
    let derived: Vec<Derived> = written
        .iter()
        .zip(scores)
        .map(|(f, rfm)| Derived {
            rfm,
            stage: Activity::of(f, &settings).stage(today, &settings),
        })
        .collect();
    // conditions over units and owners name the tenant's real ones
    let shape = Shape {
        owners: staff.values().copied().max().unwrap(),
        ..shape
    };
    let mut checked = 0;
    while checked < 60 {
        let condition = random::condition(&mut rng, &shape, &catalog, 2);
        let mut filtered = FilteredCounts::new();
        for leaf in catalog.filtered_events(&condition) {
            let Condition::Performed(p) = &leaf else {
                continue;
            };
            let start = siyu_audience::facts::window_start(today, p.within_days.unwrap());
            let mut per = HashMap::new();
            for f in &written {
                // the 美妆 events written: the even-numbered of each day's
                let n: u32 = f
                    .events
                    .iter()
                    .filter(|d| d.name == p.event && d.day >= start)
                    .map(|d| d.count.div_ceil(2))
                    .sum();
                if n > 0 {
                    per.insert(f.id, n);
                }
            }
            filtered.insert(leaf.to_string(), per);
        }
        let input = EvalInput {
            today,
            zone: siyu_domain::time::TimeZone::UTC,
            catalog: &catalog,
            filtered: &filtered,
        };
        let want = written
            .iter()
            .zip(&derived)
            .filter(|(f, d)| plain::matches(&condition, f, d, &input).unwrap())
            .count() as u64;
        let got = app
            .post(
                "/api/v1/segments/preview",
                &app.admin_token,
                json!({"definition": condition.to_string()}),
            )
            .await
            .expect(200)
            .body["count"]
            .as_u64()
            .unwrap();
        assert_eq!(got, want, "{condition}");
        checked += 1;
    }
}

/// Two servers on one database (as several `siyu serve` processes on one PostgreSQL):
/// each keeps its own index, and both answer the same count within seconds of a change
/// made through the other.
#[tokio::test]
async fn every_server_on_one_database_answers_the_same_count() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let second_node = siyu_runtime::Node::start(app.store.clone(), Default::default())
        .await
        .unwrap();
    let second = siyu_server::Application::build(
        siyu_server::ServerConfig {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        },
        &second_node,
    )
    .await
    .unwrap();
    let other = format!("http://{}", second.local_addr());
    tokio::spawn(second.run_until(std::future::pending()));
    let count_on = |base: String, definition: &'static str| {
        let http = app.http.clone();
        let token = app.admin_token.clone();
        async move {
            let body: Value = http
                .post(format!("{base}/api/v1/segments/preview"))
                .bearer_auth(token)
                .json(&json!({"definition": definition}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["count"].as_u64().expect("a count")
        }
    };
    let definition = "trait.city = \"上海\" and tag(\"多端\")";
    let vip = tag(&app, "多端").await;
    // both servers build their index now
    assert_eq!(count_on(app.base.clone(), definition).await, 0);
    assert_eq!(count_on(other.clone(), definition).await, 0);
    // a change through the first server: a new customer, tagged
    let id = customer(&app, &key, "n-1", json!({"city": "上海"})).await;
    app.post(
        &format!("/api/v1/customers/{id}/tags"),
        &app.admin_token,
        json!({"add": [vip]}),
    )
    .await
    .expect(200);
    let started = std::time::Instant::now();
    let mut seen = (0, 0);
    while started.elapsed() < Duration::from_secs(10) {
        seen = (
            count_on(app.base.clone(), definition).await,
            count_on(other.clone(), definition).await,
        );
        if seen == (1, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, (1, 1), "both servers follow the change");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tag_rules_tag_existing_and_arriving_customers() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    customer(&app, &key, "sh-1", json!({"city": "上海"})).await;
    customer(&app, &key, "bj-1", json!({"city": "北京"})).await;
    let local = tag(&app, "上海客户").await;
    // the index is built and settled (its first pass over rules would otherwise race
    // the rule's own first application for who tags first)
    assert_eq!(count(&app, "trait.city exists").await, 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let saved = app
        .post(
            "/api/v1/tag-rules",
            &app.admin_token,
            json!({"name": "上海", "definition": "trait.city = \"上海\"", "add": [local]}),
        )
        .await
        .expect(201)
        .body;
    let backfill = app.job_finished(&saved["job_id"]).await;
    assert_eq!(backfill["state"], "done", "{backfill}");
    assert_eq!(
        backfill["progress"]["message"], "added 1, removed 0",
        "applied by a job to who matches now"
    );
    assert_eq!(backfill["progress"]["total"], 1);
    assert_eq!(saved["rule"]["definition"], r#"trait.city = "上海""#);
    // a customer who arrives later is tagged within seconds
    let later = customer(&app, &key, "sh-2", json!({"city": "上海"})).await;
    eventually(&app, "tag(\"上海客户\")", 2).await;
    let tags = app
        .get(&format!("/api/v1/customers/{later}/tags"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(tags[0]["origin"], "rule");
    assert_eq!(tags[0]["reason"], "tag rule 上海");
    // a rule may not flip the tags its own condition tests
    let refused = app
        .post(
            "/api/v1/tag-rules",
            &app.admin_token,
            json!({"name": "循环", "definition": "not tag(\"上海客户\")", "add": [local]}),
        )
        .await
        .expect(422);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("its own condition")
    );
    for body in [
        json!({"name": "空", "definition": "trait.city exists"}),
        json!({"name": "坏", "definition": "trait.city =", "add": [local]}),
        json!({"name": "无", "definition": "trait.city exists", "add": [999_999]}),
    ] {
        app.post("/api/v1/tag-rules", &app.admin_token, body)
            .await
            .expect(422);
    }
    // a rule that adds and removes one tag, or rules that feed each other in a circle
    let a = tag(&app, "甲").await;
    let b = tag(&app, "乙").await;
    app.post(
        "/api/v1/tag-rules",
        &app.admin_token,
        json!({"name": "翻转", "definition": "trait.city exists", "add": [a], "remove": [a]}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/tag-rules",
        &app.admin_token,
        json!({"name": "甲生乙", "definition": "tag(\"甲\")", "add": [b]}),
    )
    .await
    .expect(201);
    let refused = app
        .post(
            "/api/v1/tag-rules",
            &app.admin_token,
            json!({"name": "乙生甲", "definition": "tag(\"乙\")", "add": [a]}),
        )
        .await
        .expect(422);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circle"),
        "{}",
        refused.body
    );
    // the tag is in use by the rule
    let refused = app
        .delete(&format!("/api/v1/tags/{local}"), &app.admin_token)
        .await
        .expect(409);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tag rule 上海")
    );
    // disabled, it tags no one new
    let rule = saved["rule"]["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/v1/tag-rules/{rule}"),
        &app.admin_token,
        json!({"enabled": false}),
    )
    .await
    .expect(200);
    customer(&app, &key, "sh-3", json!({"city": "上海"})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&app, "tag(\"上海客户\")").await, 2);
    assert_eq!(count(&app, "trait.city = \"上海\"").await, 3);
}

#[tokio::test]
async fn entering_and_leaving_a_segment_are_recorded() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let id = customer(&app, &key, "m-1", json!({"level": 1})).await;
    customer(&app, &key, "m-2", json!({"level": 4})).await;
    let segment = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "高等级", "definition": "trait.level >= 3"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let events_of = |app: &TestApp| {
        let url = format!("/api/v1/segments/{segment}/events");
        let http = app.http.clone();
        let base = app.base.clone();
        let token = app.admin_token.clone();
        async move {
            let body: Value = http
                .get(format!("{base}{url}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["customer_id"].as_i64().unwrap(),
                        e["action"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // members at creation are members, not entries
    assert!(events_of(&app).await.is_empty());
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "m-1", "traits": {"level": 5}}),
    )
    .await
    .expect(200);
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = events_of(&app).await;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, [(id, "entered".to_owned())]);
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "m-1", "traits": {"level": 0}}),
    )
    .await
    .expect(200);
    for _ in 0..100 {
        seen = events_of(&app).await;
        if seen.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        [(id, "entered".to_owned()), (id, "exited".to_owned())]
    );
    // a changed definition records who came in
    app.patch(
        &format!("/api/v1/segments/{segment}"),
        &app.admin_token,
        json!({"definition": "trait.level >= 0"}),
    )
    .await
    .expect(200);
    assert_eq!(events_of(&app).await.len(), 3);
}

#[tokio::test]
async fn moving_between_lifecycle_stages_is_recorded() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let id = customer(&app, &key, "l-1", json!({"name": "新客"})).await;
    // the index is built and everyone's stage recorded (acquired: nothing done yet)
    assert_eq!(count(&app, "lifecycle = \"acquired\"").await, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    send(
        &app,
        "/v1/track",
        &key,
        json!({"userId": "l-1", "event": "App Opened"}),
    )
    .await
    .expect(200);
    let mut changes = Value::Null;
    for _ in 0..100 {
        changes = app
            .get("/api/v1/lifecycle/changes", &app.admin_token)
            .await
            .expect(200)
            .body;
        if !changes["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items = changes["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{changes}");
    assert_eq!(items[0]["customer_id"], id);
    assert_eq!(
        (items[0]["from"].as_str(), items[0]["to"].as_str()),
        (Some("acquired"), Some("activated"))
    );
}

#[tokio::test]
async fn imports_put_existing_tags_on_customers_once() {
    use crate::customer_data::{finished, start_import};
    let app = TestApp::spawn().await;
    tag(&app, "高净值").await;
    tag(&app, "复购").await;
    let csv = "user_id,姓名,标签\ni-1,甲,\"高净值，复购\"\ni-2,乙,不存在\ni-3,丙,\n";
    for run in 0..2 {
        let job = start_import(&app, "kind=customers", csv)
            .await
            .expect(202)
            .body;
        let done = finished(&app, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["rejected_rows"], 1);
        assert_eq!(done["rejects"][0]["line"], 3);
        assert!(
            done["rejects"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("不存在")
        );
        let id = customer_id(&app, "i-1").await;
        let tags = app
            .get(&format!("/api/v1/customers/{id}/tags"), &app.admin_token)
            .await
            .expect(200)
            .body;
        let names: Vec<&str> = tags
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["高净值", "复购"], "run {run}");
        assert_eq!(tags[0]["origin"], "import");
        let history = app
            .get(
                &format!("/api/v1/customers/{id}/tag-history"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(
            history.as_array().unwrap().len(),
            2,
            "importing again adds nothing"
        );
    }
    // the refused row stored nothing
    app.get(
        "/api/v1/customers/lookup?kind=user_id&value=i-2",
        &app.admin_token,
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn the_customer_list_filters_by_a_definition() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let mut shanghai = Vec::new();
    for n in 0..5 {
        let city = if n % 2 == 0 { "上海" } else { "杭州" };
        let name = format!("{}{n}", if n < 2 { "王" } else { "李" });
        let id = customer(
            &app,
            &key,
            &format!("f-{n}"),
            json!({"city": city, "name": name}),
        )
        .await;
        if city == "上海" {
            shanghai.push(id);
        }
    }
    eventually(&app, r#"trait.city = "上海""#, 3).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "/api/v1/customers?limit=2&filter={}",
            url_escape(r#"trait.city = "上海""#)
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&url, &app.admin_token).await.expect(200).body;
        for c in page["items"].as_array().unwrap() {
            assert_eq!(c["traits"]["city"], "上海");
            seen.push(c["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen, shanghai,
        "every match once, in id order, across pages"
    );

    let bad = app
        .get(
            &format!("/api/v1/customers?filter={}", url_escape("trait.city = ")),
            &app.admin_token,
        )
        .await
        .expect(422);
    assert_eq!(bad.code(), "invalid_definition");

    // a search narrowed by the filter, newest first like the search, page by page
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "/api/v1/customers?q={}&limit=1&filter={}",
            url_escape("李"),
            url_escape(r#"trait.city = "上海""#)
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&url, &app.admin_token).await.expect(200).body;
        for c in page["items"].as_array().unwrap() {
            found.push(c["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(found, vec![shanghai[2], shanghai[1]], "李2 and 李4 of 上海");
    let page = app
        .get(
            &format!(
                "/api/v1/customers?q={}&filter={}",
                url_escape("王"),
                url_escape(r#"trait.city = "上海""#)
            ),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], shanghai[0]);

    // the export takes the same filter, with or without a search
    for (query, want) in [
        (
            format!("filter={}", url_escape(r#"trait.city = "上海""#)),
            3,
        ),
        (
            format!(
                "q={}&filter={}",
                url_escape("李"),
                url_escape(r#"trait.city = "上海""#)
            ),
            2,
        ),
    ] {
        let csv = app
            .http
            .get(app.url(&format!("/api/v1/customers/export?{query}")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200);
        let text = csv.text().await.unwrap();
        assert_eq!(text.lines().count(), 1 + want, "{query}: {text}");
        assert!(!text.contains("杭州"), "{text}");
    }
    let bad = app
        .get(
            &format!(
                "/api/v1/customers/export?filter={}",
                url_escape("trait.city =")
            ),
            &app.admin_token,
        )
        .await
        .expect(422);
    assert_eq!(bad.code(), "invalid_definition");
}

fn url_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Channel codes (渠道活码) come from events' `channel_code` property; segments and tag
/// rules test them, and a merge carries them to the survivor.
#[tokio::test]
async fn channel_codes_scanned_are_tested_by_segments_and_tag_rules() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let scanned = |who: Value, event: &str, code: Value| {
        let mut body = json!({"event": event, "properties": {"channel_code": code}});
        body.as_object_mut()
            .unwrap()
            .extend(who.as_object().unwrap().clone());
        body
    };
    for body in [
        scanned(
            json!({"anonymousId": "anon-1"}),
            "Channel Code Scanned",
            json!("618-poster"),
        ),
        scanned(json!({"userId": "u-2"}), "Signed Up", json!(" live-0601 ")),
        // not codes: a number, blank text
        scanned(json!({"userId": "u-3"}), "Signed Up", json!(618)),
        scanned(
            json!({"userId": "u-3"}),
            "Channel Code Scanned",
            json!("  "),
        ),
    ] {
        send(&app, "/v1/track", &key, body).await.expect(200);
    }
    eventually(&app, r#"channel_code("618-poster")"#, 1).await;
    assert_eq!(count(&app, r#"channel_code("live-0601")"#).await, 1);
    assert_eq!(count(&app, r#"channel_code("nobody-scanned")"#).await, 0);
    assert_eq!(count(&app, r#"channel_code("618")"#).await, 0);
    assert_eq!(count(&app, r#"not channel_code("618-poster")"#).await, 2);

    // a tag rule on the code tags who came through it, now and later
    let poster = tag(&app, "618海报").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let saved = app
        .post(
            "/api/v1/tag-rules",
            &app.admin_token,
            json!({"name": "618 海报活码", "definition": "channel_code(\"618-poster\")", "add": [poster]}),
        )
        .await
        .expect(201)
        .body;
    let backfill = app.job_finished(&saved["job_id"]).await;
    assert_eq!(backfill["progress"]["message"], "added 1, removed 0");

    // the anonymous scanner signs in as u-2: one profile with both codes and the tag
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u-2", "anonymousId": "anon-1"}),
    )
    .await
    .expect(200);
    eventually(
        &app,
        r#"channel_code("618-poster") and channel_code("live-0601")"#,
        1,
    )
    .await;
    assert_eq!(count(&app, r#"channel_code("618-poster")"#).await, 1);
    assert_eq!(count(&app, r#"tag("618海报")"#).await, 1);
    let u2 = customer_id(&app, "u-2").await;
    let tags = app
        .get(&format!("/api/v1/customers/{u2}/tags"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(tags[0]["tag_id"], poster, "{tags}");

    // a later scanner is tagged within seconds
    send(
        &app,
        "/v1/track",
        &key,
        scanned(
            json!({"userId": "u-4"}),
            "Channel Code Scanned",
            json!("618-poster"),
        ),
    )
    .await
    .expect(200);
    eventually(&app, r#"tag("618海报")"#, 2).await;

    // two profiles that both came through a code merge, and the merge is undone: each
    // still came through it
    for who in [json!({"anonymousId": "anon-5"}), json!({"userId": "u-5"})] {
        send(
            &app,
            "/v1/track",
            &key,
            scanned(who, "Channel Code Scanned", json!("store-qr")),
        )
        .await
        .expect(200);
    }
    eventually(&app, r#"channel_code("store-qr")"#, 2).await;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u-5", "anonymousId": "anon-5"}),
    )
    .await
    .expect(200);
    eventually(&app, r#"channel_code("store-qr")"#, 1).await;
    let u5 = customer_id(&app, "u-5").await;
    let merge = app
        .get(
            &format!("/api/v1/customers/{u5}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "merge")
        .expect("merged")["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/customer-merges/{merge}/undo"),
        &app.admin_token,
        json!({}),
    )
    .await
    .expect(200);
    eventually(&app, r#"channel_code("store-qr")"#, 2).await;
    // an erased customer's codes go with the rest of their personal data
    app.delete(&format!("/api/v1/customers/{u5}"), &app.admin_token)
        .await
        .expect(204);
    eventually(&app, r#"channel_code("store-qr")"#, 1).await;

    // bad definitions: a blank code, spaces at its ends, a number, an unclosed call
    for (definition, says) in [
        (r#"channel_code("")"#, "1 to 128 characters"),
        (r#"channel_code(" 618 ")"#, "no spaces at its ends"),
        ("channel_code(618)", "a channel code in quotes"),
        (r#"channel_code("618-poster""#, "column"),
    ] {
        let refused = app
            .post(
                "/api/v1/segments/preview",
                &app.admin_token,
                json!({ "definition": definition }),
            )
            .await
            .expect(422);
        assert!(
            refused.body.to_string().contains(says),
            "{definition}: {}",
            refused.body
        );
    }
}

/// Who counts as a KOC is a definition too: renaming a tag it names rewrites it, and
/// deleting that tag is refused, naming the setting.
#[tokio::test]
async fn the_koc_definition_follows_a_renamed_tag() {
    let app = TestApp::spawn().await;
    let sharer = tag(&app, "分享达人").await;
    let put = app
        .http
        .put(app.url("/api/v1/score-settings/koc"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"definition": "tag(\"分享达人\") or performed(\"Friend Invited\", last 90d) >= 2"}))
        .send()
        .await
        .unwrap();
    crate::helpers::answer(put).await.expect(200);
    app.patch(
        &format!("/api/v1/tags/{sharer}"),
        &app.admin_token,
        json!({"name": "种子用户"}),
    )
    .await
    .expect(200);
    let koc = app
        .get("/api/v1/score-settings/koc", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        koc["definition"],
        r#"tag("种子用户") or performed("Friend Invited", last 90d) >= 2"#
    );
    let refused = app
        .delete(&format!("/api/v1/tags/{sharer}"), &app.admin_token)
        .await
        .expect(409);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the koc setting"),
        "{}",
        refused.body
    );
}
