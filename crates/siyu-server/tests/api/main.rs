//! The HTTP API's integration suite: a real server on a random port over a fresh
//! database per test, SQLite by default and PostgreSQL when SIYU_TEST_DATABASE_URL is
//! set. One test binary with modules keeps the build fast.

mod acquisition;
mod acquisition_qr;
mod acquisition_stores;
mod audiences;
mod auth;
mod broadcasts;
mod broadcasts_attachments;
mod broadcasts_files;
mod broadcasts_wecom;
mod broadcasts_wecom_results;
mod connectors;
mod content;
mod content_performance;
mod crud;
pub(crate) mod customer_data;
mod dashboard;
mod errors;
mod exports;
mod group_codes;
mod groups;
mod hardening;
mod helpers;
mod imports;
mod isolation;
mod jobs;
mod links;
mod message_templates;
mod ops;
mod quick_replies;
mod rbac;
mod scope_walk;
mod send_links;
mod tracking;
mod trait_limits;
mod wecom_callbacks;
mod wecom_flow;
mod wecom_transfers;
