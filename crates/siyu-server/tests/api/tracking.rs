//! The Segment-compatible tracking API end to end: what the SDKs send, bad input,
//! deduplication, and what becomes of it on the profile.

use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, answer};

/// A source of the test tenant; returns its id and write key.
pub(crate) async fn source(app: &TestApp) -> (i64, String) {
    let created = app
        .post(
            "/api/v1/sources",
            &app.admin_token,
            json!({"name": "mini-program", "kind": "mini_program"}),
        )
        .await
        .expect(201)
        .body;
    (
        created["source"]["id"].as_i64().unwrap(),
        created["write_key"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn send(
    app: &TestApp,
    path: &str,
    key: &str,
    body: Value,
) -> crate::helpers::Answer {
    let response = app
        .http
        .post(app.url(path))
        .basic_auth(key, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer = answer(response).await;
    // the answer comes once the events are logged; the tests read profiles next
    app.applied().await;
    answer
}

/// What analytics-python sends: every call as a one-item batch, explicit nulls.
fn sdk_batch(items: Vec<Value>) -> Value {
    json!({"batch": items, "sentAt": "2026-11-23T19:00:00.000000+00:00", "writeKey": null})
}

#[tokio::test]
async fn sdk_style_calls_land_on_one_profile() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    let page = json!({"type": "page", "name": "商品详情", "anonymousId": "anon-7", "userId": null, "messageId": "m-page",
                      "timestamp": "2026-11-23T18:59:00.123456+00:00", "properties": {"sku": "TEA-01"},
                      "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}, "integrations": {}});
    let identify = json!({"type": "identify", "userId": "u-1001", "anonymousId": "anon-7", "messageId": "m-id",
                          "context": {"traits": {"name": "李娜", "phone": "13812341680", "email": "lina@brand.cn"}},
                          "integrations": {}});
    let order = json!({"type": "track", "event": "Order Completed", "userId": "u-1001", "messageId": "m-order",
                       "properties": {"order_id": "o-1", "total": 128.5, "currency": "CNY"}});
    for item in [page, identify, order] {
        let a = send(&app, "/v1/batch", &key, sdk_batch(vec![item]))
            .await
            .expect(200);
        assert_eq!(a.body["success"], true);
        assert_eq!(a.body["accepted"], 1);
    }
    let profile = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=u-1001",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(profile["name"], "李娜");
    assert_eq!(profile["phone"], "138****1680", "masked by default");
    assert_eq!(profile["email"], "l***@brand.cn");
    assert!(!profile.to_string().contains("13812341680"));
    let id = profile["id"].as_i64().unwrap();
    let timeline = app
        .get(
            &format!("/api/v1/customers/{id}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    // the order the Order Completed event made is on the timeline too
    let events: Vec<&Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event")
        .collect();
    let names: Vec<_> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Order Completed", "", "商品详情"]);
    assert_eq!(events[2]["properties"]["sku"], "TEA-01");
    assert_eq!(events[2]["timestamp"], "2026-11-23T18:59:00.123Z");
    assert!(
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "order")
    );
    let by_anon = app
        .get(
            "/api/v1/customers/lookup?kind=anonymous_id&value=anon-7",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(by_anon["id"], id);
    let by_phone = app
        .get(
            "/api/v1/customers/lookup?kind=phone&value=%2B86%20138-1234-1680",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(by_phone["id"], id);
    let source = app
        .get(&format!("/api/v1/sources/{source_id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(source["received"], 3);
    assert!(source["last_event_at"].is_string());
}

#[tokio::test]
async fn single_call_endpoints_and_the_write_key_in_the_body() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    for (path, body) in [
        (
            "/v1/identify",
            json!({"userId": "u1", "traits": {"plan": "vip"}}),
        ),
        (
            "/v1/track",
            json!({"userId": "u1", "event": "Coupon Claimed"}),
        ),
        ("/v1/page", json!({"userId": "u1", "name": "Home"})),
        ("/v1/screen", json!({"userId": "u1", "name": "Cart"})),
        ("/v1/group", json!({"userId": "u1", "groupId": "family-1"})),
        (
            "/v1/alias",
            json!({"userId": "u1", "previousId": "anon-old"}),
        ),
    ] {
        send(&app, path, &key, body).await.expect(200);
    }
    let in_body = app
        .http
        .post(app.url("/v1/track"))
        .json(&json!({"writeKey": key, "userId": "u1", "event": "Shared"}))
        .send()
        .await
        .unwrap();
    answer(in_body).await.expect(200);
    let import = send(
        &app,
        "/v1/import",
        &key,
        json!({"batch": [{"type": "track", "userId": "u1", "event": "Imported"}]}),
    )
    .await
    .expect(200);
    assert_eq!(import.body["accepted"], 1);
    let profile = app
        .get(
            "/api/v1/customers/lookup?kind=anonymous_id&value=anon-old",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        profile["traits"]["plan"], "vip",
        "the alias linked the old id to the user"
    );
    let timeline = app
        .get(
            &format!("/api/v1/customers/{}/timeline", profile["id"]),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(timeline["items"].as_array().unwrap().len(), 8);
    // a wrong type for the endpoint is refused
    let a = send(
        &app,
        "/v1/track",
        &key,
        json!({"type": "page", "userId": "u1"}),
    )
    .await
    .expect(400);
    assert_eq!(a.code(), "invalid_events");
}

#[tokio::test]
async fn bad_or_missing_write_keys_are_401() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    let body = json!({"batch": [{"type": "track", "userId": "u", "event": "x"}]});
    let none = answer(
        app.http
            .post(app.url("/v1/batch"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(401);
    assert_eq!(none.code(), "invalid_write_key");
    send(&app, "/v1/batch", "siyu_wk_made-up", body.clone())
        .await
        .expect(401);
    // a rotated key stops working at once, though the server had just resolved it
    send(&app, "/v1/batch", &key, body.clone())
        .await
        .expect(200);
    let rotated = app
        .post(
            &format!("/api/v1/sources/{source_id}/rotate-key"),
            &app.admin_token,
            json!({}),
        )
        .await
        .expect(200)
        .body;
    send(&app, "/v1/batch", &key, body.clone())
        .await
        .expect(401);
    send(
        &app,
        "/v1/batch",
        rotated["write_key"].as_str().unwrap(),
        body,
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn a_retried_batch_never_makes_second_events() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    let items: Vec<Value> = (0..50).map(|i| json!({"type": "track", "userId": "u-retry", "event": "Viewed", "messageId": format!("m-{i}")})).collect();
    let body = json!({"batch": items});
    // answered once logged: both are taken, and the retry's events are dropped as
    // duplicates when the log is applied
    let first = send(&app, "/v1/batch", &key, body.clone())
        .await
        .expect(200);
    let retry = send(&app, "/v1/batch", &key, body.clone())
        .await
        .expect(200);
    for answer in [&first, &retry] {
        assert_eq!(
            (&answer.body["accepted"], &answer.body["queued"]),
            (&json!(50), &json!(50)),
            "{}",
            answer.body
        );
    }
    // answers that wait for profiles say which were duplicates
    let waiting = TestApp::spawn_with_node(|n| n.ingest.wait_for_profiles = true).await;
    let (_, waiting_key) = source(&waiting).await;
    let counts = |a: &crate::helpers::Answer| {
        (
            a.body["accepted"].as_u64(),
            a.body["duplicates"].as_u64(),
            a.body["queued"].as_u64(),
        )
    };
    let once = send(&waiting, "/v1/batch", &waiting_key, body.clone())
        .await
        .expect(200);
    assert_eq!(counts(&once), (Some(50), Some(0), Some(0)));
    let again = send(&waiting, "/v1/batch", &waiting_key, body)
        .await
        .expect(200);
    assert_eq!(counts(&again), (Some(0), Some(50), Some(0)));

    let profile = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=u-retry",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let timeline = app
        .get(
            &format!("/api/v1/customers/{}/timeline?limit=500", profile["id"]),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(timeline["items"].as_array().unwrap().len(), 50);
    let source = app
        .get(&format!("/api/v1/sources/{source_id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(source["received"], 50);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let body = serde_json::to_vec(
        &json!({"batch": [{"type": "identify", "userId": "gz", "traits": {"name": "压缩"}}]}),
    )
    .unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&body).unwrap();
    let response = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&key, Some(""))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    answer(response).await.expect(200);
    app.applied().await;
    let profile = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=gz",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(profile["name"], "压缩");
    let broken = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&key, Some(""))
        .header("content-encoding", "gzip")
        .body("not gzip at all")
        .send()
        .await
        .unwrap();
    assert_eq!(answer(broken).await.expect(400).code(), "invalid_gzip");
}

#[tokio::test]
async fn limits_and_bad_items_are_refused_with_reasons_and_the_rest_kept() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    // batch-level limits
    let many: Vec<Value> = (0..2501)
        .map(|i| json!({"type": "track", "userId": "u", "event": "x", "messageId": i.to_string()}))
        .collect();
    let a = send(&app, "/v1/batch", &key, json!({"batch": many}))
        .await
        .expect(400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2500")
    );
    let big: Vec<Value> = (0..20).map(|i| json!({"type": "track", "userId": "u", "event": "x", "messageId": i.to_string(), "properties": {"pad": "x".repeat(30_000)}})).collect();
    let a = send(&app, "/v1/batch", &key, json!({"batch": big}))
        .await
        .expect(400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("500 KB"),
        "{}",
        a.body
    );
    let malformed = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&key, Some(""))
        .body("{\"batch\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(answer(malformed).await.expect(400).code(), "invalid_json");

    // item-level: each refused with its reason, the good ones stored
    let mut deep = json!("bottom");
    for _ in 0..40 {
        deep = json!({"d": deep});
    }
    let batch = json!({"batch": [
        {"type": "track", "userId": "keep", "event": "Good One", "messageId": "good-1"},
        {"type": "track", "userId": "u", "event": "x", "messageId": "huge", "properties": {"s": "x".repeat(33_000)}},
        {"type": "track", "userId": "u", "event": "x", "messageId": "deep", "properties": deep},
        {"type": "track", "userId": "u", "event": "x", "messageId": "future", "timestamp": "2099-01-01T00:00:00Z"},
        {"type": "track", "userId": "u", "event": "x", "messageId": "past", "timestamp": "1990-01-01T00:00:00Z"},
        {"type": "track", "userId": ["not", "a", "string"], "event": "x", "messageId": "types"},
        {"type": "track", "event": "x", "messageId": "anonymous"},
        {"type": "track", "userId": "keep", "event": "Good Two", "messageId": "good-2"}
    ]});
    let a = send(&app, "/v1/batch", &key, batch).await.expect(200);
    assert_eq!(a.body["accepted"], 2);
    let rejected = a.body["rejected"].as_array().unwrap();
    let ids: Vec<_> = rejected
        .iter()
        .map(|r| r["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["huge", "deep", "future", "past", "types", "anonymous"]
    );
    assert!(
        rejected
            .iter()
            .all(|r| !r["reason"].as_str().unwrap().is_empty())
    );
    let source = app
        .get(&format!("/api/v1/sources/{source_id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        (source["received"].as_i64(), source["rejected"].as_i64()),
        (Some(2), Some(6))
    );

    // invalid UTF-8: the item holding it is refused, the others stored
    let mut raw = br#"{"batch":[{"type":"track","userId":"keep","event":"Fine","messageId":"utf-ok"},{"type":"track","userId":"u","event":"caf"#.to_vec();
    raw.extend_from_slice(&[0xff, 0xfe]);
    raw.extend_from_slice(br#"","messageId":"utf-bad"}]}"#);
    let response = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&key, Some(""))
        .body(raw)
        .send()
        .await
        .unwrap();
    let a = answer(response).await.expect(200);
    assert_eq!(a.body["accepted"], 1);
    assert_eq!(a.body["rejected"][0]["messageId"], "utf-bad");
    assert!(
        a.body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );

    // a batch of only bad items is a 400 listing them
    let all_bad = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [{"type": "track", "event": "x"}]}),
    )
    .await
    .expect(400);
    assert_eq!(all_bad.code(), "invalid_events");
    assert_eq!(
        all_bad.body["error"]["details"]["rejected"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn clock_skew_is_corrected_through_the_api() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    // the device clock runs a year ahead; it says it sent the batch 5 s after the event
    let batch = json!({"sentAt": "2027-11-23T12:00:05Z", "batch": [
        {"type": "track", "userId": "skewed", "event": "Tapped", "originalTimestamp": "2027-11-23T12:00:00Z"}]});
    let before = siyu_store::now_ms();
    send(&app, "/v1/batch", &key, batch).await.expect(200);
    let after = siyu_store::now_ms();
    let profile = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=skewed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let timeline = app
        .get(
            &format!("/api/v1/customers/{}/timeline", profile["id"]),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let at = siyu_domain::tracking::parse_time(timeline["items"][0]["timestamp"].as_str().unwrap())
        .unwrap();
    assert!(
        at >= before - 5_000 - 5 && at <= after - 5_000 + 5,
        "{at} in [{before}, {after}] less 5 s"
    );
}

#[tokio::test]
async fn revealing_personal_data_needs_the_permission_and_is_audited() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "vip", "traits": {"phone": "13900001111", "email": "vip@brand.cn"}}),
    )
    .await
    .expect(200);
    let id = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=vip",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    let revealed = app
        .get(
            &format!("/api/v1/customers/{id}?reveal=true"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(revealed["phone"], "+8613900001111");
    assert_eq!(revealed["revealed"], true);
    let log = app
        .get(
            "/api/v1/audit-log?action=customer.revealed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(log["items"][0]["target_id"], id.to_string());
    let analyst = app.token_with_role("analyst").await;
    let masked = app
        .get(&format!("/api/v1/customers/{id}"), &analyst)
        .await
        .expect(200)
        .body;
    assert_eq!(masked["phone"], "139****1111");
    app.get(&format!("/api/v1/customers/{id}?reveal=true"), &analyst)
        .await
        .expect(403);
    let found = app
        .get("/api/v1/customers?q=13900001111", &analyst)
        .await
        .expect(200)
        .body;
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(found["items"][0]["phone"], "139****1111");
    // content staff may not read customers at all
    let content = app.token_with_role("content").await;
    app.get("/api/v1/customers", &content).await.expect(403);
}

#[tokio::test]
async fn staff_scoped_to_their_own_customers_see_only_those() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "someone", "traits": {"name": "x"}}),
    )
    .await
    .expect(200);
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    app.post(
        "/api/v1/staff",
        &app.admin_token,
        json!({"unit_id": root.id, "role": "service", "email": "cs@acme.example.com",
        "name": "cs", "password": PASSWORD, "data_scope": "own"}),
    )
    .await
    .expect(201);
    let (cs, a) = app.login("cs@acme.example.com", PASSWORD).await;
    a.expect(200);
    let list = answer(cs.get(app.url("/api/v1/customers")).send().await.unwrap())
        .await
        .expect(200)
        .body;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "owns no customers yet"
    );
    let lookup = cs
        .get(app.url("/api/v1/customers/lookup?kind=user_id&value=someone"))
        .send()
        .await
        .unwrap();
    answer(lookup).await.expect(404);
    let all = app
        .get("/api/v1/customers", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);

    // once the customer is theirs, they see and may edit it
    let id = all["items"][0]["id"].as_i64().unwrap();
    let cs_id = app
        .store
        .tenant(app.tenant.id)
        .find_staff_by_email("cs@acme.example.com")
        .await
        .unwrap()
        .unwrap()
        .id
        .0;
    let owned = app
        .patch(
            &format!("/api/v1/customers/{id}"),
            &app.admin_token,
            json!({"owner_staff_id": cs_id}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(owned["owner_staff_id"], cs_id);
    let list = answer(cs.get(app.url("/api/v1/customers")).send().await.unwrap())
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"][0]["id"], id);
    let edited = cs
        .patch(app.url(&format!("/api/v1/customers/{id}")))
        .json(&json!({"traits": {"name": "赵敏", "x": null, "vip": true}}))
        .send()
        .await
        .unwrap();
    let edited = answer(edited).await.expect(200).body;
    assert_eq!(edited["name"], "赵敏");
    assert_eq!(edited["traits"]["vip"], true);
    // they cannot hand it to someone outside their scope
    let admin = app
        .store
        .tenant(app.tenant.id)
        .find_staff_by_email(&app.admin_email)
        .await
        .unwrap()
        .unwrap()
        .id
        .0;
    let away = cs
        .patch(app.url(&format!("/api/v1/customers/{id}")))
        .json(&json!({"owner_staff_id": admin}))
        .send()
        .await
        .unwrap();
    answer(away).await.expect(403);
    // bad input
    app.patch(
        &format!("/api/v1/customers/{id}"),
        &app.admin_token,
        json!({"owner_staff_id": 999_999}),
    )
    .await
    .expect(404);
    app.patch(
        &format!("/api/v1/customers/{id}"),
        &app.admin_token,
        json!({"owner_staff_id": "cs"}),
    )
    .await
    .expect(422);
    app.patch(
        &format!("/api/v1/customers/{id}"),
        &app.admin_token,
        json!({"traits": {"": 1}}),
    )
    .await
    .expect(422);
    // clearing the owner takes it out of their view again
    app.patch(
        &format!("/api/v1/customers/{id}"),
        &app.admin_token,
        json!({"owner_staff_id": null}),
    )
    .await
    .expect(200);
    let list = answer(cs.get(app.url("/api/v1/customers")).send().await.unwrap())
        .await
        .expect(200)
        .body;
    assert!(list["items"].as_array().unwrap().is_empty());
    let log = app
        .get(
            "/api/v1/audit-log?action=customer.updated",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(log["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_full_ingest_log_answers_503_so_sdks_retry_and_takes_nothing() {
    let app = TestApp::spawn_with_node(|n| n.ingest.max_backlog = 0).await;
    let (source_id, key) = source(&app).await;
    let refused = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&key, Some(""))
        .json(&json!({"userId": "u-full", "event": "Viewed", "messageId": "full-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "10");
    let refused = answer(refused).await.expect(503);
    assert_eq!(refused.code(), "unavailable");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("waiting to be applied"),
        "{}",
        refused.body
    );
    app.applied().await;
    assert_eq!(
        app.store.logged_through().await.unwrap(),
        0,
        "nothing logged"
    );
    let source = app
        .get(&format!("/api/v1/sources/{source_id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(source["received"], 0);
}

#[tokio::test]
async fn an_exchange_rate_taken_away_refuses_orders_in_the_answer_at_once() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let order = |id: &str| {
        json!({"type": "track", "userId": "jp-1", "event": "Order Completed", "messageId": format!("m-{id}"),
               "properties": {"order_id": id, "total": 1000, "currency": "JPY"}})
    };
    let rates = |rates: Value| {
        let app = &app;
        async move {
            app.put(
                "/api/v1/settings/currency",
                &app.admin_token,
                json!({"currency": "CNY", "rates": rates}),
            )
            .await
            .expect(200);
        }
    };
    rates(json!({"JPY": 0.048})).await;
    // the server reads the rates for this answer and keeps them a few seconds
    send(&app, "/v1/track", &key, order("JP-1"))
        .await
        .expect(200);
    rates(json!({})).await;
    let refused = send(&app, "/v1/track", &key, order("JP-2"))
        .await
        .expect(400);
    assert!(
        refused
            .body
            .to_string()
            .contains("JPY has no exchange rate"),
        "{}",
        refused.body
    );
    // the order taken before keeps the rate it came with
    app.applied().await;
    let jp = app
        .get(
            "/api/v1/customers/lookup?kind=user_id&value=jp-1",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(jp["orders"]["total"], 48.0);
}
