//! A channel code's QR image (`GET /api/v1/channel-codes/{id}/qr`), and the brand's
//! logo that siyu draws in the middle of its QR codes (`/api/v1/settings/brand-logo`).
//!
//! A code's QR encodes what its `qr_source` says: WeCom's own QR of its contact way
//! (served as WeCom gave it for a plain PNG, drawn again from the text it encodes for an
//! SVG or a logo) or the code's landing page at siyu's public URL (`public_url`, else
//! the address the request was sent to). The drawing is `siyu_qr`'s.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::acquisition::ChannelCode;
use siyu_domain::acquisition::landing::QrSource;
use siyu_domain::ids::ChannelCodeId;
use siyu_qr::{Logo, QrFormat};
use siyu_store::TenantScope;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, PublicOrigin};

/// The response header that says what the QR encodes (`wecom` or `landing`).
pub const QR_SOURCE_HEADER: &str = "siyu-qr-source";

/// How to draw a code's QR.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `png` (the default) or `svg`.
    pub format: Option<String>,
    /// Whether to draw the brand's logo in the middle (default false; the code then
    /// uses error correction level H, so it still scans).
    pub logo: Option<bool>,
}

/// The code's QR image. What it encodes is the code's `qr_source` (also sent as the
/// `Siyu-Qr-Source` header): WeCom's QR of its contact way, or the code's landing page.
#[utoipa::path(get, path = "/api/v1/channel-codes/{id}/qr", tag = "acquisition",
    params(("id" = i64, Path), QrQuery),
    responses(
        (status = 200, description = "the QR image (WeCom's own image is sent as WeCom gave \
            it)", content((Vec<u8> = "image/png"), (String = "image/svg+xml"),
            (Vec<u8> = "image/jpeg"))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "a logo was asked for and the brand has none, or WeCom's \
            image does not read as a QR code and only a plain PNG can be served", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn channel_code_qr(
    State(app): State<AppState>,
    auth: Auth,
    origin: PublicOrigin,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<QrQuery>,
) -> ApiResult<Response> {
    auth.require(Permission::CampaignsRead)?;
    let format: QrFormat = q
        .format
        .as_deref()
        .unwrap_or("png")
        .parse()
        .map_err(|e: siyu_qr::QrError| ApiError::field("format", e.to_string()))?;
    let scope = auth.scope(&app.store).await?;
    let code = scope.get_channel_code(ChannelCodeId(id)).await?;
    let logo = brand_logo(&scope, q.logo.unwrap_or(false)).await?;
    let image = code_qr(&scope, &origin, &code, format, logo.as_ref()).await?;
    let extension = if image.1.starts_with(b"\xff\xd8") {
        "jpg" // WeCom's own image, as WeCom gave it
    } else {
        &format.to_string()
    };
    Ok(image_response(
        image.0,
        image.1,
        code.qr_source,
        &code.state,
        extension,
    ))
}

/// The brand's logo to draw, when one is asked for (409 when the brand has none).
pub(super) async fn brand_logo(scope: &TenantScope<'_>, asked: bool) -> ApiResult<Option<Logo>> {
    if !asked {
        return Ok(None);
    }
    let kept = scope.brand_logo().await?.ok_or_else(|| {
        ApiError::Conflict(
            "the brand has no logo: set one with PUT /api/v1/settings/brand-logo".into(),
        )
    })?;
    Ok(Some(
        Logo::from_bytes(&kept.image).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// A code's QR image (content type, bytes): what its `qr_source` says, drawn in
/// `format` with the logo, or WeCom's own image as WeCom gave it for a plain PNG.
pub(super) async fn code_qr(
    scope: &TenantScope<'_>,
    origin: &PublicOrigin,
    code: &ChannelCode,
    format: QrFormat,
    logo: Option<&Logo>,
) -> ApiResult<(String, Vec<u8>)> {
    let text = match code.qr_source {
        QrSource::Landing => format!("{}{}", origin.0, code.landing_path),
        QrSource::Wecom => {
            let kept = scope
                .channel_code_image(code.id)
                .await?
                .ok_or(ApiError::NotFound("channel code's WeCom QR"))?;
            if format == QrFormat::Png && logo.is_none() {
                return Ok((kept.content_type, kept.image));
            }
            kept.encoded.ok_or_else(|| {
                ApiError::Conflict(
                    "WeCom's QR image of this code does not read as a QR code: only format=png \
                     without a logo serves it"
                        .into(),
                )
            })?
        }
    };
    let image =
        siyu_qr::render(&text, format, logo).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((image.content_type.to_owned(), image.bytes))
}

fn image_response(
    content_type: String,
    bytes: Vec<u8>,
    source: QrSource,
    state: &str,
    extension: &str,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                // a state is letters, digits, `-` and `_`: safe in a file name
                format!("inline; filename=\"{state}.{extension}\""),
            ),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (
                HeaderName::from_static(QR_SOURCE_HEADER),
                source.as_str().to_owned(),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The brand's logo, as set.
#[utoipa::path(get, path = "/api/v1/settings/brand-logo", tag = "acquisition",
    responses((status = 200, description = "the logo as set",
            content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"))),
        (status = 403, body = ErrorBody),
        (status = 404, description = "no logo is set (`not_found`)", body = ErrorBody)))]
pub async fn get_brand_logo(State(app): State<AppState>, auth: Auth) -> ApiResult<Response> {
    auth.require(Permission::CampaignsRead)?;
    let logo = auth
        .scope(&app.store)
        .await?
        .brand_logo()
        .await?
        .ok_or(ApiError::NotFound("brand logo"))?;
    Ok(([(header::CONTENT_TYPE, logo.content_type)], logo.image).into_response())
}

/// Sets the brand's logo: the body is a PNG or JPEG file (at most 1 MiB and 1024 pixels
/// a side). Needs `settings.write`; audited.
#[utoipa::path(put, path = "/api/v1/settings/brand-logo", tag = "acquisition",
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 204, description = "the logo is set"), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "the body is not a PNG or JPEG that reads, or is too large \
            (`validation_failed`, field `logo`)", body = ErrorBody)))]
pub async fn put_brand_logo(
    State(app): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> ApiResult<StatusCode> {
    auth.require(Permission::SettingsWrite)?;
    Logo::from_bytes(&body).map_err(|e| ApiError::field("logo", e.to_string()))?;
    let content_type = if body.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    auth.scope(&app.store)
        .await?
        .set_brand_logo(content_type, &body, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the brand's logo. Needs `settings.write`; audited.
#[utoipa::path(delete, path = "/api/v1/settings/brand-logo", tag = "acquisition",
    responses((status = 204, description = "the logo is removed"), (status = 403, body = ErrorBody),
        (status = 404, description = "no logo is set (`not_found`)", body = ErrorBody)))]
pub async fn delete_brand_logo(State(app): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    auth.require(Permission::SettingsWrite)?;
    let removed = auth
        .scope(&app.store)
        .await?
        .delete_brand_logo(&auth.actor())
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("brand logo"))
    }
}
