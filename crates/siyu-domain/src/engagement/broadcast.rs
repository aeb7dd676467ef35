//! Mass sends (群发): one message to an audience, planned once into a durable list of
//! recipients and sent in batches.
//!
//! Planning decides who receives it, and says why the rest do not: a customer who opted
//! out of the channel (or of everything) is left out, so is one who already received as
//! many mass messages on the channel as the frequency cap allows in its window, and a
//! customer named twice (a list with repeats, or two ids of one merged person) receives
//! it once. The rules here are plain functions over what the store read; the store
//! writes what they decide.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::engagement::content::BroadcastAttachment;
use crate::engagement::template::{MessageTemplate, TemplateSnapshot};
use crate::error::{DomainError, check_name};
use crate::ids::{BroadcastId, ConnectorId, ContentItemId, CustomerId, MessageTemplateId, StaffId};
use crate::order::string_enum;
use crate::time::TimeZone;

/// The most a WeCom text may be, in bytes; the sandbox keeps WeCom's limit so a message
/// tried there fits WeCom too.
pub const TEXT_MAX_BYTES: usize = 4_000;
/// The most customers a list may name.
pub const LIST_MAX: usize = 100_000;
/// Recipients per batch on the sandbox: one job sends one batch.
pub const SANDBOX_BATCH: usize = 5_000;

string_enum!(
    /// Where a mass send goes. On WeCom each member gets a task for their customers and
    /// confirms it in the app (see `member_tasks`); the sandbox answers as a channel
    /// would, without members or customers' phones, for the demo and the benchmark.
    BroadcastChannel {
        Sandbox => "sandbox",
        Wecom => "wecom",
    }
);

string_enum!(
    /// Where a send stands: waiting for its time, being planned, sending its batches,
    /// sent (every batch answered), or cancelled (batches not yet sent never will be).
    BroadcastState {
        Scheduled => "scheduled",
        Planning => "planning",
        Sending => "sending",
        Sent => "sent",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// How many mass messages one customer may receive on a channel. The default
    /// mirrors WeCom's: as many a month as the month has days. A corp that set WeCom to
    /// stricter terms picks the same here.
    FrequencyCap {
        DaysInMonth => "days_in_month",
        SevenAWeek => "seven_a_week",
        OneADay => "one_a_day",
    }
);

string_enum!(
    /// Why a customer of the audience does not receive a send.
    Exclusion {
        // opted out of the channel, or of every channel.
        OptedOut => "opted_out",
        // already received as many mass messages as the cap allows in its window.
        Capped => "capped",
        // named more than once (a repeat in a list, or another id of a merged person).
        Duplicate => "duplicate",
        // a listed id that is no customer within the sender's reach.
        NotFound => "not_found",
        // WeCom: no member has them as an external contact.
        NoRelation => "no_relation",
        // WeCom: only members who left the company have them (transfer them first).
        MemberLeft => "member_left",
    }
);

impl FrequencyCap {
    /// The window that `at` falls in (its start, in epoch milliseconds, in the tenant's
    /// time zone) and how many mass messages a customer may receive within it.
    pub fn window(self, zone: TimeZone, at: i64) -> (i64, u32) {
        let day = zone.day_of(at);
        let (y, m, d) = crate::time::civil_from_days(day);
        match self {
            FrequencyCap::OneADay => (zone.start_of_day(day), 1),
            FrequencyCap::SevenAWeek => {
                let date = NaiveDate::from_ymd_opt(y as i32, m, d).expect("a real day");
                let monday = day - i64::from(date.weekday().num_days_from_monday());
                (zone.start_of_day(monday), 7)
            }
            FrequencyCap::DaysInMonth => {
                let first = crate::time::days_from_civil(y, m, 1).expect("the first exists");
                let next = if m == 12 {
                    crate::time::days_from_civil(y + 1, 1, 1)
                } else {
                    crate::time::days_from_civil(y, m + 1, 1)
                }
                .expect("the next month's first exists");
                (zone.start_of_day(first), (next - first) as u32)
            }
        }
    }
}

/// Who a send goes to: every customer (`"everyone"`), the customers a condition
/// matches (a saved segment `{"segment": id}`, tags, any definition in the segment
/// language's JSON form), or a list of customer ids; always within the sender's reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BroadcastAudience {
    Everyone,
    #[schema(value_type = Object)]
    Condition(serde_json::Value),
    Customers(Vec<CustomerId>),
}

/// A mass send as asked for (`POST /api/v1/broadcasts`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBroadcast {
    pub name: String,
    #[serde(default = "sandbox")]
    pub channel: BroadcastChannel,
    /// The WeCom connector a WeCom send goes through; the tenant's only one when absent.
    #[serde(default)]
    pub connector_id: Option<ConnectorId>,
    pub audience: BroadcastAudience,
    /// The message, as the recipient reads it; or
    #[serde(default)]
    pub text: Option<String>,
    /// a message template, rendered for each customer (on WeCom, once per member task:
    /// the member's values, the customers' fallbacks). One of the two.
    #[serde(default)]
    pub template_id: Option<MessageTemplateId>,
    /// Items of the content library sent with the text (at most 9; not texts): images,
    /// link and mini-program cards, videos, files. Kept as they are now.
    #[serde(default)]
    pub content_ids: Vec<ContentItemId>,
    /// Default: the days of the month, as WeCom.
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
    /// When to send (RFC 3339); now when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub send_at: Option<String>,
}

fn sandbox() -> BroadcastChannel {
    BroadcastChannel::Sandbox
}

/// A change to a scheduled send (`PATCH /api/v1/broadcasts/{id}`), before its time.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastChange {
    pub name: Option<String>,
    pub audience: Option<BroadcastAudience>,
    /// A new text (the template, if any, is dropped), or
    pub text: Option<String>,
    /// a new template (the text is its body).
    pub template_id: Option<MessageTemplateId>,
    /// New attachments from the content library (`[]`: none).
    pub content_ids: Option<Vec<ContentItemId>>,
    pub frequency_cap: Option<FrequencyCap>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub send_at: Option<String>,
}

/// A send checked and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastSpec {
    pub name: String,
    pub channel: BroadcastChannel,
    /// WeCom's connector (set by the caller from `connector_id` or the tenant's only
    /// one; `None` on the sandbox).
    pub connector: Option<ConnectorId>,
    pub audience: BroadcastAudience,
    /// The text, or the template's body.
    pub text: String,
    /// The template, as it is now, when the send renders one.
    pub template: Option<TemplateSnapshot>,
    /// What is sent with the text, as the library's items are now (set by the caller
    /// from `content_ids`, checked with [`check_attachments`]).
    pub attachments: Vec<BroadcastAttachment>,
    pub frequency_cap: FrequencyCap,
    pub send_at: i64,
}

/// A send as stored, with its figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub name: String,
    pub channel: BroadcastChannel,
    /// The WeCom connector of a WeCom send.
    pub connector_id: Option<ConnectorId>,
    pub state: BroadcastState,
    pub audience: BroadcastAudience,
    /// The text, or the body of the template it renders.
    pub text: String,
    /// The message template the send renders (as it was when the send was made).
    pub template_id: Option<MessageTemplateId>,
    /// What is sent with the text (the library's items as they were when the send was
    /// made or last changed).
    pub attachments: Vec<BroadcastAttachment>,
    pub frequency_cap: FrequencyCap,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub send_at: i64,
    /// Recipients planned (`None` until planned).
    pub recipients: Option<i64>,
    /// Customers of the audience left out, by reason (empty until planned).
    pub excluded: HashMap<Exclusion, i64>,
    /// Recipients whose batch the channel has answered.
    pub sent: i64,
    /// Batches planned, and answered.
    pub batches: i64,
    pub batches_sent: i64,
    /// The staff member who made it (`None`: an API token or the system).
    pub created_by: Option<StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Moved by every change and by planning.
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
}

/// What a send says: a text, or a template (loaded by the caller from `template_id`).
fn content(
    text: Option<String>,
    template_id: Option<MessageTemplateId>,
    template: Option<&MessageTemplate>,
) -> Result<(String, Option<TemplateSnapshot>), DomainError> {
    match (text, template_id, template) {
        (Some(_), Some(_), _) => Err(DomainError::invalid(
            "template_id",
            "a send has a text or a template, not both",
        )),
        (Some(text), None, _) => Ok((text, None)),
        (None, Some(id), Some(t)) if t.id == id => {
            // what a customer without any value would receive: there must be one
            if t.render_text(|_| None).is_none() {
                return Err(DomainError::invalid(
                    "template_id",
                    "the template does not render a text a customer may receive",
                ));
            }
            Ok((t.body.clone(), Some(TemplateSnapshot::of(t))))
        }
        (None, Some(_), _) => Err(DomainError::invalid("template_id", "no such template")),
        (None, None, _) => Err(DomainError::invalid(
            "text",
            "must not be empty: a send says something (a text or a template_id)",
        )),
    }
}

impl NewBroadcast {
    /// Checks a send; `template` is the template `template_id` names, if any.
    pub fn check(
        self,
        now: i64,
        template: Option<&MessageTemplate>,
    ) -> Result<BroadcastSpec, DomainError> {
        let send_at = match self.send_at.as_deref() {
            Some(text) => parse_time("send_at", text)?,
            None => now,
        };
        if self.channel != BroadcastChannel::Wecom && self.connector_id.is_some() {
            return Err(DomainError::invalid(
                "connector_id",
                "only a WeCom send goes through a connector",
            ));
        }
        let (text, template) = content(self.text, self.template_id, template)?;
        spec(
            &self.name,
            (self.channel, self.connector_id),
            self.audience,
            (text, template),
            self.frequency_cap.unwrap_or(FrequencyCap::DaysInMonth),
            send_at,
        )
    }
}

impl BroadcastChange {
    /// The send as it will be after the change; refused (409) once its time has come
    /// or it is no longer waiting. `kept` is the template the send renders now (kept
    /// when neither a text nor a template is given); `template` the one `template_id`
    /// names.
    pub fn apply(
        self,
        to: &Broadcast,
        now: i64,
        kept: Option<TemplateSnapshot>,
        template: Option<&MessageTemplate>,
    ) -> Result<BroadcastSpec, DomainError> {
        if to.state != BroadcastState::Scheduled || to.send_at <= now {
            return Err(DomainError::Conflict(format!(
                "this send is {} since its time: it can no longer be changed",
                to.state.as_str()
            )));
        }
        let send_at = match self.send_at.as_deref() {
            Some(text) => parse_time("send_at", text)?,
            None => to.send_at,
        };
        let (text, template) = if self.text.is_none() && self.template_id.is_none() {
            (to.text.clone(), kept)
        } else {
            content(self.text, self.template_id, template)?
        };
        spec(
            self.name.as_deref().unwrap_or(&to.name),
            (to.channel, to.connector_id),
            self.audience.unwrap_or_else(|| to.audience.clone()),
            (text, template),
            self.frequency_cap.unwrap_or(to.frequency_cap),
            send_at,
        )
    }
}

/// Whether a send may carry these items of the library: at most 9, none a text (a
/// text is the send's own), and on WeCom no article (articles go out as link cards to
/// their page, which siyu does not publish yet: send a link item).
pub fn check_attachments(
    channel: BroadcastChannel,
    items: &[BroadcastAttachment],
) -> Result<(), DomainError> {
    use crate::engagement::content::{ContentKind, MAX_ATTACHMENTS};
    if items.len() > MAX_ATTACHMENTS {
        return Err(DomainError::invalid(
            "content_ids",
            format!("a message carries at most {MAX_ATTACHMENTS} attachments (WeCom's limit)"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        if items[..i]
            .iter()
            .any(|other| other.content_id == item.content_id)
        {
            return Err(DomainError::invalid(
                "content_ids",
                format!("names item {} twice", item.content_id.0),
            ));
        }
        match item.kind {
            ContentKind::Text => {
                return Err(DomainError::invalid(
                    "content_ids",
                    format!(
                        "item {} is a text: a send's text is its own (use it as `text`)",
                        item.content_id.0
                    ),
                ));
            }
            _ if channel == BroadcastChannel::Wecom => {
                if let Some((what, max)) = over_wecom_limit(item) {
                    return Err(DomainError::invalid(
                        "content_ids",
                        format!(
                            "item {}: its {what} is over WeCom's {max} bytes for a card",
                            item.content_id.0
                        ),
                    ));
                }
                if item.kind == ContentKind::Article {
                    return Err(DomainError::invalid(
                        "content_ids",
                        format!(
                            "item {} is an article, which WeCom gets as a link card to a page \
                             siyu does not publish yet: send a link item",
                            item.content_id.0
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What of a card is longer than WeCom takes in `add_msg_template` (a link's title 128
/// bytes, description 512, URL 2,048; a mini-program's title 64), and the limit.
fn over_wecom_limit(
    item: &crate::engagement::content::BroadcastAttachment,
) -> Option<(&'static str, usize)> {
    use crate::engagement::content::ContentKind;
    let over = |text: Option<&str>, max: usize| text.is_some_and(|t| t.len() > max);
    match item.kind {
        ContentKind::Link => {
            if over(Some(&item.title), 128) {
                Some(("title", 128))
            } else if over(item.body.description.as_deref(), 512) {
                Some(("description", 512))
            } else if over(item.body.url.as_deref(), 2048) {
                Some(("url", 2048))
            } else {
                None
            }
        }
        ContentKind::Miniprogram if over(Some(&item.title), 64) => Some(("title", 64)),
        _ => None,
    }
}

fn parse_time(field: &str, text: &str) -> Result<i64, DomainError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| DomainError::invalid(field, "must be a time in RFC 3339"))
}

fn spec(
    name: &str,
    (channel, connector): (BroadcastChannel, Option<ConnectorId>),
    audience: BroadcastAudience,
    (text, template): (String, Option<TemplateSnapshot>),
    frequency_cap: FrequencyCap,
    send_at: i64,
) -> Result<BroadcastSpec, DomainError> {
    let name = check_name("name", name, 100)?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(DomainError::invalid(
            "text",
            "must not be empty: a send says something",
        ));
    }
    if text.len() > TEXT_MAX_BYTES {
        return Err(DomainError::invalid(
            "text",
            format!("must be at most {TEXT_MAX_BYTES} bytes (WeCom's limit for a text)"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(DomainError::invalid(
            "text",
            "must not contain control characters (line breaks and tabs may stay)",
        ));
    }
    if template.is_none() && (text.contains("{{") || text.contains("{%")) {
        return Err(DomainError::invalid(
            "text",
            "shows template syntax ({{ or {%): personalised texts are message templates",
        ));
    }
    match &audience {
        BroadcastAudience::Customers(ids) if ids.is_empty() => {
            return Err(DomainError::invalid(
                "audience",
                "names no customer: a send needs an audience",
            ));
        }
        BroadcastAudience::Customers(ids) if ids.len() > LIST_MAX => {
            return Err(DomainError::invalid(
                "audience",
                format!("may name at most {LIST_MAX} customers; a segment reaches more"),
            ));
        }
        _ => {}
    }
    Ok(BroadcastSpec {
        attachments: Vec::new(),
        name,
        channel,
        connector,
        audience,
        text,
        template,
        frequency_cap,
        send_at,
    })
}

/// Who receives a send, in the order planned, and who does not and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub recipients: Vec<i64>,
    pub excluded: HashMap<Exclusion, i64>,
}

/// What planning reads about the audience.
pub struct PlanInput<'a> {
    /// The audience's customers as resolved (merged ids already led to their survivor),
    /// repeats included.
    pub audience: &'a [i64],
    /// Listed ids that are no customer within reach.
    pub not_found: i64,
    /// Customers who opted out of the channel or of all.
    pub opted_out: &'a HashSet<i64>,
    /// Mass messages each customer received on the channel in the cap's window.
    pub received: &'a HashMap<i64, u32>,
    /// How many the cap allows in the window.
    pub limit: u32,
}

/// Decides who receives a send: each customer once, none who opted out, none over the
/// cap. Recipients come out sorted (batches are ranges of customers).
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut excluded: HashMap<Exclusion, i64> = HashMap::new();
    if input.not_found > 0 {
        excluded.insert(Exclusion::NotFound, input.not_found);
    }
    let mut audience = input.audience.to_vec();
    audience.sort_unstable();
    let before = audience.len();
    audience.dedup();
    if audience.len() < before {
        excluded.insert(Exclusion::Duplicate, (before - audience.len()) as i64);
    }
    let mut recipients = Vec::with_capacity(audience.len());
    for id in audience {
        if input.opted_out.contains(&id) {
            *excluded.entry(Exclusion::OptedOut).or_default() += 1;
        } else if input.received.get(&id).copied().unwrap_or(0) >= input.limit {
            *excluded.entry(Exclusion::Capped).or_default() += 1;
        } else {
            recipients.push(id);
        }
    }
    Plan {
        recipients,
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn caps_have_windows_in_the_tenants_time_zone() {
        let shanghai = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
        // 2026-02-10 09:00 in Shanghai
        let t = at("2026-02-10T01:00:00Z");
        assert_eq!(
            FrequencyCap::DaysInMonth.window(shanghai, t),
            (at("2026-01-31T16:00:00Z"), 28)
        );
        assert_eq!(
            FrequencyCap::OneADay.window(shanghai, t),
            (at("2026-02-09T16:00:00Z"), 1)
        );
        // a Tuesday: the week began on Monday the 9th
        assert_eq!(
            FrequencyCap::SevenAWeek.window(shanghai, t),
            (at("2026-02-08T16:00:00Z"), 7)
        );
        // 31 December 23:30 in Shanghai is still December there
        let late = at("2026-12-31T15:30:00Z");
        assert_eq!(
            FrequencyCap::DaysInMonth.window(shanghai, late),
            (at("2026-11-30T16:00:00Z"), 31)
        );
    }

    #[test]
    fn a_plan_sends_once_to_each_and_says_why_the_rest_do_not_receive() {
        let opted_out = HashSet::from([3]);
        let received = HashMap::from([(4, 30), (5, 29)]);
        let plan = plan(&PlanInput {
            audience: &[5, 1, 3, 4, 1, 2, 1],
            not_found: 2,
            opted_out: &opted_out,
            received: &received,
            limit: 30,
        });
        assert_eq!(plan.recipients, vec![1, 2, 5]);
        assert_eq!(
            plan.excluded,
            HashMap::from([
                (Exclusion::Duplicate, 2),
                (Exclusion::OptedOut, 1),
                (Exclusion::Capped, 1),
                (Exclusion::NotFound, 2),
            ])
        );
    }

    #[test]
    fn a_send_carries_at_most_nine_items_none_a_text_and_no_article_on_wecom() {
        use crate::engagement::content::{BroadcastAttachment, ContentBody, ContentKind};
        use crate::ids::ContentItemId;
        let item = |id: i64, kind: ContentKind| BroadcastAttachment {
            content_id: ContentItemId(id),
            kind,
            title: "t".into(),
            body: ContentBody::default(),
            tracked_link: None,
        };
        let images: Vec<_> = (1..=9).map(|i| item(i, ContentKind::Image)).collect();
        assert!(check_attachments(BroadcastChannel::Wecom, &images).is_ok());
        let mut ten = images.clone();
        ten.push(item(10, ContentKind::Link));
        assert!(check_attachments(BroadcastChannel::Wecom, &ten).is_err());
        let twice = [item(1, ContentKind::Image), item(1, ContentKind::Image)];
        assert!(check_attachments(BroadcastChannel::Sandbox, &twice).is_err());
        let text = [item(1, ContentKind::Text)];
        assert!(check_attachments(BroadcastChannel::Sandbox, &text).is_err());
        let article = [item(1, ContentKind::Article)];
        assert!(check_attachments(BroadcastChannel::Wecom, &article).is_err());
        assert!(check_attachments(BroadcastChannel::Sandbox, &article).is_ok());
    }

    #[test]
    fn bad_sends_are_refused_with_their_reason() {
        let new = |text: &str, audience| NewBroadcast {
            name: "双十二".into(),
            channel: BroadcastChannel::Sandbox,
            connector_id: None,
            audience,
            text: Some(text.into()),
            template_id: None,
            content_ids: Vec::new(),
            frequency_cap: None,
            send_at: None,
        };
        let list = || BroadcastAudience::Customers(vec![CustomerId(1)]);
        let field = |r: Result<BroadcastSpec, DomainError>| match r {
            Err(DomainError::Invalid(e)) => e.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(new("  ", list()).check(0, None)), "text");
        assert_eq!(
            field(new(&"好".repeat(1_400), list()).check(0, None)),
            "text"
        );
        assert_eq!(
            field(new("你好 {{customer.name}}", list()).check(0, None)),
            "text"
        );
        assert_eq!(
            field(new("你好", BroadcastAudience::Customers(vec![])).check(0, None)),
            "audience"
        );
        let mut late = new("你好", list());
        late.send_at = Some("tomorrow".into());
        assert_eq!(field(late.check(0, None)), "send_at");
        let ok = new(" 你好 ", list()).check(7, None).unwrap();
        assert_eq!((ok.text.as_str(), ok.send_at), ("你好", 7));
        assert_eq!(ok.frequency_cap, FrequencyCap::DaysInMonth);
    }
}
