//! Engagement's endpoints: message templates now; the content library, quick replies
//! and mass sends get theirs here.

pub mod templates;
