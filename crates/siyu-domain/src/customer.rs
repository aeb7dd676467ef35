//! Customers: one profile per person in the customer pool, with the identities that
//! name them, their traits (each with the time it was last set), and where they came
//! from. Sources are where data comes from: an app, a website, a mini-program, a server.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;
use crate::identity::{Identity, IdentityKind, mask_email, mask_phone};

pub use crate::ids::{CustomerId, SourceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    App,
    Website,
    MiniProgram,
    OfficialAccount,
    Wecom,
    Server,
    Other,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Website => "website",
            Self::MiniProgram => "mini_program",
            Self::OfficialAccount => "official_account",
            Self::Wecom => "wecom",
            Self::Server => "server",
            Self::Other => "other",
        }
    }

    /// The sales channel of orders reported by this kind of source without one.
    pub fn sales_channel(self) -> crate::order::SalesChannel {
        use crate::order::SalesChannel;
        match self {
            Self::App => SalesChannel::App,
            Self::Website => SalesChannel::Website,
            Self::MiniProgram => SalesChannel::MiniShop,
            Self::OfficialAccount => SalesChannel::OfficialAccount,
            Self::Wecom => SalesChannel::Wecom,
            Self::Server | Self::Other => SalesChannel::Other,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::App,
            Self::Website,
            Self::MiniProgram,
            Self::OfficialAccount,
            Self::Wecom,
            Self::Server,
            Self::Other,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A source of events, with its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Source {
    pub id: SourceId,
    pub name: String,
    pub kind: SourceKind,
    /// The first characters of the write key, to tell keys apart.
    pub write_key_prefix: String,
    /// Events stored from this source.
    pub received: i64,
    /// Events refused (invalid items).
    pub rejected: i64,
    /// Trait names of stored events dropped because a profile, a group membership or
    /// the tenant had no room for them (see `settings/traits`).
    pub traits_dropped: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

pub const WRITE_KEY_PREFIX: &str = "siyu_wk_";

pub fn check_source_name(name: &str) -> Result<String, DomainError> {
    crate::error::check_name("name", name, 100)
}

/// A customer profile as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Customer {
    pub id: CustomerId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    pub identities: Vec<Identity>,
    pub owner_staff_id: Option<crate::ids::StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub first_seen_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    /// Whether phone and email are shown in full (a reveal, which is audited).
    pub revealed: bool,
    /// Purchase figures, kept current as orders change.
    pub orders: crate::order::OrderStats,
    /// When the customer's personal data was erased on request; such a profile keeps
    /// only anonymous figures.
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub erased_at: Option<i64>,
    /// The groups the customer belongs to (`group` calls), on a profile read by id or
    /// identity; lists leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupMembership>>,
}

/// A customer's membership of a group (a Segment `group` call: a company, a household).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GroupMembership {
    /// The `groupId` the calls named.
    pub group_id: String,
    /// The group's traits as last sent with this customer (each its newest value).
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: i64,
}

impl Customer {
    /// Masks phone numbers and emails wherever they appear: the profile's fields, its
    /// identities of those kinds, and traits that are personal by name or by shape
    /// ([`crate::personal`]).
    pub fn masked(mut self) -> Self {
        self.email = self.email.map(|e| mask_email(&e));
        self.phone = self.phone.map(|p| mask_phone(&p));
        for identity in &mut self.identities {
            match identity.kind.as_str() {
                IdentityKind::EMAIL => identity.value = mask_email(&identity.value),
                IdentityKind::PHONE => identity.value = mask_phone(&identity.value),
                _ => {}
            }
        }
        crate::personal::mask_properties(&mut self.traits);
        for group in self.groups.iter_mut().flatten() {
            crate::personal::mask_properties(&mut group.traits);
        }
        self.revealed = false;
        self
    }
}

/// The columns of a customer export, in order.
pub const EXPORT_HEADER: [&str; 15] = [
    "id",
    "name",
    "phone",
    "email",
    "user_id",
    "identities",
    "owner_staff_id",
    "first_seen_at",
    "last_seen_at",
    "order_count",
    "order_total",
    "average_order_value",
    "first_order_at",
    "last_order_at",
    "traits",
];

/// A customer as one row of an export (see [`EXPORT_HEADER`]): identities as
/// `kind:value` joined by `;`, money in major units, times in RFC 3339, traits as JSON.
///
/// Every cell is [`csv_safe`]: a name sent as `=HYPERLINK(…)` opens as text.
pub fn export_row(c: &Customer) -> Vec<String> {
    let time = |t: i64| crate::time::format_rfc3339(t);
    let money = |m: i64| format!("{:.2}", crate::order::money_to_major(m));
    let user_id = c
        .identities
        .iter()
        .find(|i| i.kind.as_str() == IdentityKind::USER_ID)
        .map(|i| i.value.clone())
        .unwrap_or_default();
    vec![
        c.id.to_string(),
        c.name.clone().unwrap_or_default(),
        c.phone.clone().unwrap_or_default(),
        c.email.clone().unwrap_or_default(),
        user_id,
        c.identities
            .iter()
            .map(|i| format!("{}:{}", i.kind.as_str(), i.value))
            .collect::<Vec<_>>()
            .join(";"),
        c.owner_staff_id.map(|s| s.to_string()).unwrap_or_default(),
        time(c.first_seen_at),
        time(c.last_seen_at),
        c.orders.count.to_string(),
        money(c.orders.total),
        money(c.orders.average),
        c.orders.first_order_at.map(time).unwrap_or_default(),
        c.orders.last_order_at.map(time).unwrap_or_default(),
        Value::Object(c.traits.clone()).to_string(),
    ]
    .into_iter()
    .map(csv_safe)
    .collect()
}

/// Neutralises a CSV cell that a spreadsheet would run as a formula (OWASP's CSV
/// injection advice): a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`. Numbers and phone numbers (`-12.50`, `+8613812341680`:
/// a sign, then only digits, dots, spaces and dashes) are left as they are, so exports
/// import again unchanged; they call no function and name no cell.
pub fn csv_safe(cell: String) -> String {
    let risky = cell
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    if !risky {
        return cell;
    }
    // the first character is ASCII here, so the rest starts at byte 1
    let rest = &cell[1..];
    let numeric = rest.chars().any(|c| c.is_ascii_digit())
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ' ' | '-'));
    if !numeric { format!("'{cell}") } else { cell }
}

/// One entry of a customer's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub id: i64,
    /// `identify`, `track`, `page`, `screen`, `group` or `alias`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    pub source_id: SourceId,
    pub message_id: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: i64,
}

/// A note staff wrote on a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Note {
    pub id: i64,
    pub customer_id: CustomerId,
    pub author_staff_id: Option<crate::ids::StaffId>,
    /// Who wrote it, as the audit log names them.
    pub author: String,
    pub body: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Checks a note's text: trimmed, 1 to 5,000 characters.
pub fn check_note(body: &str) -> Result<String, DomainError> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > 5000 {
        return Err(DomainError::invalid("body", "must be 1 to 5000 characters"));
    }
    Ok(body.to_owned())
}

/// A profile merged into this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MergeRecord {
    pub id: i64,
    pub survivor_id: CustomerId,
    pub merged_id: CustomerId,
    /// The event that proved the two were one person.
    pub message_id: Option<String>,
    pub reason: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// When an admin undid it (the merged profile is its own person again).
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub undone_at: Option<i64>,
}

/// One entry of a customer's timeline, newest first: an event, an order, a note, or a
/// profile merged into this one.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    Event(TimelineEvent),
    Order(crate::order::Order),
    Note(Note),
    Merge(MergeRecord),
}

impl TimelineEntry {
    /// Masks personal data in the entry: event and order properties by key and shape,
    /// mobile numbers written in a note.
    pub fn masked(self) -> Self {
        match self {
            TimelineEntry::Event(mut event) => {
                crate::personal::mask_properties(&mut event.properties);
                TimelineEntry::Event(event)
            }
            TimelineEntry::Order(order) => TimelineEntry::Order(order.masked()),
            TimelineEntry::Note(mut note) => {
                if let Some(masked) = crate::personal::mask_mobiles_in_text(&note.body) {
                    note.body = masked;
                }
                TimelineEntry::Note(note)
            }
            merge @ TimelineEntry::Merge(_) => merge,
        }
    }
}

/// How often a customer did one thing, and when: the per-customer event counts that
/// segments and scores read. Windows are whole days (in the tenant's time zone) ending today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EventActivity {
    /// The event name (`Page Viewed` and `Screen Viewed` for views).
    pub name: String,
    pub total: i64,
    pub last_7d: i64,
    pub last_30d: i64,
    pub last_90d: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_at: i64,
}

/// Sums per-day counts `(name, day number, count, last time)` into each event's totals
/// and rolling windows as of the day `today` (day numbers in the tenant's zone); most
/// frequent first.
pub fn summarize_activity(days: &[(String, i64, i64, i64)], today: i64) -> Vec<EventActivity> {
    let mut by_name: std::collections::BTreeMap<&str, EventActivity> = Default::default();
    for (name, day, count, last_at) in days {
        let entry = by_name.entry(name).or_insert_with(|| EventActivity {
            name: name.clone(),
            total: 0,
            last_7d: 0,
            last_30d: 0,
            last_90d: 0,
            last_at: i64::MIN,
        });
        let age = today - day;
        entry.total += count;
        for (window, slot) in [
            (7, &mut entry.last_7d),
            (30, &mut entry.last_30d),
            (90, &mut entry.last_90d),
        ] {
            if (0..window).contains(&age) {
                *slot += count;
            }
        }
        entry.last_at = entry.last_at.max(*last_at);
    }
    let mut list: Vec<EventActivity> = by_name.into_values().collect();
    list.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    list
}

/// Applies traits set at `at` over the current ones, each trait keeping the value set
/// last (an older event replayed late does not overwrite a newer value). Returns whether
/// anything changed.
pub fn merge_traits(
    traits: &mut Map<String, Value>,
    times: &mut Map<String, Value>,
    incoming: &Map<String, Value>,
    at: i64,
) -> bool {
    let mut changed = false;
    for (key, value) in incoming {
        let last = times.get(key).and_then(Value::as_i64).unwrap_or(i64::MIN);
        if at >= last && traits.get(key) != Some(value) {
            traits.insert(key.clone(), value.clone());
            changed = true;
        }
        if at > last {
            times.insert(key.clone(), Value::from(at));
            changed = true;
        }
    }
    changed
}

/// The display name from traits: `name`, else `first_name last_name`, else a nickname.
pub fn display_name(traits: &Map<String, Value>) -> Option<String> {
    let text = |k: &str| {
        traits
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = text("name") {
        return Some(name.to_owned());
    }
    match (
        text("first_name").or(text("firstName")),
        text("last_name").or(text("lastName")),
    ) {
        (Some(f), Some(l)) if f.is_ascii() => Some(format!("{f} {l}")),
        (Some(f), Some(l)) => Some(format!("{l}{f}")), // 李 + 娜: family name first
        (Some(f), None) => Some(f.to_owned()),
        (None, Some(l)) => Some(l.to_owned()),
        (None, None) => text("nickname").or(text("nickName")).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn newer_traits_win_and_late_old_ones_do_not() {
        let mut traits = Map::new();
        let mut times = Map::new();
        assert!(merge_traits(
            &mut traits,
            &mut times,
            &map(json!({"city": "杭州", "plan": "a"})),
            200
        ));
        assert!(!merge_traits(
            &mut traits,
            &mut times,
            &map(json!({"city": "上海"})),
            100
        ));
        assert_eq!(traits["city"], "杭州");
        assert!(merge_traits(
            &mut traits,
            &mut times,
            &map(json!({"city": "上海"})),
            300
        ));
        assert_eq!(traits["city"], "上海");
        assert_eq!(times["city"], 300);
        assert_eq!(times["plan"], 200);
    }

    #[test]
    fn names_follow_the_conventions_of_each_script() {
        assert_eq!(
            display_name(&map(json!({"first_name": "娜", "last_name": "李"}))).unwrap(),
            "李娜"
        );
        assert_eq!(
            display_name(&map(json!({"firstName": "Ada", "lastName": "Lovelace"}))).unwrap(),
            "Ada Lovelace"
        );
        assert_eq!(
            display_name(&map(json!({"name": " 王芳 ", "first_name": "x"}))).unwrap(),
            "王芳"
        );
        assert_eq!(display_name(&map(json!({}))), None);
    }

    #[test]
    fn activity_counts_fall_into_rolling_windows() {
        let day = 86_400_000;
        let now = 20_000 * day + 5;
        let rows = vec![
            ("Content Read".to_owned(), 20_000, 2, now - 1),
            ("Content Read".to_owned(), 19_994, 1, 19_994 * day),
            ("Content Read".to_owned(), 19_993, 4, 19_993 * day),
            ("Content Read".to_owned(), 19_900, 8, 19_900 * day),
            ("Signed Up".to_owned(), 19_950, 1, 19_950 * day + 7),
        ];
        let list = summarize_activity(&rows, 20_000);
        let read = &list[0];
        assert_eq!(read.name, "Content Read");
        assert_eq!(
            (read.total, read.last_7d, read.last_30d, read.last_90d),
            (15, 3, 7, 7)
        );
        assert_eq!(read.last_at, now - 1);
        assert_eq!(
            (list[1].total, list[1].last_90d, list[1].last_7d),
            (1, 1, 0)
        );
    }

    #[test]
    fn csv_cells_that_would_run_as_formulas_are_neutralised() {
        for start in ['=', '+', '-', '@', '\t', '\r'] {
            let cell = format!("{start}HYPERLINK(\"http://x\",\"y\")");
            assert_eq!(csv_safe(cell.clone()), format!("'{cell}"), "{start:?}");
        }
        for kept in ["李娜", "12.50", "-12.50", "0", "", "a=b", "{\"k\":1}"] {
            assert_eq!(csv_safe(kept.into()), kept);
        }
        assert_eq!(csv_safe("-2+3".into()), "'-2+3");
        assert_eq!(csv_safe("+8613812341680".into()), "+8613812341680");
        assert_eq!(csv_safe("-".into()), "'-");
        assert_eq!(csv_safe("+1 (415) 555-0100".into()), "'+1 (415) 555-0100");
    }

    #[test]
    fn masking_reaches_identities_and_traits() {
        let c = Customer {
            id: CustomerId(1),
            name: Some("李娜".into()),
            email: Some("lina@brand.cn".into()),
            phone: Some("+8613812341680".into()),
            traits: map(json!({"phone": "+8613812341680", "city": "上海"})),
            identities: vec![
                Identity::of("phone", "13812341680").unwrap(),
                Identity::of("user_id", "u1").unwrap(),
            ],
            owner_staff_id: None,
            first_seen_at: 0,
            last_seen_at: 0,
            created_at: 0,
            updated_at: 0,
            revealed: true,
            orders: Default::default(),
            erased_at: None,
            groups: None,
        }
        .masked();
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("13812341680"), "{text}");
        assert!(!text.contains("lina@"), "{text}");
        assert!(text.contains("138****1680") && text.contains("u1") && text.contains("上海"));
    }
}
