//! `POST /api/v1/imports` as a durable job: a file that is not UTF-8 CSV is refused
//! whole (422 naming the line) before anything is made; a good one is queued with its
//! job, runs on the runner beside the app, and reads back completed with its counts.

use serde_json::{Value, json};

use crate::customer_data::{finished, start_import};
use crate::helpers::TestApp;

/// The imports and jobs of the app's tenant, as counts.
async fn made(app: &TestApp) -> (usize, usize) {
    let imports = app
        .get("/api/v1/imports", &app.admin_token)
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    let jobs = app
        .store
        .tenant(app.tenant.id)
        .list_jobs(
            siyu_domain::page::PageRequest::first(100),
            &siyu_store::JobFilter::default(),
        )
        .await
        .unwrap()
        .items
        .len();
    (imports, jobs)
}

/// Sends raw bytes as an import file.
async fn send(app: &TestApp, query: &str, body: Vec<u8>) -> crate::helpers::Answer {
    let response = app
        .http
        .post(app.url(&format!("/api/v1/imports?{query}")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    crate::helpers::answer(response).await
}

fn field_error(body: &Value) -> (String, String) {
    let field = &body["error"]["details"]["fields"][0];
    (
        field["field"].as_str().unwrap_or_default().to_owned(),
        field["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_file_that_is_not_utf8_csv_is_refused_before_anything_is_made() {
    let app = TestApp::spawn().await;
    // a sheet saved as GBK (Excel's default for Chinese): 李四 is C0EE CBC4
    let mut gbk = b"user_id,name\nu-1,ok\nu-2,".to_vec();
    gbk.extend_from_slice(&[0xc0, 0xee, 0xcb, 0xc4, b'\n']);
    let refused = send(&app, "kind=customers", gbk).await.expect(422);
    assert_eq!(refused.code(), "validation_failed");
    let (field, message) = field_error(&refused.body);
    assert_eq!(field, "file");
    assert!(
        message.contains("not UTF-8") && message.contains("line 3"),
        "{message}"
    );

    // a quote never closed: the rest of the file would be one cell
    let mut csv = String::from("user_id,name\nu-1,甲\nu-2,\"乙\n");
    for n in 3..40 {
        csv.push_str(&format!("u-{n},客户{n}\n"));
    }
    let refused = send(&app, "kind=customers", csv.into_bytes())
        .await
        .expect(422);
    let (field, message) = field_error(&refused.body);
    assert_eq!(field, "file");
    assert!(
        message.contains("line 3") && message.contains("never closed"),
        "{message}"
    );
    // orders too, the same way
    let refused = send(
        &app,
        "kind=orders",
        b"order_id,user_id,channel,ordered_at\n\"O-1,u-1,jd,2026-01-01\n".to_vec(),
    )
    .await
    .expect(422);
    assert!(
        field_error(&refused.body).1.contains("line 2"),
        "{}",
        refused.body
    );

    assert_eq!(made(&app).await, (0, 0), "no import and no job was made");
    // rows wider or narrower than the header are not malformed: they are read
    let ragged = "user_id,name,city\nu-1,甲\nu-2,乙,上海,extra\n";
    let job = start_import(&app, "kind=customers", ragged)
        .await
        .expect(202)
        .body;
    let done = finished(&app, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (&done["stored_rows"], &done["rejected_rows"]),
        (&json!(2), &json!(0))
    );
}

#[tokio::test]
async fn an_import_is_queued_with_its_job_and_completes_with_its_counts() {
    let app = TestApp::spawn().await;
    let mut csv = String::from("order_id,手机号,渠道,下单时间,金额\n");
    for n in 0..1_100 {
        csv.push_str(&format!(
            "T-{n:04},1381234{:04},tmall,2026-06-18 20:00,{}.90\n",
            n % 300,
            n % 80 + 10
        ));
    }
    csv.push_str("T-bad,13812340001,mars,2026-06-18 20:00,1\n"); // line 1102
    let queued = start_import(&app, "kind=orders&file_name=618.csv", &csv)
        .await
        .expect(202)
        .body;
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["total_rows"], 1_101);
    let job_id = queued["job_id"].as_i64().expect("the import's job");
    let id = queued["id"].as_i64().unwrap();

    let done = finished(&app, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            &done["processed_rows"],
            &done["stored_rows"],
            &done["rejected_rows"]
        ),
        (&json!(1_101), &json!(1_100), &json!(1))
    );
    assert_eq!(done["rejects"][0]["line"], 1_102);
    assert_eq!(done["job_id"], job_id);
    assert!(done["error"].is_null());
    let listed = app
        .get("/api/v1/imports", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"][0], done);

    // the job is done, its progress the import's
    let scope = app.store.tenant(app.tenant.id);
    let job = scope
        .get_job(siyu_domain::ids::JobId(job_id))
        .await
        .unwrap();
    assert_eq!(job.state, siyu_domain::jobs::JobState::Done);
    assert_eq!(
        (job.progress.done, job.progress.total),
        (1_101, Some(1_101))
    );
    // the orders are there, once each
    let orders = app
        .get("/api/v1/orders?limit=500", &app.admin_token)
        .await
        .expect(200)
        .body;
    assert_eq!(orders["items"].as_array().unwrap().len(), 500);
    let customer = app
        .get(
            "/api/v1/customers/lookup?kind=phone&value=13812340007",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    // 1,100 orders over 300 phones: numbers 7, 307, 607, 907
    assert_eq!(customer["orders"]["count"], 4, "{customer}");
    // an import's end is audited
    let audit = app
        .get(
            "/api/v1/audit-log?action=import.completed",
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}
