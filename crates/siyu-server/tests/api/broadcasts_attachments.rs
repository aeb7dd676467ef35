//! Mass sends that carry items of the content library: on WeCom each becomes an
//! attachment of `add_msg_template`, its files uploaded as media once and again only
//! when WeCom's 3 days run out; a link card's picture is a lasting image. The send
//! keeps the items as they were. Bad attachments are refused.

use std::time::Duration;

use serde_json::{Value, json};
use siyu_domain::ids::{ConnectorId, FileId};

use crate::broadcasts_wecom::{World, all_made};
use crate::content::{upload, upload_png};

const DAY_MS: i64 = 86_400_000;

async fn item(w: &World, body: Value) -> i64 {
    w.app
        .post("/api/v1/content", &w.app.admin_token, body)
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

async fn send_with(w: &World, ids: &[i64], text: &str, content_ids: &[i64]) -> i64 {
    w.app
        .post(
            "/api/v1/broadcasts",
            &w.app.admin_token,
            json!({"name": text, "channel": "wecom", "audience": {"customers": ids},
                   "text": text, "content_ids": content_ids}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn attachments_go_as_media_uploaded_once_while_they_last() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    let png = upload_png(&w.app, token).await;
    let pdf = upload(
        &w.app,
        token,
        "价目表.pdf",
        "application/pdf",
        b"%PDF-1.4 price list".to_vec(),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap();
    let image = item(
        &w,
        json!({"kind": "image", "title": "海报", "file_id": png}),
    )
    .await;
    let link = item(
        &w,
        json!({"kind": "link", "title": "春茶上新", "url": "https://shop.example.com/spring",
               "description": "八折", "image_file_id": png}),
    )
    .await;
    let mini = item(
        &w,
        json!({"kind": "miniprogram", "title": "会员中心", "appid": "wx0123456789abcdef",
               "page": "pages/member/index", "image_file_id": png}),
    )
    .await;
    let file = item(
        &w,
        json!({"kind": "file", "title": "价目表", "file_id": pdf}),
    )
    .await;
    let ids = w.ids(&["wmZS02", "wmZS03", "wmLS01"]).await;

    let first = send_with(&w, &ids, "新品到店", &[image, link, mini, file]).await;
    let sent = w
        .app
        .get(&format!("/api/v1/broadcasts/{first}"), token)
        .await
        .expect(200)
        .body;
    let kinds: Vec<&str> = sent["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["image", "link", "miniprogram", "file"]);
    w.tasks_until(first, "made", all_made).await;

    // one message per member, each with the four attachments in order
    let messages = w.standin.mass_messages();
    assert_eq!(messages.len(), 2, "a task per member");
    let uploads = w.standin.media_uploads();
    let of_kind = |kind: &str| {
        uploads
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.media_id.clone())
            .collect::<Vec<_>>()
    };
    // the PNG as media (the image and the card's picture both) and as a lasting image,
    // the PDF as a file: once each, or once per batch when the two members' batches
    // go at the same moment (a race that costs an upload, never a send)
    for (kind, n) in [
        ("image", of_kind("image").len()),
        ("uploadimg", of_kind("uploadimg").len()),
        ("file", of_kind("file").len()),
    ] {
        assert!(
            (1..=2).contains(&n),
            "{kind} uploaded {n} times: {uploads:#?}"
        );
    }
    assert_eq!(
        uploads.len(),
        of_kind("image").len() + of_kind("uploadimg").len() + of_kind("file").len()
    );
    for message in &messages {
        let a = message.attachments.as_array().unwrap();
        let types: Vec<&str> = a.iter().map(|a| a["msgtype"].as_str().unwrap()).collect();
        assert_eq!(types, ["image", "link", "miniprogram", "file"]);
        let image = a[0]["image"]["media_id"].as_str().unwrap().to_owned();
        assert!(of_kind("image").contains(&image), "{image}");
        let picurl = a[1]["link"]["picurl"].as_str().unwrap().to_owned();
        assert!(of_kind("uploadimg").contains(&picurl), "{picurl}");
        assert_eq!(
            a[1]["link"],
            json!({"title": "春茶上新", "url": "https://shop.example.com/spring",
                   "desc": "八折", "picurl": picurl})
        );
        let pic = a[2]["miniprogram"]["pic_media_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(of_kind("image").contains(&pic), "{pic}");
        assert_eq!(
            a[2]["miniprogram"],
            json!({"title": "会员中心", "appid": "wx0123456789abcdef",
                   "page": "pages/member/index", "pic_media_id": pic})
        );
        let file = a[3]["file"]["media_id"].as_str().unwrap().to_owned();
        assert!(of_kind("file").contains(&file), "{file}");
    }
    let uploaded = uploads.len();

    // a later send while the media lasts uploads nothing; an item changed since does not
    // change the first send
    w.app
        .patch(
            &format!("/api/v1/content/{link}"),
            token,
            json!({"title": "夏茶上新"}),
        )
        .await
        .expect(200);
    let kept = w
        .app
        .get(&format!("/api/v1/broadcasts/{first}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(kept["attachments"][1]["title"], "春茶上新");
    let second = send_with(&w, &ids[..1], "再次提醒", &[image, file]).await;
    w.tasks_until(second, "made", all_made).await;
    assert_eq!(
        w.standin.media_uploads().len(),
        uploaded,
        "nothing uploaded again"
    );

    // three days on, the media has run out on WeCom: uploaded again before the call
    w.standin
        .advance_clock(Duration::from_millis(3 * DAY_MS as u64));
    let scope = w.app.store.tenant(w.app.tenant.id);
    for (file, purpose) in [(png, "media:image"), (pdf, "media:file")] {
        let (connector, file) = (ConnectorId(w.connector), FileId(file));
        let mut kept = scope
            .content_media(connector, file, purpose)
            .await
            .unwrap()
            .unwrap();
        // half an hour before WeCom forgets it: within the margin, so uploaded again
        kept.uploaded_at -= 3 * DAY_MS - 30 * 60_000;
        scope
            .record_content_media(connector, file, purpose, &kept)
            .await
            .unwrap();
    }
    // the link card's picture is WeCom's for good: not uploaded again
    let third = send_with(&w, &ids[..1], "三天以后", &[image, file, link]).await;
    w.tasks_until(third, "made", all_made).await;
    let uploads = w.standin.media_uploads();
    let again: Vec<&str> = uploads[uploaded..]
        .iter()
        .map(|m| m.kind.as_str())
        .collect();
    assert_eq!(
        again,
        ["image", "file"],
        "the image and the file again: {uploads:#?}"
    );
    let last = w.standin.mass_messages().pop().unwrap();
    assert_eq!(
        last.attachments[0]["image"]["media_id"],
        uploads[uploaded].media_id.as_str()
    );
    assert_eq!(
        last.attachments[1]["file"]["media_id"],
        uploads[uploaded + 1].media_id.as_str()
    );
}

#[tokio::test]
async fn bad_attachments_are_refused() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    let ids = w.ids(&["wmZS02"]).await;
    let png = upload_png(&w.app, token).await;
    let text = item(&w, json!({"kind": "text", "title": "话术", "text": "您好"})).await;
    let article = item(
        &w,
        json!({"kind": "article", "title": "文章", "article": "正文"}),
    )
    .await;
    let mut images = Vec::new();
    for n in 0..10 {
        images.push(
            item(
                &w,
                json!({"kind": "image", "title": format!("图{n}"), "file_id": png}),
            )
            .await,
        );
    }
    let long = item(
        &w,
        json!({"kind": "link", "title": "春".repeat(50), "url": "https://shop.example.com/"}),
    )
    .await;
    for (content_ids, says) in [
        (vec![long], "over WeCom's 128 bytes"),
        (vec![text], "is a text"),
        (vec![article], "article"),
        (vec![999_999], "no content item"),
        (vec![images[0], images[0]], "twice"),
        (images.clone(), "at most 9"),
    ] {
        let answer = w
            .app
            .post(
                "/api/v1/broadcasts",
                token,
                json!({"name": "x", "channel": "wecom", "audience": {"customers": ids},
                       "text": "你好", "content_ids": content_ids}),
            )
            .await
            .expect(422);
        let field = &answer.body["error"]["details"]["fields"][0];
        assert_eq!(field["field"], "content_ids", "{}", answer.body);
        assert!(
            field["message"].as_str().unwrap().contains(says),
            "{}",
            answer.body
        );
    }
    // an article goes on the sandbox
    w.app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "x", "audience": {"customers": ids}, "text": "你好",
                   "content_ids": [article]}),
        )
        .await
        .expect(201);
}
