//! Health, readiness, metrics and the OpenAPI document.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{PASSWORD, TestApp, answer, create_tenant};

#[tokio::test]
async fn health_and_readiness_answer_without_sign_in() {
    let app = TestApp::spawn().await;
    let health = answer(app.http.get(app.url("/healthz")).send().await.unwrap())
        .await
        .expect(200);
    assert_eq!(health.body["status"], "ok");
    let ready = answer(app.http.get(app.url("/readyz")).send().await.unwrap())
        .await
        .expect(200);
    assert_eq!(ready.body["database"], "ok");
    app.store.close().await;
    let down = answer(app.http.get(app.url("/readyz")).send().await.unwrap())
        .await
        .expect(503);
    assert_eq!(down.code(), "unavailable");
    answer(app.http.get(app.url("/healthz")).send().await.unwrap())
        .await
        .expect(200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/units", &app.admin_token).await.expect(200);
    app.get("/api/v1/units/12345", &app.admin_token)
        .await
        .expect(404);
    app.get("/api/v1/units/12346", &app.admin_token)
        .await
        .expect(404);
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"siyu_http_requests_total{method="GET",route="/api/v1/units/{id}",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"siyu_http_requests_total{method="GET",route="/api/v1/units",status="200"} 1"#
    ));
    assert!(text.contains("siyu_http_request_duration_seconds_bucket"));
    // how far profiles are behind the tracking calls (nothing was tracked: nothing)
    assert!(
        text.contains("\nsiyu_ingest_log_backlog_events 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let app = TestApp::spawn().await;
    let doc = answer(
        app.http
            .get(app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200)
    .body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut listed = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            listed.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let expected = [
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/logout",
        "GET /api/v1/me",
        "PUT /api/v1/me/password",
        "GET /api/v1/units",
        "POST /api/v1/units",
        "GET /api/v1/units/{id}",
        "PATCH /api/v1/units/{id}",
        "DELETE /api/v1/units/{id}",
        "GET /api/v1/staff",
        "POST /api/v1/staff",
        "GET /api/v1/staff/{id}",
        "PATCH /api/v1/staff/{id}",
        "DELETE /api/v1/staff/{id}",
        "GET /api/v1/roles",
        "POST /api/v1/roles",
        "GET /api/v1/roles/{id}",
        "PATCH /api/v1/roles/{id}",
        "DELETE /api/v1/roles/{id}",
        "GET /api/v1/permissions",
        "GET /api/v1/me/views",
        "PUT /api/v1/me/views",
        "GET /api/v1/settings/identity",
        "PUT /api/v1/settings/identity",
        "GET /api/v1/settings/traits",
        "PUT /api/v1/settings/traits",
        "GET /api/v1/settings/currency",
        "PUT /api/v1/settings/currency",
        "DELETE /api/v1/me/views/{id}",
        "GET /api/v1/api-tokens",
        "POST /api/v1/api-tokens",
        "GET /api/v1/api-tokens/{id}",
        "DELETE /api/v1/api-tokens/{id}",
        "GET /api/v1/audit-log",
        "GET /api/v1/connectors",
        "POST /api/v1/connectors",
        "GET /api/v1/connectors/{id}",
        "PATCH /api/v1/connectors/{id}",
        "DELETE /api/v1/connectors/{id}",
        "POST /api/v1/connectors/{id}/sync",
        "GET /api/v1/connectors/{id}/sync",
        "GET /api/v1/connectors/{id}/departments",
        "PATCH /api/v1/connectors/{id}/departments/{department_id}",
        "GET /api/v1/connectors/{id}/group-chats",
        "GET /api/v1/connectors/{id}/members",
        "GET /api/v1/content",
        "POST /api/v1/content",
        "GET /api/v1/content/{id}",
        "PATCH /api/v1/content/{id}",
        "DELETE /api/v1/content/{id}",
        "GET /api/v1/content/{id}/performance",
        "POST /api/v1/content/files",
        "GET /api/v1/content/files/{id}",
        "GET /api/v1/quick-replies",
        "POST /api/v1/quick-replies",
        "GET /api/v1/quick-replies/{id}",
        "PATCH /api/v1/quick-replies/{id}",
        "DELETE /api/v1/quick-replies/{id}",
        "POST /api/v1/quick-replies/{id}/uses",
        "GET /api/v1/settings/quiet-hours",
        "PUT /api/v1/settings/quiet-hours",
        "GET /api/v1/quick-reply-groups",
        "POST /api/v1/quick-reply-groups",
        "PATCH /api/v1/quick-reply-groups/{id}",
        "DELETE /api/v1/quick-reply-groups/{id}",
        "GET /api/v1/message-templates",
        "POST /api/v1/message-templates",
        "GET /api/v1/message-templates/{id}",
        "PATCH /api/v1/message-templates/{id}",
        "DELETE /api/v1/message-templates/{id}",
        "POST /api/v1/message-templates/{id}/preview",
        "GET /api/v1/broadcasts",
        "POST /api/v1/broadcasts",
        "POST /api/v1/broadcasts/preview",
        "POST /api/v1/broadcasts/audience-file",
        "GET /api/v1/broadcasts/{id}",
        "PATCH /api/v1/broadcasts/{id}",
        "POST /api/v1/broadcasts/{id}/cancel",
        "GET /api/v1/broadcasts/{id}/tasks",
        "GET /api/v1/broadcasts/{id}/recipients",
        "POST /api/v1/broadcasts/{id}/remind",
        "POST /api/v1/broadcasts/{id}/batches/{batch}/resolve",
        "GET /api/v1/channel-accounts",
        "POST /api/v1/channel-accounts",
        "GET /api/v1/channel-accounts/{id}",
        "PATCH /api/v1/channel-accounts/{id}",
        "DELETE /api/v1/channel-accounts/{id}",
        "GET /api/v1/channel-codes",
        "POST /api/v1/channel-codes",
        "GET /api/v1/channel-codes/{id}",
        "PATCH /api/v1/channel-codes/{id}",
        "DELETE /api/v1/channel-codes/{id}",
        "GET /api/v1/channel-codes/{id}/qr",
        "POST /api/v1/channel-codes/stores",
        "GET /api/v1/channel-codes/sheet",
        "GET /api/v1/acquisition/report",
        "GET /api/v1/settings/brand-logo",
        "PUT /api/v1/settings/brand-logo",
        "DELETE /api/v1/settings/brand-logo",
        "GET /c/{slug}",
        "GET /c/{slug}/qr",
        "GET /api/v1/group-codes",
        "POST /api/v1/group-codes",
        "GET /api/v1/group-codes/{id}",
        "PATCH /api/v1/group-codes/{id}",
        "DELETE /api/v1/group-codes/{id}",
        "GET /api/v1/group-codes/report",
        "GET /api/v1/link-destinations",
        "POST /api/v1/link-destinations",
        "DELETE /api/v1/link-destinations/{id}",
        "GET /api/v1/links",
        "POST /api/v1/links",
        "GET /api/v1/links/{id}",
        "PATCH /api/v1/links/{id}",
        "DELETE /api/v1/links/{id}",
        "POST /api/v1/links/{id}/personal",
        "GET /api/v1/links/report",
        "GET /l/{slug}",
        "GET /l/{slug}/{token}",
        "PATCH /api/v1/connectors/{id}/members/{userid}",
        "POST /api/v1/connectors/{id}/app-messages",
        "GET /api/v1/customers/{id}/wecom",
        "POST /api/v1/connectors/{id}/transfers",
        "GET /api/v1/connectors/{id}/transfers",
        "GET /api/v1/connectors/{id}/resigned",
        "GET /callbacks/wecom/{id}",
        "POST /callbacks/wecom/{id}",
        "GET /api/v1/sources",
        "POST /api/v1/sources",
        "GET /api/v1/sources/{id}",
        "PATCH /api/v1/sources/{id}",
        "POST /api/v1/sources/{id}/rotate-key",
        "GET /api/v1/customers",
        "GET /api/v1/customers/lookup",
        "GET /api/v1/customers/export",
        "POST /api/v1/customers/assign",
        "GET /api/v1/imports",
        "POST /api/v1/imports",
        "GET /api/v1/imports/{id}",
        "GET /api/v1/jobs",
        "GET /api/v1/jobs/{id}",
        "POST /api/v1/jobs/{id}/cancel",
        "POST /api/v1/jobs/{id}/retry",
        "GET /api/v1/customers/{id}",
        "PATCH /api/v1/customers/{id}",
        "DELETE /api/v1/customers/{id}",
        "GET /api/v1/customers/{id}/timeline",
        "GET /api/v1/customers/{id}/activity",
        "GET /api/v1/customers/{id}/notes",
        "POST /api/v1/customers/{id}/notes",
        "GET /api/v1/customers/{id}/consent",
        "POST /api/v1/customers/{id}/consent",
        "GET /api/v1/customers/{id}/data",
        "POST /api/v1/customer-merges/{id}/undo",
        "GET /api/v1/orders",
        "POST /api/v1/orders",
        "GET /api/v1/orders/{id}",
        "GET /api/v1/orders/{id}/after-sales",
        "POST /api/v1/orders/{id}/after-sales",
        "PATCH /api/v1/after-sales/{id}",
        "GET /api/v1/tag-groups",
        "POST /api/v1/tag-groups",
        "PATCH /api/v1/tag-groups/{id}",
        "DELETE /api/v1/tag-groups/{id}",
        "GET /api/v1/tags",
        "POST /api/v1/tags",
        "GET /api/v1/tags/{id}",
        "PATCH /api/v1/tags/{id}",
        "DELETE /api/v1/tags/{id}",
        "GET /api/v1/customers/{id}/tags",
        "POST /api/v1/customers/{id}/tags",
        "GET /api/v1/customers/{id}/tag-history",
        "POST /api/v1/customers/bulk-tag",
        "POST /api/v1/customers/exports",
        "GET /api/v1/customers/exports/{job_id}/file",
        "GET /api/v1/tag-rules",
        "POST /api/v1/tag-rules",
        "GET /api/v1/tag-rules/{id}",
        "PATCH /api/v1/tag-rules/{id}",
        "DELETE /api/v1/tag-rules/{id}",
        "GET /api/v1/segments/{id}/events",
        "POST /api/v1/segments/preview",
        "GET /api/v1/segments",
        "POST /api/v1/segments",
        "GET /api/v1/segments/{id}",
        "PATCH /api/v1/segments/{id}",
        "DELETE /api/v1/segments/{id}",
        "GET /api/v1/segments/{id}/members",
        "GET /api/v1/segments/{id}/export",
        "GET /api/v1/segments/{id}/counts",
        "GET /api/v1/rfm",
        "GET /api/v1/lifecycle",
        "GET /api/v1/lifecycle/changes",
        "GET /api/v1/reports/pareto",
        "GET /api/v1/reports/dashboard",
        "GET /api/v1/customers/{id}/scores",
        "GET /api/v1/score-settings/{key}",
        "PUT /api/v1/score-settings/{key}",
        "POST /v1/identify",
        "POST /v1/track",
        "POST /v1/page",
        "POST /v1/screen",
        "POST /v1/group",
        "POST /v1/alias",
        "POST /v1/batch",
        "POST /v1/import",
    ];
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, expected);
    // every listed endpoint is served with the listed method: with a valid token and an
    // id that does not exist, nothing answers 405 or the router's "no route"
    for entry in &listed {
        let (method, path) = entry.split_once(' ').unwrap();
        if path.starts_with("/api/v1/auth/") || path == "/api/v1/me/password" {
            continue; // these act on the caller's own session
        }
        let path = path.replace("{id}", "999999").replace("{key}", "none");
        let a = app
            .call(
                method.parse().unwrap(),
                &path,
                &app.admin_token,
                Some(serde_json::json!({})),
            )
            .await;
        let message = a.body["error"]["message"].as_str().unwrap_or("");
        assert_ne!(a.status, 405, "{entry}");
        assert!(!message.starts_with("no route"), "{entry}: {message}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let mut app = TestApp::spawn().await;
    let body = format!(
        r#"{{"email":"{}","password":"{PASSWORD}"}}"#,
        app.admin_email
    );
    let (head, tail) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // the request is half sent when shutdown begins
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !app.server.is_finished(),
        "the server waits for the request in flight"
    );
    assert!(
        tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
            .await
            .is_err(),
        "no new connections during shutdown"
    );

    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the response arrives")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("siyu_session="));
    let finished = tokio::time::timeout(Duration::from_secs(10), &mut app.server).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "the server stops once the request is answered"
    );
}

/// The console is served at `/` and for its own routes; the API's paths never fall
/// through to it.
#[tokio::test]
async fn the_console_is_served_beside_the_api() {
    let app = TestApp::spawn().await;
    let get = |path: &str| app.http.get(app.url(path)).send();
    let index = get("/").await.unwrap();
    assert_eq!(index.status(), 200);
    let headers = index.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = index.text().await.unwrap();
    // a console route is the same page: the app routes in the browser
    let deep = get("/customers/42").await.unwrap();
    assert_eq!(deep.status(), 200);
    assert_eq!(deep.text().await.unwrap(), html);
    if siyu_console::is_built() {
        let script = html
            .split('"')
            .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
            .expect("index.html loads a script")
            .to_owned();
        let js = get(&script).await.unwrap();
        assert_eq!(js.status(), 200);
        assert_eq!(
            js.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert!(
            js.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
    // what is not the console's answers as the API does
    for path in [
        "/assets/no-such-file.js",
        "/api/v1/no-such-thing",
        "/v1/nothing",
    ] {
        let missing = answer(get(path).await.unwrap()).await.expect(404);
        assert_eq!(missing.code(), "not_found", "{path}");
    }
    let post = answer(app.http.post(app.url("/customers")).send().await.unwrap())
        .await
        .expect(404);
    assert_eq!(post.code(), "not_found");
    // what this server is, for programs, moved from `/` to `/api`
    let about = answer(get("/api").await.unwrap()).await.expect(200);
    assert_eq!(about.body["openapi"], "/api/openapi.json");
}

/// Saved views are each staff member's own, kept on the server: saved under a name
/// (again: replaced), listed, deleted; nobody else sees or deletes them; tokens keep none.
#[tokio::test]
async fn saved_views_are_personal_and_follow_the_staff_member() {
    let app = TestApp::spawn().await;
    app.staff_with_role("ops@acme.example.com", "operations")
        .await;
    let (admin, signed_in) = app.login(&app.admin_email, PASSWORD).await;
    signed_in.expect(200);
    let (ops, signed_in) = app.login("ops@acme.example.com", PASSWORD).await;
    signed_in.expect(200);
    let put = |client: &reqwest::Client, body: Value| {
        let request = client.put(app.url("/api/v1/me/views")).json(&body);
        async move { answer(request.send().await.unwrap()).await }
    };
    let list = |client: &reqwest::Client| {
        let request = client.get(app.url("/api/v1/me/views?list=customers"));
        async move { answer(request.send().await.unwrap()).await }
    };
    let saved = put(
        &admin,
        json!({"list": "customers", "name": "上海金卡", "filter": "trait.city = \"上海\""}),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(saved["q"], Value::Null);
    // the same name again replaces it
    let replaced = put(
        &admin,
        json!({"list": "customers", "name": "上海金卡", "q": "王", "filter": "trait.city = \"上海\""}),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(replaced["id"], saved["id"]);
    put(
        &admin,
        json!({"list": "customers", "name": "A 复购", "filter": "orders.count() >= 2"}),
    )
    .await
    .expect(200);
    let mine = list(&admin).await.expect(200).body;
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A 复购", "上海金卡"]);
    assert_eq!(mine[1]["q"], "王");
    // someone else, in this tenant or another, sees none of them and cannot delete them
    let (_, rival_email, _) = create_tenant(&app.store, "rival").await;
    let (rival, signed_in) = app.login(&rival_email, PASSWORD).await;
    signed_in.expect(200);
    let id = saved["id"].as_i64().unwrap();
    let url = app.url(&format!("/api/v1/me/views/{id}"));
    for other in [&ops, &rival] {
        assert_eq!(list(other).await.expect(200).body, json!([]));
        answer(other.delete(&url).send().await.unwrap())
            .await
            .expect(404);
    }
    answer(admin.delete(&url).send().await.unwrap())
        .await
        .expect(204);
    assert_eq!(list(&admin).await.body.as_array().unwrap().len(), 1);
    // bad input
    for (body, field) in [
        (json!({"list": "orders", "name": "x", "q": "a"}), "list"),
        (json!({"list": "customers", "name": " ", "q": "a"}), "name"),
        (json!({"list": "customers", "name": "空的", "q": " "}), "q"),
    ] {
        let refused = put(&admin, body).await.expect(422);
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"], field,
            "{}",
            refused.body
        );
    }
    answer(
        admin
            .get(app.url("/api/v1/me/views?list=orders"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(422);
    // programs keep no views
    app.get("/api/v1/me/views?list=customers", &app.admin_token)
        .await
        .expect(403);
}

/// `--role api` logs tracked events and leaves them to a worker node, which applies
/// them; a worker node's HTTP answers health and metrics, not the API.
#[tokio::test]
async fn an_api_node_leaves_background_work_to_a_worker_node() {
    let app = TestApp::spawn_with_node(|n| n.role = siyu_runtime::Role::Api).await;
    let (_, key) = crate::tracking::source(&app).await;
    let logged = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&key, Some(""))
        .json(&json!({"userId": "u-roles", "event": "Viewed", "messageId": "m-roles"}))
        .send()
        .await
        .unwrap();
    assert_eq!(logged.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.store.log_backlog().await.unwrap(),
        1,
        "an API node applies nothing"
    );
    let worker = siyu_runtime::Node::start(
        app.store.clone(),
        siyu_runtime::NodeConfig {
            role: siyu_runtime::Role::Worker,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.applied().await;
    let http = siyu_server::Application::build(
        siyu_server::ServerConfig {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        },
        &worker,
    )
    .await
    .unwrap();
    let base = format!("http://{}", http.local_addr());
    tokio::spawn(http.run_until(std::future::pending()));
    let get = |path: &'static str| {
        let http = app.http.clone();
        let url = format!("{base}{path}");
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/healthz").await, 200);
    assert_eq!(get("/metrics").await, 200);
    assert_eq!(get("/api/v1/customers").await, 404);
    assert_eq!(get("/").await, 404, "no console on a worker node");
    worker.shutdown().await;
}
