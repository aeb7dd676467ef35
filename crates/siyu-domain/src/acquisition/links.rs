//! Tracked links (`/l/{slug}`): short links to the brand's own pages, with UTM
//! parameters, whose every click is a `Link Clicked` event.
//!
//! - **Registered destinations only.** A link leads only to a URL under a destination
//!   the brand registered (a URL prefix: scheme, host and a path prefix), so siyu's
//!   short links cannot be made into an open redirect to anyone's phishing page, even by
//!   staff whose account was taken over.
//! - **UTM.** A link's `utm_*` values are put on the destination's query when it
//!   redirects (in place of any the destination had), and ride on the click event as
//!   Segment's `context.campaign`.
//! - **Personal links** (`/l/{slug}/{token}`, for mass sends and welcomes) name the
//!   customer they were made for: the token is the customer's id and an HMAC-SHA256
//!   (96 bits) of the link and the customer under the tenant's link key, so nobody can
//!   make one for another customer or move one to another link. A click on one belongs
//!   to that customer's profile; a token that does not verify still leads on, as an
//!   anonymous click (a link cut short in a chat must still work).
//! - **Crawlers** (chat apps fetching a preview card) are counted apart and make no
//!   event: see [`super::landing::is_crawler`].

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use url::Url;
use utoipa::ToSchema;

use crate::DomainError;
use crate::error::check_name;
use crate::ids::{ChannelAccountId, CustomerId, LinkDestinationId, StaffId, TrackedLinkId};
use crate::tracking::{EventType, TrackedEvent};

/// The event a click is.
pub const LINK_CLICKED: &str = "Link Clicked";
/// The longest URL a destination or a link may have.
pub const MAX_URL_CHARS: usize = 2000;
/// The longest UTM value.
pub const MAX_UTM_CHARS: usize = 200;
/// The length of a link's slug: base62, about 47.6 random bits.
pub const LINK_SLUG_LEN: usize = 8;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random slug.
pub fn new_link_slug() -> String {
    let mut rng = rand::thread_rng();
    (0..LINK_SLUG_LEN)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

/// Whether a slug could be a link's (what `/l/{slug}` looks up at all).
pub fn is_link_slug(slug: &str) -> bool {
    slug.len() == LINK_SLUG_LEN && slug.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The path of a link.
pub fn link_path(slug: &str) -> String {
    format!("/l/{slug}")
}

/// A destination the brand registered: links may lead only under one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkDestination {
    pub id: LinkDestinationId,
    /// Scheme, host (and port) and a path prefix, as siyu normalised it.
    pub url_prefix: String,
    pub note: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A destination as given to register it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLinkDestination {
    /// An `http` or `https` URL with a host and no query, fragment or credentials: links
    /// may lead to it and to paths under it (`https://shop.example.com/promo` allows
    /// `/promo` and `/promo/…`, not `/promotions`; a prefix ending in `/` allows what
    /// starts with it).
    pub url_prefix: String,
    pub note: Option<String>,
}

impl NewLinkDestination {
    /// The normalised prefix and the note.
    pub fn check(self) -> Result<(String, String), DomainError> {
        let url = parse_web_url("url_prefix", &self.url_prefix)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(DomainError::invalid(
                "url_prefix",
                "a destination is a scheme, host and path, without a query or fragment",
            ));
        }
        let note = self.note.unwrap_or_default();
        let note = note.trim();
        if note.chars().count() > 200 || note.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "note",
                "must be at most 200 characters, without control characters",
            ));
        }
        Ok((url.to_string(), note.to_owned()))
    }
}

/// An absolute `http`/`https` URL with a host and no credentials.
pub(crate) fn parse_web_url(field: &str, text: &str) -> Result<Url, DomainError> {
    let text = text.trim();
    if text.chars().count() > MAX_URL_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    let url = Url::parse(text)
        .map_err(|e| DomainError::invalid(field, format!("is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(DomainError::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(
            field,
            "must not carry a user name or password",
        ));
    }
    Ok(url)
}

/// Whether `url` lies under the registered `prefix` (both as [`NewLinkDestination::check`]
/// and [`check_destination`] normalise them).
pub fn under_prefix(prefix: &str, url: &str) -> bool {
    let (Ok(prefix), Ok(url)) = (Url::parse(prefix), Url::parse(url)) else {
        return false;
    };
    if prefix.scheme() != url.scheme()
        || prefix.host_str() != url.host_str()
        || prefix.port_or_known_default() != url.port_or_known_default()
    {
        return false;
    }
    let (base, path) = (prefix.path(), url.path());
    if base.ends_with('/') {
        path.starts_with(base)
    } else {
        path == base
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Checks a link's destination: a web URL under one of the registered prefixes.
pub fn check_destination(text: &str, registered: &[String]) -> Result<String, DomainError> {
    let url = parse_web_url("destination", text)?.to_string();
    if !registered.iter().any(|prefix| under_prefix(prefix, &url)) {
        return Err(DomainError::invalid(
            "destination",
            "is not under a registered destination (register it at /api/v1/link-destinations)",
        ));
    }
    Ok(url)
}

/// A link's UTM parameters (each left out when not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Utm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
}

impl Utm {
    /// The parameters with their query names, those given only.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("utm_source", &self.utm_source),
            ("utm_medium", &self.utm_medium),
            ("utm_campaign", &self.utm_campaign),
            ("utm_term", &self.utm_term),
            ("utm_content", &self.utm_content),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }

    /// Trimmed, blank ones left out, each checked.
    pub fn check(self) -> Result<Utm, DomainError> {
        let one = |field: &str, value: Option<String>| -> Result<Option<String>, DomainError> {
            let Some(value) = value else { return Ok(None) };
            let value = value.trim();
            if value.is_empty() {
                return Ok(None);
            }
            if value.chars().count() > MAX_UTM_CHARS || value.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "must be at most {MAX_UTM_CHARS} characters, without control characters"
                    ),
                ));
            }
            Ok(Some(value.to_owned()))
        };
        Ok(Utm {
            utm_source: one("utm_source", self.utm_source)?,
            utm_medium: one("utm_medium", self.utm_medium)?,
            utm_campaign: one("utm_campaign", self.utm_campaign)?,
            utm_term: one("utm_term", self.utm_term)?,
            utm_content: one("utm_content", self.utm_content)?,
        })
    }

    /// Segment's `context.campaign` of these parameters (`utm_campaign` is its `name`).
    pub fn campaign(&self) -> Map<String, Value> {
        self.pairs()
            .into_iter()
            .map(|(name, value)| {
                let key = match name {
                    "utm_campaign" => "name",
                    other => other.trim_start_matches("utm_"),
                };
                (key.to_owned(), Value::String(value.to_owned()))
            })
            .collect()
    }
}

/// Where a link redirects: its destination with its UTM parameters in place of any the
/// destination had (unchanged when it has none).
pub fn target_url(destination: &str, utm: &Utm) -> String {
    let pairs = utm.pairs();
    if pairs.is_empty() {
        return destination.to_owned();
    }
    let Ok(mut url) = Url::parse(destination) else {
        return destination.to_owned();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !pairs.iter().any(|(utm, _)| utm == name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(pairs);
    url.to_string()
}

/// A tracked link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TrackedLink {
    pub id: TrackedLinkId,
    pub slug: String,
    /// `/l/{slug}`, to put after the server's public address.
    pub path: String,
    pub name: String,
    pub destination: String,
    #[serde(flatten)]
    pub utm: Utm,
    /// Where a click is sent: the destination with the UTM parameters.
    pub target: String,
    pub account_id: Option<ChannelAccountId>,
    pub created_by_staff_id: Option<StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A link as given to create one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrackedLink {
    pub name: String,
    /// A URL under a registered destination.
    pub destination: String,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// The channel account the link is posted on, for reports per account.
    pub account_id: Option<ChannelAccountId>,
}

/// Changes to a link; fields left out stay, a UTM value `""` removes it and
/// `account_id` may be `null`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackedLinkChange {
    pub name: Option<String>,
    pub destination: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<ChannelAccountId>)]
    pub account_id: Option<Option<ChannelAccountId>>,
}

/// A link checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedLinkSpec {
    pub name: String,
    pub destination: String,
    pub utm: Utm,
    pub account_id: Option<ChannelAccountId>,
}

impl NewTrackedLink {
    pub fn check(self, registered: &[String]) -> Result<TrackedLinkSpec, DomainError> {
        Ok(TrackedLinkSpec {
            name: check_name("name", &self.name, 100)?,
            destination: check_destination(&self.destination, registered)?,
            utm: Utm {
                utm_source: self.utm_source,
                utm_medium: self.utm_medium,
                utm_campaign: self.utm_campaign,
                utm_term: self.utm_term,
                utm_content: self.utm_content,
            }
            .check()?,
            account_id: self.account_id,
        })
    }
}

impl TrackedLinkChange {
    /// The link as it will be after the change.
    pub fn apply(
        self,
        to: &TrackedLink,
        registered: &[String],
    ) -> Result<TrackedLinkSpec, DomainError> {
        let keep = |given: Option<String>, had: &Option<String>| match given {
            Some(value) => Some(value),
            None => had.clone(),
        };
        let utm = Utm {
            utm_source: keep(self.utm_source, &to.utm.utm_source),
            utm_medium: keep(self.utm_medium, &to.utm.utm_medium),
            utm_campaign: keep(self.utm_campaign, &to.utm.utm_campaign),
            utm_term: keep(self.utm_term, &to.utm.utm_term),
            utm_content: keep(self.utm_content, &to.utm.utm_content),
        };
        Ok(TrackedLinkSpec {
            name: match self.name {
                Some(name) => check_name("name", &name, 100)?,
                None => to.name.clone(),
            },
            destination: match self.destination {
                Some(destination) => check_destination(&destination, registered)?,
                None => to.destination.clone(),
            },
            utm: utm.check()?,
            account_id: self.account_id.unwrap_or(to.account_id),
        })
    }
}

/// A tenant's key for personal links (32 random bytes, kept sealed as a secret).
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

/// The bytes of a link's personal-token MAC that a token carries (96 bits).
const TOKEN_MAC_BYTES: usize = 12;

impl LinkKey {
    /// The name the key is kept under among the tenant's secrets.
    pub const SECRET_NAME: &'static str = "tracked_link_key";

    /// A new random key's bytes.
    pub fn generate() -> Vec<u8> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill(&mut bytes);
        bytes.to_vec()
    }

    /// A key from its kept bytes (none: they are not 32 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Option<LinkKey> {
        bytes.try_into().ok().map(LinkKey)
    }

    fn mac(&self, link: TrackedLinkId, customer: CustomerId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"siyu personal link v1\0");
        mac.update(&link.0.to_be_bytes());
        mac.update(&customer.0.to_be_bytes());
        mac
    }

    /// The token of `link`'s personal link for `customer`: the customer's id in base 36,
    /// `.`, and the MAC in unpadded base64url.
    pub fn sign(&self, link: TrackedLinkId, customer: CustomerId) -> String {
        use base64::Engine;
        let tag = self.mac(link, customer).finalize().into_bytes();
        let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..TOKEN_MAC_BYTES]);
        format!("{}.{mac}", base36(customer.0 as u64))
    }

    /// The customer a token was made for, if it verifies for `link`.
    pub fn verify(&self, link: TrackedLinkId, token: &str) -> Option<CustomerId> {
        use base64::Engine;
        let (id, mac) = token.split_once('.')?;
        if id.is_empty() || id.len() > 13 || mac.len() != 16 {
            return None;
        }
        let customer = i64::try_from(u64::from_str_radix(id, 36).ok()?).ok()?;
        let given = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(mac)
            .ok()?;
        let customer = CustomerId(customer);
        self.mac(link, customer)
            .verify_truncated_left(&given)
            .ok()
            .map(|()| customer)
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// What a click event says about the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click<'a> {
    pub link: TrackedLinkId,
    pub slug: &'a str,
    pub name: &'a str,
    pub target: &'a str,
    pub utm: &'a Utm,
    /// The customer of a personal link whose token verified.
    pub customer: Option<CustomerId>,
    /// The browser's anonymous id (the visitor cookie).
    pub visitor: &'a str,
    pub user_agent: Option<&'a str>,
    pub referrer: Option<&'a str>,
}

/// The `Link Clicked` event of a click, at `now` (ms), with its message id.
pub fn click_event(click: &Click<'_>, message_id: String, now: i64) -> TrackedEvent {
    let mut properties = Map::new();
    properties.insert("link_id".into(), json!(click.link.0));
    properties.insert("link_slug".into(), json!(click.slug));
    properties.insert("link_name".into(), json!(click.name));
    properties.insert("url".into(), json!(click.target));
    properties.insert("personal".into(), json!(click.customer.is_some()));
    for (name, value) in click.utm.pairs() {
        properties.insert(name.into(), json!(value));
    }
    let mut context = Map::new();
    let campaign = click.utm.campaign();
    if !campaign.is_empty() {
        context.insert("campaign".into(), Value::Object(campaign));
    }
    if let Some(agent) = click.user_agent {
        context.insert("userAgent".into(), json!(agent));
    }
    if let Some(referrer) = click.referrer {
        context.insert("page".into(), json!({"referrer": referrer}));
    }
    TrackedEvent {
        event_type: EventType::Track,
        message_id,
        user_id: None,
        anonymous_id: Some(click.visitor.to_owned()),
        name: LINK_CLICKED.to_owned(),
        properties,
        traits: Map::new(),
        context,
        group_id: None,
        previous_id: None,
        timestamp: now,
        received_at: now,
        commerce: None,
        customer: click.customer,
    }
}

/// The link a `Link Clicked` event names and whether the click was personal (none: the
/// event is not a link's click).
pub fn clicked_link(event: &TrackedEvent) -> Option<(TrackedLinkId, bool)> {
    if event.event_type != EventType::Track || event.name != LINK_CLICKED {
        return None;
    }
    let link = event.properties.get("link_id")?.as_i64()?;
    let personal = event
        .properties
        .get("personal")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some((TrackedLinkId(link), personal))
}

/// A link's figures over a range or a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkFigures {
    /// Clicks by people (their `Link Clicked` events, applied).
    pub clicks: i64,
    /// Of those, clicks on personal links whose token verified.
    pub personal_clicks: i64,
    /// Link-preview crawlers' fetches (not clicks, no event).
    pub crawler_fetches: i64,
}

impl LinkFigures {
    pub fn add(&mut self, other: &LinkFigures) {
        self.clicks += other.clicks;
        self.personal_clicks += other.personal_clicks;
        self.crawler_fetches += other.crawler_fetches;
    }
}

/// One link's figures in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkReportRow {
    pub link_id: TrackedLinkId,
    pub name: String,
    pub slug: String,
    pub account_id: Option<ChannelAccountId>,
    /// The link was deleted (its history stays).
    pub deleted: bool,
    #[serde(flatten)]
    pub figures: LinkFigures,
}

/// One day of a link report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkReportDay {
    /// `YYYY-MM-DD`, the tenant's local date.
    pub date: String,
    #[serde(flatten)]
    pub figures: LinkFigures,
}

/// What links brought over a range of local days: per link (most clicked first), in
/// total and day by day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkReport {
    pub from: String,
    pub to: String,
    pub rows: Vec<LinkReportRow>,
    pub total: LinkFigures,
    pub daily: Vec<LinkReportDay>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(prefix: &str) -> String {
        NewLinkDestination {
            url_prefix: prefix.into(),
            note: None,
        }
        .check()
        .unwrap()
        .0
    }

    #[test]
    fn links_lead_only_under_registered_destinations() {
        let registered = vec![
            destination("https://Shop.Example.com/promo"),
            destination("https://m.example.com/"),
        ];
        assert_eq!(registered[0], "https://shop.example.com/promo");
        for ok in [
            "https://shop.example.com/promo",
            "https://shop.example.com/promo/spring?x=1",
            "https://m.example.com/anything/at/all",
            "https://m.example.com",
        ] {
            assert!(check_destination(ok, &registered).is_ok(), "{ok}");
        }
        for refused in [
            "https://shop.example.com/promotions",
            "https://shop.example.com/",
            "http://shop.example.com/promo",
            "https://shop.example.com:8443/promo",
            "https://evil.example.com/promo",
            "https://m.example.com.evil.com/",
            "https://user:pw@m.example.com/",
            "javascript:alert(1)",
            "//m.example.com/",
            "not a url",
        ] {
            assert!(
                check_destination(refused, &registered).is_err(),
                "{refused}"
            );
        }
        assert!(check_destination("https://m.example.com/", &[]).is_err());
    }

    #[test]
    fn destinations_are_scheme_host_and_path() {
        for bad in [
            "ftp://example.com/",
            "https://example.com/?a=1",
            "https://example.com/#top",
            "example.com",
            "https://a:b@example.com/",
        ] {
            let checked = NewLinkDestination {
                url_prefix: bad.into(),
                note: None,
            }
            .check();
            assert!(checked.is_err(), "{bad}");
        }
    }

    #[test]
    fn utm_replaces_the_destination_s_own() {
        let utm = Utm {
            utm_source: Some("douyin".into()),
            utm_campaign: Some("双11".into()),
            ..Default::default()
        };
        let target = target_url(
            "https://shop.example.com/p?id=7&utm_source=old&utm_medium=keep",
            &utm,
        );
        let url = Url::parse(&target).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("id".to_owned(), "7".to_owned()),
                ("utm_medium".to_owned(), "keep".to_owned()),
                ("utm_source".to_owned(), "douyin".to_owned()),
                ("utm_campaign".to_owned(), "双11".to_owned()),
            ]
        );
        assert_eq!(
            target_url("https://a.example.com/x?y=1", &Utm::default()),
            "https://a.example.com/x?y=1"
        );
        let campaign = utm.campaign();
        assert_eq!(campaign["source"], "douyin");
        assert_eq!(campaign["name"], "双11");
        let blank = Utm {
            utm_term: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(blank.check().unwrap(), Utm::default());
        let long = Utm {
            utm_content: Some("x".repeat(201)),
            ..Default::default()
        };
        assert!(long.check().is_err());
    }

    #[test]
    fn personal_tokens_verify_only_for_their_link_and_customer() {
        let key = LinkKey::from_bytes(&LinkKey::generate()).unwrap();
        let (link, customer) = (TrackedLinkId(7), CustomerId(123_456));
        let token = key.sign(link, customer);
        assert_eq!(key.verify(link, &token), Some(customer));
        assert_eq!(key.verify(TrackedLinkId(8), &token), None);
        let other = LinkKey::from_bytes(&LinkKey::generate()).unwrap();
        assert_eq!(other.verify(link, &token), None);
        // another customer's id with this MAC
        let (_, mac) = token.split_once('.').unwrap();
        assert_eq!(
            key.verify(link, &format!("{}.{mac}", base36(123_457))),
            None
        );
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.verify(link, &String::from_utf8(flipped).unwrap()), None);
        for junk in ["", ".", "abc", "zzzzzzzzzzzzzz.AAAAAAAAAAAAAAAA", "1.!!!!"] {
            assert_eq!(key.verify(link, junk), None, "{junk}");
        }
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }

    #[test]
    fn a_click_is_an_event_that_names_its_link() {
        let utm = Utm {
            utm_medium: Some("wecom".into()),
            ..Default::default()
        };
        let click = Click {
            link: TrackedLinkId(5),
            slug: "Ab3dEf7h",
            name: "spring",
            target: "https://shop.example.com/?utm_medium=wecom",
            utm: &utm,
            customer: Some(CustomerId(9)),
            visitor: "v1",
            user_agent: Some("Mozilla/5.0"),
            referrer: None,
        };
        let event = click_event(&click, "m1".into(), 1_000);
        assert_eq!(event.name, LINK_CLICKED);
        assert_eq!(event.customer, Some(CustomerId(9)));
        assert_eq!(event.anonymous_id.as_deref(), Some("v1"));
        assert_eq!(event.context["campaign"]["medium"], "wecom");
        assert_eq!(clicked_link(&event), Some((TrackedLinkId(5), true)));
        let mut other = event.clone();
        other.name = "Link Opened".into();
        assert_eq!(clicked_link(&other), None);
    }

    #[test]
    fn slugs_are_short_and_random() {
        let a = new_link_slug();
        assert!(is_link_slug(&a), "{a}");
        assert_ne!(a, new_link_slug());
        assert!(!is_link_slug("abc"));
        assert!(!is_link_slug("abcd-fgh"));
        assert_eq!(link_path("x"), "/l/x");
    }
}
