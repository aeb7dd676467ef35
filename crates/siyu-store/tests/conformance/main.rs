//! The store's conformance suite, one module per concern. It runs on SQLite by default
//! and on PostgreSQL when SIYU_TEST_DATABASE_URL names a server (`.ci/run` does both):
//! one suite, every backend. One test binary, so the suite links once.

mod support;

mod access;
mod auth;
mod broadcast_tasks;
mod broadcasts;
mod connectors;
mod content;
mod customers;
mod exports;
mod files;
mod identity;
mod imports;
mod ingest;
mod jobs;
mod migrations;
mod orders;
mod privacy;
mod reach;
mod recording;
mod relation_changes;
mod schedules;
mod secrets;
mod segments;
mod settings;
mod tag_rules;
mod tags;
mod tenancy;
mod wecom_transfers;
