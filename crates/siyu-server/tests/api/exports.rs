//! Large exports as jobs: asked for now, written by a job to a file any node serves,
//! downloaded once done.

use serde_json::{Value, json};

use crate::helpers::{TestApp, create_tenant};
use crate::tracking::{send, source};

async fn download(app: &TestApp, job: &Value, token: &str) -> (u16, String) {
    let response = app
        .http
        .get(app.url(&format!(
            "/api/v1/customers/exports/{}/file",
            job.as_i64().unwrap()
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn an_export_job_writes_the_matches_to_a_file_that_is_downloaded_once_done() {
    let app = TestApp::spawn().await;
    let (_, key) = source(&app).await;
    for n in 0..7 {
        let city = if n < 4 { "上海" } else { "北京" };
        send(
            &app,
            "/v1/identify",
            &key,
            json!({"userId": format!("x-{n}"), "traits": {"city": city, "phone": format!("1381234{n:04}")}}),
        )
        .await
        .expect(200);
    }
    let asked = app
        .post(
            "/api/v1/customers/exports",
            &app.admin_token,
            json!({"filter": "trait.city = \"上海\""}),
        )
        .await
        .expect(202)
        .body;
    let job = app.job_finished(&asked["job_id"]).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["kind"], "customers.export");
    assert_eq!(job["progress"]["done"], 4);
    let (status, csv) = download(&app, &asked["job_id"], &app.admin_token).await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4, "{csv}");
    assert!(lines[0].starts_with("id,"), "{csv}");
    assert!(lines[1..].iter().all(|l| l.contains("上海")), "{csv}");
    assert!(
        !csv.contains("13812340000"),
        "masked unless revealed: {csv}"
    );
    // everyone, revealed
    let all = app
        .post(
            "/api/v1/customers/exports",
            &app.admin_token,
            json!({"reveal": true}),
        )
        .await
        .expect(202)
        .body;
    app.job_finished(&all["job_id"]).await;
    let (_, csv) = download(&app, &all["job_id"], &app.admin_token).await;
    assert_eq!(csv.lines().count(), 1 + 7);
    assert!(csv.contains("13812340000"), "{csv}");
    // audited when asked
    let audit = app
        .get(
            "/api/v1/audit-log?action=customers.exported",
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
            .any(|e| e["details"]["job_id"] == all["job_id"] && e["details"]["revealed"] == true),
        "{audit}"
    );

    // bad input: refused before a job is made
    app.post(
        "/api/v1/customers/exports",
        &app.admin_token,
        json!({"filter": "tag(\"没有这个标签\")"}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/customers/exports",
        &app.admin_token,
        json!({"filter": "trait.city ="}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/customers/exports",
        &app.admin_token,
        json!({"everything": true}),
    )
    .await
    .expect(422);
    let analyst = app.token_with_role("analyst").await;
    let refused = app
        .post(
            "/api/v1/customers/exports",
            &analyst,
            json!({"reveal": true}),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
    // another tenant's export is not found; a job without a file yet is not found
    let (_, _, rival) = create_tenant(&app.store, "rival").await;
    assert_eq!(download(&app, &all["job_id"], &rival).await.0, 404);
    assert_eq!(
        download(&app, &json!(999_999), &app.admin_token).await.0,
        404
    );
}
