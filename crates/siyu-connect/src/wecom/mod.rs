//! WeCom (企业微信): see `../shared/WECOM.md` for the paths, shapes, limits and error
//! codes this module follows, each with the WeCom document it comes from.

pub mod crypto;
