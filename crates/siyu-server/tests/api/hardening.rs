//! What the independent checks of the base found (the hardening issue): personal data
//! read back through counts, left unmasked in properties, or written into exports as
//! formulas.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::tracking::{send, source};

/// A customer with a phone trait, a `mobile` trait, and an order whose properties carry
/// the receiver's phone and e-mail.
async fn customer_with_personal_data(app: &TestApp) -> i64 {
    let (_, key) = source(app).await;
    send(
        app,
        "/v1/identify",
        &key,
        json!({"userId": "u-1", "traits": {"name": "=HYPERLINK(\"http://evil\",\"x\")",
            "phone": "13812341680", "mobile": "13912345678", "city": "上海"}}),
    )
    .await
    .expect(200);
    send(
        app,
        "/v1/track",
        &key,
        json!({"userId": "u-1", "event": "Order Completed", "properties": {
            "order_id": "O-1", "total": 88, "channel": "tmall",
            "receiver_phone": "13700001111", "receiver": {"email": "lina@brand.cn"},
            "note": "call 13600002222 after six",
            "products": [{"sku": "T", "name": "tea", "price": 88, "quantity": 1}]}}),
    )
    .await
    .expect(200);
    app.get(
        "/api/v1/customers/lookup?kind=user_id&value=u-1",
        &app.admin_token,
    )
    .await
    .expect(200)
    .body["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn tests_of_personal_data_need_the_reveal_permission() {
    let app = TestApp::spawn().await;
    customer_with_personal_data(&app).await;
    // operations may preview segments and list customers, but not reveal
    let ops = app.token_with_role("operations").await;
    for definition in [
        r#"trait.phone contains "1381""#,
        r#"trait.phone >= 13812340000 and trait.phone < 13812350000"#,
        r#"trait.phone = "13812341680""#,
        r#"trait.phone != "x""#,
        r#"trait.phone in ("13812341680")"#,
        r#"not trait.mobile contains "139""#,
        r#"trait.email contains "@brand""#,
        r#"trait.city = "上海" or trait.receiver_phone contains "137""#,
        r#"performed("Order Completed", where receiver_phone = "13700001111")"#,
    ] {
        let preview = app
            .post(
                "/api/v1/segments/preview",
                &ops,
                json!({"definition": definition}),
            )
            .await
            .expect(403);
        assert!(
            preview.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("customers.reveal"),
            "{definition}: {}",
            preview.body
        );
        let filter: String = form_urlencoded::byte_serialize(definition.as_bytes()).collect();
        app.get(&format!("/api/v1/customers?filter={filter}"), &ops)
            .await
            .expect(403);
        app.post(
            "/api/v1/segments",
            &ops,
            json!({"name": "leak", "kind": "dynamic", "definition": definition}),
        )
        .await
        .expect(403);
    }
    // the JSON form is held to the same rule
    app.post(
        "/api/v1/segments/preview",
        &ops,
        json!({"condition": {"trait": {"key": "phone", "op": "contains", "value": "138"}}}),
    )
    .await
    .expect(403);
    // exists stays allowed, and so do other traits
    let ok = app
        .post(
            "/api/v1/segments/preview",
            &ops,
            json!({"definition": "trait.phone exists and trait.city = \"上海\""}),
        )
        .await
        .expect(200);
    assert_eq!(ok.body["count"], 1, "{}", ok.body);
    // an admin holds customers.reveal and may
    let admin = app
        .post(
            "/api/v1/segments/preview",
            &app.admin_token,
            json!({"definition": r#"trait.phone contains "1381""#}),
        )
        .await
        .expect(200);
    assert_eq!(admin.body["count"], 1, "{}", admin.body);
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

#[tokio::test]
async fn personal_data_in_properties_is_masked_unless_revealed() {
    let app = TestApp::spawn().await;
    let id = customer_with_personal_data(&app).await;
    let service = app.token_with_role("service").await;
    let in_full = [
        "13812341680",
        "13912345678",
        "13700001111",
        "lina@brand.cn",
        "13600002222",
    ];

    let profile = app
        .get(&format!("/api/v1/customers/{id}"), &service)
        .await
        .expect(200)
        .body;
    let timeline = app
        .get(&format!("/api/v1/customers/{id}/timeline"), &service)
        .await
        .expect(200)
        .body;
    let orders = app
        .get(&format!("/api/v1/orders?customer_id={id}"), &service)
        .await
        .expect(200)
        .body;
    let order_id = orders["items"][0]["id"].as_i64().unwrap();
    let order = app
        .get(&format!("/api/v1/orders/{order_id}"), &service)
        .await
        .expect(200)
        .body;
    for (what, body) in [
        ("profile", &profile),
        ("timeline", &timeline),
        ("orders", &orders),
        ("order", &order),
    ] {
        let text = text_of(body);
        for value in in_full {
            assert!(!text.contains(value), "{what} shows {value}: {text}");
        }
    }
    assert_eq!(order["properties"]["receiver_phone"], "137****1111");
    assert_eq!(order["properties"]["receiver"]["email"], "l***@brand.cn");
    assert_eq!(order["properties"]["note"], "call 136****2222 after six");
    assert_eq!(profile["traits"]["mobile"], "139****5678");

    // revealing needs the permission, and is audited
    app.get(
        &format!("/api/v1/customers/{id}/timeline?reveal=true"),
        &service,
    )
    .await
    .expect(403);
    app.get(&format!("/api/v1/orders/{order_id}?reveal=true"), &service)
        .await
        .expect(403);
    let revealed = app
        .get(
            &format!("/api/v1/customers/{id}/timeline?reveal=true"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert!(text_of(&revealed).contains("13700001111"));
    let order = app
        .get(
            &format!("/api/v1/orders/{order_id}?reveal=true"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(order["properties"]["receiver_phone"], "13700001111");
    let audit = app
        .get(
            "/api/v1/audit-log?action=customer.revealed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");

    // the export of the same customer, masked
    let csv = app
        .http
        .get(app.url("/api/v1/customers/export"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for value in in_full {
        assert!(!csv.contains(value), "export shows {value}: {csv}");
    }
}

#[tokio::test]
async fn exported_cells_never_start_a_formula() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let starts = ['=', '+', '-', '@', '\t', '\r'];
    for (n, start) in starts.iter().enumerate() {
        // a tab or carriage return in front is trimmed from a name when it arrives: what
        // follows it must be neutralised all the same
        let start = if start.is_whitespace() {
            format!("{start}=")
        } else {
            start.to_string()
        };
        send(
            &app,
            "/v1/identify",
            &key,
            json!({"userId": format!("f-{n}"), "traits": {"name": format!("{start}HYPERLINK(\"http://evil\",\"x{n}\")")}}),
        )
        .await
        .expect(200);
    }
    let segment = app
        .post(
            "/api/v1/segments",
            &app.admin_token,
            json!({"name": "all named", "kind": "dynamic", "definition": "trait.name exists"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    for path in [
        "/api/v1/customers/export".to_owned(),
        format!("/api/v1/segments/{segment}/export"),
    ] {
        // the segment's membership follows within about a second
        let mut rows: Vec<csv::StringRecord> = Vec::new();
        for _ in 0..50 {
            let csv = app
                .http
                .get(app.url(&path))
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut reader = csv::Reader::from_reader(csv.as_bytes());
            let header = reader.headers().unwrap().clone();
            let name = header.iter().position(|h| h == "name").unwrap();
            rows = reader.records().map(|r| r.unwrap()).collect::<Vec<_>>();
            if rows.len() == starts.len() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let _ = name;
        }
        assert_eq!(rows.len(), starts.len(), "{path}: {rows:?}");
        for row in &rows {
            assert!(
                row.iter()
                    .any(|cell| cell.starts_with("'") && cell.contains("HYPERLINK")),
                "{path}: {row:?}"
            );
            for cell in row {
                let risky = cell.starts_with(starts);
                let number = cell.parse::<f64>().is_ok();
                assert!(!risky || number, "{path}: {cell:?} in {row:?}");
            }
        }
    }
}

#[tokio::test]
async fn weak_passwords_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    for (n, weak) in ["password1", "12345678", "qwertyuiop", "iloveyou1"]
        .iter()
        .enumerate()
    {
        let refused = app
            .post(
                "/api/v1/staff",
                &app.admin_token,
                json!({"unit_id": root.id, "role": "service", "email": format!("w{n}@acme.example.com"),
                       "name": "w", "password": weak}),
            )
            .await
            .expect(422);
        let text = refused.body.to_string();
        assert!(
            text.contains("password") && text.contains("too weak"),
            "{weak}: {text}"
        );
    }
    app.post(
        "/api/v1/staff",
        &app.admin_token,
        json!({"unit_id": root.id, "role": "service", "email": "ok@acme.example.com",
               "name": "ok", "password": "siyu-demo-2026"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_request_ids_are_plain() {
    let app = TestApp::spawn().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = crate::helpers::answer(
            app.http
                .get(app.url("/api/v1/units"))
                .header("authorization", format!("{scheme} {}", app.admin_token))
                .send()
                .await
                .unwrap(),
        )
        .await;
        answer.expect(200);
    }
    let id_of = |value: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/healthz"))
                .header("x-request-id", value)
                .send()
                .await
                .unwrap()
                .headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(id_of("trace-1.2_3".into()).await, "trace-1.2_3");
    for bad in ["a".repeat(200), "<script>".into(), "a b".into()] {
        let got = id_of(bad.clone()).await;
        assert_ne!(got, bad);
        assert!(
            !got.is_empty()
                && got
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
            "{got}"
        );
    }
}

#[tokio::test]
async fn cookie_signed_changes_come_from_the_consoles_origin() {
    for public_url in [None, Some("https://scrm.brand.example")] {
        let app = TestApp::spawn_with(|c| c.public_url = public_url.map(str::to_owned)).await;
        app.staff_with_role("ops@acme.example.com", "operations")
            .await;
        let (client, login) = app
            .login("ops@acme.example.com", crate::helpers::PASSWORD)
            .await;
        login.expect(200);
        let group = app
            .post("/api/v1/tag-groups", &app.admin_token, json!({"name": "g"}))
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        let own_origin = public_url
            .map(str::to_owned)
            .unwrap_or_else(|| app.base.clone());
        let create = |n: usize, headers: Vec<(&'static str, String)>| {
            let mut request = client
                .post(app.url("/api/v1/tags"))
                .json(&json!({"group_id": group, "name": format!("t{n}")}));
            for (k, v) in headers {
                request = request.header(k, v);
            }
            async move { crate::helpers::answer(request.send().await.unwrap()).await }
        };
        create(1, vec![("origin", "http://evil.example".into())])
            .await
            .expect(403);
        create(2, vec![("sec-fetch-site", "cross-site".into())])
            .await
            .expect(403);
        create(3, vec![("sec-fetch-site", "same-site".into())])
            .await
            .expect(403);
        if public_url.is_some() {
            // the address the request was sent to is not the configured origin
            create(4, vec![("origin", app.base.clone())])
                .await
                .expect(403);
        }
        create(5, vec![("origin", own_origin.clone())])
            .await
            .expect(201);
        create(6, vec![("sec-fetch-site", "same-origin".into())])
            .await
            .expect(201);
        // reads are not refused, and bearer tokens are not cookies
        let read = client
            .get(app.url("/api/v1/tags"))
            .header("origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        let token = app
            .http
            .post(app.url("/api/v1/tags"))
            .bearer_auth(&app.admin_token)
            .header("origin", "http://evil.example")
            .json(&json!({"group_id": group, "name": "t7"}))
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 201);
        let tags = app
            .get("/api/v1/tags", &app.admin_token)
            .await
            .expect(200)
            .body;
        let names: Vec<&str> = tags
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
}

#[tokio::test]
async fn the_tracking_api_answers_cors_and_the_console_api_does_not() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/track"))
        .header("origin", "https://shop.brand.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("content-type") && allowed.contains("authorization"));
    // analytics.js sends text/plain with the write key in the body
    let sent = app
        .http
        .post(app.url("/v1/track"))
        .header("origin", "https://shop.brand.example")
        .header("content-type", "text/plain")
        .body(json!({"writeKey": key, "userId": "b-1", "event": "Viewed"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert_eq!(sent.headers()["access-control-allow-origin"], "*");
    for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
        let api = app
            .http
            .request(method, app.url("/api/v1/units"))
            .bearer_auth(&app.admin_token)
            .header("origin", "https://shop.brand.example")
            .send()
            .await
            .unwrap();
        assert!(api.headers().get("access-control-allow-origin").is_none());
    }
}

/// Orders for a new customer `user`, each `yuan` at `unit` (or none), now.
async fn buyer(app: &TestApp, user: &str, unit: Option<i64>, yuan: &[f64]) -> i64 {
    let mut id = 0;
    for (n, amount) in yuan.iter().enumerate() {
        let mut order = json!({"order_id": format!("{user}-{n}"), "customer": {"kind": "user_id", "value": user},
            "channel": "wecom", "amount": amount,
            "ordered_at": siyu_domain::time::format_rfc3339(siyu_store::now_ms() - 3_600_000)});
        if let Some(unit) = unit {
            order["unit_id"] = json!(unit);
        }
        let recorded = app
            .post("/api/v1/orders", &app.admin_token, order)
            .await
            .expect(201);
        id = recorded.body["customer_id"].as_i64().unwrap();
    }
    id
}

fn monetary_cuts(report: &Value) -> Vec<f64> {
    report["cut_points"]["monetary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// RFM figures: cut points follow new orders within seconds (not ten minutes), a
/// unit's report shows the unit's own cut points, and fixed money thresholds are in
/// major units like every amount of the API.
#[tokio::test]
async fn rfm_cut_points_are_current_per_unit_and_in_major_units() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let mut units = Vec::new();
    for name in ["small", "large"] {
        units.push(
            app.post(
                "/api/v1/units",
                &app.admin_token,
                json!({"parent_id": root.id, "kind": "brand", "name": name}),
            )
            .await
            .expect(201)
            .body["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // the index is built before the orders arrive, as on a running server
    app.get("/api/v1/rfm", &app.admin_token).await.expect(200);
    for n in 0..5 {
        buyer(
            &app,
            &format!("s{n}"),
            Some(units[0]),
            &[10.0 * (n + 1) as f64],
        )
        .await;
        buyer(
            &app,
            &format!("l{n}"),
            Some(units[1]),
            &[1000.0 * (n + 1) as f64],
        )
        .await;
    }
    // quintiles of the ten buyers, within seconds
    let started = std::time::Instant::now();
    let tenant_cuts = loop {
        let report = app
            .get("/api/v1/rfm", &app.admin_token)
            .await
            .expect(200)
            .body;
        let cuts = monetary_cuts(&report);
        if cuts.iter().any(|c| *c > 0.0) {
            break cuts;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "RFM cut points still {cuts:?} 15 s after the orders"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(tenant_cuts[3] >= 1000.0, "{tenant_cuts:?}");
    // the small brand is scored against its own buyers (¥10–50)
    let small = app
        .get(
            &format!("/api/v1/rfm?unit_id={}", units[0]),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    let small_cuts = monetary_cuts(&small);
    assert!(
        small_cuts.iter().all(|c| *c <= 50.0) && small_cuts[3] > 0.0,
        "unit cut points {small_cuts:?}, tenant's {tenant_cuts:?}"
    );
    let customers: u64 = small["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(customers, 5);

    // fixed thresholds in yuan, decimals allowed
    let settings = json!({"window_days": 365, "high_from": 3,
        "fixed": {"recency_days": [7, 30, 90, 180], "frequency": [1, 2, 3, 5],
                  "monetary": [99.5, 500, 1000, 5000]}});
    let saved = app
        .put("/api/v1/score-settings/rfm", &app.admin_token, settings)
        .await
        .expect(200)
        .body;
    assert_eq!(
        saved["fixed"]["monetary"],
        json!([99.5, 500.0, 1000.0, 5000.0])
    );
    let read = app
        .get("/api/v1/score-settings/rfm", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        read["fixed"]["monetary"],
        json!([99.5, 500.0, 1000.0, 5000.0])
    );
    let report = app
        .get("/api/v1/rfm", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(monetary_cuts(&report), vec![99.5, 500.0, 1000.0, 5000.0]);
    // a ¥30 buyer is below the first threshold: M = 1
    let thirty = buyer(&app, "thirty", None, &[30.0]).await;
    let started = std::time::Instant::now();
    loop {
        let scores = app
            .get(
                &format!("/api/v1/customers/{thirty}/scores"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body;
        if !scores["rfm"].is_null() {
            assert_eq!(scores["rfm"]["m"], 1, "{scores}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{scores}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // more than two decimals, or not a number: refused
    for bad in [json!([1.234, 2, 3, 4]), json!(["100", 500, 1000, 5000])] {
        app.put(
            "/api/v1/score-settings/rfm",
            &app.admin_token,
            json!({"fixed": {"recency_days": [7, 30, 90, 180], "frequency": [1, 2, 3, 5], "monetary": bad}}),
        )
        .await
        .expect(422);
    }
}

#[tokio::test]
async fn lifecycle_windows_are_bounded() {
    let app = TestApp::spawn().await;
    for field in [
        "lapsed_after_days",
        "referral_window_days",
        "retained_after_days",
    ] {
        for days in [0u64, 3651, u32::MAX as u64] {
            let refused = app
                .put(
                    "/api/v1/score-settings/lifecycle",
                    &app.admin_token,
                    json!({ field: days }),
                )
                .await
                .expect(422);
            assert!(refused.body.to_string().contains(field), "{}", refused.body);
        }
    }
    // too large for the type at all
    app.put(
        "/api/v1/score-settings/lifecycle",
        &app.admin_token,
        json!({"lapsed_after_days": 4_294_967_296u64}),
    )
    .await
    .expect(422);
    let kept = app
        .get("/api/v1/score-settings/lifecycle", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(kept["lapsed_after_days"], 90, "{kept}");
    app.put(
        "/api/v1/score-settings/lifecycle",
        &app.admin_token,
        json!({"lapsed_after_days": 3650}),
    )
    .await
    .expect(200);
}

/// After-sales change customers' figures: they take their turn with ingestion and with
/// each other, never answering 500 ("database is locked") under concurrency.
#[tokio::test]
async fn after_sales_under_concurrency_and_ingestion_never_fail() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    let clients = 6;
    let per_client = 4;
    let mut orders = Vec::new();
    for n in 0..clients * per_client {
        let body = json!({"order_id": format!("C-{n}"), "customer": {"kind": "user_id", "value": format!("c-{}", n % 3)},
            "channel": "wecom", "amount": 100.0, "ordered_at": "2026-11-01T10:00:00+08:00"});
        orders.push(
            app.post("/api/v1/orders", &app.admin_token, body)
                .await
                .expect(201)
                .body["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // ingestion keeps the applier writing throughout
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (http, url, key, stop) = (
            app.http.clone(),
            app.url("/v1/batch"),
            key.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let batch: Vec<Value> = (0..200)
                    .map(|i| {
                        json!({"type": "track", "userId": format!("c-{}", i % 3), "event": "Viewed",
                        "messageId": format!("m-{round}-{i}")})
                    })
                    .collect();
                let r = http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                round += 1;
            }
        })
    };
    let mut tasks = Vec::new();
    for chunk in orders.chunks(per_client) {
        let (http, base, token, chunk) = (
            app.http.clone(),
            app.base.clone(),
            app.admin_token.clone(),
            chunk.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for order in chunk {
                let made = http
                    .post(format!("{base}/api/v1/orders/{order}/after-sales"))
                    .bearer_auth(&token)
                    .json(&json!({"kind": "refund", "amount": 40.0}))
                    .send()
                    .await
                    .unwrap();
                statuses.push(made.status().as_u16());
                let id = made.json::<Value>().await.unwrap()["id"]
                    .as_i64()
                    .unwrap_or(0);
                let done = http
                    .patch(format!("{base}/api/v1/after-sales/{id}"))
                    .bearer_auth(&token)
                    .json(&json!({"status": "completed"}))
                    .send()
                    .await
                    .unwrap();
                statuses.push(done.status().as_u16());
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "after-sale answers: {statuses:?}"
    );
    app.applied().await;
    // every refund counted once: 24 orders of 100 less 40 each
    let mut total = 0.0;
    for n in 0..3 {
        let c = app
            .get(
                &format!("/api/v1/customers/lookup?kind=user_id&value=c-{n}"),
                &app.admin_token,
            )
            .await
            .expect(200)
            .body;
        total += c["orders"]["total"].as_f64().unwrap();
    }
    assert_eq!(total, (clients * per_client) as f64 * 60.0);
}

/// Tags belong to the tenant or to a unit: only staff who reach them change them, the
/// counts a member sees are within their scope, a deleted tag leaves its trace in every
/// customer's history, and segment size history (tenant-wide) is for tenant-wide staff.
#[tokio::test]
async fn tags_are_changed_and_counted_within_the_callers_reach() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token.clone();
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let id_of = |a: crate::helpers::Answer| a.body["id"].as_i64().unwrap();
    let brand_a = id_of(
        app.post(
            "/api/v1/units",
            &admin,
            json!({"parent_id": root.id, "kind": "brand", "name": "a"}),
        )
        .await
        .expect(201),
    );
    let brand_b = id_of(
        app.post(
            "/api/v1/units",
            &admin,
            json!({"parent_id": root.id, "kind": "brand", "name": "b"}),
        )
        .await
        .expect(201),
    );
    let g0 = id_of(
        app.post("/api/v1/tag-groups", &admin, json!({"name": "tenant"}))
            .await
            .expect(201),
    );
    let ga = id_of(
        app.post(
            "/api/v1/tag-groups",
            &admin,
            json!({"name": "a", "unit_id": brand_a}),
        )
        .await
        .expect(201),
    );
    let gb = id_of(
        app.post(
            "/api/v1/tag-groups",
            &admin,
            json!({"name": "b", "unit_id": brand_b}),
        )
        .await
        .expect(201),
    );
    let t0 = id_of(
        app.post(
            "/api/v1/tags",
            &admin,
            json!({"group_id": g0, "name": "VIP"}),
        )
        .await
        .expect(201),
    );
    let ta = id_of(
        app.post(
            "/api/v1/tags",
            &admin,
            json!({"group_id": ga, "name": "A-tag"}),
        )
        .await
        .expect(201),
    );
    let tb = id_of(
        app.post(
            "/api/v1/tags",
            &admin,
            json!({"group_id": gb, "name": "B-tag"}),
        )
        .await
        .expect(201),
    );
    let staff = |email: &str, unit: i64, role: &str, scope: &str| {
        let body = json!({"unit_id": unit, "role": role, "email": email, "name": email,
                          "password": crate::helpers::PASSWORD, "data_scope": scope});
        let app = &app;
        async move {
            app.post("/api/v1/staff", &app.admin_token, body)
                .await
                .expect(201)
                .body["id"]
                .as_i64()
                .unwrap()
        }
    };
    let lead = staff(
        "lead@acme.example.com",
        brand_a,
        "operations",
        "unit_subtree",
    )
    .await;
    let guide = staff("guide@acme.example.com", brand_a, "service", "own").await;
    // three customers with VIP: one the guide's (in brand A), two nobody's
    let (_, key) = source(&app).await;
    let mut customers = Vec::new();
    for n in 0..3 {
        send(
            &app,
            "/v1/identify",
            &key,
            json!({"userId": format!("t-{n}")}),
        )
        .await
        .expect(200);
        let id = app
            .get(
                &format!("/api/v1/customers/lookup?kind=user_id&value=t-{n}"),
                &admin,
            )
            .await
            .expect(200)
            .body["id"]
            .as_i64()
            .unwrap();
        app.post(
            &format!("/api/v1/customers/{id}/tags"),
            &admin,
            json!({"add": [t0]}),
        )
        .await
        .expect(200);
        customers.push(id);
    }
    app.patch(
        &format!("/api/v1/customers/{}", customers[0]),
        &admin,
        json!({"owner_staff_id": guide}),
    )
    .await
    .expect(200);
    let segment = id_of(
        app.post(
            "/api/v1/segments",
            &admin,
            json!({"name": "vip", "kind": "dynamic", "definition": "tag(\"VIP\")"}),
        )
        .await
        .expect(201),
    );

    let (lead_client, a) = app
        .login("lead@acme.example.com", crate::helpers::PASSWORD)
        .await;
    a.expect(200);
    let (guide_client, a) = app
        .login("guide@acme.example.com", crate::helpers::PASSWORD)
        .await;
    a.expect(200);
    let call =
        |client: &reqwest::Client, method: reqwest::Method, path: String, body: Option<Value>| {
            let mut request = client.request(method, app.url(&path));
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { crate::helpers::answer(request.send().await.unwrap()).await }
        };
    use reqwest::Method;
    // the store guide (own customers) changes no tag definition
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/tags/{t0}"),
            Some(json!({"name": "gone"})),
        ),
        (Method::DELETE, format!("/api/v1/tags/{t0}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tags/{ta}"),
            Some(json!({"name": "gone"})),
        ),
        (
            Method::POST,
            "/api/v1/tags".into(),
            Some(json!({"group_id": g0, "name": "new"})),
        ),
        (Method::DELETE, format!("/api/v1/tag-groups/{ga}"), None),
    ] {
        call(&guide_client, method, path, body).await.expect(403);
    }
    // the brand lead changes brand A's tags, not the tenant's or brand B's
    call(
        &lead_client,
        Method::PATCH,
        format!("/api/v1/tags/{ta}"),
        Some(json!({"name": "A-renamed"})),
    )
    .await
    .expect(200);
    call(
        &lead_client,
        Method::POST,
        "/api/v1/tags".into(),
        Some(json!({"group_id": ga, "name": "A-new"})),
    )
    .await
    .expect(201);
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/tags/{t0}"),
            Some(json!({"name": "gone"})),
        ),
        (Method::DELETE, format!("/api/v1/tags/{t0}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tags/{tb}"),
            Some(json!({"colour": "#000000"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/tags/{ta}"),
            Some(json!({"group_id": gb})),
        ),
        (
            Method::POST,
            "/api/v1/tag-groups".into(),
            Some(json!({"name": "x", "unit_id": brand_b})),
        ),
        (
            Method::POST,
            "/api/v1/tag-groups".into(),
            Some(json!({"name": "x"})),
        ),
    ] {
        call(&lead_client, method, path, body).await.expect(403);
    }
    // counts within scope: the lead sees one VIP customer (the guide's), the admin three
    let count_of = |tags: &Value| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == t0)
            .unwrap()["customers"]
            .as_i64()
            .unwrap()
    };
    let started = std::time::Instant::now();
    loop {
        let lead_tags = call(&lead_client, Method::GET, "/api/v1/tags".into(), None)
            .await
            .expect(200)
            .body;
        if count_of(&lead_tags) == 1 {
            break;
        }
        assert!(started.elapsed().as_secs() < 10, "{lead_tags}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let guide_tag = call(
        &guide_client,
        Method::GET,
        format!("/api/v1/tags/{t0}"),
        None,
    )
    .await
    .expect(200)
    .body;
    assert_eq!(guide_tag["customers"], 1, "{guide_tag}");
    let groups = call(&lead_client, Method::GET, "/api/v1/tag-groups".into(), None)
        .await
        .expect(200)
        .body;
    let in_group = groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tags"].as_array().unwrap().iter())
        .find(|t| t["id"] == t0)
        .unwrap()
        .clone();
    assert_eq!(in_group["customers"], 1, "{groups}");
    assert_eq!(
        count_of(&app.get("/api/v1/tags", &admin).await.expect(200).body),
        3
    );
    // segment sizes over time are the tenant's
    call(
        &lead_client,
        Method::GET,
        format!("/api/v1/segments/{segment}/counts"),
        None,
    )
    .await
    .expect(403);
    app.get(&format!("/api/v1/segments/{segment}/counts"), &admin)
        .await
        .expect(200);
    // deleting a tag records its removal in each customer's history
    app.delete(&format!("/api/v1/segments/{segment}"), &admin)
        .await
        .expect(204);
    app.delete(&format!("/api/v1/tags/{t0}"), &admin)
        .await
        .expect(204);
    for id in customers {
        let history = app
            .get(&format!("/api/v1/customers/{id}/tag-history"), &admin)
            .await
            .expect(200)
            .body;
        let removed = history
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["action"] == "removed")
            .unwrap_or_else(|| panic!("{history}"));
        assert!(
            removed["reason"].as_str().unwrap().contains("VIP"),
            "{removed}"
        );
        assert_eq!(removed["tag_id"], t0);
    }
    let _ = lead;
}

#[tokio::test]
async fn the_audit_log_keeps_no_search_term_or_reason_in_full() {
    let app = TestApp::spawn().await;
    let id = customer_with_personal_data(&app).await;
    let response = app
        .http
        .get(app.url("/api/v1/customers/export?q=13812341680"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    let group = app
        .post("/api/v1/tag-groups", &app.admin_token, json!({"name": "g"}))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let tag = app
        .post(
            "/api/v1/tags",
            &app.admin_token,
            json!({"group_id": group, "name": "called"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/customers/bulk-tag",
        &app.admin_token,
        json!({"customer_ids": [id], "add": [tag], "reason": "李娜 asked on 13812341680"}),
    )
    .await
    .expect(200);
    let audit = app
        .get("/api/v1/audit-log?limit=500", &app.admin_token)
        .await
        .expect(200)
        .body
        .to_string();
    assert!(!audit.contains("13812341680"), "{audit}");
    assert!(!audit.contains("李娜 asked"), "{audit}");
    assert!(
        audit.contains("138****1680"),
        "the masked term is kept: {audit}"
    );
}

/// A time in a trait is an instant, tested on the tenant's day: the same instant sent as
/// UTC, with an offset, or in milliseconds gives one answer on a Shanghai tenant.
#[tokio::test]
async fn trait_times_are_tested_on_the_tenants_days() {
    use siyu_domain::audit::Actor;
    use siyu_domain::tenancy::NewTenant;
    use siyu_domain::time::TimeZone;

    let app = TestApp::spawn().await;
    let shanghai = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
    let new = NewTenant::new("shanghai", "admin@sh.example.com", crate::helpers::PASSWORD)
        .unwrap()
        .in_time_zone(shanghai);
    let (tenant, _) = app.store.create_tenant(&new, &Actor::cli()).await.unwrap();
    let scope = app.store.tenant(tenant.id);
    let role = scope.role_by_name("admin").await.unwrap();
    let (_, token) = scope
        .create_api_token("admin", &role, None, None, &Actor::cli())
        .await
        .unwrap();
    let key = app
        .post(
            "/api/v1/sources",
            &token,
            json!({"name": "app", "kind": "app"}),
        )
        .await
        .expect(201)
        .body["write_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // 00:30 today in Shanghai: still yesterday in UTC
    let now = siyu_store::now_ms();
    let local_midnight = (now + 8 * 3_600_000).div_euclid(86_400_000) * 86_400_000 - 8 * 3_600_000;
    let instant = local_midnight + 30 * 60_000;
    let utc = siyu_domain::time::format_rfc3339(instant);
    let offset = {
        let local = siyu_domain::time::format_rfc3339(instant + 8 * 3_600_000);
        format!("{}+08:00", &local[..19])
    };
    for (n, value) in [json!(utc), json!(offset), json!(instant)]
        .into_iter()
        .enumerate()
    {
        send(
            &app,
            "/v1/identify",
            &key,
            json!({"userId": format!("d-{n}"), "traits": {"visited_store_at": value}}),
        )
        .await
        .expect(200);
    }
    let count = |definition: &str| {
        let (app, token) = (&app, token.clone());
        let body = json!({"definition": definition});
        async move {
            app.post("/api/v1/segments/preview", &token, body)
                .await
                .expect(200)
                .body["count"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count("trait.visited_store_at within last 1d").await, 3);
    assert_eq!(count("trait.visited_store_at before 1d ago").await, 0);
}
