//! Engagement's endpoints: the content library, message templates and mass sends;
//! quick replies get theirs here.

pub mod broadcast_tasks;
pub mod broadcasts;
pub mod content;
pub mod templates;
