//! The audit log: who did what security-relevant thing, when, from where, to what.
//!
//! Actions are dotted names (`auth.login_failed`, `token.created`); the list here is the
//! vocabulary, so a search by action finds every place that writes it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::AuditEntryId;

pub mod action {
    pub const LOGIN_SUCCEEDED: &str = "auth.login_succeeded";
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const LOGIN_THROTTLED: &str = "auth.login_throttled";
    pub const LOGOUT: &str = "auth.logout";
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const UNIT_CREATED: &str = "unit.created";
    pub const UNIT_UPDATED: &str = "unit.updated";
    pub const UNIT_DELETED: &str = "unit.deleted";
    pub const STAFF_CREATED: &str = "staff.created";
    pub const STAFF_UPDATED: &str = "staff.updated";
    pub const STAFF_ROLE_CHANGED: &str = "staff.role_changed";
    pub const STAFF_PASSWORD_CHANGED: &str = "staff.password_changed";
    pub const STAFF_DELETED: &str = "staff.deleted";
    pub const ROLE_CREATED: &str = "role.created";
    pub const ROLE_UPDATED: &str = "role.updated";
    pub const ROLE_DELETED: &str = "role.deleted";
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const SECRET_STORED: &str = "secret.stored";
    pub const SECRET_DELETED: &str = "secret.deleted";
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Staff,
    ApiToken,
    /// The command line, run by an operator on the server.
    Cli,
    /// Someone not signed in (a failed login).
    Anonymous,
    /// siyu itself, acting on a rule someone set up (a tag rule).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Staff => "staff",
            ActorKind::ApiToken => "api_token",
            ActorKind::Cli => "cli",
            ActorKind::Anonymous => "anonymous",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "staff" => Some(ActorKind::Staff),
            "api_token" => Some(ActorKind::ApiToken),
            "cli" => Some(ActorKind::Cli),
            "anonymous" => Some(ActorKind::Anonymous),
            "system" => Some(ActorKind::System),
            _ => None,
        }
    }
}

/// The actor of an audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// The staff or token id; null for the CLI and anonymous callers.
    pub id: Option<i64>,
    /// A readable label: the staff email, the token name, `cli`.
    pub label: String,
    pub ip: Option<String>,
}

impl Actor {
    /// siyu acting on a rule; `label` says which (`tag rule 7`).
    pub fn system(label: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            label: label.into(),
            ip: None,
        }
    }

    pub fn cli() -> Self {
        Self {
            kind: ActorKind::Cli,
            id: None,
            label: "cli".into(),
            ip: None,
        }
    }
}

/// An audited action about to be recorded.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub action: &'static str,
    pub target_kind: &'static str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditRecord {
    pub fn new(action: &'static str, target_kind: &'static str, target_id: impl ToString) -> Self {
        Self {
            action,
            target_kind,
            target_id: Some(target_id.to_string()),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored entry of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    /// When it happened.
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub actor: Actor,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}
