//! Serves the embedded web console ([`siyu_console`]) for every GET that is not the API.
//!
//! The console is a single-page app: a path it owns (`/customers/42`) gets `index.html`,
//! and the app routes in the browser. Paths under `/api/`, `/v1/` and `/callbacks/` never
//! fall through to the console, so a mistyped API call still gets the JSON 404 a program
//! expects.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use siyu_console::Asset;

use crate::middleware;

/// The router's fallback: a console file or page, else the JSON 404.
pub async fn fallback(request: Request) -> Response {
    let path = request.uri().path();
    let is_read = request.method() == Method::GET || request.method() == Method::HEAD;
    let is_api = ["/api/", "/v1/", "/callbacks/"]
        .iter()
        .any(|p| path.starts_with(p))
        || path == "/api";
    if !is_read || is_api {
        return middleware::not_found(request).await;
    }
    let asset = match siyu_console::asset(path) {
        Some(asset) => asset,
        // a missing hashed file is a real 404, not a page: the browser asked for a script
        None if path.starts_with("/assets/") => return middleware::not_found(request).await,
        None => siyu_console::index_html(),
    };
    let accepts_gzip = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    serve(asset, accepts_gzip)
}

/// Whether an `Accept-Encoding` value takes gzip (`gzip`, `gzip;q=0.5`, not `gzip;q=0`).
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        parts
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
            && parts.all(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_none_or(|q| q > 0.0)
            })
    })
}

fn serve(asset: &'static Asset, accepts_gzip: bool) -> Response {
    let cache = if asset.immutable() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = match asset.gzip {
        Some(gzip) if accepts_gzip => {
            let mut response = (StatusCode::OK, gzip).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        _ => (StatusCode::OK, asset.bytes).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type().starts_with("text/html") {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
                 script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'",
            ),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_sent_only_to_clients_that_take_it() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("deflate, br"));
        assert!(!accepts_gzip("x-gzip-ish"));
    }
}
