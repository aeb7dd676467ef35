//! Engagement: what the brand says to its customers. Message templates now; the content
//! library, quick replies and mass sends build on them.

pub mod broadcast;
pub mod content;
pub mod member_tasks;
pub mod template;
