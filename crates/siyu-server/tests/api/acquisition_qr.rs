//! A channel code's QR images and landing page: siyu's own QR of the landing page and
//! WeCom's QR of the contact way, in PNG and SVG, with and without the brand's logo,
//! each read back by an independent decoder (rqrr; an SVG rasterized by resvg first).

use std::io::Cursor;

use image::{ImageFormat, Rgba, RgbaImage};
use reqwest::header::{CONTENT_TYPE, SET_COOKIE, USER_AGENT};
use serde_json::{Value, json};

use crate::acquisition::{field, wecom_corp, wecom_settled};
use crate::helpers::TestApp;

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47 NetType/WIFI Language/zh_CN";

/// A fetched image: its content type, what siyu says it encodes, its bytes.
pub(crate) struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub source: String,
    pub bytes: Vec<u8>,
}

async fn fetch(app: &TestApp, path: &str, token: Option<&str>) -> Fetched {
    let mut request = app.http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    Fetched {
        status: answer.status().as_u16(),
        content_type: header(CONTENT_TYPE.as_str()),
        source: header("siyu-qr-source"),
        bytes: answer.bytes().await.unwrap().to_vec(),
    }
}

/// The pixels of a PNG or JPEG image, or of an SVG rasterized.
fn pixels(image: &Fetched) -> RgbaImage {
    if image.content_type.starts_with("image/svg+xml") {
        let svg = std::str::from_utf8(&image.bytes).unwrap();
        let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).unwrap();
        let size = tree.size().to_int_size();
        let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
        resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
        RgbaImage::from_raw(size.width(), size.height(), pixmap.take()).unwrap()
    } else {
        image::load_from_memory(&image.bytes).unwrap().to_rgba8()
    }
}

/// The text of the one QR code in the image.
pub(crate) fn decode(image: &Fetched) -> String {
    let pixels = pixels(image);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        pixels.width() as usize,
        pixels.height() as usize,
        |x, y| {
            let [r, g, b, _] = pixels.get_pixel(x as u32, y as u32).0;
            ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
        },
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("the QR code decodes").1
}

/// Pixels neither black nor white: the logo's.
fn coloured(image: &Fetched) -> usize {
    pixels(image)
        .pixels()
        .filter(|p| {
            let [r, g, b, _] = p.0;
            !(r == g && g == b)
        })
        .count()
}

/// A red logo as a PNG file.
fn logo_png() -> Vec<u8> {
    let image = RgbaImage::from_fn(96, 96, |x, y| {
        if (x as i32 - 48).pow(2) + (y as i32 - 48).pow(2) < 48 * 48 {
            Rgba([220, 40, 40, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    png
}

async fn put_logo(app: &TestApp, bytes: Vec<u8>) -> (u16, Value) {
    let answer = app
        .http
        .put(app.url("/api/v1/settings/brand-logo"))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, "image/png")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body = answer.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn a_code_s_landing_qr_decodes_to_its_page_in_png_and_svg_with_and_without_a_logo() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "海报", "state": "poster-1"}),
        )
        .await
        .expect(201)
        .body;
    let id = code["id"].as_i64().unwrap();
    assert_eq!(code["qr_source"], "landing", "{code}");
    let path = code["landing_path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/c/") && path.len() == 3 + 16, "{path}");
    let url = app.url(&path);

    for format in ["png", "svg"] {
        let image = fetch(
            &app,
            &format!("/api/v1/channel-codes/{id}/qr?format={format}"),
            Some(token),
        )
        .await;
        assert_eq!(image.status, 200);
        assert_eq!(image.source, "landing");
        assert!(
            image.content_type.starts_with("image/"),
            "{}",
            image.content_type
        );
        assert_eq!(decode(&image), url, "{format}");
        assert_eq!(coloured(&image), 0, "no logo drawn");
    }
    // png is the default
    let image = fetch(&app, &format!("/api/v1/channel-codes/{id}/qr"), Some(token)).await;
    assert_eq!(image.content_type, "image/png");

    // a logo asked for before the brand has one
    let refused = app
        .get(&format!("/api/v1/channel-codes/{id}/qr?logo=true"), token)
        .await
        .expect(409);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("brand-logo")
    );
    app.get("/api/v1/settings/brand-logo", token)
        .await
        .expect(404);
    // what is not a PNG or JPEG is refused, and nothing kept
    let (status, body) = put_logo(&app, b"GIF89a not a logo".to_vec()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "logo");
    let (status, body) = put_logo(&app, logo_png()[..60].to_vec()).await;
    assert_eq!(status, 422, "a cut-short PNG: {body}");
    app.get("/api/v1/settings/brand-logo", token)
        .await
        .expect(404);
    // a real one is kept as sent
    let (status, _) = put_logo(&app, logo_png()).await;
    assert_eq!(status, 204);
    let kept = fetch(&app, "/api/v1/settings/brand-logo", Some(token)).await;
    assert_eq!(kept.bytes, logo_png());
    for format in ["png", "svg"] {
        let image = fetch(
            &app,
            &format!("/api/v1/channel-codes/{id}/qr?format={format}&logo=true"),
            Some(token),
        )
        .await;
        assert_eq!(image.status, 200);
        assert_eq!(decode(&image), url, "{format} with the logo still scans");
        assert!(coloured(&image) > 100, "{format}: the logo is drawn");
    }
    // bad parameters
    let bad = app
        .get(&format!("/api/v1/channel-codes/{id}/qr?format=gif"), token)
        .await
        .expect(422);
    assert_eq!(field(&bad.body), "format");
    app.get(&format!("/api/v1/channel-codes/{id}/qr?logo=maybe"), token)
        .await
        .expect(422);
    app.get("/api/v1/channel-codes/999999/qr", token)
        .await
        .expect(404);
    // the service role reads no codes; an analyst may not set the logo
    let service = app.token_with_role("service").await;
    app.get(&format!("/api/v1/channel-codes/{id}/qr"), &service)
        .await
        .expect(403);
    app.call(
        reqwest::Method::DELETE,
        "/api/v1/settings/brand-logo",
        &service,
        None,
    )
    .await
    .expect(403);
    app.call(
        reqwest::Method::DELETE,
        "/api/v1/settings/brand-logo",
        token,
        None,
    )
    .await
    .expect(204);
    app.call(
        reqwest::Method::DELETE,
        "/api/v1/settings/brand-logo",
        token,
        None,
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn a_landing_page_counts_people_and_keeps_crawlers_apart() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "门店", "state": "store-1"}),
        )
        .await
        .expect(201)
        .body;
    let path = code["landing_path"].as_str().unwrap().to_owned();
    // a phone: the page, and an anonymous id to know it again
    let page = app
        .http
        .get(app.url(&path))
        .header(USER_AGENT, PHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get(SET_COOKIE)
        .expect("a visitor cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("siyu_visitor=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("请稍后再试"), "no WeCom QR yet: {html}");
    // a preview crawler: the page, no cookie
    let crawler = app
        .http
        .get(app.url(&path))
        .header(USER_AGENT, "facebookexternalhit/1.1")
        .send()
        .await
        .unwrap();
    assert_eq!(crawler.status(), 200);
    assert!(crawler.headers().get(SET_COOKIE).is_none());
    // the report counts the person's visit as a scan and the crawler's apart
    let today = chrono::Utc::now().date_naive();
    let report = app
        .get(
            &format!(
                "/api/v1/acquisition/report?from={}&to={}",
                today.pred_opt().unwrap(),
                today.succ_opt().unwrap()
            ),
            token,
        )
        .await
        .expect(200)
        .body;
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == code["id"])
        .cloned()
        .expect("the code's row");
    assert_eq!(row["scans"], 1, "{report}");
    assert_eq!(row["crawler_fetches"], 1);
    assert_eq!(row["adds"], 0);
    // unknown and malformed slugs, and a deleted code's page
    for bad in [
        "/c/0000000000000000",
        "/c/not-a-slug",
        "/c/0000000000000000/qr",
    ] {
        let answer = app.http.get(app.url(bad)).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{bad}");
    }
    app.delete(&format!("/api/v1/channel-codes/{}", code["id"]), token)
        .await
        .expect(204);
    let gone = app
        .http
        .get(app.url(&path))
        .header(USER_AGENT, PHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 410);
    assert!(gone.text().await.unwrap().contains("已停用"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wecom_code_keeps_wecom_s_qr_and_draws_it_again_with_the_logo() {
    let (app, standin, connector, staff) = wecom_corp(2, None).await;
    let token = &app.admin_token;
    let code = app
        .post(
            "/api/v1/channel-codes",
            token,
            json!({"name": "抖音", "state": "dy-1", "connector_id": connector,
                   "members": [{"staff_id": staff["member001"]}]}),
        )
        .await
        .expect(201)
        .body;
    let id = code["id"].as_i64().unwrap();
    wecom_settled(&app).await;
    let way = standin.contact_ways().pop().unwrap();
    let wecom_text = format!("https://work.weixin.qq.com/ca/{}", way.config_id);
    let code = app
        .get(&format!("/api/v1/channel-codes/{id}"), token)
        .await
        .expect(200)
        .body;
    assert_eq!(code["qr_source"], "wecom", "{code}");
    // WeCom's image as WeCom gave it, fetched once
    let theirs = reqwest::get(&way.qr_code)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let served = fetch(&app, &format!("/api/v1/channel-codes/{id}/qr"), Some(token)).await;
    assert_eq!(served.source, "wecom");
    assert_eq!(served.bytes, theirs, "served as WeCom gave it");
    assert_eq!(decode(&served), wecom_text);
    assert_eq!(
        standin.calls("wwpic"),
        2,
        "fetched once by siyu (and once here)"
    );
    // drawn again as SVG, and with the brand's logo
    let (status, _) = put_logo(&app, logo_png()).await;
    assert_eq!(status, 204);
    for (format, logo) in [("svg", false), ("png", true), ("svg", true)] {
        let image = fetch(
            &app,
            &format!("/api/v1/channel-codes/{id}/qr?format={format}&logo={logo}"),
            Some(token),
        )
        .await;
        assert_eq!(image.status, 200, "{format} {logo}");
        assert_eq!(decode(&image), wecom_text, "{format} {logo}");
        assert_eq!(coloured(&image) > 100, logo, "{format} {logo}");
    }
    // the landing page shows it
    let path = code["landing_path"].as_str().unwrap();
    let html = app
        .http
        .get(app.url(path))
        .header(USER_AGENT, PHONE)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("{path}/qr")), "{html}");
    let shown = fetch(&app, &format!("{path}/qr"), None).await;
    assert_eq!(shown.bytes, theirs);
    // the brand wants its landing page first: the code's QR leads there
    let changed = app
        .patch(
            &format!("/api/v1/channel-codes/{id}"),
            token,
            json!({"landing_first": true}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["qr_source"], "landing");
    let image = fetch(&app, &format!("/api/v1/channel-codes/{id}/qr"), Some(token)).await;
    assert_eq!(decode(&image), app.url(path));
}
