//! Middleware around every route: request ids, tracing, and JSON for every error.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};

use crate::error::{ApiError, error_response};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct SpanWithRequestId;

impl<B> MakeSpan<B> for SpanWithRequestId {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .unwrap_or("-");
        tracing::info_span!(
            "request",
            method = %request.method(),
            uri = %request.uri().path(),
            request_id = %request_id,
        )
    }
}

type RequestIdAndTrace = ServiceBuilder<
    Stack<
        PropagateRequestIdLayer,
        Stack<
            TraceLayer<
                SharedClassifier<ServerErrorsAsFailures>,
                SpanWithRequestId,
                tower_http::trace::DefaultOnRequest,
                DefaultOnResponse,
            >,
            Stack<SetRequestIdLayer<MakeRequestUuid>, Identity>,
        >,
    >,
>;

/// Gives each request an id (or keeps the caller's `X-Request-Id`), puts it in the
/// tracing span and sends it back on the response.
pub fn request_id_and_trace() -> RequestIdAndTrace {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(SpanWithRequestId)
                // one access-log line per request at INFO, with status and latency
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
}

/// The longest `X-Request-Id` kept from a caller.
const MAX_REQUEST_ID: usize = 128;

/// Whether a caller's request id is kept: 1 to 128 of `[A-Za-z0-9._-]`, so that what
/// lands in logs and comes back in the answer is no injection and no flood.
fn acceptable_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Removes an `X-Request-Id` that is too long or carries other characters; the request
/// then gets a generated id.
pub async fn drop_bad_request_id(mut request: Request) -> Request {
    if request
        .headers()
        .get_all(REQUEST_ID)
        .iter()
        .any(|v| !acceptable_request_id(v.as_bytes()))
        || request.headers().get_all(REQUEST_ID).iter().count() > 1
    {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// CORS for the tracking API (`/v1/*`) only: browser SDKs post events from the brand's
/// own sites and mini-program web views, so any origin may send (the write key, not a
/// cookie, is what authenticates; no credentials are allowed). Preflights are answered
/// here; `/api` sends no CORS headers, so no other site's page can read it.
pub async fn tracking_cors(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    if request.method() == axum::http::Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".parse().unwrap());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "POST, OPTIONS".parse().unwrap(),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type, content-encoding, x-request-id"
                .parse()
                .unwrap(),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, "86400".parse().unwrap());
        return response;
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".parse().unwrap());
    response
}

/// Answers unknown routes.
pub async fn not_found(request: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for {} {}", request.method(), request.uri().path()),
        serde_json::Value::Null,
    )
}

/// Rewrites error responses that were not made by [`ApiError`] (a wrong method, a body
/// over the limit caught by axum) into the one JSON error body.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is too large".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            return ApiError::UnsupportedMediaType.into_response();
        }
        StatusCode::NOT_FOUND => ("not_found", "not found".to_owned()),
        s if s.is_server_error() => ("internal_error", "internal error".to_owned()),
        _ => (
            "bad_request",
            if text.is_empty() {
                status.to_string()
            } else {
                text
            },
        ),
    };
    let fresh = error_response(status, code, &message, serde_json::Value::Null);
    let (fresh_parts, fresh_body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        fresh_parts.headers[header::CONTENT_TYPE].clone(),
    );
    Response::from_parts(parts, Body::new(fresh_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain() {
        for ok in ["abc", "req-1.2_3", &"a".repeat(128)] {
            assert!(acceptable_request_id(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "a b", "a\nb", "<script>", "é", &"a".repeat(129)] {
            assert!(!acceptable_request_id(bad.as_bytes()), "{bad}");
        }
    }
}
