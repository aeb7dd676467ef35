//! The audit log: who did what security-relevant thing, when, from where, to what.
//!
//! Actions are dotted names (`auth.login_failed`, `token.created`); the list here is the
//! vocabulary, so a search by action finds every place that writes it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::AuditEntryId;

/// Every audited action, grouped by concern. The strings are stored in the audit log,
/// filtered on and shown, so they never change; add a constant rather than writing a
/// literal where an action is recorded.
pub mod action {
    // --- signing in ---
    /// A staff member signed in with their password.
    pub const LOGIN_SUCCEEDED: &str = "auth.login_succeeded";
    /// A sign-in to a staff member's account was refused: a wrong password.
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    /// A sign-in to a staff member's account was refused: too many failures.
    pub const LOGIN_THROTTLED: &str = "auth.login_throttled";
    /// A staff member ended their session.
    pub const LOGOUT: &str = "auth.logout";

    // --- tenants, units and staff ---
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const UNIT_CREATED: &str = "unit.created";
    pub const UNIT_UPDATED: &str = "unit.updated";
    pub const UNIT_DELETED: &str = "unit.deleted";
    pub const STAFF_CREATED: &str = "staff.created";
    pub const STAFF_UPDATED: &str = "staff.updated";
    pub const STAFF_ROLE_CHANGED: &str = "staff.role_changed";
    pub const STAFF_PASSWORD_CHANGED: &str = "staff.password_changed";
    pub const STAFF_DELETED: &str = "staff.deleted";

    // --- roles, API tokens and stored secrets ---
    pub const ROLE_CREATED: &str = "role.created";
    pub const ROLE_UPDATED: &str = "role.updated";
    pub const ROLE_DELETED: &str = "role.deleted";
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const SECRET_STORED: &str = "secret.stored";
    pub const SECRET_DELETED: &str = "secret.deleted";

    // --- tenant settings and sources ---
    /// A tenant setting was set (the key is in the details).
    pub const SETTINGS_CHANGED: &str = "settings.changed";
    pub const SOURCE_CREATED: &str = "source.created";
    /// A source was renamed.
    pub const SOURCE_UPDATED: &str = "source.updated";
    /// A source's write key was replaced; the old one stopped working.
    pub const SOURCE_WRITE_KEY_ROTATED: &str = "source.write_key_rotated";

    // --- the tag catalog, tagging and tag rules ---
    pub const TAG_GROUP_CREATED: &str = "tag_group.created";
    pub const TAG_GROUP_UPDATED: &str = "tag_group.updated";
    pub const TAG_GROUP_DELETED: &str = "tag_group.deleted";
    pub const TAG_CREATED: &str = "tag.created";
    pub const TAG_UPDATED: &str = "tag.updated";
    /// A tag was deleted, and taken off every customer who had it.
    pub const TAG_DELETED: &str = "tag.deleted";
    /// Tags were added to or removed from customers (one entry per part of a large
    /// tagging).
    pub const CUSTOMERS_TAGGED: &str = "customers.tagged";
    pub const TAG_RULE_CREATED: &str = "tag_rule.created";
    pub const TAG_RULE_UPDATED: &str = "tag_rule.updated";
    pub const TAG_RULE_DELETED: &str = "tag_rule.deleted";

    // --- segments ---
    pub const SEGMENT_CREATED: &str = "segment.created";
    pub const SEGMENT_UPDATED: &str = "segment.updated";
    pub const SEGMENT_DELETED: &str = "segment.deleted";
    /// A segment's members were exported.
    pub const SEGMENT_EXPORTED: &str = "segment.exported";

    // --- customers ---
    /// A customer's profile was edited by hand.
    pub const CUSTOMER_UPDATED: &str = "customer.updated";
    /// Customers were handed to a staff member, or taken from whoever had them.
    pub const CUSTOMER_ASSIGNED: &str = "customer.assigned";
    /// A customer's masked personal data was shown unmasked.
    pub const CUSTOMER_REVEALED: &str = "customer.revealed";
    /// A merge of two profiles was undone.
    pub const CUSTOMER_MERGE_UNDONE: &str = "customer.merge_undone";
    /// Customers were exported (the console's list, or `siyu export`).
    pub const CUSTOMERS_EXPORTED: &str = "customers.exported";
    /// Customers were imported from a file (`siyu import`).
    pub const IMPORT_COMPLETED: &str = "import.completed";

    // --- personal data (PIPL) ---
    pub const CUSTOMER_CONSENT_CHANGED: &str = "customer.consent_changed";
    /// Everything held about a customer was exported (a data-subject access request).
    pub const CUSTOMER_DATA_EXPORTED: &str = "customer.data_exported";
    /// A customer's personal data was erased on request.
    pub const CUSTOMER_ERASED: &str = "customer.erased";

    // --- background jobs ---
    /// A waiting job was cancelled by hand.
    pub const JOB_CANCELLED: &str = "job.cancelled";
    /// A dead or cancelled job was made to wait again by hand.
    pub const JOB_RETRIED: &str = "job.retried";
    /// A job was enqueued by hand (`siyu jobs enqueue`).
    pub const JOB_ENQUEUED: &str = "job.enqueued";

    // --- engagement ---
    pub const MESSAGE_TEMPLATE_CREATED: &str = "message_template.created";
    pub const MESSAGE_TEMPLATE_UPDATED: &str = "message_template.updated";
    pub const MESSAGE_TEMPLATE_DELETED: &str = "message_template.deleted";
    pub const CONTENT_FILE_UPLOADED: &str = "content.file_uploaded";
    pub const CONTENT_ITEM_CREATED: &str = "content.item_created";
    pub const CONTENT_ITEM_UPDATED: &str = "content.item_updated";
    pub const CONTENT_ITEM_DELETED: &str = "content.item_deleted";
    pub const QUICK_REPLY_CREATED: &str = "quick_reply.created";
    pub const QUICK_REPLY_UPDATED: &str = "quick_reply.updated";
    pub const QUICK_REPLY_DELETED: &str = "quick_reply.deleted";
    pub const BROADCAST_CREATED: &str = "broadcast.created";
    pub const BROADCAST_UPDATED: &str = "broadcast.updated";
    pub const BROADCAST_CANCELLED: &str = "broadcast.cancelled";
    pub const BROADCAST_REMINDED: &str = "broadcast.reminded";
    pub const BROADCAST_BATCH_RESOLVED: &str = "broadcast.batch_resolved";

    // --- acquisition ---
    pub const CHANNEL_ACCOUNT_CREATED: &str = "channel_account.created";
    pub const CHANNEL_ACCOUNT_UPDATED: &str = "channel_account.updated";
    pub const CHANNEL_ACCOUNT_DELETED: &str = "channel_account.deleted";
    pub const CHANNEL_CODE_CREATED: &str = "channel_code.created";
    pub const CHANNEL_CODE_UPDATED: &str = "channel_code.updated";
    pub const CHANNEL_CODE_DELETED: &str = "channel_code.deleted";
    pub const GROUP_CODE_CREATED: &str = "group_code.created";
    pub const GROUP_CODE_UPDATED: &str = "group_code.updated";
    pub const GROUP_CODE_DELETED: &str = "group_code.deleted";
    pub const LINK_DESTINATION_ADDED: &str = "link_destination.added";
    pub const LINK_DESTINATION_REMOVED: &str = "link_destination.removed";
    pub const TRACKED_LINK_CREATED: &str = "tracked_link.created";
    pub const TRACKED_LINK_UPDATED: &str = "tracked_link.updated";
    pub const TRACKED_LINK_DELETED: &str = "tracked_link.deleted";

    // --- connectors ---
    pub const CONNECTOR_CREATED: &str = "connector.created";
    pub const CONNECTOR_UPDATED: &str = "connector.updated";
    pub const CONNECTOR_DELETED: &str = "connector.deleted";
    /// A sync of a connector's staff or customers was asked for.
    pub const CONNECTOR_SYNC_ASKED: &str = "connector.sync_asked";
    /// WeCom was asked (through a job) to transfer customers from one member to another.
    pub const CONNECTOR_TRANSFER_ASKED: &str = "connector.transfer_asked";

    // --- orders ---
    pub const AFTER_SALE_RECORDED: &str = "after_sale.recorded";
    pub const AFTER_SALE_UPDATED: &str = "after_sale.updated";
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

/// The actor of an audited action (kept in the payload of a job it asked for, so the
/// job acts as them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
