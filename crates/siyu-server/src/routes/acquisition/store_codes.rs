//! Store codes (门店活码): a code made for every store that lacks one
//! (`POST /api/v1/channel-codes/stores`), and a printable sheet of the stores' codes
//! (`GET /api/v1/channel-codes/sheet`), each with its QR as the QR endpoint draws it.

use axum::Json;
use axum::extract::State;
use axum::response::Html;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::acquisition::store_codes::{NewStoreCodes, StoreCodes};
use siyu_domain::ids::UnitId;
use siyu_qr::QrFormat;
use utoipa::IntoParams;

use super::qr::{brand_logo, code_qr};
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Auth, PublicOrigin};

/// Makes a code for every store (a unit of kind `store`) under `unit_id` that has none:
/// state `store-{unit id}`, routed to the store's active staff (with a connector, those
/// who are members of its WeCom corp). Stores whose code cannot be made are listed in
/// `skipped` with the reason; the others are made all the same. Audited per code.
#[utoipa::path(post, path = "/api/v1/channel-codes/stores", tag = "acquisition",
    request_body = NewStoreCodes,
    responses((status = 200, body = StoreCodes), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_store_codes(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewStoreCodes>,
) -> ApiResult<Json<StoreCodes>> {
    auth.require(Permission::CampaignsWrite)?;
    let scope = auth.scope(&app.store).await?;
    let done = scope
        .create_store_codes(&body, auth.principal.staff_id(), &auth.actor())
        .await?;
    app.store.notify_jobs();
    Ok(Json(done))
}

/// Which stores' codes the sheet shows, and how.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SheetQuery {
    /// The stores under this unit (itself included); none: every store.
    pub unit_id: Option<i64>,
    /// Whether the QR codes carry the brand's logo (default false).
    pub logo: Option<bool>,
}

/// A printable page (A4, six codes a page) of the stores' codes within the caller's
/// reach: each store's name, the code's name and state, and its QR as SVG.
#[utoipa::path(get, path = "/api/v1/channel-codes/sheet", tag = "acquisition",
    params(SheetQuery),
    responses((status = 200, description = "the sheet", content_type = "text/html", body = String),
        (status = 403, body = ErrorBody),
        (status = 409, description = "a logo was asked for and the brand has none", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn store_code_sheet(
    State(app): State<AppState>,
    auth: Auth,
    origin: PublicOrigin,
    ApiQuery(q): ApiQuery<SheetQuery>,
) -> ApiResult<Html<String>> {
    auth.require(Permission::CampaignsRead)?;
    let scope = auth.scope(&app.store).await?;
    if let Some(unit) = q.unit_id {
        scope
            .get_unit(UnitId(unit))
            .await
            .map_err(|_| crate::error::ApiError::field("unit_id", "no such unit"))?;
    }
    let logo = brand_logo(&scope, q.logo.unwrap_or(false)).await?;
    let mut cards = String::new();
    for (store, code) in scope.store_codes_under(q.unit_id.map(UnitId)).await? {
        let (_, svg) = code_qr(&scope, &origin, &code, QrFormat::Svg, logo.as_ref()).await?;
        let svg = String::from_utf8(svg).unwrap_or_default();
        cards.push_str(&format!(
            "<section class=\"card\"><h2>{}</h2>{svg}<p>{}</p><p class=\"state\">{}</p></section>",
            escape(&store.name),
            escape(&code.name),
            escape(&code.state),
        ));
    }
    if cards.is_empty() {
        cards.push_str("<p>没有门店活码 · No store codes</p>");
    }
    Ok(Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>门店活码 Store codes</title><style>\
         @page{{size:A4;margin:12mm}}body{{font-family:system-ui,sans-serif;margin:0}}\
         main{{display:grid;grid-template-columns:1fr 1fr;gap:8mm}}\
         .card{{break-inside:avoid;border:1px solid #dee0e3;padding:6mm;text-align:center}}\
         .card svg{{width:60mm;height:60mm}}h2{{margin:0 0 4mm;font-size:16pt}}\
         p{{margin:2mm 0}}.state{{color:#646a73;font-size:9pt}}\
         </style></head><body><main>{cards}</main></body></html>"
    )))
}

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
