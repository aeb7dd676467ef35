//! Tracked links end to end: registered destinations only, UTM on the redirect, a
//! click as a `Link Clicked` event on the visitor's (or, personal, the customer's)
//! profile, crawlers counted apart, forged tokens anonymous, deleted links gone, and
//! the report; each bad input refused with its reason.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE, USER_AGENT};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::tracking::{send, source};

pub(crate) const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47 NetType/WIFI Language/zh_CN";

/// A client that does not follow redirects (to see the 302 itself).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn register(app: &TestApp, prefix: &str) -> Value {
    app.post(
        "/api/v1/link-destinations",
        &app.admin_token,
        json!({"url_prefix": prefix, "note": "the shop"}),
    )
    .await
    .expect(201)
    .body
}

/// Follows a link as a browser with this user agent and visitor cookie: the status,
/// where it leads and the cookie it sets.
pub(crate) async fn click(
    app: &TestApp,
    path: &str,
    agent: &str,
    visitor: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut request = no_redirects().get(app.url(path)).header(USER_AGENT, agent);
    if let Some(visitor) = visitor {
        request = request.header(COOKIE, format!("siyu_visitor={visitor}"));
    }
    let answer = request.send().await.unwrap();
    let header = |name| {
        answer
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    (
        answer.status().as_u16(),
        header(LOCATION).unwrap_or_default(),
        header(SET_COOKIE),
    )
}

/// The `Link Clicked` events on a customer's timeline.
async fn clicks_of(app: &TestApp, customer: i64) -> Vec<Value> {
    let timeline = app
        .get(
            &format!("/api/v1/customers/{customer}/timeline"),
            &app.admin_token,
        )
        .await
        .expect(200)
        .body;
    timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| {
            [&item["event"], item]
                .into_iter()
                .find(|e| e["name"] == "Link Clicked")
                .cloned()
        })
        .collect()
}

async fn lookup(app: &TestApp, kind: &str, value: &str) -> Value {
    app.get(
        &format!("/api/v1/customers/lookup?kind={kind}&value={value}"),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body
}

pub(crate) async fn report(app: &TestApp) -> Value {
    let today = chrono::Utc::now().date_naive();
    app.get(
        &format!(
            "/api/v1/links/report?from={}&to={}",
            today.pred_opt().unwrap(),
            today.succ_opt().unwrap()
        ),
        &app.admin_token,
    )
    .await
    .expect(200)
    .body
}

#[tokio::test]
async fn a_link_redirects_with_utm_and_each_click_lands_on_a_profile() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let destination = register(&app, "https://Shop.Example.com/promo").await;
    assert_eq!(destination["url_prefix"], "https://shop.example.com/promo");
    let link = app
        .post(
            "/api/v1/links",
            token,
            json!({"name": "春季上新", "destination": "https://shop.example.com/promo/spring?id=7&utm_source=old",
                   "utm_source": "douyin", "utm_medium": "live", "utm_campaign": "spring"}),
        )
        .await
        .expect(201)
        .body;
    let path = link["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/l/") && path.len() == 11, "{link}");
    let target = link["target"].as_str().unwrap().to_owned();
    assert_eq!(
        target,
        "https://shop.example.com/promo/spring?id=7&utm_source=douyin&utm_medium=live&utm_campaign=spring"
    );

    // a person: sent on, known again by the cookie
    let (status, location, cookie) = click(&app, &path, PHONE, None).await;
    assert_eq!((status, location.as_str()), (302, target.as_str()));
    let cookie = cookie.expect("a visitor cookie");
    let visitor = cookie
        .strip_prefix("siyu_visitor=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/;"),
        "{cookie}"
    );
    let (status, _, again) = click(&app, &path, PHONE, Some(&visitor)).await;
    assert_eq!(status, 302);
    assert!(again.is_none(), "a known visitor gets no new cookie");
    // a preview crawler: sent on, counted apart, no cookie and no event
    let (status, location, cookie) = click(&app, &path, "facebookexternalhit/1.1", None).await;
    assert_eq!((status, location.as_str()), (302, target.as_str()));
    assert!(cookie.is_none());

    app.applied().await;
    let visitor_profile = lookup(&app, "anonymous_id", &visitor).await;
    let clicks = clicks_of(&app, visitor_profile["id"].as_i64().unwrap()).await;
    assert_eq!(clicks.len(), 2, "{clicks:?}");
    assert_eq!(clicks[0]["properties"]["link_id"], link["id"]);
    assert_eq!(clicks[0]["properties"]["utm_source"], "douyin");
    assert_eq!(clicks[0]["properties"]["personal"], false);

    let figures = report(&app).await;
    assert_eq!(figures["total"]["clicks"], 2, "{figures}");
    assert_eq!(figures["total"]["personal_clicks"], 0);
    assert_eq!(figures["total"]["crawler_fetches"], 1);
    assert_eq!(figures["rows"][0]["link_id"], link["id"]);
    let today: i64 = figures["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["clicks"].as_i64().unwrap())
        .sum();
    assert_eq!(today, 2);

    // changed: the redirect follows at once on this node
    let changed = app
        .patch(
            &format!("/api/v1/links/{}", link["id"]),
            token,
            json!({"utm_medium": "", "destination": "https://shop.example.com/promo"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        changed["target"],
        "https://shop.example.com/promo?utm_source=douyin&utm_campaign=spring"
    );
    let (_, location, _) = click(&app, &path, PHONE, Some(&visitor)).await;
    assert_eq!(location, changed["target"].as_str().unwrap());

    // deleted: gone, its figures kept
    app.delete(&format!("/api/v1/links/{}", link["id"]), token)
        .await
        .expect(204);
    let (status, _, _) = click(&app, &path, PHONE, None).await;
    assert_eq!(status, 410);
    app.applied().await;
    let figures = report(&app).await;
    assert_eq!(figures["total"]["clicks"], 3, "{figures}");
    assert_eq!(figures["rows"][0]["deleted"], true);
    let (status, _, _) = click(&app, "/l/ZZZZZZZZ", PHONE, None).await;
    assert_eq!(status, 404);
    let (status, _, _) = click(&app, "/l/short", PHONE, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_personal_link_s_click_is_its_customer_s_and_a_forged_one_is_nobody_s() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    register(&app, "https://m.example.com/").await;
    let link = app
        .post(
            "/api/v1/links",
            token,
            json!({"name": "会员日", "destination": "https://m.example.com/day"}),
        )
        .await
        .expect(201)
        .body;
    let (_, key) = source(&app).await;
    for user in ["u-1", "u-2"] {
        send(
            &app,
            "/v1/identify",
            &key,
            json!({"userId": user, "traits": {"name": user}}),
        )
        .await
        .expect(200);
    }
    let her = lookup(&app, "user_id", "u-1").await["id"].as_i64().unwrap();
    let other = lookup(&app, "user_id", "u-2").await["id"].as_i64().unwrap();
    let personal = app
        .post(
            &format!("/api/v1/links/{}/personal", link["id"]),
            token,
            json!({"customer_id": her}),
        )
        .await
        .expect(200)
        .body;
    let path = personal["path"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with(link["path"].as_str().unwrap()),
        "{personal}"
    );
    // the same customer, the same token
    let again = app
        .post(
            &format!("/api/v1/links/{}/personal", link["id"]),
            token,
            json!({"customer_id": her}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(again["token"], personal["token"]);

    let (status, location, _) = click(&app, &path, PHONE, None).await;
    assert_eq!(
        (status, location.as_str()),
        (302, "https://m.example.com/day")
    );
    // her token with another customer's id: sent on, but nobody's click
    let mac = personal["token"]
        .as_str()
        .unwrap()
        .split_once('.')
        .unwrap()
        .1;
    let forged = format!(
        "{}/{}.{mac}",
        link["path"].as_str().unwrap(),
        radix36(other)
    );
    let (status, _, forged_cookie) = click(&app, &forged, PHONE, None).await;
    assert_eq!(status, 302);
    app.applied().await;

    let hers = clicks_of(&app, her).await;
    assert_eq!(hers.len(), 1, "{hers:?}");
    assert_eq!(hers[0]["properties"]["personal"], true);
    assert!(
        clicks_of(&app, other).await.is_empty(),
        "a forged token is not u-2's click"
    );
    // the forged click is the anonymous visitor's
    let visitor = forged_cookie
        .unwrap()
        .strip_prefix("siyu_visitor=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let anonymous = lookup(&app, "anonymous_id", &visitor).await["id"]
        .as_i64()
        .unwrap();
    assert_ne!(anonymous, her);
    assert_ne!(anonymous, other);
    let figures = report(&app).await;
    assert_eq!(figures["total"]["clicks"], 2, "{figures}");
    assert_eq!(figures["total"]["personal_clicks"], 1);

    // out of reach or unknown customers get no personal link
    app.post(
        &format!("/api/v1/links/{}/personal", link["id"]),
        token,
        json!({"customer_id": 999_999}),
    )
    .await
    .expect(422);
}

fn radix36(mut n: i64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn links_lead_only_to_registered_destinations_and_bad_input_is_refused() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    // nothing registered: no link at all
    let refused = app
        .post(
            "/api/v1/links",
            token,
            json!({"name": "x", "destination": "https://shop.example.com/"}),
        )
        .await
        .expect(422);
    assert!(
        refused.body.to_string().contains("destination"),
        "{}",
        refused.body
    );
    let destination = register(&app, "https://shop.example.com/promo").await;
    for bad in [
        "https://shop.example.com/promotions",
        "https://evil.example.com/promo",
        "http://shop.example.com/promo",
        "javascript:alert(1)",
        "https://user:pw@shop.example.com/promo",
        "/promo",
    ] {
        let refused = app
            .post(
                "/api/v1/links",
                token,
                json!({"name": "x", "destination": bad}),
            )
            .await
            .expect(422);
        assert!(
            refused.body.to_string().contains("destination"),
            "{bad}: {}",
            refused.body
        );
    }
    for bad in [
        json!({"name": "", "destination": "https://shop.example.com/promo"}),
        json!({"name": "x", "destination": "https://shop.example.com/promo", "utm_source": "a".repeat(201)}),
        json!({"name": "x", "destination": "https://shop.example.com/promo", "account_id": 12345}),
        json!({"name": "x", "destination": "https://shop.example.com/promo", "colour": "red"}),
    ] {
        app.post("/api/v1/links", token, bad).await.expect(422);
    }
    // destinations: no query, registered once, operations may not register
    app.post(
        "/api/v1/link-destinations",
        token,
        json!({"url_prefix": "https://shop.example.com/promo?x=1"}),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/link-destinations",
        token,
        json!({"url_prefix": "https://shop.example.com/promo"}),
    )
    .await
    .expect(409);
    let operations = app.token_with_role("operations").await;
    app.post(
        "/api/v1/link-destinations",
        &operations,
        json!({"url_prefix": "https://other.example.com/"}),
    )
    .await
    .expect(403);
    // a destination a live link needs stays until the link goes
    let link = app
        .post(
            "/api/v1/links",
            &operations,
            json!({"name": "ok", "destination": "https://shop.example.com/promo/a"}),
        )
        .await
        .expect(201)
        .body;
    let path = format!("/api/v1/link-destinations/{}", destination["id"]);
    app.delete(&path, token).await.expect(409);
    app.delete(&format!("/api/v1/links/{}", link["id"]), token)
        .await
        .expect(204);
    app.delete(&path, token).await.expect(204);
    app.delete(&path, token).await.expect(404);
}
