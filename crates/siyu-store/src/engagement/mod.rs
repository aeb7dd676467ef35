//! Engagement's store: the content library (`content`, and how each item did in the
//! sends that carried it, `content_performance`), message templates, quick
//! replies (`quick_replies`), and mass sends (planned in `broadcasts`, whose lists and
//! files of customers are read in `audiences` and whose link cards' short links are
//! made in `send_links`, sent batch by batch in `broadcast_sends`, with the sandbox
//! channel's side, and followed as WeCom member tasks in `broadcast_tasks`).

pub mod audiences;
mod broadcast_columns;
pub mod broadcast_sends;
pub mod broadcast_tasks;
pub mod broadcast_views;
pub mod broadcasts;
pub mod content;
pub mod content_performance;
pub mod quick_replies;
mod send_links;
pub mod templates;

pub use broadcast_sends::{BatchToSend, SandboxAnswer, SandboxCount};
pub use broadcast_tasks::{FollowState, RecipientResult, TaskToFollow};
pub use broadcasts::PlannedBatches;
pub use content::{ContentFilter, StoredMedia};
pub use quick_replies::QuickReplyFilter;
pub use templates::TemplateValues;
