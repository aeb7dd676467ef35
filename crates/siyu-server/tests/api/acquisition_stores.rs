//! Store codes: one code per store made in one call, reported per store and up the unit
//! tree, and printed on one sheet whose QR codes scan.

use reqwest::header::USER_AGENT;
use serde_json::{Value, json};

use crate::acquisition::field;
use crate::acquisition_qr::{Fetched, decode};
use crate::helpers::{PASSWORD, TestApp};

async fn unit(app: &TestApp, parent: i64, kind: &str, name: &str) -> i64 {
    app.post(
        "/api/v1/units",
        &app.admin_token,
        json!({"parent_id": parent, "kind": kind, "name": name}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

async fn staff_in(app: &TestApp, unit: i64, email: &str) -> i64 {
    app.post(
        "/api/v1/staff",
        &app.admin_token,
        json!({"unit_id": unit, "role": "service", "email": email, "name": email,
               "password": PASSWORD, "data_scope": "own"}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn every_store_gets_one_code_reported_up_its_region_and_printed_on_one_sheet() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let root = app
        .store
        .tenant(app.tenant.id)
        .root_unit()
        .await
        .unwrap()
        .id
        .0;
    let region = unit(&app, root, "subsidiary", "华东区").await;
    let west_lake = unit(&app, region, "store", "西湖店").await;
    let bund = unit(&app, region, "store", "外滩店").await;
    let elsewhere = unit(&app, root, "store", "北京店").await;
    let clerk = staff_in(&app, west_lake, "clerk@acme.example.com").await;
    staff_in(&app, elsewhere, "beijing@acme.example.com").await;

    let made = app
        .post(
            "/api/v1/channel-codes/stores",
            token,
            json!({"unit_id": region}),
        )
        .await
        .expect(200)
        .body;
    let created = made["created"].as_array().unwrap();
    assert_eq!(created.len(), 1, "{made}");
    let code = &created[0];
    assert_eq!(code["state"], format!("store-{west_lake}"));
    assert_eq!(code["unit_id"], west_lake);
    assert_eq!(code["members"][0]["staff_id"], clerk);
    let skipped = made["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "a store with no staff: {made}");
    assert_eq!(skipped[0]["unit_id"], bund);
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no active staff")
    );
    // again: nothing made twice
    let again = app
        .post(
            "/api/v1/channel-codes/stores",
            token,
            json!({"unit_id": region}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(again["created"], json!([]));
    assert_eq!(again["existing"], json!([code["id"]]));
    // bad input, named
    let bad = app
        .post(
            "/api/v1/channel-codes/stores",
            token,
            json!({"unit_id": 999_999}),
        )
        .await
        .expect(422);
    assert_eq!(field(&bad.body), "unit_id");
    app.post(
        "/api/v1/channel-codes/stores",
        token,
        json!({"stores": "all"}),
    )
    .await
    .expect(422);

    // a scan of the store's code counts for the store and its region, not elsewhere
    let path = code["landing_path"].as_str().unwrap();
    let page = app
        .http
        .get(app.url(path))
        .header(
            USER_AGENT,
            "Mozilla/5.0 (iPhone) MicroMessenger/8.0 NetType/WIFI",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let today = chrono::Utc::now().date_naive();
    let report = app
        .get(
            &format!(
                "/api/v1/acquisition/report?from={}&to={}&by=unit",
                today.pred_opt().unwrap(),
                today.succ_opt().unwrap()
            ),
            token,
        )
        .await
        .expect(200)
        .body;
    let scans_of = |unit: i64| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == unit)
            .map(|r| r["scans"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(scans_of(west_lake), 1, "{report}");
    assert_eq!(scans_of(region), 1);
    assert_eq!(scans_of(root), 1);
    assert_eq!(scans_of(elsewhere), Value::Null);

    // the sheet: every store code under the region, its QR scanning to its page
    let sheet = app
        .http
        .get(app.url(&format!("/api/v1/channel-codes/sheet?unit_id={region}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(sheet.status(), 200);
    let html = sheet.text().await.unwrap();
    assert!(
        html.contains("西湖店") && !html.contains("北京店"),
        "{html}"
    );
    assert_eq!(html.matches("<svg").count(), 1);
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap() + 6];
    let image = Fetched {
        status: 200,
        content_type: "image/svg+xml".into(),
        source: String::new(),
        bytes: svg.as_bytes().to_vec(),
    };
    assert_eq!(decode(&image), app.url(path));
    app.get("/api/v1/channel-codes/sheet?unit_id=999999", token)
        .await
        .expect(422);
    let service = app.token_with_role("service").await;
    app.get("/api/v1/channel-codes/sheet", &service)
        .await
        .expect(403);
    app.post("/api/v1/channel-codes/stores", &service, json!({}))
        .await
        .expect(403);
}
