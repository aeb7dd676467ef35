//! Orders and after-sales: what customers bought, through which channel and unit, and
//! what came back. Orders arrive by API (`POST /api/v1/orders`), as Segment e-commerce
//! events (`Order Completed`, `Order Refunded`) and by import; all three meet in
//! [`NewOrder`], whose checks live here so every path refuses the same bad input.
//!
//! Money is kept in minor units (fen for CNY) as integers, so sums are exact; the API
//! shows and takes it as a decimal number of major units (`199.9`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;
use crate::currency::ExchangeRate;
use crate::ids::{CustomerId, UnitId};

/// An order's internal id (the brand's own order id is [`Order::order_id`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
pub struct OrderRef(pub i64);

impl std::fmt::Display for OrderRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An after-sale's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
pub struct AfterSaleId(pub i64);

impl std::fmt::Display for AfterSaleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a channel is one the brand owns (private), a public platform's shop, or both
/// (an offline store that knows its customers by phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomainClass {
    Private,
    Public,
    Hybrid,
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)*
        }

        // by hand: the derive does not see variant renames that come through a macro, and
        // the OpenAPI document (and the console's types) must list the names on the wire
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),*]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Reads the name; `field` names the input in the error.
            pub fn parse(field: &str, s: &str) -> Result<Self, $crate::DomainError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::DomainError::invalid(field, format!("must be one of {}", names.join(", ")))
                })
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Where an order was placed: the brand's own channels or a public platform.
    SalesChannel {
        Wecom => "wecom",
        MiniShop => "mini_shop",
        OfficialAccount => "official_account",
        App => "app",
        Website => "website",
        Tmall => "tmall",
        Taobao => "taobao",
        Jd => "jd",
        DouyinShop => "douyin_shop",
        Pinduoduo => "pinduoduo",
        Xiaohongshu => "xiaohongshu",
        Offline => "offline",
        Other => "other",
    }
);

impl SalesChannel {
    pub fn domain_class(self) -> DomainClass {
        match self {
            Self::Wecom | Self::MiniShop | Self::OfficialAccount | Self::App | Self::Website => {
                DomainClass::Private
            }
            Self::Offline => DomainClass::Hybrid,
            Self::Tmall
            | Self::Taobao
            | Self::Jd
            | Self::DouyinShop
            | Self::Pinduoduo
            | Self::Xiaohongshu
            | Self::Other => DomainClass::Public,
        }
    }
}

string_enum!(
    /// Where an order stands. Paid, completed and partially refunded orders count as
    /// purchases; pending, cancelled and fully refunded ones do not.
    OrderStatus {
        Pending => "pending",
        Paid => "paid",
        Completed => "completed",
        Cancelled => "cancelled",
        PartiallyRefunded => "partially_refunded",
        Refunded => "refunded",
    }
);

impl OrderStatus {
    /// Whether the order counts as a purchase in the customer's order figures.
    pub fn counts(self) -> bool {
        matches!(self, Self::Paid | Self::Completed | Self::PartiallyRefunded)
    }

    /// The statuses that count, for SQL `IN (…)` lists.
    pub const COUNTING_SQL: &'static str = "('paid', 'completed', 'partially_refunded')";
}

string_enum!(
    /// What kind of after-sale: money back, goods back (with money), or goods swapped.
    AfterSaleKind {
        Refund => "refund",
        Return => "return",
        Exchange => "exchange",
    }
);

string_enum!(
    /// An after-sale is requested, then completed or rejected. Only completed refunds
    /// and returns change the order's refunded amount.
    AfterSaleStatus {
        Requested => "requested",
        Completed => "completed",
        Rejected => "rejected",
    }
);

/// Largest amount taken, in major units: 10 billion.
const MAX_MAJOR: f64 = 1e10;
/// The same bound in minor units.
const MAX_MINOR: i64 = 1_000_000_000_000;

/// Reads an amount of money in major units (a JSON number or a numeric string) as minor
/// units. At most two decimals; not negative.
pub fn parse_money(field: &str, value: &Value) -> Result<i64, DomainError> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
    .ok_or_else(|| DomainError::invalid(field, "must be a number"))?;
    money_from_major(field, number)
}

/// Converts major units to minor units, refusing negatives, huge values and more than
/// two decimals.
pub fn money_from_major(field: &str, number: f64) -> Result<i64, DomainError> {
    if !(0.0..=MAX_MAJOR).contains(&number) {
        return Err(DomainError::invalid(
            field,
            "must be between 0 and 10000000000",
        ));
    }
    let minor = number * 100.0;
    let rounded = minor.round();
    if (minor - rounded).abs() > 1e-6 * rounded.abs().max(1.0) {
        return Err(DomainError::invalid(field, "has more than two decimals"));
    }
    Ok(rounded as i64)
}

/// Minor units as major units for the API.
pub fn money_to_major(minor: i64) -> f64 {
    minor as f64 / 100.0
}

fn major<S: serde::Serializer>(minor: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(money_to_major(*minor))
}

/// `#[serde(serialize_with = "crate::order::serialize_major")]`: minor units shown as
/// major units.
pub fn serialize_major<S: serde::Serializer>(minor: &i64, s: S) -> Result<S::Ok, S::Error> {
    major(minor, s)
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    pub sku: Option<String>,
    pub name: String,
    pub category: Option<String>,
    /// Unit price in major units.
    #[serde(serialize_with = "major")]
    #[schema(value_type = f64)]
    pub price: i64,
    pub quantity: i64,
}

/// An order as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Order {
    pub id: OrderRef,
    /// The brand's order id (unique per tenant).
    pub order_id: String,
    pub customer_id: CustomerId,
    pub unit_id: Option<UnitId>,
    pub channel: SalesChannel,
    pub domain_class: DomainClass,
    pub status: OrderStatus,
    pub currency: String,
    /// Units of the tenant currency per unit of `currency`, fixed when the order was
    /// recorded (1 for an order in the tenant currency).
    #[schema(value_type = f64)]
    pub exchange_rate: ExchangeRate,
    /// What was paid, in major units.
    #[serde(serialize_with = "major")]
    #[schema(value_type = f64)]
    pub amount: i64,
    /// What was refunded through completed after-sales, in major units.
    #[serde(serialize_with = "major")]
    #[schema(value_type = f64)]
    pub refunded_amount: i64,
    pub items: Vec<OrderItem>,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ordered_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub refunded_at: Option<i64>,
    /// How it arrived: `api`, `event` or `import`.
    pub origin: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

impl Order {
    /// The order with personal data in its properties masked (`receiver_phone`, an
    /// address's `mobile`, anything shaped like a phone or an e-mail).
    pub fn masked(mut self) -> Self {
        crate::personal::mask_properties(&mut self.properties);
        self
    }
}

/// An after-sale recorded against an order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AfterSale {
    pub id: AfterSaleId,
    pub order: OrderRef,
    pub kind: AfterSaleKind,
    pub status: AfterSaleStatus,
    /// Money returned to the customer, in major units (0 for an exchange).
    #[serde(serialize_with = "major")]
    #[schema(value_type = f64)]
    pub amount: i64,
    pub reason: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A customer's purchase figures, kept current as orders change.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, ToSchema)]
pub struct OrderStats {
    /// Orders that count (paid, completed, partially refunded).
    pub count: i64,
    /// Their amount less refunds, in major units.
    #[serde(serialize_with = "major")]
    #[schema(value_type = f64)]
    pub total: i64,
    /// Average order value in major units (0 with no orders).
    #[serde(serialize_with = "major")]
    #[schema(value_type = f64)]
    pub average: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_order_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_order_at: Option<i64>,
}

impl OrderStats {
    pub fn new(count: i64, total: i64, first: Option<i64>, last: Option<i64>) -> Self {
        Self {
            count,
            total,
            average: if count > 0 { total / count } else { 0 },
            first_order_at: first,
            last_order_at: last,
        }
    }
}

/// An order to record, checked. Made from the API body, an event or an import row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub order_id: String,
    pub unit_id: Option<UnitId>,
    pub channel: SalesChannel,
    pub status: OrderStatus,
    /// The tenant currency when absent.
    pub currency: Option<String>,
    /// The order's own rate to the tenant currency; the tenant's rate for its currency
    /// when absent (see [`crate::currency`]).
    pub exchange_rate: Option<ExchangeRate>,
    pub amount: i64,
    pub items: Vec<OrderItem>,
    pub properties: Map<String, Value>,
    pub ordered_at: i64,
    pub paid_at: Option<i64>,
}

/// Earliest order time taken: 2000-01-01.
const EARLIEST: i64 = 946_684_800_000;
/// Latest: a day ahead of now (clocks drift).
const AHEAD_MS: i64 = 86_400_000;

pub const MAX_ITEMS: usize = 500;

/// Checks an order id: 1 to 100 characters, no control characters.
pub fn check_order_id(field: &str, id: &str) -> Result<String, DomainError> {
    let id = id.trim();
    if id.is_empty() || id.chars().count() > 100 || id.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(id.to_owned())
}

/// Checks a currency code: three letters (ISO 4217), upper-cased.
pub fn check_currency(field: &str, code: &str) -> Result<String, DomainError> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(DomainError::invalid(
            field,
            "must be a three-letter currency code such as CNY",
        ));
    }
    Ok(code)
}

/// Checks a time: not before 2000, not more than a day ahead of `now`.
pub fn check_time(field: &str, at: i64, now: i64) -> Result<i64, DomainError> {
    if at < EARLIEST || at > now + AHEAD_MS {
        return Err(DomainError::invalid(
            field,
            "must be between 2000-01-01 and tomorrow",
        ));
    }
    Ok(at)
}

impl NewOrder {
    /// The amount of the items (price × quantity), in minor units.
    pub fn items_total(items: &[OrderItem]) -> i64 {
        items
            .iter()
            .map(|i| i.price.saturating_mul(i.quantity))
            .fold(0i64, i64::saturating_add)
    }

    /// Checks what every path shares: items, times, and that a paid order has a paid
    /// time (the order time, when none is given).
    pub fn check(mut self, now: i64) -> Result<Self, DomainError> {
        self.order_id = check_order_id("order_id", &self.order_id)?;
        if let Some(currency) = &self.currency {
            self.currency = Some(check_currency("currency", currency)?);
        }
        if self.items.len() > MAX_ITEMS {
            return Err(DomainError::invalid(
                "items",
                format!("at most {MAX_ITEMS} items"),
            ));
        }
        for (n, item) in self.items.iter_mut().enumerate() {
            let name = item.name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(DomainError::invalid(
                    format!("items[{n}].name"),
                    "must be 1 to 200 characters",
                ));
            }
            item.name = name.to_owned();
            if !(1..=1_000_000).contains(&item.quantity) {
                return Err(DomainError::invalid(
                    format!("items[{n}].quantity"),
                    "must be between 1 and 1000000",
                ));
            }
            for (label, text) in [("sku", &item.sku), ("category", &item.category)] {
                if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
                    return Err(DomainError::invalid(
                        format!("items[{n}].{label}"),
                        "at most 200 characters",
                    ));
                }
            }
        }
        // amounts are bounded so that sums over a customer's orders cannot overflow
        let items_total = self.items.iter().try_fold(0i64, |sum, i| {
            i.price
                .checked_mul(i.quantity)
                .and_then(|line| sum.checked_add(line))
        });
        if items_total.is_none_or(|total| total > MAX_MINOR) {
            return Err(DomainError::invalid(
                "items",
                "the items add up to more than 10000000000",
            ));
        }
        if !(0..=MAX_MINOR).contains(&self.amount) {
            return Err(DomainError::invalid(
                "amount",
                "must be between 0 and 10000000000",
            ));
        }
        self.ordered_at = check_time("ordered_at", self.ordered_at, now)?;
        if let Some(paid) = self.paid_at {
            check_time("paid_at", paid, now)?;
        }
        if self.paid_at.is_none() && self.status.counts() {
            self.paid_at = Some(self.ordered_at);
        }
        Ok(self)
    }

    /// Reads an `Order Completed` event's properties (Segment's e-commerce spec:
    /// `order_id`, `total` or `revenue`, `currency`, `products`) plus siyu's `channel`
    /// and `unit_id`. `default_channel` applies when the event names none.
    pub fn from_event(
        properties: &Map<String, Value>,
        timestamp: i64,
        default_channel: SalesChannel,
        now: i64,
    ) -> Result<Self, DomainError> {
        let text = |key: &str| match properties.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let order_id = text("order_id")
            .or_else(|| text("orderId"))
            .ok_or_else(|| DomainError::invalid("properties.order_id", "is required"))?;
        let mut items = Vec::new();
        if let Some(products) = properties.get("products") {
            let list = products.as_array().ok_or_else(|| {
                DomainError::invalid("properties.products", "must be a list of products")
            })?;
            for (n, p) in list.iter().enumerate() {
                let field = |k: &str| format!("properties.products[{n}].{k}");
                let p = p
                    .as_object()
                    .ok_or_else(|| DomainError::invalid(field("name"), "must be an object"))?;
                let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
                let quantity = match p.get("quantity") {
                    None | Some(Value::Null) => 1,
                    Some(q) => q.as_i64().ok_or_else(|| {
                        DomainError::invalid(field("quantity"), "must be a whole number")
                    })?,
                };
                items.push(OrderItem {
                    sku: s("sku").or_else(|| s("product_id")),
                    name: s("name")
                        .or_else(|| s("sku"))
                        .or_else(|| s("product_id"))
                        .unwrap_or_default(),
                    category: s("category"),
                    price: match p.get("price") {
                        None | Some(Value::Null) => 0,
                        Some(v) => parse_money(&field("price"), v)?,
                    },
                    quantity,
                });
            }
        }
        let amount = match properties
            .get("total")
            .or_else(|| properties.get("revenue"))
        {
            Some(v) if !v.is_null() => parse_money("properties.total", v)?,
            _ => Self::items_total(&items),
        };
        let channel = match text("channel") {
            Some(c) => SalesChannel::parse("properties.channel", &c)?,
            None => default_channel,
        };
        let unit_id = match properties.get("unit_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(UnitId(v.as_i64().ok_or_else(|| {
                DomainError::invalid("properties.unit_id", "must be a unit id")
            })?)),
        };
        let mut kept = properties.clone();
        for key in [
            "order_id",
            "orderId",
            "total",
            "revenue",
            "currency",
            "exchange_rate",
            "products",
            "channel",
            "unit_id",
        ] {
            kept.remove(key);
        }
        NewOrder {
            order_id,
            unit_id,
            channel,
            status: OrderStatus::Paid,
            currency: text("currency"),
            exchange_rate: match properties.get("exchange_rate") {
                None | Some(Value::Null) => None,
                Some(v) => Some(ExchangeRate::parse("properties.exchange_rate", v)?),
            },
            amount,
            items,
            properties: kept,
            ordered_at: timestamp,
            paid_at: Some(timestamp),
        }
        .check(now)
    }
}

/// An order as the API and imports take it: money as decimal numbers of major units,
/// times as RFC 3339, enums by name. [`OrderInput::to_new_order`] checks it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// The brand's order id; recording the same id again updates that order.
    pub order_id: String,
    /// The customer, by profile id …
    pub customer_id: Option<i64>,
    /// … or by an identity (`{"kind": "phone", "value": "13812341680"}`); a customer not
    /// seen before gets a new profile.
    pub customer: Option<crate::identity::IdentityInput>,
    pub unit_id: Option<i64>,
    /// `wecom`, `mini_shop`, `official_account`, `app`, `website`, `tmall`, `taobao`,
    /// `jd`, `douyin_shop`, `pinduoduo`, `xiaohongshu`, `offline` or `other`.
    pub channel: String,
    /// `pending`, `paid` (default), `completed`, `cancelled`.
    pub status: Option<String>,
    /// ISO 4217 code; the tenant currency (CNY unless set) by default.
    pub currency: Option<String>,
    /// Units of the tenant currency per unit of `currency`; the tenant's rate for that
    /// currency when absent.
    #[schema(value_type = Option<f64>)]
    pub exchange_rate: Option<Value>,
    /// What was paid, in major units; the items' total when absent.
    #[schema(value_type = Option<f64>)]
    pub amount: Option<Value>,
    #[serde(default)]
    pub items: Vec<OrderItemInput>,
    /// RFC 3339.
    pub ordered_at: String,
    /// RFC 3339; the order time for a paid order when absent.
    pub paid_at: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemInput {
    pub sku: Option<String>,
    pub name: String,
    pub category: Option<String>,
    /// Unit price in major units.
    #[schema(value_type = f64)]
    pub price: Value,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

impl OrderInput {
    /// Checks the input into an order (the customer is resolved by the caller).
    pub fn to_new_order(&self, now: i64) -> Result<NewOrder, DomainError> {
        let time = |field: &str, text: &str| {
            crate::tracking::parse_time(text)
                .ok_or_else(|| DomainError::invalid(field, "must be an RFC 3339 time"))
        };
        let status = match &self.status {
            Some(s) => OrderStatus::parse("status", s)?,
            None => OrderStatus::Paid,
        };
        if matches!(
            status,
            OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        ) {
            return Err(DomainError::invalid(
                "status",
                "refunds are recorded as after-sales, not as a status",
            ));
        }
        let mut items = Vec::with_capacity(self.items.len());
        for (n, item) in self.items.iter().enumerate() {
            items.push(OrderItem {
                sku: item.sku.clone(),
                name: item.name.clone(),
                category: item.category.clone(),
                price: parse_money(&format!("items[{n}].price"), &item.price)?,
                quantity: item.quantity,
            });
        }
        let amount = match &self.amount {
            Some(v) if !v.is_null() => parse_money("amount", v)?,
            _ => NewOrder::items_total(&items),
        };
        NewOrder {
            order_id: self.order_id.clone(),
            unit_id: self.unit_id.map(UnitId),
            channel: SalesChannel::parse("channel", &self.channel)?,
            status,
            currency: self.currency.clone(),
            exchange_rate: match &self.exchange_rate {
                None | Some(Value::Null) => None,
                Some(v) => Some(ExchangeRate::parse("exchange_rate", v)?),
            },
            amount,
            items,
            properties: self.properties.clone(),
            ordered_at: time("ordered_at", &self.ordered_at)?,
            paid_at: match &self.paid_at {
                Some(t) => Some(time("paid_at", t)?),
                None => None,
            },
        }
        .check(now)
    }
}

pub const ORDER_COMPLETED: &str = "Order Completed";
pub const ORDER_REFUNDED: &str = "Order Refunded";

/// What a Segment e-commerce event does to orders.
#[derive(Debug, Clone, PartialEq)]
pub enum Commerce {
    /// `Order Completed`: the order is recorded (or updated, by its order id).
    Completed(NewOrder),
    /// `Order Refunded`: a completed refund of `amount` (the rest of the order when
    /// absent) is recorded against the order.
    Refunded {
        order_id: String,
        amount: Option<i64>,
        reason: Option<String>,
    },
}

impl Commerce {
    /// Reads a track event's order, if its name is one of the e-commerce events.
    pub fn from_track(
        name: &str,
        properties: &Map<String, Value>,
        timestamp: i64,
        default_channel: SalesChannel,
        now: i64,
    ) -> Result<Option<Self>, DomainError> {
        match name {
            ORDER_COMPLETED => Ok(Some(Commerce::Completed(NewOrder::from_event(
                properties,
                timestamp,
                default_channel,
                now,
            )?))),
            ORDER_REFUNDED => {
                let order_id = match properties.get("order_id").or(properties.get("orderId")) {
                    Some(Value::String(s)) => check_order_id("properties.order_id", s)?,
                    Some(Value::Number(n)) => n.to_string(),
                    _ => {
                        return Err(DomainError::invalid("properties.order_id", "is required"));
                    }
                };
                let amount = match properties.get("total").or(properties.get("revenue")) {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(parse_money("properties.total", v)?),
                };
                let reason = properties
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(|r| r.chars().take(500).collect());
                Ok(Some(Commerce::Refunded {
                    order_id,
                    amount,
                    reason,
                }))
            }
            _ => Ok(None),
        }
    }
}

/// The status an order takes after refunds: refunded in full, in part, or as it was.
pub fn status_after_refunds(status: OrderStatus, amount: i64, refunded: i64) -> OrderStatus {
    if refunded <= 0 {
        if matches!(
            status,
            OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        ) {
            OrderStatus::Paid
        } else {
            status
        }
    } else if refunded >= amount {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_790_000_000_000;

    #[test]
    fn money_is_exact_in_minor_units() {
        assert_eq!(parse_money("t", &json!(19.99)).unwrap(), 1999);
        assert_eq!(parse_money("t", &json!("0.1")).unwrap(), 10);
        assert_eq!(parse_money("t", &json!(27)).unwrap(), 2700);
        assert!(parse_money("t", &json!(0.001)).is_err());
        assert!(parse_money("t", &json!(-1)).is_err());
        assert!(parse_money("t", &json!("abc")).is_err());
        assert!(parse_money("t", &json!(1e11)).is_err());
        assert_eq!(money_to_major(1999), 19.99);
    }

    #[test]
    fn an_order_completed_event_becomes_an_order() {
        let props = json!({
            "order_id": "T-1", "total": 27.5, "currency": "cny", "channel": "tmall",
            "products": [{"sku": "A", "name": "茶", "price": 12.5, "quantity": 1},
                         {"product_id": "B", "price": 15}],
            "coupon": "X"
        });
        let order = NewOrder::from_event(
            props.as_object().unwrap(),
            NOW - 1000,
            SalesChannel::MiniShop,
            NOW,
        )
        .unwrap();
        assert_eq!(order.order_id, "T-1");
        assert_eq!(order.amount, 2750);
        assert_eq!(order.currency.as_deref(), Some("CNY"));
        assert_eq!(order.channel, SalesChannel::Tmall);
        assert_eq!(order.items[1].name, "B");
        assert_eq!(order.items[1].quantity, 1);
        assert_eq!(order.paid_at, Some(NOW - 1000));
        assert_eq!(order.properties.get("coupon"), Some(&json!("X")));
        assert!(!order.properties.contains_key("products"));
    }

    #[test]
    fn the_amount_defaults_to_the_items() {
        let props =
            json!({"order_id": 7, "products": [{"name": "x", "price": 2.5, "quantity": 3}]});
        let order =
            NewOrder::from_event(props.as_object().unwrap(), NOW, SalesChannel::App, NOW).unwrap();
        assert_eq!(order.order_id, "7");
        assert_eq!(order.amount, 750);
        assert_eq!(order.channel, SalesChannel::App);
    }

    #[test]
    fn bad_orders_name_the_field() {
        let check = |props: Value| match NewOrder::from_event(
            props.as_object().unwrap(),
            NOW,
            SalesChannel::App,
            NOW,
        ) {
            Err(DomainError::Invalid(e)) => e.field,
            other => panic!("{other:?}"),
        };
        assert!(check(json!({"total": 1})).contains("order_id"));
        assert!(check(json!({"order_id": "a", "channel": "mars"})).contains("channel"));
        assert!(
            check(json!({"order_id": "a", "products": [{"name": "x", "quantity": 0}]}))
                .contains("quantity")
        );
        assert!(check(json!({"order_id": "a", "currency": "yuan"})).contains("currency"));
        // items that add up past the bound would overflow a customer's sums
        let huge: Vec<Value> = (0..10)
            .map(|i| json!({"name": format!("x{i}"), "price": 1e10, "quantity": 1_000_000}))
            .collect();
        assert_eq!(check(json!({"order_id": "a", "products": huge})), "items");
        let far = NewOrder::from_event(
            json!({"order_id": "a"}).as_object().unwrap(),
            NOW + 2 * AHEAD_MS,
            SalesChannel::App,
            NOW,
        );
        assert!(matches!(far, Err(DomainError::Invalid(e)) if e.field == "ordered_at"));
    }

    #[test]
    fn refunds_move_the_status() {
        use OrderStatus::*;
        assert_eq!(status_after_refunds(Paid, 100, 0), Paid);
        assert_eq!(status_after_refunds(Paid, 100, 40), PartiallyRefunded);
        assert_eq!(status_after_refunds(Completed, 100, 100), Refunded);
        assert_eq!(status_after_refunds(Refunded, 100, 0), Paid);
        assert!(PartiallyRefunded.counts() && !Refunded.counts() && !Pending.counts());
    }

    #[test]
    fn channels_know_their_domain() {
        assert_eq!(SalesChannel::Wecom.domain_class(), DomainClass::Private);
        assert_eq!(SalesChannel::Jd.domain_class(), DomainClass::Public);
        assert_eq!(SalesChannel::Offline.domain_class(), DomainClass::Hybrid);
        assert_eq!(
            SalesChannel::parse("channel", "douyin_shop").unwrap(),
            SalesChannel::DouyinShop
        );
    }
}
