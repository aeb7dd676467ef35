//! Imports through the API: the CSV file is the request body. The whole file is checked
//! first (UTF-8, CSV whose quotes close, a header that makes records; 422 naming the
//! problem and its line, and nothing made); then the file, the import and the durable job
//! that runs it are made in one transaction (`TenantScope::create_import`), and the job
//! runs on whichever node's runner takes it (`siyu-runtime`'s `imports`).
//! `GET /api/v1/imports/{id}` reports its progress and refused rows: `queued`, `running`,
//! then `completed` or `failed`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::import::{ImportJob, ImportKind, parse_mapping};
use siyu_domain::page::Page;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, PageParams};

/// The largest file taken through the API (the command line takes any size).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `customers` or `orders`.
    pub kind: String,
    /// The file's name, for the list of imports.
    pub file_name: Option<String>,
    /// Column mapping `HEADER=FIELD,…` (e.g. `手机=phone,卡号=identity:member_no`).
    pub map: Option<String>,
}

/// Starts an import of the CSV file sent as the body (`Content-Type: text/csv`, UTF-8, at
/// most 64 MB). Answers 202 with the import (`queued`), whose progress
/// `GET /api/v1/imports/{id}` shows; it runs as a durable job, so a server that stops
/// mid-file leaves the rest to the next (no row stored twice, none skipped).
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 202, description = "the import is queued", body = ImportJob),
        (status = 413, body = ErrorBody),
        (status = 422, description = "the file is not UTF-8 CSV (the message names the line), \
            or its header cannot make records", body = ErrorBody)))]
pub async fn start_import(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImportJob>)> {
    auth.require(Permission::CustomersImport)?;
    let scope = auth.scope(&app.store).await?;
    let kind = ImportKind::parse("kind", &q.kind)?;
    let mapping = parse_mapping(q.map.as_deref().unwrap_or_default())?;
    let file_name = q
        .file_name
        .unwrap_or_else(|| format!("{}.csv", kind.as_str()));
    if file_name.chars().count() > 200 {
        return Err(ApiError::field("file_name", "at most 200 characters"));
    }
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_IMPORT_BYTES))?;
    let import = scope
        .create_import(kind, &file_name, &mapping, bytes.to_vec(), &auth.actor())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(import)))
}

#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports", params(("id" = i64, Path)),
    responses((status = 200, body = ImportJob), (status = 404, body = ErrorBody)))]
pub async fn get_import(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ImportJob>> {
    auth.require(Permission::CustomersImport)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.get_import(id).await?))
}

#[utoipa::path(get, path = "/api/v1/imports", tag = "imports", params(PageParams),
    responses((status = 200, description = "newest first", body = Page<ImportJob>)))]
pub async fn list_imports(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ImportJob>>> {
    auth.require(Permission::CustomersImport)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.list_imports(q.page()?).await?))
}
