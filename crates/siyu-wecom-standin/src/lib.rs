//! A WeCom (企业微信) server written from the public docs (`shared/WECOM.md`): siyu's
//! integration tests, its benchmark (`siyu bench wecom-sync`) and `siyu demo` talk to it
//! instead of WeCom, which cannot be reached offline, cannot be reset between tests and
//! would not let a test revoke a secret, expire a token or move its clock.
//!
//! It behaves as WeCom's documentation says WeCom does — the same paths, JSON shapes,
//! errcodes, limits and paging — so that what passes here has a fair chance against the
//! real thing:
//!
//! - every answer is HTTP 200 with `errcode`/`errmsg`; the access token is the same
//!   while valid; frequency limits block a path for 60 s or an hour once hit; cursors
//!   are opaque and refused (50100) when forged;
//! - changes made through the API push no callback; changes people make in the app do
//!   ([`Standin::customer_adds`] and the other arrangements in `callbacks`), encrypted
//!   with the same `CallbackCrypto` siyu decrypts with;
//! - time is the stand-in's clock ([`Standin::advance_clock`]): tokens, limits, 20 s
//!   welcome codes and 24 h transfer takeovers all read it, so tests never sleep.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use siyu_wecom_standin::{Corp, Member, Standin};
//! let corp = Corp::new("wwcorp").add_secret("s3cret")
//!     .add_department(1, "总部", 0)
//!     .add_member(Member::new("zhangsan", "张三", 1));
//! let standin = Standin::start(corp)?;
//! let url = format!("{}/cgi-bin/gettoken?corpid=wwcorp&corpsecret=s3cret", standin.base_url());
//! # let _ = url; Ok(()) }
//! ```
//!
//! Modules by concern: [`corp`] the data model, `generate` the benchmark corp, `server`
//! routing with auth, limits and faults, then one module per API family (`staff`,
//! `contacts`, `tags`, `ways`, `transfers`, `groups`, `mass`, `messages`) and `callbacks`.

pub mod corp;

mod auth;
mod callbacks;
mod contacts;
mod generate;
mod groups;
mod mass;
mod media;
mod messages;
mod server;
mod staff;
mod standin;
mod tags;
mod transfers;
mod ways;

pub use callbacks::{AddOutcome, PushedEvent, StandinError, cdata, event_xml};
pub use corp::{
    ChatMember, Corp, Department, ExternalContact, FollowInfo, GroupChat, Member, Tag, TagGroup,
};
pub use generate::{GENERATED_CORP_ID, GENERATED_SECRET, GenerateSpec};
pub use groups::JoinWay;
pub use mass::{MassMessage, MassRecipient, MassTask, ReceiveCap};
pub use media::Media;
pub use messages::AppMessage;
pub use standin::{CallRecord, Standin};
pub use transfers::Transfer;
pub use ways::{ContactWay, WelcomeMessage};

/// Every path the stand-in serves, under `/cgi-bin/`.
pub fn served_paths() -> Vec<&'static str> {
    server::ROUTES.iter().map(|(path, _)| *path).collect()
}
