//! WeCom's work on a node: the [`host`] every call goes through, and the jobs that sync
//! a corp's staff and customers, process its callbacks and transfer customers between
//! members.

pub mod app_messages;
pub mod callbacks;
pub mod chats;
pub mod contact_ways;
pub mod contacts;
pub mod host;
pub mod intake;
pub mod join_ways;
pub mod marks;
pub mod personal_tags;
pub mod relation_changes;
pub mod sync;
pub mod transfers;

pub use host::{BROADCAST_CLAIM, BROADCAST_POLL, StoreHost, TRANSFER_POLL, WecomCalls};
