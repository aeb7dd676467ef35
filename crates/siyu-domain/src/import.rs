//! Reading CSV imports of customers and orders: which column means what (a mapping,
//! with defaults for common English and Chinese headers), and each row checked into a
//! record or refused with its line number and reason. Reading streams: rows are read
//! one at a time, so a file of millions of rows needs no more memory than one batch.
//!
//! Customers: identity columns (`user_id`, `phone`, `email`, `wecom_external_userid`,
//! `wechat_unionid`, `wechat_openid`, `anonymous_id`, or `identity:KIND` for a custom
//! kind), `name`, `consent:CHANNEL` (`opt_in` / `opt_out`), `tags` (existing tag names,
//! comma-separated), and every other column a trait named after its header. A row needs
//! at least one identity.
//!
//! Orders: `order_id`, the customer (`customer_id` or an identity column), `channel`,
//! `status`, `currency`, `exchange_rate`, `amount`, `ordered_at`, `paid_at`, `unit_id`, and one item per
//! row (`sku`, `item_name`, `category`, `price`, `quantity`); rows of one order follow
//! each other and their items are joined. Other columns become order properties.
//!
//! Times take RFC 3339 or `2026-11-01 10:00[:00]` / `2026-11-01`, read as China time
//! (+08:00) when no offset is given.

use std::collections::HashMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;
use crate::audit::Actor;
use crate::consent::{ConsentChannel, ConsentStatus};
use crate::currency::ExchangeRate;
use crate::identity::{Identity, IdentityKind};
use crate::ids::JobId;
use crate::order::{NewOrder, OrderItem, OrderStatus, SalesChannel, check_currency, parse_money};

crate::order::string_enum!(
    /// What a file holds.
    ImportKind {
        Customers => "customers",
        Orders => "orders",
    }
);

/// A refused row: its line in the file (the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

crate::order::string_enum!(
    /// Where an import stands: `queued` (its job waits for a worker), `running` (parts
    /// of it are stored), then `completed` or `failed` (with `error`). An import always
    /// reaches one of those two: a node that dies mid-file leaves its job to another,
    /// which continues where the last stored part ended. `interrupted` is only on
    /// imports made before imports were jobs, cut off by their process (the rows stored
    /// stay stored; importing the file again stores the rest, and rows already stored
    /// change nothing).
    ImportStatus {
        Queued => "queued",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Interrupted => "interrupted",
    }
);

impl ImportStatus {
    /// Whether the import has ended (it will store no more rows).
    pub fn is_finished(self) -> bool {
        !matches!(self, ImportStatus::Queued | ImportStatus::Running)
    }
}

/// The most refused rows an import keeps for its report.
pub const MAX_REPORTED_REJECTS: usize = 1000;

/// The kind of the durable job that runs an import (its handler is in `siyu-runtime`).
pub const IMPORT_JOB_KIND: &str = crate::jobs::kind::IMPORT;

/// What an import's job is given: the import (whose row names its file, mapping and
/// how far it got), and who started it, whom the audit entries it writes (consents,
/// tags) name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportJobPayload {
    pub import_id: i64,
    pub actor: Actor,
}

/// An import and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ImportJob {
    pub id: i64,
    pub kind: ImportKind,
    pub status: ImportStatus,
    /// The durable job that runs it; none for imports made before imports were jobs.
    pub job_id: Option<JobId>,
    pub file_name: String,
    pub total_rows: i64,
    pub processed_rows: i64,
    /// Rows that made or changed a customer or an order.
    pub stored_rows: i64,
    pub rejected_rows: i64,
    /// The first refused rows, with line number and reason.
    pub rejects: Vec<RejectedRow>,
    pub error: Option<String>,
    pub created_by: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// What a column of a file is taken as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Identity(IdentityKind),
    Name,
    Consent(ConsentChannel),
    /// Tag names (customers), separated by commas.
    Tags,
    Trait(String),
    CustomerId,
    OrderId,
    Channel,
    Status,
    Currency,
    ExchangeRate,
    Amount,
    OrderedAt,
    PaidAt,
    UnitId,
    Sku,
    ItemName,
    Category,
    Price,
    Quantity,
    /// An order property (orders) named after the header.
    Property(String),
    Ignore,
}

/// Reads a mapping `header=field,header=field` (`手机号=phone,会员卡号=identity:member_no,
/// 备注=ignore`). Headers not named keep their default meaning.
pub fn parse_mapping(text: &str) -> Result<HashMap<String, String>, DomainError> {
    let mut map = HashMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (header, field) = pair
            .split_once('=')
            .ok_or_else(|| DomainError::invalid("map", format!("{pair:?} is not HEADER=FIELD")))?;
        map.insert(normalize_header(header), field.trim().to_owned());
    }
    Ok(map)
}

fn normalize_header(header: &str) -> String {
    header.trim().trim_start_matches('\u{feff}').to_lowercase()
}

/// The meaning of a field name (from a mapping, or a header itself).
pub(crate) fn field_meaning(
    kind: ImportKind,
    field: &str,
    header: &str,
) -> Result<Column, DomainError> {
    let f = field.trim().to_lowercase().replace([' ', '-'], "_");
    if let Some(kind) = f.strip_prefix("identity:") {
        return Ok(Column::Identity(IdentityKind::parse(kind)?));
    }
    if let Some(channel) = f.strip_prefix("consent:") {
        if kind == ImportKind::Orders {
            return Err(DomainError::invalid(
                "map",
                "orders have no consent columns",
            ));
        }
        return Ok(Column::Consent(ConsentChannel::parse("map", channel)?));
    }
    if let Some(name) = field.trim().strip_prefix("trait:") {
        return Ok(Column::Trait(name.trim().to_owned()));
    }
    let identity = |k: &'static str| Column::Identity(IdentityKind::of(k));
    let common = match f.as_str() {
        "user_id" | "userid" | "会员id" | "用户id" => Some(identity(IdentityKind::USER_ID)),
        "anonymous_id" | "anonymousid" => Some(identity(IdentityKind::ANONYMOUS_ID)),
        "email" | "邮箱" | "电子邮箱" => Some(identity(IdentityKind::EMAIL)),
        "phone" | "mobile" | "手机" | "手机号" | "手机号码" | "电话" => {
            Some(identity(IdentityKind::PHONE))
        }
        "wecom_external_userid" | "external_userid" => {
            Some(identity(IdentityKind::WECOM_EXTERNAL_USERID))
        }
        "wechat_unionid" | "unionid" => Some(identity(IdentityKind::WECHAT_UNIONID)),
        "wechat_openid" | "openid" => Some(identity(IdentityKind::WECHAT_OPENID)),
        "ignore" => Some(Column::Ignore),
        _ => None,
    };
    if let Some(column) = common {
        return Ok(column);
    }
    Ok(match kind {
        ImportKind::Customers => match f.as_str() {
            "name" | "姓名" | "名字" | "客户名称" => Column::Name,
            "tags" | "标签" | "客户标签" => Column::Tags,
            _ => Column::Trait(header.trim().to_owned()),
        },
        ImportKind::Orders => match f.as_str() {
            "customer_id" => Column::CustomerId,
            "order_id" | "订单号" | "订单编号" => Column::OrderId,
            "channel" | "渠道" => Column::Channel,
            "status" | "状态" | "订单状态" => Column::Status,
            "currency" | "币种" => Column::Currency,
            "exchange_rate" | "汇率" => Column::ExchangeRate,
            "amount" | "total" | "金额" | "实付金额" => Column::Amount,
            "ordered_at" | "下单时间" => Column::OrderedAt,
            "paid_at" | "支付时间" => Column::PaidAt,
            "unit_id" => Column::UnitId,
            "sku" => Column::Sku,
            "item_name" | "商品" | "商品名称" => Column::ItemName,
            "category" | "品类" => Column::Category,
            "price" | "单价" => Column::Price,
            "quantity" | "数量" => Column::Quantity,
            _ => Column::Property(header.trim().to_owned()),
        },
    })
}

/// The columns of a file from its header and a mapping.
pub fn columns(
    kind: ImportKind,
    headers: &[String],
    mapping: &HashMap<String, String>,
) -> Result<Vec<Column>, DomainError> {
    let mut out = Vec::with_capacity(headers.len());
    for header in headers {
        let key = normalize_header(header);
        let field = mapping.get(&key).cloned().unwrap_or_else(|| key.clone());
        out.push(field_meaning(
            kind,
            &field,
            header.trim_start_matches('\u{feff}'),
        )?);
    }
    let has = |pred: &dyn Fn(&Column) -> bool| out.iter().any(pred);
    match kind {
        ImportKind::Customers => {
            if !has(&|c| matches!(c, Column::Identity(_))) {
                return Err(DomainError::invalid(
                    "header",
                    "no identity column: name one of user_id, phone, email, wecom_external_userid, \
                     wechat_unionid, wechat_openid, or map a column to identity:KIND",
                ));
            }
        }
        ImportKind::Orders => {
            for (needed, what) in [
                (
                    &(|c: &Column| *c == Column::OrderId) as &dyn Fn(&Column) -> bool,
                    "order_id",
                ),
                (&|c: &Column| *c == Column::Channel, "channel"),
                (&|c: &Column| *c == Column::OrderedAt, "ordered_at"),
                (
                    &|c: &Column| matches!(c, Column::CustomerId | Column::Identity(_)),
                    "customer_id or an identity (user_id, phone, …)",
                ),
            ] {
                if !has(needed) {
                    return Err(DomainError::invalid("header", format!("no {what} column")));
                }
            }
        }
    }
    Ok(out)
}

/// Reads a time as an import gives it: RFC 3339, or a date and time without an offset,
/// which is China time (+08:00).
pub fn parse_import_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(t) = crate::tracking::parse_time(text) {
        return Some(t);
    }
    let china = chrono::FixedOffset::east_opt(8 * 3600)?;
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%Y/%m/%d"]
            .iter()
            .find_map(|f| chrono::NaiveDate::parse_from_str(text, f).ok())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    naive
        .and_local_timezone(china)
        .single()
        .map(|t| t.timestamp_millis())
}

/// A customer row, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecord {
    pub line: u64,
    pub identities: Vec<Identity>,
    pub traits: Map<String, Value>,
    pub consents: Vec<(ConsentChannel, ConsentStatus)>,
    /// Tag names to put on the customer (they must exist).
    pub tags: Vec<String>,
}

impl CustomerRecord {
    /// A stable id of the row's content: the same row imported twice has the same one.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        let mut identities: Vec<&Identity> = self.identities.iter().collect();
        identities.sort();
        for identity in identities {
            hash.update(identity.kind.as_str());
            hash.update([0]);
            hash.update(&identity.value);
            hash.update([0]);
        }
        hash.update(Value::Object(self.traits.clone()).to_string());
        let digest = hash.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Whose order a row is.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerRef {
    Id(i64),
    Identity(Identity),
}

/// An order from one or more rows, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub line: u64,
    pub customer: CustomerRef,
    pub order: NewOrder,
}

/// Reads the rows of a file, one checked record (or refusal) at a time.
pub struct ImportReader<R: Read> {
    kind: ImportKind,
    csv: csv::Reader<R>,
    columns: Vec<Column>,
    now: i64,
    /// An order whose rows are still being read (orders only).
    pending: Option<Result<(OrderRecord, bool), RejectedRow>>,
    done: bool,
}

/// A row of a file: a customer, or an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Customer(CustomerRecord),
    Order(OrderRecord),
}

impl<R: Read> ImportReader<R> {
    /// Reads the header; a file without one, or whose columns cannot make records, is
    /// refused as a whole.
    pub fn new(
        kind: ImportKind,
        reader: R,
        mapping: &HashMap<String, String>,
        now: i64,
    ) -> Result<Self, DomainError> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers: Vec<String> = csv
            .headers()
            .map_err(|e| DomainError::invalid("file", format!("cannot read the header: {e}")))?
            .iter()
            .map(str::to_owned)
            .collect();
        if headers.iter().all(|h| h.is_empty()) {
            return Err(DomainError::invalid("file", "the file has no header row"));
        }
        let columns = columns(kind, &headers, mapping)?;
        Ok(Self {
            kind,
            csv,
            columns,
            now,
            pending: None,
            done: false,
        })
    }

    fn customer(&self, line: u64, row: &csv::StringRecord) -> Result<CustomerRecord, String> {
        let mut record = CustomerRecord {
            line,
            identities: Vec::new(),
            traits: Map::new(),
            consents: Vec::new(),
            tags: Vec::new(),
        };
        for (column, cell) in self.columns.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            match column {
                Column::Identity(kind) => {
                    let identity = Identity::new(kind.clone(), cell)
                        .map_err(|e| format!("{}: {}", kind.as_str(), reason(e)))?;
                    if kind.as_str() == IdentityKind::EMAIL || kind.as_str() == IdentityKind::PHONE
                    {
                        record.traits.insert(
                            kind.as_str().to_owned(),
                            Value::from(identity.value.clone()),
                        );
                    }
                    record.identities.push(identity);
                }
                Column::Name => {
                    record.traits.insert("name".into(), Value::from(cell));
                }
                Column::Consent(channel) => {
                    let status = ConsentStatus::parse("consent", cell).map_err(|_| {
                        format!("consent:{} must be opt_in or opt_out", channel.as_str())
                    })?;
                    record.consents.push((*channel, status));
                }
                Column::Trait(name) => {
                    record.traits.insert(name.clone(), Value::from(cell));
                }
                Column::Tags => {
                    for name in cell
                        .split([',', '，', ';', '；', '|', '、'])
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                    {
                        if name.chars().count() > 50 {
                            return Err(format!("tags: {name:?} is longer than 50 characters"));
                        }
                        if !record.tags.iter().any(|t| t == name) {
                            record.tags.push(name.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        if record.identities.is_empty() {
            return Err("no identity: every identity column is empty".into());
        }
        Ok(record)
    }

    /// Reads one order row: the order (with its one item) and whether it had an item.
    fn order_row(&self, line: u64, row: &csv::StringRecord) -> Result<OrderRecord, String> {
        let mut customer = None;
        let mut order_id = None;
        let (mut channel, mut status, mut currency, mut amount) = (None, None, None, None);
        let mut exchange_rate = None;
        let (mut ordered_at, mut paid_at, mut unit_id) = (None, None, None);
        let (mut sku, mut item_name, mut category, mut price, mut quantity) =
            (None, None, None, None, None);
        let mut properties = Map::new();
        for (column, cell) in self.columns.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            let time = |field: &str| {
                parse_import_time(cell).ok_or_else(|| format!("{field}: {cell:?} is not a time"))
            };
            match column {
                Column::CustomerId => {
                    customer =
                        Some(CustomerRef::Id(cell.parse().map_err(|_| {
                            format!("customer_id: {cell:?} is not an id")
                        })?))
                }
                Column::Identity(kind) if customer.is_none() => {
                    customer = Some(CustomerRef::Identity(
                        Identity::new(kind.clone(), cell)
                            .map_err(|e| format!("{}: {}", kind.as_str(), reason(e)))?,
                    ));
                }
                Column::OrderId => order_id = Some(cell.to_owned()),
                Column::Channel => {
                    channel = Some(
                        SalesChannel::parse("channel", cell)
                            .map_err(|e| reason_of("channel", e))?,
                    )
                }
                Column::Status => {
                    status = Some(
                        OrderStatus::parse("status", cell).map_err(|e| reason_of("status", e))?,
                    )
                }
                Column::Currency => {
                    currency = Some(
                        check_currency("currency", cell).map_err(|e| reason_of("currency", e))?,
                    )
                }
                Column::ExchangeRate => {
                    exchange_rate = Some(
                        ExchangeRate::parse("exchange_rate", &Value::from(cell))
                            .map_err(|e| reason_of("exchange_rate", e))?,
                    )
                }
                Column::Amount => {
                    amount = Some(
                        parse_money("amount", &Value::from(cell))
                            .map_err(|e| reason_of("amount", e))?,
                    )
                }
                Column::OrderedAt => ordered_at = Some(time("ordered_at")?),
                Column::PaidAt => paid_at = Some(time("paid_at")?),
                Column::UnitId => {
                    unit_id = Some(crate::ids::UnitId(
                        cell.parse()
                            .map_err(|_| format!("unit_id: {cell:?} is not an id"))?,
                    ))
                }
                Column::Sku => sku = Some(cell.to_owned()),
                Column::ItemName => item_name = Some(cell.to_owned()),
                Column::Category => category = Some(cell.to_owned()),
                Column::Price => {
                    price = Some(
                        parse_money("price", &Value::from(cell))
                            .map_err(|e| reason_of("price", e))?,
                    )
                }
                Column::Quantity => {
                    quantity = Some(
                        cell.parse::<i64>()
                            .map_err(|_| format!("quantity: {cell:?} is not a whole number"))?,
                    )
                }
                Column::Property(name) => {
                    properties.insert(name.clone(), Value::from(cell));
                }
                _ => {}
            }
        }
        let order_id = order_id.ok_or("order_id is empty")?;
        let customer = customer.ok_or("no customer: customer_id and every identity are empty")?;
        let items = match (&item_name, &sku) {
            (None, None) => vec![],
            _ => vec![OrderItem {
                name: item_name.clone().or(sku.clone()).unwrap_or_default(),
                sku,
                category,
                price: price.unwrap_or(0),
                quantity: quantity.unwrap_or(1),
            }],
        };
        let order = NewOrder {
            order_id,
            unit_id,
            channel: channel.ok_or("channel is empty")?,
            status: status.unwrap_or(OrderStatus::Paid),
            currency,
            exchange_rate,
            amount: amount.unwrap_or_else(|| NewOrder::items_total(&items)),
            items,
            properties,
            ordered_at: ordered_at.ok_or("ordered_at is empty")?,
            paid_at,
        };
        if matches!(
            order.status,
            OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        ) {
            return Err("status: refunds are recorded as after-sales, not as a status".into());
        }
        Ok(OrderRecord {
            line,
            customer,
            order,
        })
    }

    /// Checks a finished order (all its rows read).
    fn finish_order(
        &self,
        mut record: OrderRecord,
        amount_given: bool,
    ) -> Result<Record, RejectedRow> {
        if !amount_given {
            record.order.amount = NewOrder::items_total(&record.order.items);
        }
        let line = record.line;
        record.order = record.order.check(self.now).map_err(|e| RejectedRow {
            line,
            reason: match e {
                DomainError::Invalid(f) => format!("{}: {}", f.field, f.message),
                other => other.to_string(),
            },
        })?;
        Ok(Record::Order(record))
    }

    fn next_order(&mut self) -> Option<Result<Record, RejectedRow>> {
        loop {
            let mut row = csv::StringRecord::new();
            let read = match self.csv.read_record(&mut row) {
                Ok(read) => read,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    // the row cannot be read; the next ones may be
                    return Some(Err(RejectedRow {
                        line,
                        reason: format!("cannot read the row: {e}"),
                    }));
                }
            };
            if !read {
                self.done = true;
                return self.pending.take().map(|p| match p {
                    Ok((record, amount_given)) => self.finish_order(record, amount_given),
                    Err(rejected) => Err(rejected),
                });
            }
            let line = row.position().map_or(0, |p| p.line());
            if row.iter().all(str::is_empty) {
                continue;
            }
            if let Err(reason) = check_cells(&row) {
                let previous = self.pending.replace(Err(RejectedRow { line, reason }));
                if let Some(previous) = previous {
                    return Some(match previous {
                        Ok((record, given)) => self.finish_order(record, given),
                        Err(rejected) => Err(rejected),
                    });
                }
                continue;
            }
            let amount_given = self
                .columns
                .iter()
                .zip(row.iter())
                .any(|(c, cell)| *c == Column::Amount && !cell.is_empty());
            let parsed = self
                .order_row(line, &row)
                .map_err(|reason| RejectedRow { line, reason });
            // a row of the order being read adds its item
            if let (Some(Ok((current, given))), Ok(next)) = (&mut self.pending, &parsed)
                && current.order.order_id == next.order.order_id
            {
                current.order.items.extend(next.order.items.iter().cloned());
                *given |= amount_given;
                if amount_given {
                    current.order.amount = next.order.amount;
                }
                continue;
            }
            let previous = self.pending.replace(parsed.map(|r| (r, amount_given)));
            if let Some(previous) = previous {
                return Some(match previous {
                    Ok((record, given)) => self.finish_order(record, given),
                    Err(rejected) => Err(rejected),
                });
            }
        }
    }
}

impl<R: Read> Iterator for ImportReader<R> {
    type Item = Result<Record, RejectedRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.kind {
            ImportKind::Orders => self.next_order(),
            ImportKind::Customers => loop {
                let mut row = csv::StringRecord::new();
                match self.csv.read_record(&mut row) {
                    Ok(false) => {
                        self.done = true;
                        return None;
                    }
                    Ok(true) => {
                        let line = row.position().map_or(0, |p| p.line());
                        if row.iter().all(str::is_empty) {
                            continue;
                        }
                        return Some(
                            check_cells(&row)
                                .and_then(|()| self.customer(line, &row))
                                .map(Record::Customer)
                                .map_err(|reason| RejectedRow { line, reason }),
                        );
                    }
                    Err(e) => {
                        return Some(Err(RejectedRow {
                            line: e.position().map_or(0, |p| p.line()),
                            reason: format!("cannot read the row: {e}"),
                        }));
                    }
                }
            },
        }
    }
}

/// The most line breaks one cell may hold. A quoted cell may span lines (an address,
/// a note), but one that runs on for more is a quote left open: the reader would take
/// the rest of the file as that cell, so the row is refused saying so.
pub const MAX_LINES_PER_CELL: usize = 20;

/// Refuses a row whose cells carry what no stored text may (NUL characters, as the
/// tracking API refuses them) or that an unbalanced quote ran on.
fn check_cells(row: &csv::StringRecord) -> Result<(), String> {
    for (n, cell) in row.iter().enumerate() {
        if cell.contains('\0') {
            return Err(format!("column {} holds a NUL character", n + 1));
        }
        let breaks = cell.matches('\n').count();
        if breaks > MAX_LINES_PER_CELL {
            return Err(format!(
                "column {} is a quoted cell running over {} lines: a quote (\") opened on this \
                 line is never closed, and the lines after it were read into this cell; \
                 fix the quote and import the file again",
                n + 1,
                breaks + 1
            ));
        }
    }
    Ok(())
}

pub(crate) fn reason(e: DomainError) -> String {
    match e {
        DomainError::Invalid(f) => f.message,
        other => other.to_string(),
    }
}

fn reason_of(field: &str, e: DomainError) -> String {
    format!("{field}: {}", reason(e))
}

/// Checks a whole file before anything is made of it: it must be UTF-8 text, and CSV
/// whose quotes close (a quoted cell may span lines, up to [`MAX_LINES_PER_CELL`]).
/// Answers how many data rows it holds (for progress). The error names what is wrong
/// and on which line. (The reader itself is lenient, as spreadsheets are: rows may have
/// more or fewer cells than the header, since it reads with `flexible`; such rows are
/// read, or refused one by one with their reasons.)
pub fn check_file(bytes: &[u8]) -> Result<u64, DomainError> {
    let line_at = |at: usize| 1 + bytes[..at].iter().filter(|b| **b == b'\n').count();
    if let Err(e) = std::str::from_utf8(bytes) {
        let at = e.valid_up_to();
        return Err(DomainError::invalid(
            "file",
            format!(
                "the file is not UTF-8 text: line {} holds bytes that are not UTF-8 (byte {} \
                 of the file); save it as \"CSV UTF-8\" (Excel: CSV UTF-8 (逗号分隔)) and \
                 send it again",
                line_at(at),
                at + 1
            ),
        ));
    }
    check_quotes(bytes)?;
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let mut row = csv::StringRecord::new();
    let mut rows = 0;
    loop {
        match csv.read_record(&mut row) {
            Ok(true) => rows += 1,
            Ok(false) => return Ok(rows),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(DomainError::invalid(
                    "file",
                    format!("line {line}: the file cannot be read as CSV: {e}"),
                ));
            }
        }
    }
}

/// Follows the quotes of a file as the CSV reader does (a cell that starts with `"`
/// runs to the next `"` not doubled; a quote inside an unquoted cell is a character):
/// a quote still open at the end of the file, or a quoted cell running over more than
/// [`MAX_LINES_PER_CELL`] lines, is a quote left open, which would swallow the rows
/// after it.
fn check_quotes(bytes: &[u8]) -> Result<(), DomainError> {
    #[derive(PartialEq)]
    enum At {
        CellStart,
        Plain,
        Quoted,
        QuoteInQuoted,
    }
    let ends_cell = |b: u8| matches!(b, b',' | b'\n' | b'\r');
    let never_closed = |line: u64, why: &str| {
        DomainError::invalid(
            "file",
            format!(
                "line {line}: a quote (\") opened on this line is never closed{why}; close it \
                 (a quote inside a quoted cell is written twice: \"\") and send the file again"
            ),
        )
    };
    let (mut at, mut line, mut opened, mut breaks) = (At::CellStart, 1u64, 0u64, 0usize);
    for &b in bytes {
        at = match at {
            At::CellStart if b == b'"' => {
                opened = line;
                breaks = 0;
                At::Quoted
            }
            At::CellStart | At::Plain if ends_cell(b) => At::CellStart,
            At::CellStart | At::Plain => At::Plain,
            At::Quoted if b == b'"' => At::QuoteInQuoted,
            At::Quoted => At::Quoted,
            At::QuoteInQuoted if b == b'"' => At::Quoted,
            At::QuoteInQuoted if ends_cell(b) => At::CellStart,
            At::QuoteInQuoted => At::Plain,
        };
        if b == b'\n' {
            line += 1;
            if at == At::Quoted {
                breaks += 1;
                if breaks > MAX_LINES_PER_CELL {
                    return Err(never_closed(
                        opened,
                        &format!(" (its cell runs over more than {MAX_LINES_PER_CELL} lines)"),
                    ));
                }
            }
        }
    }
    if at == At::Quoted {
        return Err(never_closed(opened, " (the file ends inside it)"));
    }
    Ok(())
}

/// How many data rows a file holds (for a progress bar), counted without checking them.
pub fn count_rows(reader: impl Read) -> u64 {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let mut row = csv::ByteRecord::new();
    let mut n = 0;
    while let Ok(true) = csv.read_byte_record(&mut row) {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn read(kind: ImportKind, text: &str, map: &str) -> Vec<Result<Record, RejectedRow>> {
        ImportReader::new(kind, text.as_bytes(), &parse_mapping(map).unwrap(), NOW)
            .unwrap()
            .collect()
    }

    #[test]
    fn an_unbalanced_quote_and_nul_characters_are_refused_rows() {
        let mut text = String::from("user_id,name\nu-1,ok\nu-2,\"open quote\n");
        for n in 3..1004 {
            text.push_str(&format!("u-{n},row {n}\n"));
        }
        let rows = read(ImportKind::Customers, &text, "");
        assert_eq!(rows.len(), 2, "the rest is one runaway cell");
        assert!(rows[0].is_ok());
        let refused = rows[1].as_ref().unwrap_err();
        assert_eq!(refused.line, 3);
        assert!(
            refused.reason.contains("never closed"),
            "{}",
            refused.reason
        );
        // a cell over a few lines (an address) is fine
        let rows = read(
            ImportKind::Customers,
            "user_id,address\nu-1,\"line 1\nline 2\nline 3\"\nu-2,x\n",
            "",
        );
        assert!(rows.iter().all(Result::is_ok), "{rows:?}");
        for kind in [ImportKind::Customers, ImportKind::Orders] {
            let text = match kind {
                ImportKind::Customers => "user_id,name\nu-1,a\0b\nu-2,fine\n",
                ImportKind::Orders => {
                    "order_id,user_id,channel,ordered_at,amount\nO-1,u-1,tmall,2026-11-01,1\0\nO-2,u-1,tmall,2026-11-01,2\n"
                }
            };
            let rows = read(kind, text, "");
            assert_eq!(rows.len(), 2, "{rows:?}");
            let refused = rows[0].as_ref().unwrap_err();
            assert!(refused.reason.contains("NUL"), "{}", refused.reason);
            assert!(rows[1].is_ok(), "{rows:?}");
        }
    }

    #[test]
    fn customer_rows_map_headers_to_identities_traits_and_consent() {
        let rows = read(
            ImportKind::Customers,
            "\u{feff}姓名,手机号,会员卡,城市,consent:sms\n李娜,138 1234 1680,M-01,上海,opt_out\n,,,,\n王芳,12,M-02,杭州,\n",
            "会员卡=identity:member_no",
        );
        assert_eq!(rows.len(), 2, "the empty row is skipped");
        let Ok(Record::Customer(first)) = &rows[0] else {
            panic!("{rows:?}")
        };
        assert_eq!(first.line, 2);
        assert_eq!(first.traits["name"], "李娜");
        assert_eq!(first.traits["城市"], "上海");
        assert_eq!(first.traits["phone"], "+8613812341680");
        assert_eq!(first.identities[1].kind.as_str(), "member_no");
        assert_eq!(
            first.consents,
            vec![(ConsentChannel::Sms, ConsentStatus::OptOut)]
        );
        let Err(rejected) = &rows[1] else {
            panic!("{rows:?}")
        };
        assert_eq!(rejected.line, 4);
        assert!(rejected.reason.starts_with("phone:"), "{rejected:?}");
    }

    #[test]
    fn a_file_without_identities_or_orders_without_their_columns_is_refused() {
        let none = ImportReader::new(
            ImportKind::Customers,
            "name,city\nx,y\n".as_bytes(),
            &HashMap::new(),
            NOW,
        );
        assert!(matches!(none, Err(DomainError::Invalid(f)) if f.field == "header"));
        let orders = ImportReader::new(
            ImportKind::Orders,
            "order_id,phone\n1,13812341680\n".as_bytes(),
            &HashMap::new(),
            NOW,
        );
        assert!(matches!(orders, Err(DomainError::Invalid(f)) if f.message.contains("channel")));
        assert!(parse_mapping("a").is_err());
    }

    #[test]
    fn order_rows_of_one_order_join_their_items() {
        let text = "订单号,手机号,渠道,下单时间,sku,商品,单价,数量,备注\n\
                    T1,13812341680,jd,2026-11-01 10:00,A,茶,12.5,2,gift\n\
                    T1,13812341680,jd,2026-11-01 10:00,B,杯,5,1,\n\
                    T2,13812341680,mars,2026-11-01,A,茶,1,1,\n\
                    T3,,jd,2026-11-01,A,茶,1,1,\n\
                    T4,13812341680,offline,2026-11-02,,,,,\n";
        let rows = read(ImportKind::Orders, text, "");
        assert_eq!(rows.len(), 4, "{rows:?}");
        let Ok(Record::Order(t1)) = &rows[0] else {
            panic!("{rows:?}")
        };
        assert_eq!(t1.line, 2);
        assert_eq!(t1.order.items.len(), 2);
        assert_eq!(t1.order.amount, 3000);
        assert_eq!(
            t1.order.ordered_at,
            parse_import_time("2026-11-01T10:00:00+08:00").unwrap()
        );
        assert_eq!(t1.order.properties["备注"], "gift");
        assert!(matches!(&t1.customer, CustomerRef::Identity(i) if i.value == "+8613812341680"));
        assert!(matches!(&rows[1], Err(r) if r.line == 4 && r.reason.starts_with("channel")));
        assert!(matches!(&rows[2], Err(r) if r.line == 5 && r.reason.starts_with("no customer")));
        let Ok(Record::Order(t4)) = &rows[3] else {
            panic!("{rows:?}")
        };
        assert_eq!((t4.order.amount, t4.order.items.len()), (0, 0));
    }

    #[test]
    fn a_whole_file_is_checked_for_utf8_and_open_quotes_before_import() {
        let ok = "user_id,name,address\nu-1,甲,\"上海\n浦东\"\nu-2,\"say \"\"hi\"\"\",x\nu-3\n";
        assert_eq!(
            check_file(ok.as_bytes()).unwrap(),
            3,
            "rows of any width are read"
        );
        assert_eq!(check_file(b"user_id\n").unwrap(), 0);
        assert_eq!(check_file(b"").unwrap(), 0);
        let message = |e: DomainError| match e {
            DomainError::Invalid(f) => {
                assert_eq!(f.field, "file");
                f.message
            }
            other => panic!("{other:?}"),
        };
        // GBK, as Excel saves a Chinese sheet by default
        let mut gbk = b"user_id,name\nu-1,ok\nu-2,".to_vec();
        gbk.extend_from_slice(&[0xc0, 0xee, 0xc4, 0xc8]);
        gbk.extend_from_slice(b"\n");
        let e = message(check_file(&gbk).unwrap_err());
        assert!(e.contains("not UTF-8") && e.contains("line 3"), "{e}");
        // a quote left open at the end of the file
        let e = message(check_file(b"user_id,name\nu-1,ok\nu-2,\"open\nu-3,x\n").unwrap_err());
        assert!(e.contains("line 3") && e.contains("never closed"), "{e}");
        // and one that runs on over many lines, even if a later quote closes it
        let mut text = String::from("user_id,name\nu-1,\"open\n");
        for n in 0..30 {
            text.push_str(&format!("u-{n},x\n"));
        }
        text.push_str("u-99,\"closed\"\n");
        let e = message(check_file(text.as_bytes()).unwrap_err());
        assert!(
            e.contains("line 2") && e.contains("more than 20 lines"),
            "{e}"
        );
        // a quote inside an unquoted cell is a character
        assert_eq!(check_file(b"user_id,note\nu-1,5\" screen\n").unwrap(), 1);
    }

    #[test]
    fn the_same_row_has_the_same_fingerprint() {
        let a = read(ImportKind::Customers, "phone,city\n13812341680,上海\n", "");
        let b = read(ImportKind::Customers, "city,phone\n上海,13812341680\n", "");
        let c = read(ImportKind::Customers, "phone,city\n13812341680,北京\n", "");
        let print = |rows: &[Result<Record, RejectedRow>]| match &rows[0] {
            Ok(Record::Customer(c)) => c.fingerprint(),
            _ => panic!(),
        };
        assert_eq!(print(&a), print(&b));
        assert_ne!(print(&a), print(&c));
        assert_eq!(count_rows("a,b\n1,2\n3,4\n".as_bytes()), 2);
    }
}
