//! Engagement's store: message templates, and mass sends (planned in `broadcasts`,
//! sent batch by batch in `broadcast_sends`, with the sandbox channel's side); the
//! content library and quick replies get their parts here beside them.

pub mod broadcast_sends;
pub mod broadcasts;
pub mod templates;

pub use broadcast_sends::{BatchToSend, SandboxAnswer, SandboxCount};
pub use templates::TemplateValues;
