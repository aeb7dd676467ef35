//! Acquisition: the brand's accounts on public platforms (channel accounts) and the
//! channel codes (渠道活码) that lead people from them into the private domain.
//!
//! A channel code is known by its `state`: WeCom hands the state back with every add
//! through the code's contact way, and siyu attributes the add by it (`Contact Added`
//! carries it as `channel_code`, which segments and tag rules already read). So the state
//! is the code's identity on the wire and is checked here to WeCom's rule (at most 30
//! characters) narrowed to what survives URLs and logs unchanged: letters, digits, `-`
//! and `_`. A code routes adds to its members (primary ones in turn, backup ones when
//! every primary is full or out of hours), tags who comes and welcomes them with its own
//! text, in which `{customer}` and `{member}` stand for the two names.

pub mod group_codes;
pub mod landing;
pub mod links;
pub mod report;
pub mod routing;
pub mod store_codes;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::audience::TagId;
use crate::connector::WECOM_TEXT_MAX_BYTES;
use crate::error::check_name;
use crate::ids::{ChannelAccountId, ChannelCodeId, ConnectorId, StaffId, UnitId};
use crate::order::string_enum;

string_enum!(
    /// Where a channel account is.
    Platform {
        Douyin => "douyin",
        Kuaishou => "kuaishou",
        Bilibili => "bilibili",
        Weibo => "weibo",
        Xiaohongshu => "xiaohongshu",
        Taobao => "taobao",
        Tmall => "tmall",
        Jd => "jd",
        Pinduoduo => "pinduoduo",
        WechatChannels => "wechat_channels",
        OfficialAccount => "official_account",
        MiniProgram => "mini_program",
        Wecom => "wecom",
        Website => "website",
        App => "app",
        Ads => "ads",
        Kol => "kol",
        OfflineStore => "offline_store",
        Other => "other",
    }
);

string_enum!(
    /// 公域 / 混合域 / 私域: whose audience an account's followers are.
    DomainClass {
        Public => "public",
        Hybrid => "hybrid",
        Private => "private",
    }
);

impl Platform {
    /// The domain class an account on the platform usually is: marketplaces and
    /// content platforms are public, WeChat's own surfaces hybrid, the brand's own
    /// channels private.
    pub fn usual_domain_class(self) -> DomainClass {
        match self {
            Platform::WechatChannels | Platform::OfficialAccount | Platform::MiniProgram => {
                DomainClass::Hybrid
            }
            Platform::Wecom | Platform::Website | Platform::App | Platform::OfflineStore => {
                DomainClass::Private
            }
            _ => DomainClass::Public,
        }
    }
}

/// A brand's account on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChannelAccount {
    pub id: ChannelAccountId,
    pub platform: Platform,
    pub name: String,
    pub domain_class: DomainClass,
    /// The account's id or handle on the platform ("" when not given).
    pub handle: String,
    pub unit_id: Option<UnitId>,
    pub owner_staff_id: Option<StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A channel account as given to create one; `domain_class` defaults to the platform's
/// usual one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelAccount {
    pub platform: Platform,
    pub name: String,
    pub domain_class: Option<DomainClass>,
    pub handle: Option<String>,
    pub unit_id: Option<UnitId>,
    pub owner_staff_id: Option<StaffId>,
}

/// Changes to a channel account; fields left out stay. `unit_id` and `owner_staff_id`
/// may be `null` to clear them.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAccountChange {
    pub platform: Option<Platform>,
    pub name: Option<String>,
    pub domain_class: Option<DomainClass>,
    pub handle: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<UnitId>)]
    pub unit_id: Option<Option<UnitId>>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<StaffId>)]
    pub owner_staff_id: Option<Option<StaffId>>,
}

/// A channel account checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAccountSpec {
    pub platform: Platform,
    pub name: String,
    pub domain_class: DomainClass,
    pub handle: String,
    pub unit_id: Option<UnitId>,
    pub owner_staff_id: Option<StaffId>,
}

impl NewChannelAccount {
    pub fn check(self) -> Result<ChannelAccountSpec, DomainError> {
        Ok(ChannelAccountSpec {
            platform: self.platform,
            name: check_name("name", &self.name, 100)?,
            domain_class: self
                .domain_class
                .unwrap_or_else(|| self.platform.usual_domain_class()),
            handle: check_handle(self.handle.as_deref().unwrap_or(""))?,
            unit_id: self.unit_id,
            owner_staff_id: self.owner_staff_id,
        })
    }
}

impl ChannelAccountChange {
    /// The account as it will be after the change.
    pub fn apply(self, to: &ChannelAccount) -> Result<ChannelAccountSpec, DomainError> {
        Ok(ChannelAccountSpec {
            platform: self.platform.unwrap_or(to.platform),
            name: match self.name {
                Some(name) => check_name("name", &name, 100)?,
                None => to.name.clone(),
            },
            domain_class: self.domain_class.unwrap_or(to.domain_class),
            handle: match self.handle {
                Some(handle) => check_handle(&handle)?,
                None => to.handle.clone(),
            },
            unit_id: self.unit_id.unwrap_or(to.unit_id),
            owner_staff_id: self.owner_staff_id.unwrap_or(to.owner_staff_id),
        })
    }
}

fn check_handle(handle: &str) -> Result<String, DomainError> {
    let handle = handle.trim();
    if handle.chars().count() > 100 || handle.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "handle",
            "must be at most 100 characters, without control characters",
        ));
    }
    Ok(handle.to_owned())
}

/// The longest `state` WeCom keeps.
pub const STATE_MAX_CHARS: usize = 30;
/// The most members a WeCom contact way may route to.
pub const CODE_MEMBERS_MAX: usize = 100;

/// Checks a channel code's `state`: 1 to 30 letters, digits, `-` and `_`.
pub fn check_state(state: &str) -> Result<String, DomainError> {
    let ok = !state.is_empty()
        && state.chars().count() <= STATE_MAX_CHARS
        && state
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(state.to_owned())
    } else {
        Err(DomainError::invalid(
            "state",
            format!(
                "must be 1 to {STATE_MAX_CHARS} characters of letters, digits, - and _ (got {state:?})"
            ),
        ))
    }
}

string_enum!(
    /// What a member of a channel code is for.
    /// What a member of a channel code is for: `primary` members take adds in turn,
    /// `backup` ones when every primary is full (or, without after-hours members, out
    /// of hours), `after_hours` ones outside the code's working hours.
    CodeMemberRole {
        Primary => "primary",
        Backup => "backup",
        AfterHours => "after_hours",
    }
);

string_enum!(
    /// How a code picks the next primary member: each in turn, or in proportion to
    /// their weights.
    RoutingMode {
        RoundRobin => "round_robin",
        Weighted => "weighted",
    }
);

/// A member a channel code routes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeMember {
    pub staff_id: StaffId,
    /// Default `primary`.
    #[serde(default = "CodeMember::primary")]
    pub role: CodeMemberRole,
    /// Weighted routing: 1 to 100 (default 1).
    #[serde(default = "CodeMember::one")]
    pub weight: u32,
    /// Adds a day before they are full (none: no limit).
    #[serde(default)]
    pub daily_capacity: Option<u32>,
}

impl CodeMember {
    fn primary() -> CodeMemberRole {
        CodeMemberRole::Primary
    }
    fn one() -> u32 {
        1
    }
}

/// When a code's primary members take adds, in the tenant's time zone: from `start` to
/// `end` ("HH:MM", 24-hour) on the given weekdays (1 Monday … 7 Sunday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    pub start: String,
    pub end: String,
    #[serde(default = "WorkingHours::every_day")]
    pub days: Vec<u8>,
}

impl WorkingHours {
    fn every_day() -> Vec<u8> {
        (1..=7).collect()
    }

    /// Minutes after midnight of `start` and `end`.
    pub fn minutes(&self) -> Result<(u32, u32), DomainError> {
        let read = |field: &str, s: &str| {
            let parsed = s.split_once(':').and_then(|(h, m)| {
                let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
                (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
            });
            parsed.ok_or_else(|| {
                DomainError::invalid(
                    format!("routing.working_hours.{field}"),
                    "must be a time as HH:MM",
                )
            })
        };
        let (start, end) = (read("start", &self.start)?, read("end", &self.end)?);
        if start == end {
            return Err(DomainError::invalid(
                "routing.working_hours.end",
                "must differ from start",
            ));
        }
        Ok((start, end))
    }
}

/// How a code routes adds among its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    #[serde(default = "Routing::round_robin")]
    pub mode: RoutingMode,
    /// None: at any time.
    #[serde(default)]
    pub working_hours: Option<WorkingHours>,
}

impl Routing {
    fn round_robin() -> RoutingMode {
        RoutingMode::RoundRobin
    }
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            mode: RoutingMode::RoundRobin,
            working_hours: None,
        }
    }
}

/// A channel code as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChannelCode {
    pub id: ChannelCodeId,
    pub name: String,
    pub state: String,
    pub account_id: Option<ChannelAccountId>,
    /// The WeCom connector whose contact way the code is (none: siyu's own QR only).
    pub connector_id: Option<ConnectorId>,
    /// The unit (a store, say) the code belongs to.
    pub unit_id: Option<UnitId>,
    pub members: Vec<CodeMember>,
    /// Tags put on whoever comes through the code.
    pub tag_ids: Vec<TagId>,
    /// The code's welcome (`{customer}` and `{member}` stand for the names); none: the
    /// member's, else the connector's.
    pub welcome: Option<String>,
    /// Whether customers are added without the member confirming (WeCom's skip_verify).
    pub skip_verify: bool,
    pub routing: Routing,
    /// Its WeCom contact way, once made.
    pub contact_way: Option<ContactWay>,
    /// The code's public landing page (relative to siyu's public URL): it records the
    /// visit (a scan) and shows the member's WeCom QR.
    pub landing_path: String,
    /// Whether the code's QR leads to the landing page even when WeCom gave one.
    pub landing_first: bool,
    /// What `GET /api/v1/channel-codes/{id}/qr` encodes now.
    pub qr_source: landing::QrSource,
    /// Each member's adds through the code today (the tenant's local day), to set
    /// against their daily capacity; members with none are left out.
    pub adds_today: Vec<MemberAdds>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A member's adds through a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct MemberAdds {
    pub staff_id: StaffId,
    pub adds: u32,
}

/// A code's WeCom contact way as siyu last made or changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactWay {
    /// WeCom's handle: the only way to change or delete the way.
    pub config_id: Option<String>,
    /// WeCom's QR image URL.
    pub qr_code_url: Option<String>,
    /// The member the way routes to now, and why them.
    pub current_staff_id: Option<StaffId>,
    pub current_route: Option<routing::RouteReason>,
    /// When WeCom last took a change.
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<i64>,
    /// WeCom's last refusal, until a change goes through.
    pub error: Option<String>,
}

/// A channel code as given to create one: only `name` and `state` are required.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelCode {
    pub name: String,
    pub state: String,
    pub account_id: Option<ChannelAccountId>,
    pub connector_id: Option<ConnectorId>,
    pub unit_id: Option<UnitId>,
    #[serde(default)]
    pub members: Vec<CodeMember>,
    #[serde(default)]
    pub tag_ids: Vec<TagId>,
    pub welcome: Option<String>,
    /// Default true.
    pub skip_verify: Option<bool>,
    pub routing: Option<Routing>,
    /// Default false: the QR is WeCom's own once WeCom gave one.
    pub landing_first: Option<bool>,
}

/// Changes to a channel code; fields left out stay, nullable ones may be `null`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelCodeChange {
    pub name: Option<String>,
    pub state: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<ChannelAccountId>)]
    pub account_id: Option<Option<ChannelAccountId>>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<ConnectorId>)]
    pub connector_id: Option<Option<ConnectorId>>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<UnitId>)]
    pub unit_id: Option<Option<UnitId>>,
    pub members: Option<Vec<CodeMember>>,
    pub tag_ids: Option<Vec<TagId>>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<String>)]
    pub welcome: Option<Option<String>>,
    pub skip_verify: Option<bool>,
    pub routing: Option<Routing>,
    pub landing_first: Option<bool>,
}

/// A channel code checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCodeSpec {
    pub name: String,
    pub state: String,
    pub account_id: Option<ChannelAccountId>,
    pub connector_id: Option<ConnectorId>,
    pub unit_id: Option<UnitId>,
    pub members: Vec<CodeMember>,
    pub tag_ids: Vec<TagId>,
    pub welcome: Option<String>,
    pub skip_verify: bool,
    pub routing: Routing,
    pub landing_first: bool,
}

impl NewChannelCode {
    pub fn check(self) -> Result<ChannelCodeSpec, DomainError> {
        ChannelCodeSpec {
            name: self.name,
            state: self.state,
            account_id: self.account_id,
            connector_id: self.connector_id,
            unit_id: self.unit_id,
            members: self.members,
            tag_ids: self.tag_ids,
            welcome: self.welcome,
            skip_verify: self.skip_verify.unwrap_or(true),
            routing: self.routing.unwrap_or_default(),
            landing_first: self.landing_first.unwrap_or(false),
        }
        .checked()
    }
}

impl ChannelCodeChange {
    /// The code as it will be after the change.
    pub fn apply(self, to: &ChannelCode) -> Result<ChannelCodeSpec, DomainError> {
        ChannelCodeSpec {
            name: self.name.unwrap_or_else(|| to.name.clone()),
            state: self.state.unwrap_or_else(|| to.state.clone()),
            account_id: self.account_id.unwrap_or(to.account_id),
            connector_id: self.connector_id.unwrap_or(to.connector_id),
            unit_id: self.unit_id.unwrap_or(to.unit_id),
            members: self.members.unwrap_or_else(|| to.members.clone()),
            tag_ids: self.tag_ids.unwrap_or_else(|| to.tag_ids.clone()),
            welcome: self.welcome.unwrap_or_else(|| to.welcome.clone()),
            skip_verify: self.skip_verify.unwrap_or(to.skip_verify),
            routing: self.routing.unwrap_or_else(|| to.routing.clone()),
            landing_first: self.landing_first.unwrap_or(to.landing_first),
        }
        .checked()
    }
}

impl ChannelCodeSpec {
    fn checked(mut self) -> Result<Self, DomainError> {
        self.name = check_name("name", &self.name, 100)?;
        self.state = check_state(&self.state)?;
        if self.members.len() > CODE_MEMBERS_MAX {
            return Err(DomainError::invalid(
                "members",
                format!("at most {CODE_MEMBERS_MAX} members (WeCom's limit)"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, member) in self.members.iter().enumerate() {
            if !seen.insert(member.staff_id) {
                return Err(DomainError::invalid(
                    format!("members[{i}].staff_id"),
                    "is listed twice",
                ));
            }
            if !(1..=100).contains(&member.weight) {
                return Err(DomainError::invalid(
                    format!("members[{i}].weight"),
                    "must be 1 to 100",
                ));
            }
            if member.daily_capacity == Some(0) {
                return Err(DomainError::invalid(
                    format!("members[{i}].daily_capacity"),
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
        }
        let primaries = self
            .members
            .iter()
            .filter(|m| m.role == CodeMemberRole::Primary)
            .count();
        if !self.members.is_empty() && primaries == 0 {
            return Err(DomainError::invalid(
                "members",
                "at least one member must be primary",
            ));
        }
        if self.connector_id.is_some() && self.members.is_empty() {
            return Err(DomainError::invalid(
                "members",
                "a WeCom code needs at least one member to route adds to",
            ));
        }
        self.tag_ids.sort();
        self.tag_ids.dedup();
        if let Some(hours) = &self.routing.working_hours {
            hours.minutes()?;
            if hours.days.is_empty() || hours.days.iter().any(|d| !(1..=7).contains(d)) {
                return Err(DomainError::invalid(
                    "routing.working_hours.days",
                    "must list weekdays 1 (Monday) to 7 (Sunday)",
                ));
            }
        }
        self.welcome = match self.welcome.take() {
            Some(w) if w.trim().is_empty() => None,
            Some(w) => Some(check_welcome_template(&w)?),
            None => None,
        };
        Ok(self)
    }
}

/// The placeholders a code's welcome may hold.
pub const WELCOME_PLACEHOLDERS: [&str; 2] = ["{customer}", "{member}"];

/// Checks a welcome template: within WeCom's limit once the names are in (each name
/// counted at WeCom's 30-character maximum), and no placeholder but the known ones.
pub fn check_welcome_template(text: &str) -> Result<String, DomainError> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        match WELCOME_PLACEHOLDERS.iter().find(|p| after.starts_with(*p)) {
            Some(p) => rest = &after[p.len()..],
            None => {
                let shown: String = after.chars().take(20).collect();
                return Err(DomainError::invalid(
                    "welcome",
                    format!("unknown placeholder at {shown:?}: use {{customer}} or {{member}}"),
                ));
            }
        }
    }
    let names = WELCOME_PLACEHOLDERS
        .iter()
        .map(|p| text.matches(p).count())
        .sum::<usize>();
    // a name is at most 30 characters of at most 3 bytes in UTF-8
    if text.len() + names * 90 > WECOM_TEXT_MAX_BYTES {
        return Err(DomainError::invalid(
            "welcome",
            format!(
                "must be at most {WECOM_TEXT_MAX_BYTES} bytes with the names in (WeCom's limit)"
            ),
        ));
    }
    Ok(text.to_owned())
}

/// A welcome template with the names in.
pub fn render_welcome(template: &str, customer: &str, member: &str) -> String {
    template
        .replace("{customer}", customer)
        .replace("{member}", member)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(state: &str) -> NewChannelCode {
        NewChannelCode {
            name: "抖音直播间".into(),
            state: state.into(),
            account_id: None,
            connector_id: None,
            unit_id: None,
            members: vec![],
            tag_ids: vec![],
            welcome: None,
            skip_verify: None,
            routing: None,
            landing_first: None,
        }
    }

    fn field(e: DomainError) -> String {
        match e {
            DomainError::Invalid(f) => f.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_state_is_letters_digits_dash_and_underscore_up_to_30() {
        assert!(check_state("douyin-live_01").is_ok());
        assert!(check_state(&"a".repeat(30)).is_ok());
        for bad in ["", &"a".repeat(31), "抖音", "a b", "a/b", "a?b=c", "a.b"] {
            assert_eq!(field(check_state(bad).unwrap_err()), "state", "{bad:?}");
        }
    }

    #[test]
    fn only_name_and_state_are_needed() {
        let spec = code("dy01").check().unwrap();
        assert!(spec.skip_verify);
        assert_eq!(spec.routing, Routing::default());
        assert!(spec.members.is_empty());
    }

    #[test]
    fn members_are_checked() {
        let member = |id, role| CodeMember {
            staff_id: StaffId(id),
            role,
            weight: 1,
            daily_capacity: None,
        };
        let mut twice = code("dy01");
        twice.members = vec![
            member(1, CodeMemberRole::Primary),
            member(1, CodeMemberRole::Backup),
        ];
        assert_eq!(field(twice.check().unwrap_err()), "members[1].staff_id");
        let mut backups_only = code("dy01");
        backups_only.members = vec![member(1, CodeMemberRole::Backup)];
        assert_eq!(field(backups_only.check().unwrap_err()), "members");
        let mut heavy = code("dy01");
        heavy.members = vec![CodeMember {
            weight: 101,
            ..member(1, CodeMemberRole::Primary)
        }];
        assert_eq!(field(heavy.check().unwrap_err()), "members[0].weight");
        let mut full = code("dy01");
        full.members = vec![CodeMember {
            daily_capacity: Some(0),
            ..member(1, CodeMemberRole::Primary)
        }];
        assert_eq!(
            field(full.check().unwrap_err()),
            "members[0].daily_capacity"
        );
        let mut wecom_alone = code("dy01");
        wecom_alone.connector_id = Some(ConnectorId(1));
        assert_eq!(field(wecom_alone.check().unwrap_err()), "members");
    }

    #[test]
    fn working_hours_are_checked() {
        let mut c = code("dy01");
        c.routing = Some(Routing {
            mode: RoutingMode::RoundRobin,
            working_hours: Some(WorkingHours {
                start: "09:00".into(),
                end: "25:00".into(),
                days: vec![1, 2],
            }),
        });
        assert_eq!(field(c.check().unwrap_err()), "routing.working_hours.end");
        let mut c = code("dy01");
        c.routing = Some(Routing {
            mode: RoutingMode::Weighted,
            working_hours: Some(WorkingHours {
                start: "21:00".into(),
                end: "09:00".into(),
                days: vec![0],
            }),
        });
        assert_eq!(field(c.check().unwrap_err()), "routing.working_hours.days");
    }

    #[test]
    fn a_welcome_has_known_placeholders_and_fits_wecom() {
        assert!(check_welcome_template("{customer}您好，我是{member}").is_ok());
        assert_eq!(
            field(check_welcome_template("{name}您好").unwrap_err()),
            "welcome"
        );
        // 1,333 characters of 3 bytes: 3,999 bytes, within 4,000
        assert!(check_welcome_template(&"欢".repeat(1333)).is_ok());
        assert_eq!(
            field(check_welcome_template(&"欢".repeat(1334)).unwrap_err()),
            "welcome"
        );
        // room is kept for a name of up to 30 characters
        let with_name = format!("{}{{customer}}", "欢".repeat(1300));
        assert!(
            check_welcome_template(&with_name).is_ok(),
            "3,910 + 90 bytes"
        );
        let too_long = format!("{}{{customer}}", "欢".repeat(1301));
        assert_eq!(
            field(check_welcome_template(&too_long).unwrap_err()),
            "welcome"
        );
    }

    #[test]
    fn a_welcome_is_rendered_with_both_names() {
        assert_eq!(
            render_welcome(
                "{customer}您好，我是{member}，{customer}有事找我",
                "小李",
                "王顾问"
            ),
            "小李您好，我是王顾问，小李有事找我"
        );
    }

    #[test]
    fn platforms_have_their_usual_domain_class() {
        assert_eq!(Platform::Douyin.usual_domain_class(), DomainClass::Public);
        assert_eq!(
            Platform::OfficialAccount.usual_domain_class(),
            DomainClass::Hybrid
        );
        assert_eq!(Platform::Wecom.usual_domain_class(), DomainClass::Private);
    }
}
