//! Orders and after-sales. `POST /api/v1/orders` is idempotent on the brand's order id:
//! 201 when the order is new, 200 when it existed (and was updated to what was sent).
//! Staff whose data scope is narrower than the tenant see the orders of their own
//! customers only, so they list orders of one customer at a time.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use siyu_domain::access::Permission;
use siyu_domain::currency::CurrencySettings;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::UnitId;
use siyu_domain::order::{
    AfterSale, AfterSaleId, AfterSaleKind, AfterSaleStatus, Order, OrderInput, OrderRef,
    OrderStatus, SalesChannel, parse_money,
};
use siyu_domain::page::Page;
use siyu_store::{OrderFilter, now_ms};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::routes::customer_scope::reveal_for;

/// Records an order, or updates the one with the same order id.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = OrderInput,
    responses((status = 201, description = "a new order", body = Order),
        (status = 200, description = "the order existed and is updated", body = Order),
        (status = 404, description = "no such customer", body = ErrorBody),
        (status = 409, description = "the order id belongs to another customer", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn record_order(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<OrderInput>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    auth.require(Permission::OrdersWrite)?;
    let order = body.to_new_order(now_ms())?;
    let scope = auth.scope(&app.store).await?;
    let (order, created) = match (&body.customer_id, &body.customer) {
        (Some(id), None) => {
            let customer = scope.get_customer(CustomerId(*id)).await?;
            scope.record_order(customer.id, &order, "api").await?
        }
        (None, Some(identity)) => {
            let identity = identity.to_identity("customer")?;
            scope.record_order_for(&identity, &order, "api").await?
        }
        _ => {
            return Err(ApiError::field(
                "customer_id",
                "give either customer_id or customer (an identity)",
            ));
        }
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(order.masked())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    pub customer_id: Option<i64>,
    pub unit_id: Option<i64>,
    pub channel: Option<String>,
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Show phone numbers and e-mails in order properties in full (with `customer_id`;
    /// needs `customers.reveal`; audited).
    pub reveal: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevealQuery {
    /// Show phone numbers and e-mails in order properties in full (needs
    /// `customers.reveal`; audited).
    pub reveal: Option<bool>,
}

/// Orders, newest first, personal data in their properties masked.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderQuery),
    responses((status = 200, body = Page<Order>), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_orders(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<Json<Page<Order>>> {
    auth.require(Permission::OrdersRead)?;
    let page = siyu_domain::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let scope = auth.scope(&app.store).await?;
    let customer = match q.customer_id {
        Some(id) => Some(scope.get_customer(CustomerId(id)).await?.id),
        None => None,
    };
    let filter = OrderFilter {
        customer,
        unit: q.unit_id.map(UnitId),
        channel: q
            .channel
            .as_deref()
            .map(|c| SalesChannel::parse("channel", c))
            .transpose()?,
        status: q
            .status
            .as_deref()
            .map(|s| OrderStatus::parse("status", s))
            .transpose()?,
    };
    let reveal = match customer {
        Some(customer) => reveal_for(&auth, &scope, customer, q.reveal, &["orders"]).await?,
        None if q.reveal == Some(true) => {
            return Err(ApiError::field(
                "reveal",
                "reveal the orders of one customer at a time: pass customer_id",
            ));
        }
        None => false,
    };
    let orders = scope.list_orders(&filter, page).await?;
    Ok(Json(if reveal {
        orders
    } else {
        orders.map(Order::masked)
    }))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path), RevealQuery),
    responses((status = 200, description = "the order, personal data in its properties masked", body = Order),
        (status = 403, description = "reveal without customers.reveal", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_order(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<RevealQuery>,
) -> ApiResult<Json<Order>> {
    auth.require(Permission::OrdersRead)?;
    let scope = auth.scope(&app.store).await?;
    let order = scope.get_order(OrderRef(id)).await?;
    if reveal_for(&auth, &scope, order.customer_id, q.reveal, &["order"]).await? {
        Ok(Json(order))
    } else {
        Ok(Json(order.masked()))
    }
}

/// An after-sale to record against an order.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAfterSale {
    /// `refund`, `return` or `exchange`.
    pub kind: String,
    /// `requested` (default), `completed` or `rejected`.
    pub status: Option<String>,
    /// Money returned, in major units (0 or absent for an exchange).
    #[schema(value_type = Option<f64>)]
    pub amount: Option<serde_json::Value>,
    pub reason: Option<String>,
}

/// Records a refund, return or exchange on an order. A completed refund or return
/// changes the order's refunded amount and status and the customer's figures.
#[utoipa::path(post, path = "/api/v1/orders/{id}/after-sales", tag = "orders",
    params(("id" = i64, Path)), request_body = NewAfterSale,
    responses((status = 201, body = AfterSale), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn record_after_sale(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewAfterSale>,
) -> ApiResult<(StatusCode, Json<AfterSale>)> {
    auth.require(Permission::OrdersWrite)?;
    let kind = AfterSaleKind::parse("kind", &body.kind)?;
    let status = match &body.status {
        Some(s) => AfterSaleStatus::parse("status", s)?,
        None => AfterSaleStatus::Requested,
    };
    let amount = match &body.amount {
        Some(v) if !v.is_null() => parse_money("amount", v)?,
        _ => 0,
    };
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(ApiError::field("reason", "at most 500 characters"));
    }
    let scope = auth.scope(&app.store).await?;
    let order = scope.get_order(OrderRef(id)).await?;
    let after_sale = scope
        .record_after_sale(
            order.id,
            kind,
            status,
            amount,
            body.reason.as_deref(),
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(after_sale)))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}/after-sales", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AfterSale>), (status = 404, body = ErrorBody)))]
pub async fn list_after_sales(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<AfterSale>>> {
    auth.require(Permission::OrdersRead)?;
    let scope = auth.scope(&app.store).await?;
    let order = scope.get_order(OrderRef(id)).await?;
    Ok(Json(scope.list_after_sales(order.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAfterSale {
    /// `completed` or `rejected`.
    pub status: String,
}

/// Completes or rejects a requested after-sale.
#[utoipa::path(patch, path = "/api/v1/after-sales/{id}", tag = "orders",
    params(("id" = i64, Path)), request_body = UpdateAfterSale,
    responses((status = 200, body = AfterSale), (status = 404, body = ErrorBody),
        (status = 409, description = "already completed or rejected", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_after_sale(
    State(app): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateAfterSale>,
) -> ApiResult<Json<AfterSale>> {
    auth.require(Permission::OrdersWrite)?;
    let status = AfterSaleStatus::parse("status", &body.status)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(
        scope
            .update_after_sale(AfterSaleId(id), status, &auth.actor())
            .await?,
    ))
}

/// The tenant currency, in which every figure is kept (CNY unless set), and the
/// exchange rates for orders in other currencies that give none of their own.
#[utoipa::path(get, path = "/api/v1/settings/currency", tag = "orders",
    responses((status = 200, body = CurrencySettings), (status = 403, body = ErrorBody)))]
pub async fn get_currency_settings(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<CurrencySettings>> {
    auth.require(Permission::OrdersRead)?;
    let scope = auth.scope(&app.store).await?;
    Ok(Json(scope.currency_settings().await?))
}

/// Sets the tenant currency and exchange rates. Rates apply to orders recorded from
/// then on; the currency cannot change once there are orders (409). Needs
/// `settings.write`; audited.
#[utoipa::path(put, path = "/api/v1/settings/currency", tag = "orders", request_body = CurrencySettings,
    responses((status = 200, body = CurrencySettings), (status = 403, body = ErrorBody),
        (status = 409, description = "the currency cannot change once there are orders", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_currency_settings(
    State(app): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CurrencySettings>,
) -> ApiResult<Json<CurrencySettings>> {
    auth.require(Permission::SettingsWrite)?;
    let settings = body.check()?;
    let scope = auth.scope(&app.store).await?;
    scope
        .set_currency_settings(&settings, &auth.actor())
        .await?;
    Ok(Json(settings))
}
