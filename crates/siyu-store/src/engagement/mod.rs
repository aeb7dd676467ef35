//! Engagement's store: message templates now; the content library, quick replies and
//! mass sends get their parts here beside them.

pub mod templates;

pub use templates::TemplateValues;
