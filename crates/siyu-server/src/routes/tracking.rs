//! The Segment-compatible tracking API (`/v1/identify`, `/v1/track`, … `/v1/batch`), so
//! the official Segment and RudderStack SDKs send to siyu unchanged.
//!
//! Answers follow what the SDKs understand: exactly 200 once the events are committed to
//! the ingest log (see `crate::ingest`; the body lists items refused, if any); 400 for a body or batch that cannot be taken,
//! which the SDKs drop without retrying; 401 for a bad write key; 503 when storing
//! failed, which they retry with the same messageIds (deduplication keeps retries from
//! becoming second events).

use std::io::Read;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};
use siyu_domain::tracking::{
    BatchDefaults, EventType, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, Rejection, RejectionCode,
    parse_time, read_event,
};
use siyu_store::{IngestItem, IngestOutcome, SourceRef, now_ms};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, error_response};
use siyu_runtime::ingest::{Answer, NotTaken};

/// The answer to a tracking call.
#[derive(Serialize, ToSchema)]
pub struct TrackResponse {
    pub success: bool,
    /// Events stored now.
    pub accepted: usize,
    /// Events already stored before (same messageId from this source).
    pub duplicates: usize,
    /// Events refused, with the reason for each.
    pub rejected: Vec<Rejection>,
    /// Of the events accepted, how many are in the ingest log and not yet on profiles
    /// (the server answers so under a burst; they are applied shortly, and any that turn
    /// out to be duplicates are dropped then). 0 when the answer waited for them.
    pub queued: usize,
}

fn bad_request(code: &str, message: String) -> Response {
    error_response(StatusCode::BAD_REQUEST, code, &message, Value::Null)
}

/// Reads the body: gunzips it when asked, caps it at the batch limit, and replaces bytes
/// that are not UTF-8 (saying so, so that the items holding them are refused).
fn read_body(headers: &HeaderMap, body: &Bytes) -> Result<(String, bool), (&'static str, String)> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let bytes = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .take(MAX_BATCH_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ("invalid_gzip", format!("the body is not valid gzip: {e}")))?;
        out
    } else {
        body.to_vec()
    };
    if bytes.len() > MAX_BATCH_BYTES {
        return Err((
            "batch_too_large",
            format!("the body exceeds the limit of 500 KB ({MAX_BATCH_BYTES} bytes)"),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, false)),
        Err(e) => Ok((String::from_utf8_lossy(e.as_bytes()).into_owned(), true)),
    }
}

/// The write key: HTTP Basic with the key as the user name, or `writeKey` in the body.
fn write_key(headers: &HeaderMap, body: &Map<String, Value>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .map(|userpass| userpass.split(':').next().unwrap_or("").to_owned())
        .filter(|k| !k.is_empty());
    from_header.or_else(|| {
        body.get("writeKey")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

async fn handle(
    app: AppState,
    headers: HeaderMap,
    body: Bytes,
    implied: Option<EventType>,
) -> Response {
    let received_at = now_ms();
    let (text, invalid_utf8) = match read_body(&headers, &body) {
        Ok(read) => read,
        Err((code, message)) => return bad_request(code, message),
    };
    let parsed: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
            );
        }
    };
    let Value::Object(mut object) = parsed else {
        return bad_request(
            "invalid_json",
            "the request body must be a JSON object".into(),
        );
    };
    let Some(key) = write_key(&headers, &object) else {
        return ApiError::InvalidWriteKey.into_response();
    };
    let source = match app.store.resolve_write_key(&key).await {
        Ok(Some(source)) => source,
        Ok(None) => return ApiError::InvalidWriteKey.into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };

    let (raw_items, defaults) = match implied {
        Some(_) => (vec![Value::Object(object)], BatchDefaults::default()),
        None => {
            let items = match object.remove("batch") {
                Some(Value::Array(items)) => items,
                _ => return bad_request("invalid_batch", "a batch needs a `batch` array".into()),
            };
            if items.len() > MAX_BATCH_EVENTS {
                return bad_request(
                    "batch_too_large",
                    format!(
                        "the batch holds {} events; the limit is {MAX_BATCH_EVENTS}",
                        items.len()
                    ),
                );
            }
            let context = match object.remove("context") {
                Some(Value::Object(c)) => c,
                _ => Map::new(),
            };
            let sent_at = object
                .get("sentAt")
                .and_then(Value::as_str)
                .and_then(parse_time);
            (items, BatchDefaults { context, sent_at })
        }
    };

    let total = raw_items.len();
    let mut items = Vec::with_capacity(total);
    let mut rejected = Vec::new();
    // each item's place in the request and its message id
    let mut positions = Vec::with_capacity(total);
    for (index, raw) in raw_items.into_iter().enumerate() {
        match read_event(
            index,
            raw,
            implied,
            &defaults,
            received_at,
            invalid_utf8,
            || uuid::Uuid::new_v4().to_string(),
        ) {
            Ok(event) => {
                let message_id = event.message_id.clone();
                match event.with_commerce(source.kind.sales_channel()) {
                    Ok(event) => {
                        positions.push((index, message_id));
                        items.push(IngestItem { source, event });
                    }
                    Err(reason) => rejected.push(Rejection {
                        index,
                        message_id: Some(message_id),
                        code: RejectionCode::InvalidOrder,
                        reason,
                    }),
                }
            }
            Err(rejection) => rejected.push(rejection),
        }
    }
    // an order in a currency without an exchange rate is refused in the answer (and
    // checked again when applied, in case the rates changed in between)
    let refusals = match app.store.currency_refusals(&items).await {
        Ok(refusals) => refusals,
        Err(e) => return ApiError::from(e).into_response(),
    };
    (items, positions) = set_aside(
        items,
        positions,
        refusals,
        RejectionCode::InvalidOrder,
        &mut rejected,
    );
    // so is one with more new trait names than the tenant's limits allow (asked last:
    // the items it takes count their new names as used)
    let refusals = match app.store.trait_refusals(&items).await {
        Ok(refusals) => refusals,
        Err(e) => return ApiError::from(e).into_response(),
    };
    (items, positions) = set_aside(
        items,
        positions,
        refusals,
        RejectionCode::TooManyTraits,
        &mut rejected,
    );
    if !rejected.is_empty() {
        record_rejections(&app, source, rejected.len()).await;
    }
    if items.is_empty() && total > 0 {
        return all_refused(total, rejected);
    }
    let submitted = items.len();
    let outcomes = match app.ingestor.submit(items).await {
        Ok(Answer::Applied(outcomes)) => outcomes,
        Ok(Answer::Queued) => {
            return (
                StatusCode::OK,
                Json(TrackResponse {
                    success: true,
                    accepted: submitted,
                    duplicates: 0,
                    rejected,
                    queued: submitted,
                }),
            )
                .into_response();
        }
        Err(NotTaken::Behind(waiting)) => {
            let mut response =
                ApiError::Unavailable(NotTaken::Behind(waiting).to_string()).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
            return response;
        }
        Err(cause) => {
            tracing::error!(error = %cause, "tracking call not stored");
            return ApiError::Unavailable("the events could not be stored; retry".into())
                .into_response();
        }
    };
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == IngestOutcome::Duplicate)
        .count();
    // (the store counts the events it refuses against the source)
    let mut refused_now = 0;
    for (position, outcome) in outcomes.iter().enumerate() {
        if let IngestOutcome::Refused(reason) = outcome {
            let (index, message_id) = &positions[position];
            refused_now += 1;
            rejected.push(Rejection {
                index: *index,
                message_id: Some(message_id.clone()),
                code: RejectionCode::InvalidOrder,
                reason: reason.clone(),
            });
        }
    }
    if refused_now > 0 {
        rejected.sort_by_key(|r| r.index);
    }
    if rejected.len() == total && total > 0 {
        return all_refused(total, rejected);
    }
    (
        StatusCode::OK,
        Json(TrackResponse {
            success: true,
            accepted: outcomes.len() - duplicates - refused_now,
            duplicates,
            rejected,
            queued: 0,
        }),
    )
        .into_response()
}

/// Takes the refused items out (with their places), adding them to `rejected` with the
/// reason. A refused item's messageId stays free for a resend.
fn set_aside(
    items: Vec<IngestItem>,
    positions: Vec<(usize, String)>,
    refusals: Vec<Option<String>>,
    code: RejectionCode,
    rejected: &mut Vec<Rejection>,
) -> (Vec<IngestItem>, Vec<(usize, String)>) {
    if refusals.iter().all(Option::is_none) {
        return (items, positions);
    }
    let mut kept = Vec::with_capacity(items.len());
    let mut kept_positions = Vec::with_capacity(items.len());
    for ((item, (index, message_id)), refusal) in items.into_iter().zip(positions).zip(refusals) {
        match refusal {
            Some(reason) => rejected.push(Rejection {
                index,
                message_id: Some(message_id),
                code,
                reason,
            }),
            None => {
                kept.push(item);
                kept_positions.push((index, message_id));
            }
        }
    }
    rejected.sort_by_key(|r| r.index);
    (kept, kept_positions)
}

/// The answer when no event of a request could be stored: 400, so that SDKs do not
/// retry what would be refused again, with every reason.
fn all_refused(total: usize, rejected: Vec<Rejection>) -> Response {
    let message = match rejected.first() {
        Some(r) if total == 1 => r.reason.clone(),
        _ => format!("all {total} events were refused"),
    };
    error_response(
        StatusCode::BAD_REQUEST,
        "invalid_events",
        &message,
        json!({ "rejected": rejected }),
    )
}

async fn record_rejections(app: &AppState, source: SourceRef, count: usize) {
    if let Err(e) = app.store.count_rejected(source, count as i64).await {
        tracing::warn!(error = %e, "counting rejected events failed");
    }
}

macro_rules! tracking_endpoint {
    ($fn:ident, $path:literal, $implied:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "tracking", security(("write_key" = [])),
            request_body(content = Object, description = "a Segment message (or batch)"),
            responses(
                (status = 200, description = "stored (see `rejected` for refused items)", body = TrackResponse),
                (status = 400, description = "the body or batch cannot be taken", body = ErrorBody),
                (status = 401, description = "bad or missing write key", body = ErrorBody),
                (status = 503, description = "not stored; retry with the same messageIds", body = ErrorBody),
            ))]
        pub async fn $fn(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
            handle(app, headers, body, $implied).await
        }
    };
}

tracking_endpoint!(
    identify,
    "/v1/identify",
    Some(EventType::Identify),
    "Who the user is, with traits."
);
tracking_endpoint!(
    track,
    "/v1/track",
    Some(EventType::Track),
    "Something the user did."
);
tracking_endpoint!(
    page,
    "/v1/page",
    Some(EventType::Page),
    "A web page the user viewed."
);
tracking_endpoint!(
    screen,
    "/v1/screen",
    Some(EventType::Screen),
    "An app screen the user viewed."
);
tracking_endpoint!(
    group,
    "/v1/group",
    Some(EventType::Group),
    "A group (company, household) the user belongs to."
);
tracking_endpoint!(
    alias,
    "/v1/alias",
    Some(EventType::Alias),
    "Links an earlier id (previousId) to the user id."
);
tracking_endpoint!(
    batch,
    "/v1/batch",
    None,
    "Up to 2,500 messages (500 KB) of any type, each with `type`."
);
tracking_endpoint!(
    import,
    "/v1/import",
    None,
    "The same as /v1/batch (Segment's name for historical imports)."
);
