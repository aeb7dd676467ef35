//! Engagement's endpoints: the content library, message templates, quick replies, mass
//! sends and the quiet hours they keep.

pub mod broadcast_tasks;
pub mod broadcasts;
pub mod content;
pub mod quick_replies;
pub mod quiet_hours;
pub mod templates;
