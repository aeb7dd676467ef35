//! A channel code's public landing page, `/c/{slug}`: where siyu's own QR of a code
//! leads. WeCom reports adds, never scans, so a visit here is the only scan siyu can
//! count: each is recorded (`channel_code_scans`) with the visitor's anonymous id (a
//! cookie), link-preview crawlers apart (`siyu_domain::acquisition::landing`). The page
//! shows the member's WeCom QR (`/c/{slug}/qr`, WeCom's image as kept) to long-press.
//!
//! No session and no token: the slug is the code's public address, 64 random bits, so
//! one code's page does not lead to another's.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use siyu_domain::acquisition::landing::{is_crawler, is_landing_slug, new_landing_slug};

use siyu_store::LandingCode;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, cookie_in};

/// The cookie that holds a visitor's anonymous id (a year), on landing pages and
/// tracked links alike.
pub const VISITOR_COOKIE: &str = "siyu_visitor";

/// A code's landing page: records the visit and shows the member's WeCom QR.
#[utoipa::path(get, path = "/c/{slug}", tag = "acquisition", security(()),
    params(("slug" = String, Path, description = "the code's landing slug (its `landing_path`)")),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 404, description = "no code has this slug", content_type = "text/html", body = String),
        (status = 410, description = "the code was deleted", content_type = "text/html", body = String)))]
pub async fn landing_page(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    let Some(code) = landing_code(&app, &slug).await? else {
        return Ok((StatusCode::NOT_FOUND, Html(page(PageBody::Unknown))).into_response());
    };
    if code.deleted {
        return Ok((StatusCode::GONE, Html(page(PageBody::Retired))).into_response());
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let crawler = method != Method::GET || is_crawler(agent);
    let known = cookie_in(&headers, VISITOR_COOKIE).filter(|v| is_landing_slug(v));
    let visitor = known.clone().unwrap_or_else(new_landing_slug);
    app.store
        .tenant(code.tenant())
        .record_code_scan(code.code(), &visitor, crawler)
        .await?;
    let body = if code.has_wecom_image {
        PageBody::Qr(&slug)
    } else {
        PageBody::NotReady
    };
    let mut response = Html(page(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("a header value"),
    );
    if known.is_none() && !crawler {
        let cookie =
            format!("{VISITOR_COOKIE}={visitor}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax");
        headers.insert(header::SET_COOKIE, cookie.parse().expect("a header value"));
    }
    Ok(response)
}

/// The member's WeCom QR of a code, as WeCom gave it (what the landing page shows).
#[utoipa::path(get, path = "/c/{slug}/qr", tag = "acquisition", security(()),
    params(("slug" = String, Path, description = "the code's landing slug")),
    responses(
        (status = 200, description = "WeCom's QR image", content_type = "image/png", body = Vec<u8>),
        (status = 404, description = "no live code has this slug, or WeCom gave it no QR yet (`not_found`)",
            body = ErrorBody)))]
pub async fn landing_qr(
    State(app): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    let code = landing_code(&app, &slug)
        .await?
        .filter(|c| !c.deleted)
        .ok_or(ApiError::NotFound("landing page"))?;
    let image = app
        .store
        .tenant(code.tenant())
        .channel_code_image(code.code())
        .await?
        .ok_or(ApiError::NotFound("WeCom QR"))?;
    Ok((
        [
            (header::CONTENT_TYPE, image.content_type),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        image.image,
    )
        .into_response())
}

/// The code a slug names (a malformed slug names none, unread).
async fn landing_code(app: &AppState, slug: &str) -> ApiResult<Option<LandingCode>> {
    if !is_landing_slug(slug) {
        return Ok(None);
    }
    Ok(app.store.landing_code(slug).await?)
}

enum PageBody<'a> {
    Qr(&'a str),
    NotReady,
    Retired,
    Unknown,
}

/// The page: small, self-contained (no script, no outside resource), in Chinese first
/// with English beneath, for the phone that scanned.
fn page(body: PageBody<'_>) -> String {
    let main = match body {
        PageBody::Qr(slug) => format!(
            "<img src=\"/c/{slug}/qr\" alt=\"企业微信二维码 WeCom QR code\" width=\"260\" height=\"260\">\
             <p>长按识别二维码，添加企业微信</p><p class=\"en\">Long-press the code to add us on WeCom</p>"
        ),
        PageBody::NotReady => "<p>二维码准备中，请稍后再试</p>\
             <p class=\"en\">This code is being set up; please try again shortly</p>"
            .to_owned(),
        PageBody::Retired => {
            "<p>此二维码已停用</p><p class=\"en\">This code is no longer in use</p>".to_owned()
        }
        PageBody::Unknown => {
            "<p>未找到此二维码</p><p class=\"en\">There is no such code</p>".to_owned()
        }
    };
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>添加企业微信</title>\
         <style>body{{font-family:system-ui,sans-serif;text-align:center;margin:0;padding:48px 16px;\
         color:#1f2329}}img{{max-width:80vw;height:auto}}p{{margin:12px 0}}.en{{color:#646a73;\
         font-size:14px}}</style></head><body>{main}</body></html>"
    )
}
