//! Quick replies (快捷回复, 话术): the words customer-service staff send again and again,
//! kept in the tenant's library (shared, changed by those who manage content) or in a
//! member of staff's personal one, in groups, found by searching in Chinese and counted
//! each time they are used.
//!
//! Search segments words with jieba (`jieba-rs`, its dictionary built in): a reply's
//! title and text are cut for search ("退款流程需要三天" → 退款, 流程, 需要, 三天) and
//! kept as terms beside it; a query is cut the same way, common function words dropped
//! (的, 怎么, 请问, …), and a reply matches when it holds any of the query's terms or the
//! whole query as written. The best match holds the most terms; among equals, the most
//! used comes first. So "怎么退款" finds "退款需要三天" although neither contains the
//! other, which a plain substring search never would.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use jieba_rs::Jieba;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{DomainError, check_name};
use crate::ids::{ContentItemId, QuickReplyGroupId, QuickReplyId, StaffId};
use crate::order::string_enum;

/// The longest reply, in characters (a chat message, not an article).
pub const TEXT_MAX_CHARS: usize = 2_000;
/// The longest title or group name, in characters.
pub const NAME_MAX_CHARS: usize = 60;
/// The most terms of a query searched for.
pub const MAX_QUERY_TERMS: usize = 12;

string_enum!(
    /// Whose library a reply or group is in: the tenant's (`tenant`: everyone reads it,
    /// `content.write` changes it) or a member of staff's own (`personal`: only they
    /// read and change it).
    QuickReplyLibrary {
        Tenant => "tenant",
        Personal => "personal",
    }
);

/// A group of replies (售后, 活动, 开场白, …), in one library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuickReplyGroup {
    pub id: QuickReplyGroupId,
    pub library: QuickReplyLibrary,
    pub name: String,
    /// Groups are shown by position, then name.
    pub position: i64,
    /// Replies in the group.
    pub replies: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A group as given to create one (`library` defaults to `personal`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuickReplyGroup {
    pub library: Option<QuickReplyLibrary>,
    pub name: String,
    pub position: Option<i64>,
}

/// Changes to a group; fields left out stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplyGroupChange {
    pub name: Option<String>,
    pub position: Option<i64>,
}

/// A group checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReplyGroupSpec {
    pub library: QuickReplyLibrary,
    pub name: String,
    pub position: i64,
}

impl NewQuickReplyGroup {
    pub fn check(self) -> Result<QuickReplyGroupSpec, DomainError> {
        Ok(QuickReplyGroupSpec {
            library: self.library.unwrap_or(QuickReplyLibrary::Personal),
            name: check_name("name", &self.name, NAME_MAX_CHARS)?,
            position: self.position.unwrap_or(0),
        })
    }
}

impl QuickReplyGroupChange {
    pub fn apply(self, group: &QuickReplyGroup) -> Result<QuickReplyGroupSpec, DomainError> {
        Ok(QuickReplyGroupSpec {
            library: group.library,
            name: match self.name {
                Some(name) => check_name("name", &name, NAME_MAX_CHARS)?,
                None => group.name.clone(),
            },
            position: self.position.unwrap_or(group.position),
        })
    }
}

/// A quick reply.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QuickReply {
    pub id: QuickReplyId,
    pub library: QuickReplyLibrary,
    pub group_id: Option<QuickReplyGroupId>,
    pub title: String,
    pub text: String,
    /// An item of the content library sent with the text (an image, a link card, …).
    pub content_id: Option<ContentItemId>,
    /// Times used, by anyone.
    pub use_count: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    pub created_by: Option<StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A reply as given to create one. `library` defaults to `personal`; a group, when
/// named, must be in the same library.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuickReply {
    pub library: Option<QuickReplyLibrary>,
    pub group_id: Option<QuickReplyGroupId>,
    pub title: String,
    pub text: String,
    pub content_id: Option<ContentItemId>,
}

/// Changes to a reply; fields left out stay, `group_id` and `content_id` may be `null`
/// to clear them. Its library stays.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplyChange {
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<QuickReplyGroupId>)]
    pub group_id: Option<Option<QuickReplyGroupId>>,
    pub title: Option<String>,
    pub text: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<ContentItemId>)]
    pub content_id: Option<Option<ContentItemId>>,
}

/// A reply checked and ready to store, with its search terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReplySpec {
    pub library: QuickReplyLibrary,
    pub group_id: Option<QuickReplyGroupId>,
    pub title: String,
    pub text: String,
    pub content_id: Option<ContentItemId>,
    /// See [`search_terms`].
    pub terms: String,
}

fn check_text(text: &str) -> Result<String, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DomainError::invalid("text", "must not be empty"));
    }
    if text.chars().count() > TEXT_MAX_CHARS {
        return Err(DomainError::invalid(
            "text",
            format!("must be at most {TEXT_MAX_CHARS} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::invalid(
            "text",
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(text.to_owned())
}

impl QuickReplySpec {
    fn new(
        library: QuickReplyLibrary,
        group_id: Option<QuickReplyGroupId>,
        title: &str,
        text: &str,
        content_id: Option<ContentItemId>,
    ) -> Result<Self, DomainError> {
        let title = check_name("title", title, NAME_MAX_CHARS)?;
        let text = check_text(text)?;
        let terms = search_terms(&format!("{title}\n{text}"));
        Ok(Self {
            library,
            group_id,
            title,
            text,
            content_id,
            terms,
        })
    }
}

impl NewQuickReply {
    pub fn check(self) -> Result<QuickReplySpec, DomainError> {
        QuickReplySpec::new(
            self.library.unwrap_or(QuickReplyLibrary::Personal),
            self.group_id,
            &self.title,
            &self.text,
            self.content_id,
        )
    }
}

impl QuickReplyChange {
    pub fn apply(self, reply: &QuickReply) -> Result<QuickReplySpec, DomainError> {
        QuickReplySpec::new(
            reply.library,
            self.group_id.unwrap_or(reply.group_id),
            self.title.as_deref().unwrap_or(&reply.title),
            self.text.as_deref().unwrap_or(&reply.text),
            self.content_id.unwrap_or(reply.content_id),
        )
    }
}

/// Function words that say nothing of what is asked, dropped from queries.
const STOP_WORDS: &[&str] = &[
    "的", "了", "吗", "呢", "吧", "啊", "呀", "嘛", "么", "是", "在", "有", "和", "与", "及", "或",
    "我", "你", "您", "他", "她", "它", "我们", "你们", "怎么", "怎样", "如何", "什么", "请问",
    "一下", "可以", "能", "能否", "要", "想", "这", "那", "这个", "那个", "哪", "哪里", "the", "a",
    "an", "to", "of", "is", "how", "what",
];

fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// The words of a text, cut for search, lower-cased, without punctuation or spaces.
fn words(text: &str) -> BTreeSet<String> {
    jieba()
        .cut_for_search(text, true)
        .into_iter()
        .map(|token| token.word.trim().to_lowercase())
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

/// A reply's search terms as stored: its words, each between spaces (" 退款 流程 "), so
/// that one is matched whole with `LIKE '% 退款 %'`.
pub fn search_terms(text: &str) -> String {
    let mut terms = String::from(" ");
    for word in words(text) {
        terms.push_str(&word);
        terms.push(' ');
    }
    terms
}

/// A query's terms: its words less the function words, at most [`MAX_QUERY_TERMS`]
/// (longest first, the most telling). Empty when the query holds nothing to search for.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = words(query)
        .into_iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect();
    terms.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
    terms.truncate(MAX_QUERY_TERMS);
    terms
}

/// How well a reply's stored terms (and its title and text) match a query: the number
/// of query terms it holds, plus as many again when it holds the whole query as written.
/// Zero: no match.
pub fn match_score(
    terms: &str,
    title: &str,
    text: &str,
    query: &str,
    query_terms: &[String],
) -> usize {
    let held = query_terms
        .iter()
        .filter(|t| terms.contains(&format!(" {t} ")))
        .count();
    let query = query.trim().to_lowercase();
    let whole = !query.is_empty()
        && (title.to_lowercase().contains(&query) || text.to_lowercase().contains(&query));
    held + if whole { query_terms.len().max(1) } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_cut_into_words_kept_between_spaces() {
        let terms = search_terms("退款流程需要三天");
        assert!(terms.starts_with(' ') && terms.ends_with(' '));
        for word in ["退款", "流程", "需要"] {
            assert!(terms.contains(&format!(" {word} ")), "{word} in {terms}");
        }
        assert!(!terms.contains('，'));
    }

    #[test]
    fn queries_lose_function_words_and_punctuation() {
        let terms = query_terms("请问怎么退款？");
        assert_eq!(terms, vec!["退款".to_owned()]);
        assert!(query_terms("的了吗？").is_empty());
        // longest first
        assert_eq!(
            query_terms("VIP 会员"),
            vec!["vip".to_owned(), "会员".to_owned()]
        );
    }

    #[test]
    fn a_reply_matches_words_it_holds_though_not_the_query_as_written() {
        let terms = search_terms("退款说明\n退款会在三个工作日内原路返回");
        let q = "怎么退款";
        let qt = query_terms(q);
        assert!(match_score(&terms, "退款说明", "退款会在…", q, &qt) > 0);
        let other = search_terms("发货时间\n下单后48小时内发货");
        assert_eq!(
            match_score(&other, "发货时间", "下单后48小时内发货", q, &qt),
            0
        );
    }

    #[test]
    fn the_whole_query_as_written_scores_above_a_single_word() {
        let q = "三个工作日";
        let qt = query_terms(q);
        let exact = search_terms("退款\n三个工作日内到账");
        let loose = search_terms("工作时间\n工作日九点到六点");
        let a = match_score(&exact, "退款", "三个工作日内到账", q, &qt);
        let b = match_score(&loose, "工作时间", "工作日九点到六点", q, &qt);
        assert!(a > b, "{a} > {b}");
        assert!(b > 0);
    }

    fn field_of(e: DomainError) -> String {
        match e {
            DomainError::Invalid(f) => f.field,
            other => panic!("not a field's error: {other}"),
        }
    }

    #[test]
    fn replies_and_groups_are_checked() {
        let ok = NewQuickReply {
            library: None,
            group_id: None,
            title: " 开场白 ".into(),
            text: "您好，我是您的专属顾问".into(),
            content_id: None,
        }
        .check()
        .unwrap();
        assert_eq!(ok.library, QuickReplyLibrary::Personal);
        assert_eq!(ok.title, "开场白");
        let empty = NewQuickReply {
            library: None,
            group_id: None,
            title: "t".into(),
            text: "  ".into(),
            content_id: None,
        }
        .check()
        .unwrap_err();
        assert_eq!(field_of(empty), "text");
        let long = NewQuickReply {
            library: None,
            group_id: None,
            title: "t".into(),
            text: "字".repeat(TEXT_MAX_CHARS + 1),
            content_id: None,
        }
        .check()
        .unwrap_err();
        assert_eq!(field_of(long), "text");
        assert!(
            NewQuickReplyGroup {
                library: None,
                name: "".into(),
                position: None
            }
            .check()
            .is_err()
        );
    }
}
