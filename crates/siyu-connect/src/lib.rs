//! Channel connectors: how siyu reaches customers and staff where they are. WeCom
//! (企业微信) first: its callback crypto ([`wecom::crypto`]) here, its API client, sync and
//! sends next (issue 19). E-mail, SMS and webhooks come later behind the same trait.
//!
//! Plain Rust with no HTTP framework and no SQL: a connector is given what it needs
//! (configuration, secrets, an HTTP client) and answers typed results; the runtime runs
//! its calls as jobs and the store keeps its records.

pub mod wecom;
