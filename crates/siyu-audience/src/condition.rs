//! A segment definition: a condition over a customer's traits, tags, events, orders,
//! scores and consent. It has two equal forms: the text a marketer types
//! (`tag("高净值") and orders.count(last 90d) >= 2`, parsed by [`crate::parse`] and
//! printed by `Display`) and JSON (the serde form of [`Condition`]) for programs and the
//! console's form builder. Either converts to the other without loss; the language is
//! documented with examples in `docs/segments.md`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest window a condition may look back over, in days (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// The longest window a condition with event property filters may look back over: those
/// read stored events rather than the per-day counts, so their scan is bounded.
pub const MAX_FILTERED_WINDOW_DAYS: u32 = 365;

/// The number of random buckets customers are spread over for A/B splits.
pub const BUCKETS: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every one holds.
    And(Vec<Condition>),
    /// At least one holds.
    Or(Vec<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
    /// The customer has this tag (by name).
    Tag(String),
    /// A test of one trait.
    Trait(TraitTest),
    /// The customer performed an event a number of times, within a window, optionally
    /// only counting events whose properties match.
    Performed(Performed),
    /// When the customer first or last performed an event.
    EventTime(EventTime),
    /// An aggregate of the customer's orders (net of refunds) within a window.
    Orders(OrderTest),
    /// When the customer last ordered.
    LastOrder(TimeTest),
    /// The customer's RFM class is one of these.
    RfmClass(Vec<RfmClass>),
    /// A comparison of one RFM score (1–5).
    RfmScore(RfmScoreTest),
    /// The customer's lifecycle stage is one of these.
    Lifecycle(Vec<LifecycleStage>),
    /// The customer bought in this unit (a brand, a store) or a unit beneath it.
    Unit(i64),
    /// Events of the customer came from this source (by name: an app, a mini-program).
    Source(String),
    /// The customer came through this channel code (渠道活码, by its `state`): one of
    /// their events carried it as its `channel_code` property.
    ChannelCode(String),
    /// The customer is owned by this staff member.
    Owner(i64),
    /// The customer has an owner.
    HasOwner,
    /// The brand may contact the customer on this channel (no opt-out on it or on all).
    Consent(String),
    /// The customer is a member of this saved segment.
    Segment(i64),
    /// The customer's random bucket (0–99, fixed per customer) compares so.
    Bucket(BucketTest),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cmp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        }
    }

    pub fn from_symbol(s: &str) -> Option<Self> {
        Some(match s {
            "=" | "==" => Cmp::Eq,
            "!=" | "<>" => Cmp::Ne,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            _ => return None,
        })
    }

    /// Whether `left op right` holds.
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
        }
    }
}

/// A test of one trait. Its JSON form is flat: `{"key": "city", "op": "in", "value":
/// ["上海", "杭州"]}`, with `op` one of `=`, `!=`, `>`, `>=`, `<`, `<=`, `in`, `exists`,
/// `contains`, `within_days`, `before_days_ago`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TraitTestJson", into = "TraitTestJson")]
pub struct TraitTest {
    pub key: String,
    pub test: TraitOp,
}

/// What is tested of a trait. Numbers compare as numbers (a trait stored as the string
/// `"30"` is the number 30); other values compare as text.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitOp {
    /// `trait.age >= 30`
    Compare { op: Cmp, value: Value },
    /// `trait.city in ("上海", "杭州")`
    In(Vec<Value>),
    /// `trait.email exists`
    Exists,
    /// `trait.name contains "李"`
    Contains(String),
    /// `trait.member_since within last 30d` or `before 365d ago` (the trait is a date).
    Time(TimeTest),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraitTestJson {
    key: String,
    op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

impl TryFrom<TraitTestJson> for TraitTest {
    type Error = String;

    fn try_from(j: TraitTestJson) -> Result<Self, String> {
        let need = |v: Option<Value>| v.ok_or_else(|| format!("op \"{}\" needs a value", j.op));
        let days = |v: Option<Value>| -> Result<u32, String> {
            need(v)?
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| "a number of days must be a whole number".to_owned())
        };
        let test = match j.op.as_str() {
            "exists" => TraitOp::Exists,
            "in" => match need(j.value.clone())? {
                Value::Array(values) => TraitOp::In(values),
                _ => return Err("op \"in\" needs a list of values".into()),
            },
            "contains" => match need(j.value.clone())? {
                Value::String(s) => TraitOp::Contains(s),
                _ => return Err("op \"contains\" needs a text value".into()),
            },
            "within_days" => TraitOp::Time(TimeTest::Within(days(j.value.clone())?)),
            "before_days_ago" => TraitOp::Time(TimeTest::Before(days(j.value.clone())?)),
            other => {
                let op =
                    Cmp::from_symbol(other).ok_or_else(|| format!("unknown op \"{other}\""))?;
                TraitOp::Compare {
                    op,
                    value: need(j.value.clone())?,
                }
            }
        };
        Ok(TraitTest { key: j.key, test })
    }
}

impl From<TraitTest> for TraitTestJson {
    fn from(t: TraitTest) -> Self {
        let (op, value) = match t.test {
            TraitOp::Compare { op, value } => (op.symbol().to_owned(), Some(value)),
            TraitOp::In(values) => ("in".to_owned(), Some(Value::Array(values))),
            TraitOp::Exists => ("exists".to_owned(), None),
            TraitOp::Contains(s) => ("contains".to_owned(), Some(Value::String(s))),
            TraitOp::Time(TimeTest::Within(d)) => ("within_days".to_owned(), Some(d.into())),
            TraitOp::Time(TimeTest::Before(d)) => ("before_days_ago".to_owned(), Some(d.into())),
        };
        TraitTestJson {
            key: t.key,
            op,
            value,
        }
    }
}

/// A relative time test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeTest {
    /// `within last 30d`: on one of the last N days (today counts as one).
    #[serde(rename = "within_days")]
    Within(u32),
    /// `before 30d ago`: earlier than the N-day window.
    #[serde(rename = "before_days_ago")]
    Before(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Performed {
    pub event: String,
    /// The last N days; all time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
    /// Only events whose properties match all of these count.
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<PropertyFilter>,
    #[serde(default = "at_least")]
    pub op: Cmp,
    #[serde(default = "once")]
    pub count: u32,
}

fn at_least() -> Cmp {
    Cmp::Ge
}

fn once() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFilter {
    pub property: String,
    pub op: Cmp,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTime {
    pub event: String,
    pub which: Which,
    #[serde(flatten)]
    pub test: TimeTest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderMeasure {
    /// How many orders.
    Count,
    /// Their total, in the tenant currency.
    Sum,
    /// Their average, in the tenant currency.
    Avg,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderTest {
    pub measure: OrderMeasure,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
    /// Only orders of this unit or a unit beneath it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<i64>,
    /// Only orders of this sales channel (`wecom`, `tmall`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub op: Cmp,
    /// A count, or an amount in the tenant currency with at most two decimals.
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmDimension {
    R,
    F,
    M,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmScoreTest {
    pub dimension: RfmDimension,
    pub op: Cmp,
    pub value: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketTest {
    pub op: Cmp,
    pub value: u32,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $code:literal, $zh:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The code used in the language, the API and the database.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),* }
            }

            /// The Chinese name shown in the console.
            pub fn chinese(self) -> &'static str {
                match self { $($name::$variant => $zh),* }
            }

            /// Reads the code or the Chinese name.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == s || v.chinese() == s)
            }
        }
    };
}

named_enum!(
    /// The eight classic RFM classes: recency, frequency and monetary value each high
    /// (score ≥ 3) or low.
    RfmClass {
        /// R high, F high, M high.
        ImportantValue => "important_value", "重要价值",
        /// R high, F low, M high.
        ImportantDevelopment => "important_development", "重要发展",
        /// R low, F high, M high.
        ImportantRetention => "important_retention", "重要保持",
        /// R low, F low, M high.
        ImportantWinBack => "important_win_back", "重要挽留",
        /// R high, F high, M low.
        GeneralValue => "general_value", "一般价值",
        /// R high, F low, M low.
        GeneralDevelopment => "general_development", "一般发展",
        /// R low, F high, M low.
        GeneralRetention => "general_retention", "一般保持",
        /// R low, F low, M low.
        GeneralWinBack => "general_win_back", "一般挽留",
    }
);

named_enum!(
    /// A customer's lifecycle stage (AARRR), plus lapsed.
    LifecycleStage {
        Acquired => "acquired", "获取",
        Activated => "activated", "激活",
        Retained => "retained", "留存",
        Revenue => "revenue", "变现",
        Referral => "referral", "推荐",
        Lapsed => "lapsed", "流失",
    }
);

impl Condition {
    /// Visits this condition and every condition inside it.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Condition)) {
        visit(self);
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                parts.iter().for_each(|c| c.walk(visit))
            }
            Condition::Not(inner) => inner.walk(visit),
            _ => {}
        }
    }

    /// The same condition with one-part `and`/`or` unwrapped and an `and` inside an
    /// `and` (an `or` inside an `or`) flattened: what printing and parsing again gives,
    /// up to these.
    pub fn simplified(&self) -> Condition {
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                let is_and = matches!(self, Condition::And(_));
                let mut flat = Vec::new();
                for part in parts.iter().map(Condition::simplified) {
                    match part {
                        Condition::And(inner) if is_and => flat.extend(inner),
                        Condition::Or(inner) if !is_and => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                if flat.len() == 1 {
                    flat.remove(0)
                } else if is_and {
                    Condition::And(flat)
                } else {
                    Condition::Or(flat)
                }
            }
            Condition::Not(inner) => Condition::Not(Box::new(inner.simplified())),
            other => other.clone(),
        }
    }

    /// The same condition with each leaf `change` gives a replacement for replaced
    /// (renaming a tag or a source in saved definitions).
    pub fn map_leaves(&self, change: &impl Fn(&Condition) -> Option<Condition>) -> Condition {
        match self {
            Condition::And(parts) => {
                Condition::And(parts.iter().map(|c| c.map_leaves(change)).collect())
            }
            Condition::Or(parts) => {
                Condition::Or(parts.iter().map(|c| c.map_leaves(change)).collect())
            }
            Condition::Not(inner) => Condition::Not(Box::new(inner.map_leaves(change))),
            leaf => change(leaf).unwrap_or_else(|| leaf.clone()),
        }
    }

    /// The tag names this condition uses.
    pub fn tags(&self) -> Vec<&str> {
        let mut tags = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Tag(name) = c {
                tags.push(name.as_str());
            }
        });
        tags
    }

    /// The saved segments this condition uses.
    pub fn segments(&self) -> Vec<i64> {
        let mut ids = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Segment(id) = c {
                ids.push(*id);
            }
        });
        ids
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for ch in s.chars() {
        match ch {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_value(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::String(s) => write_str(f, s),
        other => write!(f, "{other}"),
    }
}

fn write_time(f: &mut fmt::Formatter<'_>, t: &TimeTest) -> fmt::Result {
    match t {
        TimeTest::Within(days) => write!(f, "within last {days}d"),
        TimeTest::Before(days) => write!(f, "before {days}d ago"),
    }
}

fn write_number(f: &mut fmt::Formatter<'_>, n: f64) -> fmt::Result {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        write!(f, "{}", n as i64)
    } else {
        write!(f, "{n}")
    }
}

impl Condition {
    fn precedence(&self) -> u8 {
        match self {
            Condition::Or(_) => 1,
            Condition::And(_) => 2,
            _ => 3,
        }
    }

    fn write_child(&self, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
        if self.precedence() <= parent {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                let (word, level) = match self {
                    Condition::And(_) => (" and ", 2),
                    _ => (" or ", 1),
                };
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    part.write_child(f, level)?;
                }
                Ok(())
            }
            Condition::Not(inner) => {
                f.write_str("not ")?;
                inner.write_child(f, 2)
            }
            Condition::Tag(name) => {
                f.write_str("tag(")?;
                write_str(f, name)?;
                f.write_str(")")
            }
            Condition::Trait(t) => {
                write!(f, "trait.")?;
                if crate::parse::is_plain_key(&t.key) {
                    f.write_str(&t.key)?;
                } else {
                    write_str(f, &t.key)?;
                }
                match &t.test {
                    TraitOp::Compare { op, value } => {
                        write!(f, " {} ", op.symbol())?;
                        write_value(f, value)
                    }
                    TraitOp::In(values) => {
                        f.write_str(" in (")?;
                        for (i, v) in values.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            write_value(f, v)?;
                        }
                        f.write_str(")")
                    }
                    TraitOp::Exists => f.write_str(" exists"),
                    TraitOp::Contains(s) => {
                        f.write_str(" contains ")?;
                        write_str(f, s)
                    }
                    TraitOp::Time(t) => {
                        f.write_str(" ")?;
                        write_time(f, t)
                    }
                }
            }
            Condition::Performed(p) => {
                f.write_str("performed(")?;
                write_str(f, &p.event)?;
                if let Some(days) = p.within_days {
                    write!(f, ", last {days}d")?;
                }
                for (i, filter) in p.filters.iter().enumerate() {
                    f.write_str(if i == 0 { ", where " } else { " and " })?;
                    if crate::parse::is_plain_key(&filter.property) {
                        f.write_str(&filter.property)?;
                    } else {
                        write_str(f, &filter.property)?;
                    }
                    write!(f, " {} ", filter.op.symbol())?;
                    write_value(f, &filter.value)?;
                }
                f.write_str(")")?;
                if !(p.op == Cmp::Ge && p.count == 1) {
                    write!(f, " {} {}", p.op.symbol(), p.count)?;
                }
                Ok(())
            }
            Condition::EventTime(e) => {
                f.write_str(match e.which {
                    Which::First => "first_time(",
                    Which::Last => "last_time(",
                })?;
                write_str(f, &e.event)?;
                f.write_str(") ")?;
                write_time(f, &e.test)
            }
            Condition::Orders(o) => {
                let measure = match o.measure {
                    OrderMeasure::Count => "count",
                    OrderMeasure::Sum => "sum",
                    OrderMeasure::Avg => "avg",
                };
                write!(f, "orders.{measure}(")?;
                let mut first = true;
                let mut sep = |f: &mut fmt::Formatter<'_>| {
                    let s = if first { "" } else { ", " };
                    first = false;
                    f.write_str(s)
                };
                if let Some(days) = o.within_days {
                    sep(f)?;
                    write!(f, "last {days}d")?;
                }
                if let Some(unit) = o.unit {
                    sep(f)?;
                    write!(f, "unit = {unit}")?;
                }
                if let Some(channel) = &o.channel {
                    sep(f)?;
                    f.write_str("channel = ")?;
                    write_str(f, channel)?;
                }
                write!(f, ") {} ", o.op.symbol())?;
                write_number(f, o.value)
            }
            Condition::LastOrder(t) => {
                f.write_str("orders.last ")?;
                write_time(f, t)
            }
            Condition::RfmClass(classes) => {
                if let [one] = classes.as_slice() {
                    write!(f, "rfm.class = \"{}\"", one.code())
                } else {
                    f.write_str("rfm.class in (")?;
                    for (i, c) in classes.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "\"{}\"", c.code())?;
                    }
                    f.write_str(")")
                }
            }
            Condition::RfmScore(s) => {
                let d = match s.dimension {
                    RfmDimension::R => "r",
                    RfmDimension::F => "f",
                    RfmDimension::M => "m",
                };
                write!(f, "rfm.{d} {} {}", s.op.symbol(), s.value)
            }
            Condition::Lifecycle(stages) => {
                if let [one] = stages.as_slice() {
                    write!(f, "lifecycle = \"{}\"", one.code())
                } else {
                    f.write_str("lifecycle in (")?;
                    for (i, s) in stages.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "\"{}\"", s.code())?;
                    }
                    f.write_str(")")
                }
            }
            Condition::Unit(id) => write!(f, "unit = {id}"),
            Condition::Source(name) => {
                f.write_str("source(")?;
                write_str(f, name)?;
                f.write_str(")")
            }
            Condition::ChannelCode(code) => {
                f.write_str("channel_code(")?;
                write_str(f, code)?;
                f.write_str(")")
            }
            Condition::Owner(id) => write!(f, "owner = {id}"),
            Condition::HasOwner => f.write_str("owner exists"),
            Condition::Consent(channel) => {
                f.write_str("consent(")?;
                write_str(f, channel)?;
                f.write_str(")")
            }
            Condition::Segment(id) => write!(f, "segment({id})"),
            Condition::Bucket(b) => write!(f, "bucket {} {}", b.op.symbol(), b.value),
        }
    }
}
