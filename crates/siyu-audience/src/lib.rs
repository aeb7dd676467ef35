//! Audiences: who a brand's customers are, in layers it can act on.
//!
//! - [`condition`] and [`parse`]: the segment language, as JSON and as text.
//! - [`facts`]: what is known of one customer, and the meaning of each test on it;
//!   [`plain`] evaluates a condition on those facts, one customer at a time.
//! - [`index`]: the same facts for a whole tenant in memory — compressed bitmaps over
//!   dense customer numbers for tags, owners, stages and classes, and columns of traits,
//!   per-day event counts and orders — which answers a condition over a million
//!   customers in milliseconds. The database stays the source of truth; the index is
//!   built from it on start and kept current as data changes.
//! - [`rfm`] and [`lifecycle`]: the scoring rules.
//!
//! Like `siyu-domain`, this crate knows no HTTP and no SQL.

pub mod catalog;
pub mod condition;
pub mod facts;
pub mod index;
pub mod lifecycle;
pub mod parse;
pub mod plain;
pub mod random;
pub mod rfm;

pub use condition::Condition;
pub use parse::{ParseError, parse};
