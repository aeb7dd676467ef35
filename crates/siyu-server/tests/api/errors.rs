//! Bad input gets a clear error in the one error body.

use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::helpers::{TestApp, answer};

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/units"))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"name\": \"x\",")
        .send()
        .await
        .unwrap();
    let a = answer(response).await.expect(400);
    assert_eq!(a.code(), "invalid_json");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_with_the_field_path() {
    let app = TestApp::spawn().await;
    let a = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": "one", "kind": "brand", "name": "x"}),
        )
        .await
        .expect(422);
    assert_eq!(a.code(), "validation_failed");
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "parent_id"
    );

    let a = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"kind": "brand", "name": "x"}),
        )
        .await
        .expect(422);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "parent_id"
    );

    let a = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": 1, "kind": "castle", "name": "x"}),
        )
        .await
        .expect(422);
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "kind");

    let a = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "r", "permissions": ["units.read", 7]}),
        )
        .await
        .expect(422);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "permissions[1]"
    );

    // domain rules name their field too
    let a = app
        .post(
            "/api/v1/roles",
            &app.admin_token,
            json!({"name": "r", "permissions": ["units.read", "units.fly"]}),
        )
        .await
        .expect(422);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "permissions[1]"
    );
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let a = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "brand", "name": "  "}),
        )
        .await
        .expect(422);
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "name");
    let a = app
        .post(
            "/api/v1/units",
            &app.admin_token,
            json!({"parent_id": root.id, "kind": "brand", "name": "b", "colour": "red"}),
        )
        .await
        .expect(422);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
}

#[tokio::test]
async fn oversize_body_is_413() {
    let app = TestApp::spawn_with(|c| c.body_limit_bytes = 4096).await;
    let big = json!({"parent_id": 1, "kind": "brand", "name": "x".repeat(10_000)});
    let a = app
        .post("/api/v1/units", &app.admin_token, big)
        .await
        .expect(413);
    assert_eq!(a.code(), "payload_too_large");
    // nothing was stored
    let units = app.get("/api/v1/units", &app.admin_token).await.expect(200);
    assert_eq!(units.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    let a = app
        .get("/api/v1/nothing-here", &app.admin_token)
        .await
        .expect(404);
    assert_eq!(a.code(), "not_found");
    let a = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/units",
            &app.admin_token,
            Some(json!({})),
        )
        .await
        .expect(405);
    assert_eq!(a.code(), "method_not_allowed");
}

#[tokio::test]
async fn bodies_must_be_sent_as_json() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/units"))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer(response).await.expect(415).code(),
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn bad_paths_and_query_parameters_are_named() {
    let app = TestApp::spawn().await;
    let a = app
        .get("/api/v1/units/abc", &app.admin_token)
        .await
        .expect(422);
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "id");
    let a = app
        .get("/api/v1/units?limit=0", &app.admin_token)
        .await
        .expect(422);
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "limit");
    let a = app
        .get("/api/v1/units?limit=many", &app.admin_token)
        .await
        .expect(422);
    assert_eq!(a.code(), "validation_failed");
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "limit");
    let a = app
        .get("/api/v1/audit-log?limit=-1", &app.admin_token)
        .await
        .expect(422);
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "limit");
    let a = app
        .get("/api/v1/units?cursor=garbage!", &app.admin_token)
        .await
        .expect(422);
    assert_eq!(a.body["error"]["details"]["fields"][0]["field"], "cursor");
}

/// Found by the schema fuzzer (`tests/fuzz/`): numbers past 64 bits and a page size out
/// of range are refused as invalid input naming the field, in the path, the query and
/// the body alike (and the OpenAPI document lists 422 for each such operation).
#[tokio::test]
async fn ids_outside_64_bits_and_limits_out_of_range_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let too_big = "9223372036854775808"; // i64::MAX + 1
    for (path, field) in [
        (format!("/api/v1/units/{too_big}"), "id"),
        (format!("/api/v1/customers/-{too_big}1/notes"), "id"),
        (
            format!("/api/v1/orders?customer_id={too_big}"),
            "customer_id",
        ),
        ("/api/v1/units?limit=0".to_owned(), "limit"),
        ("/api/v1/units?limit=501".to_owned(), "limit"),
        ("/api/v1/reports/pareto?days=3651".to_owned(), "days"),
    ] {
        let a = app.get(&path, &app.admin_token).await.expect(422);
        assert_eq!(a.code(), "validation_failed", "{path}");
        assert_eq!(
            a.body["error"]["details"]["fields"][0]["field"], field,
            "{path}"
        );
    }
    let response = app
        .http
        .post(app.url("/api/v1/units"))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, "application/json")
        .body(format!(
            r#"{{"parent_id": {too_big}, "kind": "brand", "name": "x"}}"#
        ))
        .send()
        .await
        .unwrap();
    let a = answer(response).await.expect(422);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "parent_id"
    );
    // the largest page is fine
    app.get("/api/v1/units?limit=500", &app.admin_token)
        .await
        .expect(200);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let ok = app.get("/api/v1/me", &app.admin_token).await.expect(200);
    let err = app.get("/api/v1/nope", &app.admin_token).await.expect(404);
    for a in [&ok, &err] {
        let id = a
            .headers
            .get("x-request-id")
            .expect("x-request-id")
            .to_str()
            .unwrap();
        assert_eq!(id.len(), 36, "a uuid: {id}");
    }
    assert_ne!(ok.headers["x-request-id"], err.headers["x-request-id"]);
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
}
