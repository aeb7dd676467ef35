//! Imports through the API: the CSV file is the request body; the import runs in the
//! background and `GET /api/v1/imports/{id}` reports its progress and refused rows.
//! A file whose header cannot make records is refused at once (422) and starts nothing.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::import::{
    ImportJob, ImportKind, ImportReader, ImportStatus, count_rows, parse_mapping,
};
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

/// Starts an import of the CSV file sent as the body (`Content-Type: text/csv`, at most
/// 64 MB). Answers 202 with the import, whose progress `GET /api/v1/imports/{id}` shows.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 202, description = "the import has started", body = ImportJob),
        (status = 413, body = ErrorBody),
        (status = 422, description = "the header cannot make records", body = ErrorBody)))]
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
    // checked now, so a bad header is a 422 and not a failed import
    ImportReader::new(kind, &bytes[..], &mapping, siyu_store::now_ms())?;
    let total = count_rows(&bytes[..]) as i64;
    let actor = auth.actor();
    let job = scope.create_import(kind, &file_name, total, &actor).await?;
    let id = job.id;
    let store = app.store.clone();
    let tenant = auth.principal.tenant_id;
    tokio::spawn(async move {
        // the import runs as the system, over the whole tenant (create_import made sure
        // the caller reaches all of it)
        let scope = store.tenant(tenant);
        let outcome = match ImportReader::new(kind, &bytes[..], &mapping, siyu_store::now_ms()) {
            Ok(reader) => scope.run_import(reader, &actor, Some(id), |_| {}).await,
            Err(e) => Err(e.into()),
        };
        let result = match outcome {
            Ok(progress) => {
                scope
                    .update_import(id, &progress, ImportStatus::Completed, None)
                    .await
            }
            Err(e) => {
                tracing::error!(import = id, error = %e, "import failed");
                let progress = match scope.get_import(id).await {
                    Ok(job) => siyu_store::ImportProgress {
                        processed: job.processed_rows as u64,
                        stored: job.stored_rows as u64,
                        unchanged: 0,
                        rejected: job.rejected_rows as u64,
                        rejects: job.rejects,
                    },
                    Err(_) => Default::default(),
                };
                scope
                    .update_import(id, &progress, ImportStatus::Failed, Some(&e.to_string()))
                    .await
            }
        };
        if let Err(e) = result {
            tracing::error!(import = id, error = %e, "cannot record the end of an import");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(job)))
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
