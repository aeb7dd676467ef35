//! Limits on trait names (`settings/traits`): refused in the tracking answer and the
//! import per event and per tenant, and dropped per profile where traits are applied.

use serde_json::{Map, Value, json};

use crate::customer_data::{finished, start_import};
use crate::helpers::TestApp;
use crate::tracking::{send, source};

/// `n` traits named `{prefix}0` … (values are the numbers).
fn traits(prefix: &str, n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| (format!("{prefix}{i}"), json!(i)))
            .collect::<Map<String, Value>>(),
    )
}

async fn set_limits(app: &TestApp, per_event: u32, per_profile: u32, distinct: u32) {
    app.put(
        "/api/v1/settings/traits",
        &app.admin_token,
        json!({"max_new_per_event": per_event, "max_per_profile": per_profile, "max_distinct": distinct}),
    )
    .await
    .expect(200);
}

async fn profile(app: &TestApp, user: &str) -> Value {
    app.get(
        &format!("/api/v1/customers/lookup?kind=user_id&value={user}"),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body
}

async fn source_figures(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/v1/sources/{id}"), &app.admin_token)
        .await
        .expect(200)
        .body
}

#[tokio::test]
async fn the_limits_are_a_bounded_audited_setting() {
    let app = TestApp::spawn().await;
    let got = app
        .get("/api/v1/settings/traits", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        got,
        json!({"max_new_per_event": 100, "max_per_profile": 500, "max_distinct": 2000})
    );
    let analyst = app.token_with_role("analyst").await;
    app.put(
        "/api/v1/settings/traits",
        &analyst,
        json!({"max_new_per_event": 5, "max_per_profile": 5, "max_distinct": 5}),
    )
    .await
    .expect(403);
    for bad in [
        json!({"max_new_per_event": 0, "max_per_profile": 5, "max_distinct": 5}),
        json!({"max_new_per_event": 5, "max_per_profile": 5, "max_distinct": 20001}),
        json!({"max_new_per_event": 5, "max_per_profile": 5}),
    ] {
        let refused = app
            .put("/api/v1/settings/traits", &app.admin_token, bad.clone())
            .await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
    }
    set_limits(&app, 7, 8, 9).await;
    assert_eq!(
        app.get("/api/v1/settings/traits", &analyst)
            .await
            .expect(200)
            .body["max_distinct"],
        9
    );
    let audit = app
        .get(
            "/api/v1/audit-log?action=settings.changed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["key"] == "traits" && e["details"]["value"]["max_distinct"] == 9),
        "{audit}"
    );
}

#[tokio::test]
async fn an_event_with_too_many_new_names_is_refused_and_its_message_id_stays_free() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let answer = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "identify", "userId": "u1", "messageId": "m-ok", "traits": {"name": "李娜", "city": "上海"}},
            {"type": "identify", "userId": "u1", "messageId": "m-many", "traits": traits("k", 101)},
        ]}),
    )
    .await
    .expect(200);
    assert_eq!(answer.body["accepted"], 1);
    let rejected = &answer.body["rejected"][0];
    assert_eq!(
        (
            &rejected["index"],
            &rejected["messageId"],
            &rejected["code"]
        ),
        (&json!(1), &json!("m-many"), &json!("too_many_traits")),
        "{}",
        answer.body
    );
    assert!(
        rejected["reason"].as_str().unwrap().contains("101"),
        "{rejected}"
    );
    assert_eq!(
        profile(&app, "u1").await["traits"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    // a single call refused whole is a 400 the SDKs do not retry, with the code
    let alone = send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u2", "messageId": "m-alone", "traits": traits("j", 150)}),
    )
    .await
    .expect(400);
    assert_eq!(
        alone.body["error"]["details"]["rejected"][0]["code"],
        "too_many_traits"
    );

    // with room, the same messageId is taken: it was never claimed
    set_limits(&app, 200, 500, 2000).await;
    let again = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [{"type": "identify", "userId": "u1", "messageId": "m-many", "traits": traits("k", 101)}]}),
    )
    .await
    .expect(200);
    assert_eq!(
        (&again.body["accepted"], &again.body["duplicates"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(
        profile(&app, "u1").await["traits"]
            .as_object()
            .unwrap()
            .len(),
        103
    );
}

#[tokio::test]
async fn the_tenant_limit_counts_names_across_calls_and_known_names_are_always_taken() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    set_limits(&app, 10, 50, 6).await;
    let first = send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "a", "traits": traits("t", 4)}),
    )
    .await
    .expect(200);
    assert_eq!(first.body["accepted"], 1);
    // three more would make seven names
    let over = send(
        &app,
        "/v1/batch",
        &key,
        json!({"batch": [
            {"type": "identify", "userId": "b", "traits": {"x": 1, "y": 2, "z": 3}},
            {"type": "identify", "userId": "b", "traits": {"t0": "known", "t3": "known", "x2": 1}},
        ]}),
    )
    .await
    .expect(200);
    assert_eq!(over.body["accepted"], 1, "{}", over.body);
    assert_eq!(over.body["rejected"][0]["index"], 0);
    assert_eq!(over.body["rejected"][0]["code"], "too_many_traits");
    let b = profile(&app, "b").await;
    assert_eq!(b["traits"], json!({"t0": "known", "t3": "known", "x2": 1}));
    // known names only: taken however full the tenant is
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "c", "traits": {"t1": 1, "t2": 2, "x2": 3}}),
    )
    .await
    .expect(200);
    assert_eq!(
        profile(&app, "c").await["traits"]
            .as_object()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn a_full_profile_drops_the_surplus_new_names_of_an_event_and_counts_them() {
    let app = TestApp::spawn().await;
    let (source_id, key) = source(&app).await;
    set_limits(&app, 10, 4, 100).await;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u1", "traits": {"a": 1, "b": 2, "c": 3}}),
    )
    .await
    .expect(200);
    // the answer cannot know the profile: taken, and d kept, e and f dropped (by name)
    let answer = send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u1", "traits": {"a": 10, "f": 6, "e": 5, "d": 4}}),
    )
    .await
    .expect(200);
    assert_eq!(answer.body["accepted"], 1);
    let u1 = profile(&app, "u1").await;
    assert_eq!(u1["traits"], json!({"a": 10, "b": 2, "c": 3, "d": 4}));
    assert_eq!(source_figures(&app, source_id).await["traits_dropped"], 2);
    // the names it dropped are not counted as used: another profile may take them
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u2", "traits": {"e": 1, "f": 2}}),
    )
    .await
    .expect(200);
    assert_eq!(profile(&app, "u2").await["traits"], json!({"e": 1, "f": 2}));
}

#[tokio::test]
async fn an_import_row_with_too_many_columns_is_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let columns: Vec<String> = (0..150).map(|i| format!("col{i}")).collect();
    let mut csv = format!("user_id,name,{}\n", columns.join(","));
    // the first row fills only a few of the columns (empty cells are no traits)
    csv.push_str(&format!("u1,李娜,x{}\n", ",".repeat(149)));
    let all: Vec<String> = (0..150).map(|i| i.to_string()).collect();
    csv.push_str(&format!("u2,王芳,{}\n", all.join(",")));
    let job = start_import(&app, "kind=customers", &csv)
        .await
        .expect(202)
        .body;
    let done = finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(
        (&done["stored_rows"], &done["rejected_rows"]),
        (&json!(1), &json!(1)),
        "{done}"
    );
    assert_eq!(done["rejects"][0]["line"], 3);
    let reason = done["rejects"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("too_many_traits: "), "{reason}");
    assert_eq!(
        profile(&app, "u1").await["traits"],
        json!({"name": "李娜", "col0": "x"})
    );
    app.get(
        "/api/v1/customers/lookup?kind=user_id&value=u2",
        &app.admin_token,
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn staff_edits_keep_to_the_limits_too() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    set_limits(&app, 3, 4, 100).await;
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"userId": "u1", "traits": {"a": 1, "b": 2}}),
    )
    .await
    .expect(200);
    let id = profile(&app, "u1").await["id"].as_i64().unwrap();
    let path = format!("/api/v1/customers/{id}");
    let refused = app
        .patch(
            &path,
            &app.admin_token,
            json!({"traits": {"c": 3, "d": 4, "e": 5}}),
        )
        .await
        .expect(422);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "traits"
    );
    // a removal makes room
    let done = app
        .patch(
            &path,
            &app.admin_token,
            json!({"traits": {"a": null, "c": 3, "d": 4}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(done["traits"], json!({"b": 2, "c": 3, "d": 4}));
}
