//! The content library (`/api/v1/content`): items of every kind, and the files they
//! carry (`/api/v1/content/files`, uploaded first, then named by items).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::engagement::content::{
    ContentCategory, ContentItem, ContentItemChange, ContentKind, ContentSource, FileRule,
    NewContentItem,
};
use siyu_domain::engagement::performance::{self, ContentPerformance};
use siyu_domain::ids::{ContentItemId, FileId, UnitId};
use siyu_domain::page::{Page, PageRequest};
use siyu_store::ContentFilter;
use siyu_store::FileInfo;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

/// The largest file the library takes (WeCom's largest media, a file).
const MAX_CONTENT_FILE_BYTES: usize = FileRule::FILE.max_bytes as usize;

/// Which items to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    pub kind: Option<ContentKind>,
    pub category: Option<ContentCategory>,
    pub source: Option<ContentSource>,
    /// Items carrying this tag.
    pub tag: Option<String>,
    pub unit_id: Option<i64>,
    /// Words in the title.
    pub q: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// The library's items, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/content", tag = "engagement", params(ContentQuery),
    responses((status = 200, body = Page<ContentItem>), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_content(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ContentQuery>,
) -> ApiResult<Json<Page<ContentItem>>> {
    auth.require(Permission::ContentRead)?;
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let filter = ContentFilter {
        kind: q.kind,
        category: q.category,
        source: q.source,
        tag: q.tag.filter(|t| !t.trim().is_empty()),
        unit_id: q.unit_id.map(UnitId),
        q: q.q.filter(|t| !t.trim().is_empty()),
    };
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_content_items(&filter, page).await?))
}

/// Adds an item. Its files must have been uploaded to the library, of a type and size
/// its kind takes (422 naming the field otherwise). Audited.
#[utoipa::path(post, path = "/api/v1/content", tag = "engagement", request_body = NewContentItem,
    responses((status = 201, body = ContentItem), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_content(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewContentItem>,
) -> ApiResult<(StatusCode, Json<ContentItem>)> {
    auth.require(Permission::ContentWrite)?;
    let spec = body.check()?;
    let scope = auth.scope(&app.store).await?;
    let item = scope
        .create_content_item(&spec, auth.principal.staff_id(), &auth.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(get, path = "/api/v1/content/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, body = ContentItem), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_content(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ContentItem>> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_content_item(ContentItemId(id)).await?))
}

/// The window of an item's figures.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PerformanceQuery {
    /// Days after a message in which an order counts for it (1 to 90; 7 when absent).
    pub window_days: Option<u32>,
}

/// How an item did in the mass sends that carried it: recipients, sent, delivered, and
/// the orders recipients placed within the window after their message. Needs
/// `content.read` and `broadcasts.read`; staff who reach only some owners count the
/// sends their own staff made.
#[utoipa::path(get, path = "/api/v1/content/{id}/performance", tag = "engagement",
    params(("id" = i64, Path), PerformanceQuery),
    responses((status = 200, body = ContentPerformance), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_content_performance(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PerformanceQuery>,
) -> ApiResult<Json<ContentPerformance>> {
    auth.require(Permission::ContentRead)?;
    auth.require(Permission::BroadcastsRead)?;
    let window = performance::window_days(q.window_days)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope.content_performance(ContentItemId(id), window).await?,
    ))
}

/// Changes an item; fields left out stay, and its kind stays. Any of the body's fields
/// given replaces the body as a whole. Staff who reach only some owners change only
/// what staff they reach made (403 otherwise). 409 when the item was changed since it
/// was read. Audited.
#[utoipa::path(patch, path = "/api/v1/content/{id}", tag = "engagement",
    params(("id" = i64, Path)), request_body = ContentItemChange,
    responses((status = 200, body = ContentItem), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_content(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ContentItemChange>,
) -> ApiResult<Json<ContentItem>> {
    auth.require(Permission::ContentWrite)?;
    let scope = auth.scope(&app.store).await?;
    let before = scope.get_content_item(ContentItemId(id)).await?;
    let spec = body.apply(&before)?;
    Ok(Json(
        scope
            .update_content_item(&before, &spec, &auth.actor())
            .await?,
    ))
}

/// Deletes an item from the library (the sends that used it keep it). Audited.
#[utoipa::path(delete, path = "/api/v1/content/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_content(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    auth.require(Permission::ContentWrite)?;
    let scope = auth.scope(&app.store).await?;
    scope
        .delete_content_item(ContentItemId(id), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How an uploaded file is named.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name (1–200 characters).
    pub name: String,
}

/// A stored file, as the library shows it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ContentFile {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    /// In bytes.
    pub size: i64,
    /// Lowercase hex.
    pub sha256: String,
    #[serde(serialize_with = "siyu_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

impl From<FileInfo> for ContentFile {
    fn from(f: FileInfo) -> Self {
        Self {
            id: f.id,
            name: f.name,
            content_type: f.content_type,
            size: f.size,
            sha256: f.sha256,
            created_at: f.created_at,
        }
    }
}

/// Uploads a file for the library: the body is the file, its `Content-Type` the file's
/// type (at most 20 MB; an image or video item later takes only JPG/PNG or MP4 of at
/// most 10 MB, WeCom's limits). Answers the file, whose `id` items name. Audited.
#[utoipa::path(post, path = "/api/v1/content/files", tag = "engagement", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = ContentFile), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload_content_file(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ContentFile>)> {
    auth.require(Permission::ContentWrite)?;
    let name = siyu_domain::error::check_name("name", &q.name, 200)?;
    let content_type = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => "application/octet-stream".to_owned(),
        Some(given) => media_type(given).ok_or_else(|| {
            ApiError::field("Content-Type", "must be a media type such as image/png")
        })?,
    };
    let bytes = axum::body::to_bytes(body, MAX_CONTENT_FILE_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_CONTENT_FILE_BYTES))?;
    if bytes.is_empty() {
        return Err(ApiError::field("body", "the file is empty"));
    }
    let scope = auth.scope(&app.store).await?;
    let info = scope
        .put_content_file(
            &name,
            &content_type,
            bytes.to_vec(),
            auth.principal.staff_id(),
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// A `Content-Type` as a media type (`type/subtype`, parameters dropped, lowercase);
/// none when it is not one.
fn media_type(given: &str) -> Option<String> {
    let essence = given.split(';').next()?.trim().to_ascii_lowercase();
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    let (kind, sub) = essence.split_once('/')?;
    (token(kind) && token(sub)).then_some(essence)
}

/// A file of the library, as uploaded. Images and videos are shown inline; any other
/// file is served as an attachment, and nothing runs in the console's origin.
#[utoipa::path(get, path = "/api/v1/content/files/{id}", tag = "engagement",
    params(("id" = i64, Path)),
    responses((status = 200, description = "the file's bytes, with its type",
            content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download_content_file(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    auth.require(Permission::ContentRead)?;
    let scope = auth.scope(&app.store).await?;
    let (info, bytes) = scope.content_file(FileId(id)).await?;
    let inline = ["image/png", "image/jpeg", "video/mp4"].contains(&info.content_type.as_str());
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let content_type = if inline {
        info.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if !inline {
        // the name as RFC 6266 (UTF-8, percent-encoded), with a plain fallback
        let encoded: String = form_urlencoded::byte_serialize(info.name.as_bytes()).collect();
        let disposition = format!(
            "attachment; filename=\"file-{id}\"; filename*=UTF-8''{}",
            encoded.replace('+', "%20")
        );
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}
