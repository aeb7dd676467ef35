//! Engagement's endpoints: the content library, message templates, quick replies and
//! mass sends.

pub mod broadcast_tasks;
pub mod broadcasts;
pub mod content;
pub mod quick_replies;
pub mod templates;
