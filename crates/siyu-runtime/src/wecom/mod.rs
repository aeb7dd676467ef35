//! WeCom's work on a node: the [`host`] every call goes through, and the jobs that sync
//! a corp's staff and customers and process its callbacks.

pub mod app_messages;
pub mod callbacks;
pub mod chats;
pub mod host;
pub mod marks;
pub mod sync;

pub use host::{StoreHost, WecomCalls};
