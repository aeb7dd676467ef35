//! The domain of siyu: the types and rules of a private-domain customer operations
//! platform, in plain Rust.
//!
//! This crate knows no HTTP and no SQL. It holds what must be true whatever carries a
//! request or stores a row: which permissions a role grants, how a unit tree may be
//! shaped, how passwords and tokens are hashed, how stored secrets are sealed. Keeping it
//! free of I/O keeps it fast to test and easy to reuse from the server, the CLI and jobs.
//!
//! Types here carry `serde` and `utoipa::ToSchema` derives because they are also the wire
//! shape of the API; that is a description of data, not a dependency on HTTP.

pub mod access;
pub mod acquisition;
pub mod audience;
pub mod audit;
pub mod connector;
pub mod consent;
pub mod currency;
pub mod customer;
pub mod engagement;
pub mod error;
pub mod identity;
pub mod ids;
pub mod import;
pub mod jobs;
pub mod order;
pub mod page;
pub mod password;
pub mod patch;
pub mod personal;
pub mod schedule;
pub mod secret;
pub mod tenancy;
pub mod time;
pub mod token;
pub mod tracking;
pub mod traits;
pub mod transfer;
pub mod view;

pub use error::{DomainError, FieldError};
