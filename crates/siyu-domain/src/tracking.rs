//! The Segment tracking spec: reading what the Segment and RudderStack SDKs send
//! (`identify`, `track`, `page`, `screen`, `group`, `alias`, and batches of them) into
//! checked events, one item at a time, so that a bad item is rejected with a reason and
//! the rest of its batch is kept.
//!
//! Facts from the wire (see shared/SEGMENT.md): a JSON `null` means absent; identify
//! traits come at the top level (Segment) or only in `context.traits` (RudderStack);
//! batch-level `context` and `integrations` merge into every item; the server assigns a
//! messageId when there is none; clock skew is corrected from `sentAt`.

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;
use crate::identity::{Identity, IdentityKind};
use crate::order::{Commerce, SalesChannel};

/// Segment's limits.
/// The names page and screen calls are counted under in per-customer event counts.
pub const PAGE_VIEWED: &str = "Page Viewed";
pub const SCREEN_VIEWED: &str = "Screen Viewed";
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
pub const MAX_BATCH_EVENTS: usize = 2500;
pub const MAX_MESSAGE_ID_CHARS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
/// Nesting deeper than this inside one event is refused (per item).
pub const MAX_DEPTH: usize = 32;
/// Events may be at most this far in the future (clocks drift) …
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;
/// … and no older than 2000-01-01.
pub const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "identify" => Some(Self::Identify),
            "track" => Some(Self::Track),
            "page" => Some(Self::Page),
            "screen" => Some(Self::Screen),
            "group" => Some(Self::Group),
            "alias" => Some(Self::Alias),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identify => "identify",
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }
}

/// One checked event, ready to store. It is kept in the ingest log in its serde form
/// until it is applied to profiles; its order is not kept there but read again from its
/// properties ([`TrackedEvent::with_commerce`] gives the same answer every time, since it
/// judges the order against `received_at`, not the clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedEvent {
    pub event_type: EventType,
    pub message_id: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// The event name of a track, the page or screen name, else empty.
    pub name: String,
    pub properties: Map<String, Value>,
    /// Traits from `traits` and `context.traits` (the top level wins).
    pub traits: Map<String, Value>,
    pub context: Map<String, Value>,
    pub group_id: Option<String>,
    pub previous_id: Option<String>,
    /// When it happened (skew-corrected), ms since the epoch.
    pub timestamp: i64,
    pub received_at: i64,
    /// The order an e-commerce event carries; see [`TrackedEvent::with_commerce`].
    #[serde(skip)]
    pub commerce: Option<Commerce>,
    /// The profile siyu itself knows the event belongs to (a personal link's click):
    /// never read from a request, only set by siyu and kept in the ingest log. It
    /// picks the profile (or the one it was merged into) before any identity, and the
    /// event's identities join it only where nobody holds them (no merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<crate::ids::CustomerId>,
}

/// The longest channel code (`state`) kept; WeCom's own limit is 30 characters.
pub const MAX_CHANNEL_CODE_CHARS: usize = 128;

/// The channel code (渠道活码, by its `state`) an event's properties name: the
/// `channel_code` property, as text, without the spaces at its ends. `Channel Code
/// Scanned` carries it, and so may `Signed Up` or any event (see docs/events.md). Blank
/// or overlong codes are not codes.
pub fn channel_code_of(properties: &Map<String, Value>) -> Option<&str> {
    match properties.get("channel_code") {
        Some(Value::String(code)) => Some(code.trim_matches(' '))
            .filter(|c| !c.is_empty() && c.chars().count() <= MAX_CHANNEL_CODE_CHARS),
        _ => None,
    }
}

/// The property of a group call's event that holds its `groupId` (its traits are under
/// `traits`).
pub const GROUP_ID: &str = "group_id";

impl TrackedEvent {
    /// The group a `group` call names and the group's traits it carries (kept in its
    /// properties as `{"group_id": …, "traits": {…}}`).
    pub fn group(&self) -> Option<(&str, &Map<String, Value>)> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        if self.event_type != EventType::Group {
            return None;
        }
        let id = self.group_id.as_deref()?;
        let traits = match self.properties.get("traits") {
            Some(Value::Object(t)) => t,
            _ => EMPTY.get_or_init(Map::new),
        };
        Some((id, traits))
    }

    /// The channel code (渠道活码, by its `state`) this event says the customer came
    /// through; see [`channel_code_of`].
    pub fn channel_code(&self) -> Option<&str> {
        channel_code_of(&self.properties)
    }

    /// Reads the order of an e-commerce track event (`Order Completed`, `Order
    /// Refunded`); `default_channel` is the sales channel of the source, used when the
    /// event names none. An invalid order refuses the event with the reason.
    pub fn with_commerce(mut self, default_channel: SalesChannel) -> Result<Self, String> {
        if self.event_type == EventType::Track {
            self.commerce = Commerce::from_track(
                &self.name,
                &self.properties,
                self.timestamp,
                default_channel,
                self.received_at,
            )
            .map_err(|e| match e {
                DomainError::Invalid(f) => format!("{} {}", f.field, f.message),
                other => other.to_string(),
            })?;
        }
        Ok(self)
    }

    /// The identities this event names: its user and anonymous ids, an email and phone
    /// among its traits, and `context.externalIds` (Segment's way to pass other ids,
    /// such as `{"id": "wm…", "type": "wecom_external_userid"}`). Invalid values (an
    /// email trait that is not an email) are skipped, not fatal.
    pub fn identities(&self) -> Vec<Identity> {
        let mut out = Vec::new();
        let mut push = |kind: IdentityKind, value: &str| {
            if let Ok(identity) = Identity::new(kind, value)
                && !out.contains(&identity)
            {
                out.push(identity);
            }
        };
        if let Some(user_id) = &self.user_id {
            push(IdentityKind::of(IdentityKind::USER_ID), user_id);
        }
        if let Some(previous) = self
            .previous_id
            .as_ref()
            .filter(|_| self.event_type == EventType::Alias)
        {
            // an alias names the id the person had before; which kind it was is unknown,
            // and SDKs send the anonymous id there
            push(IdentityKind::of(IdentityKind::ANONYMOUS_ID), previous);
        }
        if let Some(anonymous_id) = &self.anonymous_id {
            push(IdentityKind::of(IdentityKind::ANONYMOUS_ID), anonymous_id);
        }
        for (key, kind) in [
            ("email", IdentityKind::EMAIL),
            ("phone", IdentityKind::PHONE),
        ] {
            if let Some(Value::String(v)) = self.traits.get(key) {
                push(IdentityKind::of(kind), v);
            }
        }
        if let Some(Value::Array(ids)) = self.context.get("externalIds") {
            for entry in ids {
                if let (Some(Value::String(id)), Some(Value::String(kind))) =
                    (entry.get("id"), entry.get("type"))
                    && let Ok(kind) = IdentityKind::parse(kind)
                {
                    push(kind, id);
                }
            }
        }
        out
    }
}

/// Why an item was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Rejection {
    /// The item's position in the batch (0 for a single call).
    pub index: usize,
    #[serde(rename = "messageId")]
    pub message_id: Option<String>,
    pub code: RejectionCode,
    pub reason: String,
}

/// What kind of refusal an item got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The item does not follow the tracking spec (type, ids, sizes, times …).
    InvalidEvent,
    /// The order it carries cannot be taken (invalid, or a currency without a rate).
    InvalidOrder,
    /// It brings more trait names than the tenant's limits allow
    /// ([`crate::traits::TraitLimits`]).
    TooManyTraits,
}

/// What the batch as a whole carries into each item.
#[derive(Debug, Clone, Default)]
pub struct BatchDefaults {
    pub context: Map<String, Value>,
    pub sent_at: Option<i64>,
}

/// Reads one item. `implied` is the type given by the endpoint (`/v1/track`), if any;
/// `invalid_utf8` says the body held bytes that were not UTF-8 and were replaced, so an
/// item showing a replacement character is refused rather than stored mangled.
pub fn read_event(
    index: usize,
    item: Value,
    implied: Option<EventType>,
    defaults: &BatchDefaults,
    received_at: i64,
    invalid_utf8: bool,
    new_message_id: impl FnOnce() -> String,
) -> Result<TrackedEvent, Rejection> {
    let reject = |message_id: Option<String>, reason: String| Rejection {
        index,
        message_id,
        code: RejectionCode::InvalidEvent,
        reason,
    };
    let Value::Object(mut object) = item else {
        return Err(reject(None, "an event must be a JSON object".into()));
    };
    let message_id_given = match object.get("messageId") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let fail = |reason: &str| Err(reject(message_id_given.clone(), reason.to_owned()));

    let size = serialized_size(&object);
    if size > MAX_EVENT_BYTES {
        return fail(&format!(
            "the event is {size} bytes; the limit is 32 KB ({MAX_EVENT_BYTES} bytes)"
        ));
    }
    if 1 + object.values().map(depth).max().unwrap_or(0) > MAX_DEPTH {
        return fail(&format!("the event nests deeper than {MAX_DEPTH} levels"));
    }
    if object.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) {
        // PostgreSQL text cannot hold it, and no channel needs it
        return fail("the event holds a NUL character (\\u0000)");
    }
    if invalid_utf8 && serde_json::to_string(&object).is_ok_and(|s| s.contains('\u{FFFD}')) {
        return fail("the event holds bytes that are not valid UTF-8");
    }
    // a null is "absent"
    object.retain(|_, v| !v.is_null());

    let event_type = match (object.get("type"), implied) {
        (Some(Value::String(t)), _) => match EventType::parse(t) {
            Some(t) if implied.is_none_or(|i| i == t) => t,
            Some(_) => return fail("the event's type does not match the endpoint"),
            None => {
                return fail(&format!(
                    "unknown type {t:?}: use identify, track, page, screen, group or alias"
                ));
            }
        },
        (None, Some(t)) => t,
        (Some(_), _) => return fail("type must be a string"),
        (None, None) => return fail("type is missing"),
    };

    let message_id = match object.get("messageId") {
        Some(Value::String(s)) if s.trim().is_empty() => new_message_id(),
        Some(Value::String(s)) if s.chars().count() > MAX_MESSAGE_ID_CHARS => {
            return fail(&format!(
                "messageId is longer than {MAX_MESSAGE_ID_CHARS} characters"
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return fail("messageId must be a string"),
        None => new_message_id(),
    };
    let user_id = id_field(&object, "userId").map_err(|r| reject(Some(message_id.clone()), r))?;
    let anonymous_id =
        id_field(&object, "anonymousId").map_err(|r| reject(Some(message_id.clone()), r))?;
    let previous_id =
        id_field(&object, "previousId").map_err(|r| reject(Some(message_id.clone()), r))?;
    let group_id = id_field(&object, "groupId").map_err(|r| reject(Some(message_id.clone()), r))?;
    let fail = |reason: &str| Err(reject(Some(message_id.clone()), reason.to_owned()));

    if user_id.is_none() && anonymous_id.is_none() {
        return fail("userId or anonymousId is required");
    }
    match event_type {
        EventType::Alias if previous_id.is_none() || user_id.is_none() => {
            return fail("alias needs userId and previousId");
        }
        EventType::Group if group_id.is_none() => return fail("group needs groupId"),
        _ => {}
    }

    let name = match event_type {
        EventType::Track => match object.get("event") {
            Some(Value::String(e)) if !e.trim().is_empty() => e.trim().to_owned(),
            Some(Value::String(_)) | None => return fail("track needs an event name"),
            Some(_) => return fail("event must be a string"),
        },
        EventType::Page | EventType::Screen => match object.get("name") {
            Some(Value::String(n)) => n.trim().to_owned(),
            None => String::new(),
            Some(_) => return fail("name must be a string"),
        },
        _ => String::new(),
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return fail(&format!(
            "the event name is longer than {MAX_NAME_CHARS} characters"
        ));
    }

    let mut context = match object.remove("context") {
        Some(Value::Object(c)) => c,
        None => Map::new(),
        Some(_) => return fail("context must be an object"),
    };
    for (k, v) in &defaults.context {
        context.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let properties = match object.remove("properties") {
        Some(Value::Object(p)) => p,
        None => Map::new(),
        Some(_) => return fail("properties must be an object"),
    };
    let mut properties = properties;
    let mut traits = match context.get("traits") {
        Some(Value::Object(t)) => t.clone(),
        _ => Map::new(),
    };
    match (object.remove("traits"), event_type) {
        // a group call's traits are the group's: kept on the event (and the customer's
        // membership), never on the profile
        (Some(Value::Object(mut t)), EventType::Group) => {
            t.retain(|_, v| !v.is_null());
            properties.insert("traits".into(), Value::Object(t));
        }
        (Some(Value::Object(t)), _) => traits.extend(t),
        (None, _) => {}
        (Some(_), _) => return fail("traits must be an object"),
    }
    if event_type == EventType::Group {
        if let Some(group_id) = &group_id {
            properties.insert(GROUP_ID.into(), Value::String(group_id.clone()));
        }
        properties
            .entry("traits")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    traits.retain(|_, v| !v.is_null());

    let when = |field: &str| -> Result<Option<i64>, String> {
        match object.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => parse_time(s)
                .map(Some)
                .ok_or_else(|| format!("{field} is not an ISO 8601 time")),
            Some(_) => Err(format!("{field} must be an ISO 8601 string")),
        }
    };
    let timestamp = when("timestamp").map_err(|r| reject(Some(message_id.clone()), r))?;
    let original = when("originalTimestamp").map_err(|r| reject(Some(message_id.clone()), r))?;
    let sent_at = when("sentAt")
        .map_err(|r| reject(Some(message_id.clone()), r))?
        .or(defaults.sent_at);
    let timestamp = match (timestamp, original, sent_at) {
        (Some(t), _, _) => t,
        (None, Some(o), Some(s)) => received_at - (s - o),
        (None, Some(o), None) => o,
        (None, None, _) => received_at,
    };
    if timestamp > received_at + MAX_FUTURE_MS {
        return fail("the timestamp is more than a day in the future");
    }
    if timestamp < MIN_TIMESTAMP_MS {
        return fail("the timestamp is before 2000-01-01");
    }

    Ok(TrackedEvent {
        event_type,
        message_id,
        user_id,
        anonymous_id,
        name,
        properties,
        traits,
        context,
        group_id,
        previous_id,
        timestamp,
        received_at,
        commerce: None,
        customer: None,
    })
}

/// An id field: a string or a number (some SDKs send numeric user ids), trimmed.
fn id_field(object: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    let value = match object.get(field) {
        None => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("{field} must be a string")),
    };
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > 200 {
        return Err(format!("{field} is longer than 200 characters"));
    }
    Ok(Some(value))
}

/// Parses ISO 8601 / RFC 3339; a time without an offset is taken as UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim(), format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// The size of the item as JSON, counted without building the text.
fn serialized_size(object: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, object) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Whether a NUL character is in any key or string of the value.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Array(a) => a.iter().any(holds_nul),
        _ => false,
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_795_463_644_537; // 2026-11-23T19:54:04.537Z

    fn read(item: Value, implied: Option<EventType>) -> Result<TrackedEvent, Rejection> {
        read_event(
            0,
            item,
            implied,
            &BatchDefaults::default(),
            NOW,
            false,
            || "generated".into(),
        )
    }

    #[test]
    fn reads_what_the_segment_sdk_sends() {
        let e = read(
            json!({"type": "track", "event": "Product Viewed", "userId": "u1", "anonymousId": null,
                   "messageId": "m1", "timestamp": "2026-11-23T19:50:00.123456+00:00",
                   "properties": {"sku": "A1"}, "context": {"library": {"name": "analytics-python"}},
                   "integrations": {}, "category": null}),
            None,
        )
        .unwrap();
        assert_eq!(e.event_type, EventType::Track);
        assert_eq!(e.name, "Product Viewed");
        assert_eq!(e.user_id.as_deref(), Some("u1"));
        assert_eq!(e.anonymous_id, None);
        assert_eq!(e.timestamp, parse_time("2026-11-23T19:50:00.123Z").unwrap());
        assert_eq!(e.properties["sku"], "A1");
    }

    #[test]
    fn identify_traits_come_from_the_top_level_or_context() {
        let rudder = read(json!({"type": "identify", "userId": "u1", "context": {"traits": {"email": "A@B.cn", "name": "李娜"}}}), None).unwrap();
        assert_eq!(rudder.traits["name"], "李娜");
        let both = read(json!({"type": "identify", "userId": "u1", "traits": {"name": "new"}, "context": {"traits": {"name": "old", "city": "上海"}}}), None).unwrap();
        assert_eq!(both.traits["name"], "new");
        assert_eq!(both.traits["city"], "上海");
        let ids: Vec<_> = rudder
            .identities()
            .into_iter()
            .map(|i| (i.kind.as_str().to_owned(), i.value))
            .collect();
        assert_eq!(
            ids,
            [
                ("user_id".to_owned(), "u1".to_owned()),
                ("email".to_owned(), "a@b.cn".to_owned())
            ]
        );
    }

    #[test]
    fn a_group_call_keeps_its_group_on_the_event_and_off_the_profile() {
        let e = read(
            json!({"type": "group", "userId": "u1", "groupId": 42,
                   "traits": {"name": "Acme", "plan": "pro", "gone": null},
                   "context": {"traits": {"email": "a@b.cn"}}}),
            None,
        )
        .unwrap();
        assert_eq!(
            Value::Object(e.properties.clone()),
            json!({"group_id": "42", "traits": {"name": "Acme", "plan": "pro"}})
        );
        // the user's own traits still come from context.traits
        assert_eq!(Value::Object(e.traits.clone()), json!({"email": "a@b.cn"}));
        let (id, traits) = e.group().unwrap();
        assert_eq!((id, traits.len()), ("42", 2));
        let bare = read(
            json!({"type": "group", "userId": "u1", "groupId": "g"}),
            None,
        )
        .unwrap();
        assert_eq!(
            Value::Object(bare.properties),
            json!({"group_id": "g", "traits": {}})
        );
    }

    #[test]
    fn clock_skew_is_corrected_from_sent_at() {
        // the device clock is 10 minutes fast: it says it sent at 20:04 what happened at 20:03
        let e = read(
            json!({"type": "track", "event": "x", "userId": "u", "originalTimestamp": "2026-11-23T20:03:04.537Z", "sentAt": "2026-11-23T20:04:04.537Z"}),
            None,
        )
        .unwrap();
        assert_eq!(e.timestamp, NOW - 60_000);
        let batch_sent = BatchDefaults {
            sent_at: parse_time("2026-11-23T20:04:04.537Z"),
            ..BatchDefaults::default()
        };
        let e = read_event(0, json!({"type": "track", "event": "x", "userId": "u", "originalTimestamp": "2026-11-23T20:04:04.537Z"}), None, &batch_sent, NOW, false, || "g".into()).unwrap();
        assert_eq!(e.timestamp, NOW);
        let explicit = read(json!({"type": "track", "event": "x", "userId": "u", "timestamp": "2026-11-23T10:00:00Z", "sentAt": "2026-11-23T20:04:04.537Z"}), None).unwrap();
        assert_eq!(
            explicit.timestamp,
            parse_time("2026-11-23T10:00:00Z").unwrap()
        );
        assert_eq!(
            read(json!({"type": "track", "event": "x", "userId": "u"}), None)
                .unwrap()
                .timestamp,
            NOW
        );
    }

    #[test]
    fn batch_context_merges_under_the_items_own() {
        let defaults = BatchDefaults {
            context: json!({"app": {"name": "shop"}, "locale": "zh-CN"})
                .as_object()
                .unwrap()
                .clone(),
            sent_at: None,
        };
        let e = read_event(0, json!({"type": "page", "name": "Home", "anonymousId": "a", "context": {"locale": "en"}}), None, &defaults, NOW, false, || "g".into()).unwrap();
        assert_eq!(e.context["locale"], "en");
        assert_eq!(e.context["app"]["name"], "shop");
        assert_eq!(e.name, "Home");
        assert_eq!(e.message_id, "g", "the server assigns a missing messageId");
    }

    #[test]
    fn bad_items_get_a_reason() {
        let cases = [
            (json!("just a string"), "JSON object"),
            (
                json!({"type": "track", "event": "x"}),
                "userId or anonymousId",
            ),
            (json!({"type": "track", "userId": "u"}), "event name"),
            (json!({"type": "fly", "userId": "u"}), "unknown type"),
            (json!({"type": "alias", "userId": "u"}), "previousId"),
            (json!({"type": "group", "userId": "u"}), "groupId"),
            (
                json!({"type": "track", "event": "x", "userId": {"a": 1}}),
                "userId must be a string",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "properties": "no"}),
                "properties must be an object",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "timestamp": "yesterday"}),
                "ISO 8601",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "timestamp": "2031-01-01T00:00:00Z"}),
                "future",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "timestamp": "1999-12-31T00:00:00Z"}),
                "2000-01-01",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "messageId": "m".repeat(101)}),
                "longer than 100",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "properties": {"big": "x".repeat(40_000)}}),
                "32 KB",
            ),
            (
                json!({"type": "identify", "userId": "u\u{0}1", "traits": {"name": "a"}}),
                "NUL",
            ),
            (
                json!({"type": "identify", "userId": "u", "traits": {"name": ["a", "b\u{0}"]}}),
                "NUL",
            ),
            (
                json!({"type": "track", "event": "x", "userId": "u", "properties": {"k\u{0}": 1}}),
                "NUL",
            ),
        ];
        for (item, reason) in cases {
            let err = read(item.clone(), None).unwrap_err();
            assert!(err.reason.contains(reason), "{item}: {}", err.reason);
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({"x": deep});
        }
        let err = read(
            json!({"type": "track", "event": "x", "userId": "u", "properties": deep}),
            None,
        )
        .unwrap_err();
        assert!(err.reason.contains("nests deeper"));
        assert_eq!(
            read(
                json!({"type": "page", "userId": "u"}),
                Some(EventType::Track)
            )
            .unwrap_err()
            .reason,
            "the event's type does not match the endpoint"
        );
        let mangled = read_event(
            0,
            json!({"type": "track", "event": "caf\u{FFFD}", "userId": "u"}),
            None,
            &BatchDefaults::default(),
            NOW,
            true,
            || "g".into(),
        );
        assert!(mangled.unwrap_err().reason.contains("UTF-8"));
    }

    #[test]
    fn external_ids_and_numeric_user_ids_become_identities() {
        let e = read(
            json!({"type": "identify", "userId": 42, "traits": {"phone": "138 1234 1680", "email": "not-an-email"},
                   "context": {"externalIds": [{"id": "wmABC", "type": "wecom_external_userid", "collection": "users"}]}}),
            None,
        )
        .unwrap();
        let ids: Vec<_> = e
            .identities()
            .into_iter()
            .map(|i| format!("{}={}", i.kind.as_str(), i.value))
            .collect();
        assert_eq!(
            ids,
            [
                "user_id=42",
                "phone=+8613812341680",
                "wecom_external_userid=wmABC"
            ]
        );
    }
}
