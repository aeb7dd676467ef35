//! A channel code's QR and landing page, and who is a person rather than a link-preview
//! crawler.
//!
//! WeCom reports adds, never scans: the only scan siyu can count is a visit of the
//! code's own landing page (`/c/{slug}`), which then shows the member's WeCom QR. So a
//! code's QR encodes either WeCom's contact way (what WeCom gave, read from its image)
//! or the landing page's URL: the landing page when the code has no WeCom QR yet, or
//! when the brand asks for it first (`landing_first`) to count scans.
//!
//! Chat apps fetch a shared link to draw its preview card; such a fetch is not a person
//! scanning or clicking, so landing pages and tracked links count them apart. They are
//! known by their user agent: [`CRAWLER_AGENTS`] lists the tokens matched (case
//! insensitive), and WeChat's fetcher is known by `MicroMessenger` without the
//! `NetType/` token every WeChat in-app browser sends.

use rand::Rng;
use serde::Serialize;
use utoipa::ToSchema;

/// What a code's QR encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QrSource {
    /// WeCom's own QR of the code's contact way (its image as WeCom gave it).
    Wecom,
    /// The code's landing page, drawn by siyu.
    Landing,
}

impl QrSource {
    /// What a code's QR encodes: WeCom's when WeCom gave one and the brand did not ask
    /// for the landing page first.
    pub fn of(has_wecom_image: bool, landing_first: bool) -> QrSource {
        if has_wecom_image && !landing_first {
            QrSource::Wecom
        } else {
            QrSource::Landing
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QrSource::Wecom => "wecom",
            QrSource::Landing => "landing",
        }
    }
}

/// The length of a landing page's slug: 16 hex digits, 64 random bits.
pub const LANDING_SLUG_LEN: usize = 16;

/// A new random landing slug.
pub fn new_landing_slug() -> String {
    let bits: u64 = rand::thread_rng().r#gen();
    format!("{bits:016x}")
}

/// Whether a slug could be a landing slug (what `/c/{slug}` looks up at all).
pub fn is_landing_slug(slug: &str) -> bool {
    slug.len() == LANDING_SLUG_LEN && slug.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The path of a code's landing page.
pub fn landing_path(slug: &str) -> String {
    format!("/c/{slug}")
}

/// The user-agent tokens of link-preview fetchers and crawlers, matched anywhere in the
/// user agent without regard to case: chat and social apps' preview cards (Meta's,
/// X's, Slack's, Discord's, LinkedIn's, Telegram's, WhatsApp's, Skype's, DingTalk's,
/// Feishu/Lark's), search engines (Google, Bing, Baidu, Sogou, 360, Shenma, Toutiao,
/// Yandex, DuckDuckGo, Apple) and anything calling itself a bot, spider or crawler.
pub const CRAWLER_AGENTS: &[&str] = &[
    "facebookexternalhit",
    "facebot",
    "meta-externalagent",
    "twitterbot",
    "slackbot",
    "discordbot",
    "linkedinbot",
    "telegrambot",
    "whatsapp",
    "skypeuripreview",
    "dingtalkbot",
    "feishu-bot",
    "larkbot",
    "googlebot",
    "bingbot",
    "baiduspider",
    "sogou",
    "360spider",
    "yisouspider",
    "bytespider",
    "yandex",
    "duckduckbot",
    "applebot",
    "bot/",
    "bot;",
    "spider",
    "crawler",
    "preview",
];

/// Whether a request with this user agent is a preview fetcher or crawler rather than a
/// person (see the module's documentation). A missing user agent is a crawler: every
/// browser and in-app browser sends one.
pub fn is_crawler(user_agent: Option<&str>) -> bool {
    let Some(agent) = user_agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return true;
    };
    let lower = agent.to_ascii_lowercase();
    if lower.contains("micromessenger") && !lower.contains("nettype/") {
        return true;
    }
    CRAWLER_AGENTS.iter().any(|token| lower.contains(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_and_crawlers_are_told_apart() {
        let people = [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) \
             NetType/WIFI Language/zh_CN",
            "Mozilla/5.0 (Linux; Android 13; V2227A) AppleWebKit/537.36 Chrome/116.0 \
             Mobile Safari/537.36 wxwork/4.1.20 MicroMessenger/7.0.1 NetType/4G",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
            "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 aweme_29.1.0 JsSdk/2.0",
        ];
        for agent in people {
            assert!(!is_crawler(Some(agent)), "{agent}");
        }
        let crawlers = [
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            "Mozilla/5.0 (Linux; Android 10) MicroMessenger/8.0.2",
            "TelegramBot (like TwitterBot)",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ];
        for agent in crawlers {
            assert!(is_crawler(Some(agent)), "{agent}");
        }
        assert!(is_crawler(None));
        assert!(is_crawler(Some("  ")));
    }

    #[test]
    fn slugs_are_random_and_recognised() {
        let a = new_landing_slug();
        let b = new_landing_slug();
        assert_ne!(a, b);
        assert!(is_landing_slug(&a), "{a}");
        assert!(!is_landing_slug("0123456789abcdeg"));
        assert!(!is_landing_slug("0123"));
        assert_eq!(landing_path("00ff"), "/c/00ff");
    }

    #[test]
    fn the_qr_is_wecom_s_unless_the_landing_page_comes_first() {
        assert_eq!(QrSource::of(true, false), QrSource::Wecom);
        assert_eq!(QrSource::of(true, true), QrSource::Landing);
        assert_eq!(QrSource::of(false, false), QrSource::Landing);
    }
}
