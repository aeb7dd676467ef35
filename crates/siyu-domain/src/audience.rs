//! Tags and segments as stored and shown. The segment language itself, the audience
//! index and the scores live in the `siyu-audience` crate; this module holds their wire
//! shapes and the checks on names and colours.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::DomainError;
use crate::ids::{CustomerId, UnitId};
pub use crate::ids::{SegmentId, TagGroupId, TagId, TagRuleId};
use crate::order::string_enum;

string_enum!(
    /// How a tag came to be on a customer.
    TagOrigin {
        Manual => "manual",
        Rule => "rule",
        Import => "import",
        ChannelCode => "channel_code",
        Api => "api",
        Wecom => "wecom",
    }
);

string_enum!(
    /// Dynamic segments follow their definition; static ones are a frozen list.
    SegmentKind {
        Dynamic => "dynamic",
        Static => "static",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TagGroup {
    pub id: TagGroupId,
    pub name: String,
    /// The unit whose tags these are (a brand's own); the whole tenant's when absent.
    pub unit_id: Option<UnitId>,
    pub position: i64,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Tag {
    pub id: TagId,
    pub group_id: TagGroupId,
    pub name: String,
    /// `#RRGGBB`
    pub colour: String,
    pub position: i64,
    /// How many customers have it.
    pub customers: i64,
}

/// A tag on one customer, with who put it there, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerTag {
    pub tag_id: TagId,
    pub name: String,
    pub colour: String,
    pub origin: TagOrigin,
    pub reason: Option<String>,
    pub added_by: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: i64,
}

/// One change of a customer's tags.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TagChange {
    pub customer_id: CustomerId,
    pub tag_id: TagId,
    pub tag: String,
    /// `added` or `removed`
    pub action: String,
    pub origin: TagOrigin,
    pub reason: Option<String>,
    pub actor: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// What a bulk tagging did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaggingResult {
    /// Tags put on customers who did not have them.
    pub added: u64,
    /// Tags taken off customers who had them.
    pub removed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Segment {
    pub id: SegmentId,
    pub name: String,
    pub description: Option<String>,
    pub kind: SegmentKind,
    /// The definition in the text form of the segment language (dynamic segments).
    pub definition: Option<String>,
    /// The same definition in its JSON form.
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Value>,
    pub created_by: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// Checks a tag colour: `#RRGGBB`.
pub fn check_colour(field: &str, colour: &str) -> Result<String, DomainError> {
    let c = colour.trim();
    if c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit()) {
        Ok(c.to_ascii_lowercase())
    } else {
        Err(DomainError::invalid(
            field,
            "must be a colour such as #1677ff",
        ))
    }
}

/// Checks a reason given for tagging: at most 200 characters.
pub fn check_reason(reason: Option<&str>) -> Result<Option<String>, DomainError> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) if r.chars().count() > 200 => {
            Err(DomainError::invalid("reason", "at most 200 characters"))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex() {
        assert_eq!(check_colour("c", " #1677FF ").unwrap(), "#1677ff");
        assert!(check_colour("c", "blue").is_err());
        assert!(check_colour("c", "#12345").is_err());
    }
}

/// A tag rule (自动打标签): while a customer matches the condition, the rule's tags are
/// added (and others removed). Evaluated as data arrives, and over every customer when
/// the rule is saved.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TagRule {
    pub id: TagRuleId,
    pub name: String,
    /// The condition in the text form of the segment language.
    pub definition: String,
    #[schema(value_type = Object)]
    pub condition: Value,
    pub add: Vec<TagId>,
    pub remove: Vec<TagId>,
    pub enabled: bool,
    pub created_by: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A customer entering or leaving a dynamic segment: what journeys start from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SegmentEvent {
    pub id: i64,
    pub segment_id: SegmentId,
    pub customer_id: CustomerId,
    /// `entered` or `exited`
    pub action: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// A customer moving from one lifecycle stage to another.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StageChange {
    pub id: i64,
    pub customer_id: CustomerId,
    pub from: String,
    pub to: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}
