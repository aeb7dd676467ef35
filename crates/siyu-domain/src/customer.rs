//! Customers: one profile per person in the customer pool, with the identities that
//! name them, their traits (each with the time it was last set), and where they came
//! from. Sources are where data comes from: an app, a website, a mini-program, a server.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;
use crate::identity::{Identity, IdentityKind, mask_email, mask_phone};

pub use crate::ids::{CustomerId, SourceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
}

impl Customer {
    /// Masks phone numbers and emails wherever they appear: the profile's fields, its
    /// identities of those kinds, and traits named `phone` or `email`.
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
        for (key, mask) in [
            ("email", mask_email as fn(&str) -> String),
            ("phone", mask_phone),
        ] {
            if let Some(Value::String(v)) = self.traits.get(key) {
                let masked = mask(v);
                self.traits.insert(key.into(), Value::String(masked));
            }
        }
        self.revealed = false;
        self
    }
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
        }
        .masked();
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("13812341680"), "{text}");
        assert!(!text.contains("lina@"), "{text}");
        assert!(text.contains("138****1680") && text.contains("u1") && text.contains("上海"));
    }
}
