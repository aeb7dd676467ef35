//! WeCom (企业微信): see `../shared/WECOM.md` for the paths, shapes, limits and error
//! codes this module follows, each with the WeCom document it comes from.

pub mod api;
pub mod callback;
pub mod client;
pub mod crypto;
pub mod error;
pub mod mass;
pub mod media;

pub use client::{KeptToken, Observed, Upload, WecomApp, WecomClient, WecomHost, http_client};
pub use error::WecomError;
