//! A send's link cards lead through short links of their own when their URL lies under
//! a registered destination: the card WeCom gets carries the short link, a click leads
//! on with the send's UTM parameters and counts for the item's performance (crawlers
//! not); a card to anywhere else goes as it is and counts no clicks. A change that
//! keeps the items keeps their links (renamed with the send), one that names them
//! again retires the old ones; the links are the sends', not staff's to list, read or
//! change, and hold no destination in place.

use serde_json::{Value, json};

use crate::broadcasts_wecom::{World, all_made};
use crate::links::{PHONE, click, register, report};

async fn item(w: &World, title: &str, url: &str) -> i64 {
    w.app
        .post(
            "/api/v1/content",
            &w.app.admin_token,
            json!({"kind": "link", "title": title, "url": url}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

async fn performance(w: &World, item: i64) -> Value {
    w.app
        .get(
            &format!("/api/v1/content/{item}/performance"),
            &w.app.admin_token,
        )
        .await
        .expect(200)
        .body
}

#[tokio::test]
async fn a_send_s_link_card_leads_through_its_own_short_link_whose_clicks_count_for_the_item() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    let destination = register(&w.app, "https://shop.example.com/").await;
    let tracked = item(&w, "春茶上新", "https://shop.example.com/spring?from=card").await;
    let untracked = item(&w, "合作伙伴", "https://partner.example.org/tea").await;
    let ids = w.ids(&["wmLS01"]).await;
    let send = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "spring-tea", "channel": "wecom", "audience": {"customers": ids},
                   "text": "春茶上新", "content_ids": [tracked, untracked]}),
        )
        .await
        .expect(201)
        .body;
    let short = send["attachments"][0]["tracked_link"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("a short link: {send}"))
        .to_owned();
    let path = short
        .strip_prefix(&w.app.url(""))
        .unwrap_or_else(|| panic!("{short} is on the server's address"))
        .to_owned();
    assert!(path.starts_with("/l/") && path.len() == 11, "{path}");
    assert!(
        send["attachments"][1]["tracked_link"].is_null(),
        "not under a registered destination: {send}"
    );
    assert_eq!(
        send["attachments"][0]["url"], "https://shop.example.com/spring?from=card",
        "the card's own URL is kept"
    );
    w.tasks_until(send["id"].as_i64().unwrap(), "made", all_made)
        .await;
    let message = w.standin.mass_messages().pop().unwrap();
    let cards = message.attachments.as_array().unwrap();
    assert_eq!(cards[0]["link"]["url"], short.as_str(), "{cards:?}");
    assert_eq!(cards[1]["link"]["url"], "https://partner.example.org/tea");
    let listed = w.app.get("/api/v1/links", token).await.expect(200).body;
    assert_eq!(listed["items"], json!([]), "the send's link is not staff's");

    // a customer opens the card twice; a chat app fetches its preview once
    for _ in 0..2 {
        let (status, location, _) = click(&w.app, &path, PHONE, None).await;
        assert_eq!(
            (status, location.as_str()),
            (
                302,
                "https://shop.example.com/spring?from=card&utm_source=siyu&utm_medium=wecom\
                 &utm_campaign=spring-tea"
            )
        );
    }
    let (status, _, _) = click(&w.app, &path, "facebookexternalhit/1.1", None).await;
    assert_eq!(status, 302);
    w.app.applied().await;
    let figures = performance(&w, tracked).await;
    assert_eq!(
        (&figures["tracked_sends"], &figures["clicks"]),
        (&json!(1), &json!(2)),
        "{figures}"
    );
    // the short link is the send's: it holds no destination in place (the message is
    // out) and is not staff's to read or change
    let report = report(&w.app).await;
    let link_id = report["rows"][0]["link_id"].clone();
    assert!(
        link_id.is_i64(),
        "the send's link is in the report: {report}"
    );
    w.app
        .get(&format!("/api/v1/links/{link_id}"), token)
        .await
        .expect(404);
    w.app
        .delete(
            &format!("/api/v1/link-destinations/{}", destination["id"]),
            token,
        )
        .await
        .expect(204);
    let (status, _, _) = click(&w.app, &path, PHONE, None).await;
    assert_eq!(status, 302, "still leads on");
    let other = performance(&w, untracked).await;
    assert_eq!(
        (&other["sends"], &other["tracked_sends"], &other["clicks"]),
        (&json!(1), &json!(0), &json!(0)),
        "{other}"
    );
}

#[tokio::test]
async fn a_change_that_keeps_the_items_keeps_their_links_and_one_that_names_them_again_retires_them()
 {
    let w = World::new().await;
    let token = &w.app.admin_token;
    register(&w.app, "https://shop.example.com/").await;
    let card = item(&w, "会员日", "https://shop.example.com/day").await;
    let ids = w.ids(&["wmZS02"]).await;
    let later = siyu_domain::time::format_rfc3339(siyu_store::now_ms() + 86_400_000);
    let made = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "member-day", "audience": {"customers": ids}, "text": "会员日",
                   "content_ids": [card], "send_at": later}),
        )
        .await
        .expect(201)
        .body;
    let slug = |send: &Value| send["attachments"][0]["tracked_link"]["slug"].clone();
    assert!(slug(&made).is_string(), "{made}");
    let url = format!("/api/v1/broadcasts/{}", made["id"]);
    let renamed = w
        .app
        .patch(&url, token, json!({"name": "member-day-2"}))
        .await
        .expect(200)
        .body;
    assert_eq!(
        slug(&renamed),
        slug(&made),
        "the items kept, their links kept"
    );
    let path = |send: &Value| format!("/l/{}", slug(send).as_str().unwrap());
    let (status, location, _) = click(&w.app, &path(&made), PHONE, None).await;
    assert_eq!(
        (status, location.as_str()),
        (
            302,
            "https://shop.example.com/day?utm_source=siyu&utm_medium=sandbox\
             &utm_campaign=member-day-2"
        ),
        "the kept link goes by the send's new name"
    );
    let again = w
        .app
        .patch(&url, token, json!({"content_ids": [card]}))
        .await
        .expect(200)
        .body;
    assert_ne!(slug(&again), slug(&made), "named again: a new link");
    // the new one leads on; the one it replaced was never sent and is gone
    let (status, _, _) = click(&w.app, &path(&again), PHONE, None).await;
    assert_eq!(status, 302);
    let (status, _, _) = click(&w.app, &path(&made), PHONE, None).await;
    assert_eq!(status, 410, "retired with the change");
    // items dropped: their links go too
    let none = w
        .app
        .patch(&url, token, json!({"content_ids": []}))
        .await
        .expect(200)
        .body;
    assert_eq!(none["attachments"], json!([]));
    let (status, _, _) = click(&w.app, &path(&again), PHONE, None).await;
    assert_eq!(status, 410);
}
