//! Engagement: what the brand says to its customers: the content library, message
//! templates, quick replies for staff, and mass sends built on them.

pub mod audience_file;
pub mod broadcast;
pub mod content;
pub mod member_tasks;
pub mod performance;
pub mod quick_reply;
pub mod quiet_hours;
pub mod template;
