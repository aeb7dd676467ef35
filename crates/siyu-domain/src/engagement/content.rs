//! The content library (素材库): what the brand sends, kept once and used by mass sends
//! (and later welcomes, journeys and moments).
//!
//! An item is one of WeCom's attachment kinds, plus text and articles:
//! - **text**: a text of at most 4,000 bytes (WeCom's `text.content`);
//! - **image**, **video**, **file**: a stored file (uploaded to siyu first, then to
//!   WeCom as media when a send uses it; WeCom's media lasts 3 days);
//! - **link**: a link card (title, URL, description, an image);
//! - **miniprogram**: a mini-program card (title, `appid`, page, an image: WeCom needs
//!   one);
//! - **article**: a text the brand publishes on siyu's own page, sent as a link card.
//!
//! Items are described for the people who find them again: a category (story,
//! knowledge, case, …), a source (BGC made by the brand, PGC by professionals, OGC by
//! staff, UGC by customers), tags and the unit that owns them.
//!
//! The body is flat (`kind` plus the fields that kind takes), and a field the kind does
//! not take is refused rather than silently dropped. Which files fit is checked here
//! ([`FileRule`]) against WeCom's media limits; that the files exist is the store's.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::acquisition::links::parse_web_url;
use crate::error::{DomainError, check_name};
use crate::ids::{ContentItemId, FileId, StaffId, UnitId};
use crate::order::string_enum;

/// The longest text, in bytes (WeCom's limit for `text.content`).
pub const TEXT_MAX_BYTES: usize = crate::engagement::template::TEXT_MAX_BYTES;
/// The longest article, in characters.
pub const ARTICLE_MAX_CHARS: usize = 20_000;
/// The most tags an item has.
pub const MAX_TAGS: usize = 20;
/// The most attachments one WeCom message carries.
pub const MAX_ATTACHMENTS: usize = 9;

string_enum!(
    /// What an item is.
    ContentKind {
        Text => "text",
        Image => "image",
        Link => "link",
        Miniprogram => "miniprogram",
        Video => "video",
        File => "file",
        Article => "article",
    }
);

string_enum!(
    /// What an item is about.
    ContentCategory {
        Story => "story",
        Knowledge => "knowledge",
        Case => "case",
        News => "news",
        Promotion => "promotion",
        Product => "product",
        Event => "event",
        Other => "other",
    }
);

string_enum!(
    /// Who made an item: the brand (BGC), professionals (PGC), staff (OGC) or customers
    /// (UGC).
    ContentSource {
        Bgc => "bgc",
        Pgc => "pgc",
        Ogc => "ogc",
        Ugc => "ugc",
    }
);

/// Which stored files an item's file may be: WeCom's media limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRule {
    /// Content types taken (empty: any).
    pub content_types: &'static [&'static str],
    pub max_bytes: i64,
}

const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png"];

impl FileRule {
    /// An image (a picture, or a card's image): JPG or PNG, at most 10 MB.
    pub const IMAGE: FileRule = FileRule {
        content_types: IMAGE_TYPES,
        max_bytes: 10 * 1024 * 1024,
    };
    /// A link card's picture: JPG or PNG, at most 2 MB (WeCom keeps it for good, as
    /// `media/uploadimg` takes it).
    pub const CARD_IMAGE: FileRule = FileRule {
        content_types: IMAGE_TYPES,
        max_bytes: 2 * 1024 * 1024,
    };
    /// A video: MP4, at most 10 MB.
    pub const VIDEO: FileRule = FileRule {
        content_types: &["video/mp4"],
        max_bytes: 10 * 1024 * 1024,
    };
    /// A file: any type, at most 20 MB.
    pub const FILE: FileRule = FileRule {
        content_types: &[],
        max_bytes: 20 * 1024 * 1024,
    };

    /// Whether a stored file fits; `field` names it in the error.
    pub fn check(&self, field: &str, content_type: &str, size: i64) -> Result<(), DomainError> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        if !self.content_types.is_empty()
            && !self
                .content_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(base))
        {
            return Err(DomainError::invalid(
                field,
                format!(
                    "must be a file of type {} (this one is {base})",
                    self.content_types.join(" or ")
                ),
            ));
        }
        if size > self.max_bytes {
            return Err(DomainError::invalid(
                field,
                format!(
                    "must be at most {} MB (WeCom's limit)",
                    self.max_bytes / 1024 / 1024
                ),
            ));
        }
        if size == 0 {
            return Err(DomainError::invalid(field, "must not be an empty file"));
        }
        Ok(())
    }
}

/// An item of the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContentItem {
    pub id: ContentItemId,
    pub kind: ContentKind,
    pub title: String,
    pub category: ContentCategory,
    pub source: ContentSource,
    pub tags: Vec<String>,
    pub unit_id: Option<UnitId>,
    #[serde(flatten)]
    pub body: ContentBody,
    pub created_by: Option<StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// An item of the library as a send carries it: kept as it was, so that a later change
/// or deletion of the item does not change what the send carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BroadcastAttachment {
    pub content_id: ContentItemId,
    pub kind: ContentKind,
    pub title: String,
    #[serde(flatten)]
    pub body: ContentBody,
    /// A link card's tracked link on this send, when its URL lies under a registered
    /// destination: the card leads there, and its clicks count for the item and the
    /// send (see [`BroadcastAttachment::track`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_link: Option<SendLink>,
}

/// The short link a send's link card leads through (`/l/{slug}`, made with the send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendLink {
    pub slug: String,
    /// The short link's full URL, as the message carries it.
    pub url: String,
}

impl BroadcastAttachment {
    pub fn of(item: &ContentItem) -> Self {
        Self {
            content_id: item.id,
            kind: item.kind,
            title: item.title.clone(),
            body: item.body.clone(),
            tracked_link: None,
        }
    }

    /// Gives a link card a short link of its own on `origin` (siyu's public address)
    /// when its URL lies under one of the `registered` destinations, so that its clicks
    /// are counted (per item and per send). A card to anywhere else is sent as it is:
    /// siyu never makes a short link to an unregistered destination, and such a card's
    /// clicks are not counted.
    pub fn track(&mut self, origin: &str, registered: &[String]) {
        if self.kind != ContentKind::Link || self.tracked_link.is_some() {
            return;
        }
        let Some(url) = self.body.url.as_deref() else {
            return;
        };
        if !registered
            .iter()
            .any(|prefix| crate::acquisition::links::under_prefix(prefix, url))
        {
            return;
        }
        let slug = crate::acquisition::links::new_link_slug();
        let url = format!(
            "{}{}",
            origin.trim_end_matches('/'),
            crate::acquisition::links::link_path(&slug)
        );
        self.tracked_link = Some(SendLink { slug, url });
    }

    /// Where the card leads as sent: its short link when it has one, else its URL.
    pub fn card_url(&self) -> Option<&str> {
        match &self.tracked_link {
            Some(link) => Some(&link.url),
            None => self.body.url.as_deref(),
        }
    }
}

/// What an item carries; which fields are set depends on its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContentBody {
    /// text: the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// image, video, file: the stored file (`POST /api/v1/content/files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    /// link: where the card leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// link: the card's line under the title; article: its summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// link, article: the card's image (optional); miniprogram: its image (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_file_id: Option<FileId>,
    /// miniprogram: the mini-program's AppID (`wx…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// miniprogram: the page it opens (`pages/index/index?x=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// article: its text, paragraphs separated by blank lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article: Option<String>,
}

impl ContentBody {
    /// The stored files it names, with the rule each must meet and its field.
    pub fn files(&self, kind: ContentKind) -> Vec<(&'static str, FileId, FileRule)> {
        let mut files = Vec::new();
        if let Some(file) = self.file_id {
            let rule = match kind {
                ContentKind::Video => FileRule::VIDEO,
                ContentKind::File => FileRule::FILE,
                _ => FileRule::IMAGE,
            };
            files.push(("file_id", file, rule));
        }
        if let Some(image) = self.image_file_id {
            let rule = match kind {
                // uploaded as media, like an image
                ContentKind::Miniprogram => FileRule::IMAGE,
                _ => FileRule::CARD_IMAGE,
            };
            files.push(("image_file_id", image, rule));
        }
        files
    }
}

/// An item as given to add one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContentItem {
    pub kind: ContentKind,
    pub title: String,
    /// Default `other`.
    pub category: Option<ContentCategory>,
    /// Default `bgc`.
    pub source: Option<ContentSource>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub unit_id: Option<UnitId>,
    /// The body's fields, as [`ContentBody`] describes them.
    pub text: Option<String>,
    pub file_id: Option<FileId>,
    pub url: Option<String>,
    pub description: Option<String>,
    pub image_file_id: Option<FileId>,
    pub appid: Option<String>,
    pub page: Option<String>,
    pub article: Option<String>,
}

/// Changes to an item; fields left out stay. Its kind does not change; the body's
/// fields, when any is given, replace the body as a whole.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentItemChange {
    pub title: Option<String>,
    pub category: Option<ContentCategory>,
    pub source: Option<ContentSource>,
    pub tags: Option<Vec<String>>,
    /// A unit, or null for none.
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<UnitId>)]
    pub unit_id: Option<Option<UnitId>>,
    /// The body's fields, as [`ContentBody`] describes them (any given: the whole body).
    pub text: Option<String>,
    pub file_id: Option<FileId>,
    pub url: Option<String>,
    pub description: Option<String>,
    pub image_file_id: Option<FileId>,
    pub appid: Option<String>,
    pub page: Option<String>,
    pub article: Option<String>,
}

/// The body's fields of an input, gathered.
macro_rules! body_of {
    ($input:expr) => {
        ContentBody {
            text: $input.text,
            file_id: $input.file_id,
            url: $input.url,
            description: $input.description,
            image_file_id: $input.image_file_id,
            appid: $input.appid,
            page: $input.page,
            article: $input.article,
        }
    };
}

/// An item checked and ready to store (its files still to be checked by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSpec {
    pub kind: ContentKind,
    pub title: String,
    pub category: ContentCategory,
    pub source: ContentSource,
    pub tags: Vec<String>,
    pub unit_id: Option<UnitId>,
    pub body: ContentBody,
}

impl NewContentItem {
    pub fn check(self) -> Result<ContentSpec, DomainError> {
        let kind = self.kind;
        let title = check_name("title", &self.title, 100)?;
        Ok(ContentSpec {
            kind,
            title,
            category: self.category.unwrap_or(ContentCategory::Other),
            source: self.source.unwrap_or(ContentSource::Bgc),
            tags: check_tags(self.tags)?,
            unit_id: self.unit_id,
            body: check_body(kind, body_of!(self))?,
        })
    }
}

impl ContentItemChange {
    /// The item as it will be after the change.
    pub fn apply(self, to: &ContentItem) -> Result<ContentSpec, DomainError> {
        let title = check_name("title", self.title.as_deref().unwrap_or(&to.title), 100)?;
        let (category, source, tags, unit_id) =
            (self.category, self.source, self.tags, self.unit_id);
        let given = body_of!(self);
        let body = if given == ContentBody::default() {
            to.body.clone()
        } else {
            given
        };
        Ok(ContentSpec {
            kind: to.kind,
            title,
            category: category.unwrap_or(to.category),
            source: source.unwrap_or(to.source),
            tags: check_tags(tags.unwrap_or_else(|| to.tags.clone()))?,
            unit_id: unit_id.unwrap_or(to.unit_id),
            body: check_body(to.kind, body)?,
        })
    }
}

fn check_tags(tags: Vec<String>) -> Result<Vec<String>, DomainError> {
    if tags.len() > MAX_TAGS {
        return Err(DomainError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = check_name("tags", &tag, 30)?;
        if !kept.contains(&tag) {
            kept.push(tag);
        }
    }
    Ok(kept)
}

/// Whether a mini-program AppID looks like one: `wx` and 16 hex digits.
fn is_appid(s: &str) -> bool {
    s.len() == 18 && s.starts_with("wx") && s[2..].chars().all(|c| c.is_ascii_hexdigit())
}

fn check_body(kind: ContentKind, body: ContentBody) -> Result<ContentBody, DomainError> {
    let ContentBody {
        text,
        file_id,
        url,
        description,
        image_file_id,
        appid,
        page,
        article,
    } = body;
    // each field the kind takes: (name, set, required)
    let takes: &[(&str, bool)] = match kind {
        ContentKind::Text => &[("text", true)],
        ContentKind::Image | ContentKind::Video | ContentKind::File => &[("file_id", true)],
        ContentKind::Link => &[
            ("url", true),
            ("description", false),
            ("image_file_id", false),
        ],
        ContentKind::Miniprogram => &[("appid", true), ("page", true), ("image_file_id", true)],
        ContentKind::Article => &[
            ("article", true),
            ("description", false),
            ("image_file_id", false),
        ],
    };
    let given = [
        ("text", text.is_some()),
        ("file_id", file_id.is_some()),
        ("url", url.is_some()),
        ("description", description.is_some()),
        ("image_file_id", image_file_id.is_some()),
        ("appid", appid.is_some()),
        ("page", page.is_some()),
        ("article", article.is_some()),
    ];
    // a field the kind does not take, then the first it needs that is missing
    for (field, set) in given {
        if set && !takes.iter().any(|(name, _)| *name == field) {
            return Err(DomainError::invalid(
                field,
                format!("a {} item has no {field}", kind.as_str()),
            ));
        }
    }
    for (field, required) in takes {
        if *required && !given.iter().any(|(name, set)| name == field && *set) {
            return Err(DomainError::invalid(
                *field,
                format!("a {} item needs {field}", kind.as_str()),
            ));
        }
    }
    let text = match text {
        Some(text) if text.trim().is_empty() => {
            return Err(DomainError::invalid("text", "must not be empty"));
        }
        Some(text) if text.len() > TEXT_MAX_BYTES => {
            return Err(DomainError::invalid(
                "text",
                format!("must be at most {TEXT_MAX_BYTES} bytes (WeCom's limit for a text)"),
            ));
        }
        other => other,
    };
    let url = url
        .map(|u| parse_web_url("url", &u).map(|u| u.to_string()))
        .transpose()?;
    let description = description
        .map(|d| check_name("description", &d, 200))
        .transpose()?;
    let appid = match appid {
        Some(a) if !is_appid(a.trim()) => {
            return Err(DomainError::invalid(
                "appid",
                "must be a mini-program AppID: wx and 16 hexadecimal digits",
            ));
        }
        other => other.map(|a| a.trim().to_owned()),
    };
    let page = match page {
        Some(p) => {
            let p = check_name("page", &p, 500)?;
            if p.contains(char::is_whitespace) || p.starts_with("http") {
                return Err(DomainError::invalid(
                    "page",
                    "must be a page path of the mini-program (pages/index/index?x=1)",
                ));
            }
            Some(p)
        }
        None => None,
    };
    let article = match article {
        Some(a) if a.trim().is_empty() => {
            return Err(DomainError::invalid("article", "must not be empty"));
        }
        Some(a) if a.chars().count() > ARTICLE_MAX_CHARS => {
            return Err(DomainError::invalid(
                "article",
                format!("must be at most {ARTICLE_MAX_CHARS} characters"),
            ));
        }
        other => other,
    };
    Ok(ContentBody {
        text,
        file_id,
        url,
        description,
        image_file_id,
        appid,
        page,
        article,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_card_under_a_registered_destination_leads_through_a_short_link_of_its_own() {
        let card = |url: &str| BroadcastAttachment {
            content_id: ContentItemId(7),
            kind: ContentKind::Link,
            title: "春季新品".into(),
            body: ContentBody {
                url: Some(url.into()),
                ..ContentBody::default()
            },
            tracked_link: None,
        };
        let registered = vec!["https://shop.example.com/promo".to_owned()];
        let mut tracked = card("https://shop.example.com/promo/spring?x=1");
        tracked.track("https://siyu.example.com/", &registered);
        let link = tracked.tracked_link.clone().expect("tracked");
        assert_eq!(
            link.url,
            format!("https://siyu.example.com/l/{}", link.slug)
        );
        assert!(crate::acquisition::links::is_link_slug(&link.slug));
        assert_eq!(tracked.card_url(), Some(link.url.as_str()));
        assert_eq!(
            tracked.body.url.as_deref(),
            Some("https://shop.example.com/promo/spring?x=1"),
            "the destination is kept"
        );
        tracked.track("https://siyu.example.com", &registered);
        assert_eq!(tracked.tracked_link, Some(link), "tracked once");

        let mut elsewhere = card("https://shop.example.com/promotions");
        elsewhere.track("https://siyu.example.com", &registered);
        assert_eq!(elsewhere.tracked_link, None, "not under the prefix");
        assert_eq!(
            elsewhere.card_url(),
            Some("https://shop.example.com/promotions")
        );

        let mut image = card("https://shop.example.com/promo");
        image.kind = ContentKind::Image;
        image.track("https://siyu.example.com", &registered);
        assert_eq!(image.tracked_link, None, "only link cards");
    }

    /// The field an error names, and its message.
    fn refusal(e: DomainError) -> String {
        match e {
            DomainError::Invalid(f) => format!("{}: {}", f.field, f.message),
            other => other.to_string(),
        }
    }

    fn new(kind: ContentKind, body: ContentBody) -> NewContentItem {
        NewContentItem {
            kind,
            title: "春季新品".into(),
            category: None,
            source: None,
            tags: vec!["新品".into(), "新品".into(), "春季".into()],
            unit_id: None,
            text: body.text,
            file_id: body.file_id,
            url: body.url,
            description: body.description,
            image_file_id: body.image_file_id,
            appid: body.appid,
            page: body.page,
            article: body.article,
        }
    }

    #[test]
    fn each_kind_takes_its_fields() {
        let link = new(
            ContentKind::Link,
            ContentBody {
                url: Some("https://shop.example.com/spring".into()),
                description: Some("新品上市".into()),
                ..ContentBody::default()
            },
        )
        .check()
        .unwrap();
        assert_eq!(link.category, ContentCategory::Other);
        assert_eq!(link.source, ContentSource::Bgc);
        assert_eq!(link.tags, vec!["新品", "春季"], "tags kept once, in order");

        let missing = new(ContentKind::Miniprogram, ContentBody::default()).check();
        assert!(refusal(missing.unwrap_err()).starts_with("appid"));

        let foreign = new(
            ContentKind::Text,
            ContentBody {
                text: Some("你好".into()),
                url: Some("https://example.com".into()),
                ..ContentBody::default()
            },
        )
        .check()
        .unwrap_err();
        assert!(
            foreign.to_string().contains("a text item has no url"),
            "{foreign}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let cases = [
            (
                ContentKind::Text,
                ContentBody {
                    text: Some("  ".into()),
                    ..Default::default()
                },
                "text",
            ),
            (
                ContentKind::Text,
                ContentBody {
                    text: Some("字".repeat(1_400)),
                    ..Default::default()
                },
                "4000 bytes",
            ),
            (
                ContentKind::Link,
                ContentBody {
                    url: Some("javascript:alert(1)".into()),
                    ..Default::default()
                },
                "url",
            ),
            (
                ContentKind::Miniprogram,
                ContentBody {
                    appid: Some("wx123".into()),
                    page: Some("pages/index".into()),
                    image_file_id: Some(FileId(1)),
                    ..Default::default()
                },
                "AppID",
            ),
            (
                ContentKind::Article,
                ContentBody {
                    article: Some("\n".into()),
                    ..Default::default()
                },
                "article",
            ),
        ];
        for (kind, body, says) in cases {
            let err = refusal(new(kind, body).check().unwrap_err());
            assert!(err.contains(says), "{kind:?}: {err}");
        }
        let mut many = new(
            ContentKind::Text,
            ContentBody {
                text: Some("hi".into()),
                ..Default::default()
            },
        );
        many.tags = (0..21).map(|i| format!("t{i}")).collect();
        assert!(many.check().is_err());
    }

    #[test]
    fn files_follow_wecom_limits() {
        assert!(FileRule::IMAGE.check("file_id", "image/png", 1_000).is_ok());
        assert!(
            FileRule::IMAGE
                .check("file_id", "image/jpeg; charset=binary", 1_000)
                .is_ok()
        );
        assert!(
            FileRule::IMAGE
                .check("file_id", "image/gif", 1_000)
                .is_err()
        );
        assert!(
            FileRule::IMAGE
                .check("file_id", "image/png", 11 * 1024 * 1024)
                .is_err()
        );
        assert!(FileRule::VIDEO.check("file_id", "video/mp4", 5).is_ok());
        assert!(
            FileRule::FILE
                .check("file_id", "application/pdf", 20 * 1024 * 1024)
                .is_ok()
        );
        assert!(
            FileRule::FILE
                .check("file_id", "application/pdf", 0)
                .is_err()
        );
        let body = ContentBody {
            file_id: Some(FileId(3)),
            ..Default::default()
        };
        assert_eq!(
            body.files(ContentKind::Video),
            vec![("file_id", FileId(3), FileRule::VIDEO)]
        );
    }

    #[test]
    fn a_change_keeps_the_kind_and_replaces_the_body() {
        let item = ContentItem {
            id: ContentItemId(1),
            kind: ContentKind::Text,
            title: "t".into(),
            category: ContentCategory::News,
            source: ContentSource::Ugc,
            tags: vec![],
            unit_id: None,
            body: ContentBody {
                text: Some("旧".into()),
                ..Default::default()
            },
            created_by: None,
            created_at: 0,
            updated_at: 0,
        };
        let kept = ContentItemChange {
            title: Some("新".into()),
            ..Default::default()
        }
        .apply(&item)
        .unwrap();
        assert_eq!(
            (kept.title.as_str(), kept.body.text.as_deref()),
            ("新", Some("旧"))
        );
        assert_eq!(kept.category, ContentCategory::News);
        let changed = ContentItemChange {
            text: Some("新的".into()),
            ..Default::default()
        }
        .apply(&item)
        .unwrap();
        assert_eq!(changed.body.text.as_deref(), Some("新的"));
        let wrong = ContentItemChange {
            url: Some("https://example.com".into()),
            ..Default::default()
        }
        .apply(&item);
        assert!(wrong.is_err(), "a text item does not become a link");
    }
}
