//! Segment `group` calls: the group and its traits are kept on the event (timeline,
//! data export) and on the customer's memberships, never on the profile's own traits;
//! erasure removes them, merges carry them and an undo takes them back.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::tracking::{send, source};

async fn lookup(app: &TestApp, kind: &str, value: &str) -> Value {
    app.get(
        &format!("/api/v1/customers/lookup?kind={kind}&value={value}"),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body
}

fn group_ids(customer: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = customer["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups: {customer}"))
        .iter()
        .map(|g| g["group_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

fn group<'a>(customer: &'a Value, id: &str) -> &'a Value {
    customer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == id)
        .unwrap_or_else(|| panic!("no group {id}: {customer}"))
}

#[tokio::test]
async fn a_group_call_is_kept_on_its_event_and_the_customers_memberships() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u1", "traits": {"name": "李娜", "city": "上海"}}),
    )
    .await
    .expect(200);
    send(
        &app,
        "/v1/group",
        &key,
        json!({"userId": "u1", "groupId": "acme", "messageId": "g1",
               "timestamp": "2026-01-01T08:00:00Z",
               "traits": {"name": "Acme 有限公司", "plan": "pro", "contact_phone": "13812341680"}}),
    )
    .await
    .expect(200);
    // an SDK's batch: a later call changes a trait and adds one; another group
    let answer = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "group", "userId": "u1", "groupId": "acme", "messageId": "g2",
             "timestamp": "2026-02-01T08:00:00Z", "traits": {"plan": "enterprise", "seats": 30}},
            {"type": "group", "userId": "u1", "groupId": "family-7", "messageId": "g3",
             "timestamp": "2026-01-15T08:00:00Z"},
        ]}),
    )
    .await
    .expect(200);
    assert_eq!(answer.body["accepted"], 2);

    let customer = lookup(&app, "user_id", "u1").await;
    // the group's name is not the customer's
    assert_eq!(customer["name"], "李娜");
    assert_eq!(customer["traits"], json!({"name": "李娜", "city": "上海"}));
    assert_eq!(group_ids(&customer), ["acme", "family-7"]);
    let acme = group(&customer, "acme");
    assert_eq!(acme["traits"]["plan"], "enterprise");
    assert_eq!(acme["traits"]["seats"], 30);
    assert_eq!(acme["traits"]["name"], "Acme 有限公司");
    assert_eq!(acme["traits"]["contact_phone"], "138****1680", "masked");
    assert_eq!(acme["joined_at"], "2026-01-01T08:00:00.000Z");
    assert_eq!(acme["last_seen_at"], "2026-02-01T08:00:00.000Z");
    assert_eq!(group(&customer, "family-7")["traits"], json!({}));
    let id = customer["id"].as_i64().unwrap();
    let revealed = app
        .get(
            &format!("/api/v1/customers/{id}?reveal=true"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        group(&revealed, "acme")["traits"]["contact_phone"],
        "13812341680"
    );

    // the timeline shows each call with its group and traits
    let timeline = app
        .get(
            &format!("/api/v1/customers/{id}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let groups: Vec<&Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event" && e["type"] == "group")
        .collect();
    assert_eq!(groups.len(), 3, "{timeline}");
    let first = groups
        .iter()
        .find(|e| e["message_id"] == "g1")
        .unwrap_or_else(|| panic!("{timeline}"));
    assert_eq!(first["properties"]["group_id"], "acme");
    assert_eq!(first["properties"]["traits"]["plan"], "pro");

    // and the data export holds them all, unmasked
    let data = app
        .get(&format!("/api/v1/customers/{id}/data"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(group_ids(&data["customer"]), ["acme", "family-7"]);
    assert_eq!(
        group(&data["customer"], "acme")["traits"]["contact_phone"],
        "13812341680"
    );
    let exported = data["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message_id"] == "g2")
        .unwrap_or_else(|| panic!("{data}"));
    assert_eq!(
        exported["properties"],
        json!({"group_id": "acme", "traits": {"plan": "enterprise", "seats": 30}})
    );

    // erasure takes the memberships and the calls' traits
    app.delete(&format!("/api/v1/customers/{id}"), &app.admin_token)
        .await
        .expect(204);
    let erased = app
        .get(&format!("/api/v1/customers/{id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(erased["groups"], json!([]));
    let data = app
        .get(&format!("/api/v1/customers/{id}/data"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert!(
        data["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["properties"] == json!({})),
        "{data}"
    );
}

#[tokio::test]
async fn merges_carry_memberships_and_an_undo_takes_them_back() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    // a device joins two groups; the account joins one of them
    for (who, group, at, plan) in [
        (
            json!({"anonymousId": "dev-1"}),
            "shop-a",
            "2026-01-01T00:00:00Z",
            "device",
        ),
        (
            json!({"anonymousId": "dev-1"}),
            "shared",
            "2026-01-02T00:00:00Z",
            "device",
        ),
        (
            json!({"userId": "u9"}),
            "shared",
            "2026-01-05T00:00:00Z",
            "account",
        ),
    ] {
        let mut call = json!({"groupId": group, "timestamp": at, "traits": {"plan": plan}});
        call.as_object_mut()
            .unwrap()
            .extend(who.as_object().unwrap().clone());
        send(&app, "/v1/group", &key, call).await.expect(200);
    }
    let device = lookup(&app, "anonymous_id", "dev-1").await["id"]
        .as_i64()
        .unwrap();
    // the account signs in on the device: one person
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u9", "anonymousId": "dev-1", "timestamp": "2026-01-06T00:00:00Z"}),
    )
    .await
    .expect(200);
    let merged = lookup(&app, "user_id", "u9").await;
    assert_eq!(group_ids(&merged), ["shared", "shop-a"]);
    let shared = group(&merged, "shared");
    assert_eq!(
        shared["joined_at"], "2026-01-02T00:00:00.000Z",
        "the earlier"
    );
    assert_eq!(shared["last_seen_at"], "2026-01-05T00:00:00.000Z");
    assert_eq!(shared["traits"]["plan"], "account", "the newer value");

    let survivor = merged["id"].as_i64().unwrap();
    let merge = app
        .get(
            &format!("/api/v1/customers/{survivor}/timeline"),
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
    let undone = app
        .post(
            &format!("/api/v1/customer-merges/{merge}/undo"),
            &app.admin_token,
            json!({}),
        )
        .await
        .expect(200)
        .body;
    let (kept, restored) = (
        undone["survivor"]["id"].as_i64().unwrap(),
        undone["restored"]["id"].as_i64().unwrap(),
    );
    let groups_of = async |id: i64| {
        app.get(&format!("/api/v1/customers/{id}"), &app.admin_token)
            .await
            .expect(200)
            .body
    };
    let (kept, restored) = (groups_of(kept).await, groups_of(restored).await);
    // each profile has its own memberships again (whichever of the two survived)
    let (device_side, account_side) = if restored["id"] == device {
        (restored, kept)
    } else {
        (kept, restored)
    };
    assert_eq!(group_ids(&device_side), ["shared", "shop-a"]);
    assert_eq!(group(&device_side, "shared")["traits"]["plan"], "device");
    assert_eq!(group_ids(&account_side), ["shared"]);
}

#[tokio::test]
async fn group_traits_are_limited_like_profile_traits_in_a_scope_of_their_own() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    app.put(
        "/api/v1/settings/traits",
        &app.admin_token,
        json!({"max_new_per_event": 3, "max_per_profile": 4, "max_distinct": 6}),
    )
    .await
    .expect(200);
    // the profile's three names do not use up the group traits' room
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u1", "traits": {"a": 1, "b": 2, "c": 3}}),
    )
    .await
    .expect(200);
    let answer = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "group", "userId": "u1", "groupId": "g", "traits": {"a": 1, "b": 2, "c": 3, "d": 4}},
            {"type": "group", "userId": "u1", "groupId": "g", "traits": {"a": 1, "b": 2, "c": 3}},
        ]}),
    )
    .await
    .expect(200);
    assert_eq!(answer.body["accepted"], 1);
    assert_eq!(answer.body["rejected"][0]["index"], 0);
    assert_eq!(answer.body["rejected"][0]["code"], "too_many_traits");
    // two more names fit the event and the tenant, one the membership
    send(
        &app,
        "/v1/group",
        &key,
        json!({"userId": "u1", "groupId": "g", "traits": {"x": 1, "y": 2}}),
    )
    .await
    .expect(200);
    let customer = lookup(&app, "user_id", "u1").await;
    assert_eq!(
        group(&customer, "g")["traits"],
        json!({"a": 1, "b": 2, "c": 3, "x": 1})
    );
    assert_eq!(customer["traits"], json!({"a": 1, "b": 2, "c": 3}));
    let figures = app
        .get(&format!("/api/v1/sources/{source_id}"), &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(figures["traits_dropped"], 1);
}
