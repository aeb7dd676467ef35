//! Engagement's endpoints: message templates and mass sends; the content library and
//! quick replies get theirs here.

pub mod broadcast_tasks;
pub mod broadcasts;
pub mod templates;
