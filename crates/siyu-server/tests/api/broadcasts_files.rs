//! A send's audience from a CSV file: rows name customers by id or by any identity; the
//! answer lists each customer once, in the file's order, within the caller's reach, and
//! says which rows named no one and why; a file that cannot make a list is refused.

use serde_json::{Value, json};

use crate::audiences::customer;
use crate::helpers::{Answer, PASSWORD, TestApp, answer};
use crate::tracking::{send, source};

async fn read_file(app: &TestApp, token: &str, csv: &str) -> Answer {
    let response = app
        .http
        .post(app.url("/api/v1/broadcasts/audience-file"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    answer(response).await
}

fn field_error(body: &Value) -> (&str, &str) {
    let field = &body["error"]["details"]["fields"][0];
    (
        field["field"].as_str().unwrap_or(""),
        field["message"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn a_file_names_each_customer_once_by_any_identity_and_says_which_rows_named_no_one() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let li = customer(&app, &key, "f-1", json!({"phone": "138 1234 1680"})).await;
    let wang = customer(&app, &key, "f-2", json!({"email": "wang@example.com"})).await;
    let zhao = customer(&app, &key, "f-3", json!({})).await;
    // a device's profile, then signed in: two profiles merged, the device's id led on
    send(
        &app,
        "/v1/track",
        &key,
        json!({"anonymousId": "dev-9", "event": "Viewed"}),
    )
    .await
    .expect(200);
    app.applied().await;
    let device = app
        .get(
            "/api/v1/customers/lookup?kind=anonymous_id&value=dev-9",
            token,
        )
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    send(
        &app,
        "/v1/identify",
        &key,
        json!({"anonymousId": "dev-9", "userId": "f-3"}),
    )
    .await
    .expect(200);
    app.applied().await;
    let merged_away = if device == zhao { None } else { Some(device) };

    let mut csv = String::from("\u{feff}姓名,手机号,email,customer_id,user_id\n");
    csv.push_str("李娜,138-1234-1680,,,\n"); // line 2: by phone, written otherwise
    csv.push_str("王芳,,WANG@example.com,,\n"); // 3: by e-mail, in capitals
    csv.push_str(&format!("赵雷,,,{zhao},\n")); // 4: by id
    csv.push_str("李娜again,,,,f-1\n"); // 5: Li again, by user id
    csv.push_str("无名,13900000000,,,\n"); // 6: a phone no one has
    csv.push_str("坏号,12,,,\n"); // 7: not a phone
    csv.push_str(",,,,\n"); // 8: blank, skipped
    csv.push_str("空,,,,\n"); // 9: names no one
    csv.push_str(&format!("旧,,,{},\n", merged_away.unwrap_or(zhao))); // 10: Zhao again
    csv.push_str("不存在,,,99999999,\n"); // 11: no such customer
    let read = read_file(&app, token, &csv).await.expect(200).body;
    assert_eq!(read["customers"], json!([li, wang, zhao]), "{read}");
    assert_eq!(
        (
            &read["rows"],
            &read["matched_rows"],
            &read["repeated_rows"],
            &read["unmatched_rows"]
        ),
        (&json!(9), &json!(5), &json!(2), &json!(4)),
        "{read}"
    );
    let lines: Vec<i64> = read["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [6, 7, 9, 11], "{read}");
    assert!(
        read["unmatched"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("phone:")
    );

    // the list it gives is a send's audience as it stands
    let preview = app
        .post(
            "/api/v1/broadcasts/preview",
            token,
            json!({"audience": {"customers": read["customers"]}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(preview["recipients"], 3, "{preview}");
}

#[tokio::test]
async fn a_file_reaches_only_the_callers_customers_and_bad_files_are_refused() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let (_, key) = source(&app).await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let own = app
        .post(
            "/api/v1/staff",
            token,
            json!({"unit_id": root.id, "role": "operations", "email": "own@example.com",
                   "name": "own", "password": PASSWORD, "data_scope": "own"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let mine = customer(&app, &key, "o-1", json!({"phone": "13812341681"})).await;
    let theirs = customer(&app, &key, "o-2", json!({"phone": "13812341682"})).await;
    app.post(
        "/api/v1/customers/assign",
        token,
        json!({"customer_ids": [mine], "owner_staff_id": own}),
    )
    .await
    .expect(200);
    let (client, _) = app.login("own@example.com", PASSWORD).await;
    let csv = format!("phone,customer_id\n13812341681,\n13812341682,\n,{theirs}\n");
    let response = client
        .post(app.url("/api/v1/broadcasts/audience-file"))
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    let read = answer(response).await.expect(200).body;
    // a customer out of reach is not found, as everywhere
    assert_eq!(read["customers"], json!([mine]), "{read}");
    assert_eq!(read["unmatched_rows"], 2);
    // the admin reaches both
    let read = read_file(&app, token, &csv).await.expect(200).body;
    assert_eq!(read["customers"], json!([mine, theirs]), "{read}");

    // only those who may make sends read files for them
    let viewer = app.token_with_role("analyst").await;
    read_file(&app, &viewer, &csv).await.expect(403);

    for (bad, says) in [
        ("", "is empty"),
        ("phone\n", "holds no row"),
        ("name,city\n李,上海\n", "no column names a customer"),
        ("phone\n\"138", "never closed"),
        ("identity:bad kind!\n1\n", "header"),
    ] {
        let refused = read_file(&app, token, bad).await.expect(422).body;
        let (field, message) = field_error(&refused);
        assert_eq!(field, "file", "{bad:?}: {refused}");
        assert!(message.contains(says), "{bad:?}: {message}");
    }
    let gbk: &[u8] = b"\xca\xd6\xbb\xfa\xba\xc5\n13812341681\n"; // 手机号 in GBK
    let response = app
        .http
        .post(app.url("/api/v1/broadcasts/audience-file"))
        .bearer_auth(token)
        .body(gbk.to_vec())
        .send()
        .await
        .unwrap();
    let refused = answer(response).await.expect(422).body;
    assert!(field_error(&refused).1.contains("UTF-8"), "{refused}");
    let mut big = String::from("customer_id\n");
    for i in 0..=100_000 {
        big.push_str(&format!("{}\n", i + 1));
    }
    let refused = read_file(&app, token, &big).await.expect(422).body;
    assert!(
        field_error(&refused).1.contains("at most 100000"),
        "{refused}"
    );
    let huge = "customer_id\n".to_owned() + &"1\n".repeat(6 << 20);
    read_file(&app, token, &huge).await.expect(413);
}
