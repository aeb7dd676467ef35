//! The content library end to end: files uploaded then named by items of every kind,
//! refused with a reason when they do not fit their kind, listed and filtered, served
//! back safely, changed and deleted within roles and reach.

use reqwest::header;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, answer};

/// A PNG of one pixel.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Uploads a file for the library; answers the response.
pub async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> crate::helpers::Answer {
    let response = app
        .http
        .post(app.url("/api/v1/content/files"))
        .query(&[("name", name)])
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// Uploads the one-pixel PNG; answers its file id.
pub async fn upload_png(app: &TestApp, token: &str) -> i64 {
    upload(app, token, "封面.png", "image/png", PNG.to_vec())
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn items_of_every_kind_are_kept_with_their_files_and_found_again() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let image = upload_png(&app, token).await;
    let video = upload(&app, token, "开箱.mp4", "video/mp4", vec![0u8; 2048])
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let pdf = upload(
        &app,
        token,
        "价目表 2026.pdf",
        "application/pdf",
        b"%PDF-1.4 x".to_vec(),
    )
    .await
    .expect(201)
    .body;
    assert_eq!(pdf["size"], 10);
    assert_eq!(pdf["content_type"], "application/pdf");
    let pdf = pdf["id"].as_i64().unwrap();

    let items = [
        json!({"kind": "text", "title": "开场白", "text": "您好，欢迎光临", "category": "story",
               "source": "ogc", "tags": ["开场", "通用"]}),
        json!({"kind": "image", "title": "新品海报", "file_id": image, "category": "promotion",
               "tags": ["新品"]}),
        json!({"kind": "link", "title": "春季上新", "url": "https://shop.example.com/spring",
               "description": "全场八折", "image_file_id": image, "tags": ["新品", "春季"]}),
        json!({"kind": "miniprogram", "title": "会员中心", "appid": "wx0123456789abcdef",
               "page": "pages/member/index?from=siyu", "image_file_id": image}),
        json!({"kind": "video", "title": "开箱视频", "file_id": video, "source": "ugc"}),
        json!({"kind": "file", "title": "价目表", "file_id": pdf, "category": "product"}),
        json!({"kind": "article", "title": "护肤小知识", "article": "第一段。\n\n第二段。",
               "description": "三分钟读完", "category": "knowledge", "source": "pgc"}),
    ];
    let mut ids = Vec::new();
    for item in &items {
        let made = app
            .post("/api/v1/content", token, item.clone())
            .await
            .expect(201)
            .body;
        for (field, value) in item.as_object().unwrap() {
            assert_eq!(&made[field], value, "{field} of {made}");
        }
        ids.push(made["id"].as_i64().unwrap());
    }
    let one = app
        .get(&format!("/api/v1/content/{}", ids[2]), token)
        .await
        .expect(200)
        .body;
    assert_eq!(one["category"], "other", "the default category");
    assert_eq!(one["source"], "bgc", "the default source");

    let list = |query: &'static str| {
        let app = &app;
        async move {
            let page = app
                .get(&format!("/api/v1/content{query}"), &app.admin_token)
                .await
                .expect(200)
                .body;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await.len(), 7);
    assert_eq!(list("").await[0], "护肤小知识", "newest first");
    assert_eq!(list("?tag=新品").await, vec!["春季上新", "新品海报"]);
    assert_eq!(list("?kind=video").await, vec!["开箱视频"]);
    assert_eq!(
        list("?source=pgc&category=knowledge").await,
        vec!["护肤小知识"]
    );
    assert_eq!(
        list("?q=%E4%BC%9A%E5%91%98").await,
        vec!["会员中心"],
        "q=会员"
    );
    assert_eq!(
        list("?tag=%25").await,
        Vec::<String>::new(),
        "a wildcard is a character"
    );
    let first = app
        .get("/api/v1/content?limit=4", token)
        .await
        .expect(200)
        .body;
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/content?limit=4&cursor={cursor}"), token)
        .await
        .expect(200)
        .body;
    let paged: Vec<i64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(
        paged, newest_first,
        "two pages, newest first, each item once"
    );

    // an image is served inline; any other file as an attachment, never run
    let served = app
        .http
        .get(app.url(&format!("/api/v1/content/files/{image}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()[header::CONTENT_TYPE], "image/png");
    assert!(served.headers().get(header::CONTENT_DISPOSITION).is_none());
    assert_eq!(served.bytes().await.unwrap().as_ref(), PNG);
    let html = upload(
        &app,
        token,
        "x.html",
        "text/html",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap();
    let served = app
        .http
        .get(app.url(&format!("/api/v1/content/files/{html}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert!(
        served.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");

    // changed: the body as a whole, the kind kept; deleted: gone from the library
    let changed = app
        .patch(
            &format!("/api/v1/content/{}", ids[0]),
            token,
            json!({"text": "您好，欢迎再次光临", "tags": []}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["text"], "您好，欢迎再次光临");
    assert_eq!(changed["title"], "开场白");
    assert_eq!(changed["tags"], json!([]));
    app.patch(
        &format!("/api/v1/content/{}", ids[0]),
        token,
        json!({"url": "https://shop.example.com/"}),
    )
    .await
    .expect(422);
    app.delete(&format!("/api/v1/content/{}", ids[0]), token)
        .await
        .expect(204);
    app.get(&format!("/api/v1/content/{}", ids[0]), token)
        .await
        .expect(404);
    app.delete(&format!("/api/v1/content/{}", ids[0]), token)
        .await
        .expect(404);
    assert_eq!(list("").await.len(), 6);

    let audit = app
        .get("/api/v1/audit-log?action=content.&limit=100", token)
        .await
        .expect(200)
        .body;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "content.file_uploaded",
        "content.item_created",
        "content.item_updated",
        "content.item_deleted",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn bad_items_and_files_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let image = upload_png(&app, token).await;
    let gif = upload(&app, token, "a.gif", "image/gif", b"GIF89a".to_vec())
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let pdf = upload(&app, token, "a.pdf", "application/pdf", b"%PDF".to_vec())
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let refused: Vec<(Value, &str)> = vec![
        (
            json!({"kind": "text", "title": "空", "text": "   "}),
            "text",
        ),
        (
            json!({"kind": "text", "title": "长", "text": "字".repeat(1_400)}),
            "text",
        ),
        (json!({"kind": "text", "title": " ", "text": "hi"}), "title"),
        (
            json!({"kind": "text", "title": "多", "text": "hi", "url": "https://a.example"}),
            "url",
        ),
        (json!({"kind": "image", "title": "无文件"}), "file_id"),
        (
            json!({"kind": "image", "title": "GIF", "file_id": gif}),
            "file_id",
        ),
        (
            json!({"kind": "video", "title": "PDF", "file_id": pdf}),
            "file_id",
        ),
        (
            json!({"kind": "image", "title": "无此文件", "file_id": 999_999}),
            "file_id",
        ),
        (
            json!({"kind": "link", "title": "坏链接", "url": "javascript:alert(1)"}),
            "url",
        ),
        (
            json!({"kind": "link", "title": "图", "url": "https://a.example", "image_file_id": pdf}),
            "image_file_id",
        ),
        (
            json!({"kind": "miniprogram", "title": "小程序", "appid": "wx1", "page": "p", "image_file_id": image}),
            "appid",
        ),
        (
            json!({"kind": "miniprogram", "title": "小程序", "appid": "wx0123456789abcdef", "page": "p"}),
            "image_file_id",
        ),
        (
            json!({"kind": "article", "title": "文章", "article": ""}),
            "article",
        ),
        (
            json!({"kind": "text", "title": "标签", "text": "hi", "tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "tags",
        ),
        (
            json!({"kind": "text", "title": "单位", "text": "hi", "unit_id": 999_999}),
            "unit_id",
        ),
    ];
    for (body, field) in refused {
        let answer = app.post("/api/v1/content", token, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"], field,
            "{body}: {}",
            answer.body
        );
    }
    app.post(
        "/api/v1/content",
        token,
        json!({"kind": "poster", "title": "x"}),
    )
    .await
    .expect(422);

    // a card's picture is at most 2 MB (an image item's, 10 MB)
    let big = upload(
        &app,
        token,
        "大图.png",
        "image/png",
        vec![7u8; 3 * 1024 * 1024],
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap();
    let card = app
        .post(
            "/api/v1/content",
            token,
            json!({"kind": "link", "title": "卡片", "url": "https://a.example/", "image_file_id": big}),
        )
        .await
        .expect(422);
    assert_eq!(
        card.body["error"]["details"]["fields"][0]["field"],
        "image_file_id"
    );
    let image = app
        .post(
            "/api/v1/content",
            token,
            json!({"kind": "image", "title": "大图", "file_id": big}),
        )
        .await
        .expect(201);
    app.delete(&format!("/api/v1/content/{}", image.body["id"]), token)
        .await
        .expect(204);

    // an empty upload, a bad name, a type that is none, one too big
    upload(&app, token, "x.bin", "a/b/c", PNG.to_vec())
        .await
        .expect(422);
    upload(&app, token, "空.png", "image/png", Vec::new())
        .await
        .expect(422);
    upload(&app, token, " ", "image/png", PNG.to_vec())
        .await
        .expect(422);
    upload(
        &app,
        token,
        "大.bin",
        "application/octet-stream",
        vec![0u8; 20 * 1024 * 1024 + 1],
    )
    .await
    .expect(413);
    assert_eq!(
        app.get("/api/v1/content", token).await.expect(200).body["items"],
        json!([]),
        "nothing refused was kept"
    );

    // an import's file (stored by siyu, not for the library) is no content
    let file = app
        .store
        .tenant(app.tenant.id)
        .put_file("customers.csv", "text/csv", b"email\nli@example.com\n")
        .await
        .unwrap()
        .id
        .0;
    app.get(&format!("/api/v1/content/files/{file}"), token)
        .await
        .expect(404);
    let named = app
        .post(
            "/api/v1/content",
            token,
            json!({"kind": "file", "title": "偷看", "file_id": file}),
        )
        .await
        .expect(422);
    assert_eq!(
        named.body["error"]["details"]["fields"][0]["field"],
        "file_id"
    );
}

#[tokio::test]
async fn the_library_is_read_by_all_and_changed_within_roles_and_reach() {
    let app = TestApp::spawn().await;
    let root = app.store.tenant(app.tenant.id).root_unit().await.unwrap();
    let mut clients = Vec::new();
    for (email, role, scope) in [
        ("writer@example.com", "content", "own"),
        ("other@example.com", "content", "own"),
        ("service@example.com", "service", "own"),
    ] {
        app.post(
            "/api/v1/staff",
            &app.admin_token,
            json!({"unit_id": root.id, "role": role, "email": email, "name": email,
                   "password": PASSWORD, "data_scope": scope}),
        )
        .await
        .expect(201);
        let (client, login) = app.login(email, PASSWORD).await;
        login.expect(200);
        clients.push(client);
    }
    let call = |client: usize, method: reqwest::Method, path: String, body: Option<Value>| {
        let (app, client) = (&app, clients[client].clone());
        async move {
            let mut request = client.request(method, app.url(&path));
            if let Some(body) = body {
                request = request.json(&body);
            }
            answer(request.send().await.unwrap()).await
        }
    };
    let made = call(
        0,
        reqwest::Method::POST,
        "/api/v1/content".into(),
        Some(json!({"kind": "text", "title": "话术", "text": "您好"})),
    )
    .await
    .expect(201)
    .body;
    let path = format!("/api/v1/content/{}", made["id"]);
    // everyone with content.read reads it
    for client in 0..3 {
        call(client, reqwest::Method::GET, path.clone(), None)
            .await
            .expect(200);
    }
    // service staff may not write; a colleague who does not reach the maker may not change it
    call(
        2,
        reqwest::Method::POST,
        "/api/v1/content".into(),
        Some(json!({"kind": "text", "title": "x", "text": "x"})),
    )
    .await
    .expect(403);
    let other = call(
        1,
        reqwest::Method::PATCH,
        path.clone(),
        Some(json!({"title": "改"})),
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.body);
    call(1, reqwest::Method::DELETE, path.clone(), None)
        .await
        .expect(403);
    // the maker and the admin may
    call(
        0,
        reqwest::Method::PATCH,
        path.clone(),
        Some(json!({"title": "改"})),
    )
    .await
    .expect(200);
    app.delete(&path, &app.admin_token).await.expect(204);
}
