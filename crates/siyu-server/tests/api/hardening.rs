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
