//! Reading and writing the audit log.

use siyu_domain::audit::{Actor, ActorKind, AuditEntry, AuditRecord};
use siyu_domain::ids::AuditEntryId;
use siyu_domain::page::{Page, PageRequest};

use crate::{Result, StoreError, TenantScope, insert_audit, on_db};

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor_kind: String,
    actor_id: Option<i64>,
    actor_label: String,
    ip: Option<String>,
    action: String,
    target_kind: String,
    target_id: Option<String>,
    details: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self> {
        Ok(AuditEntry {
            id: AuditEntryId(r.id),
            at: r.at,
            actor: Actor {
                kind: ActorKind::parse(&r.actor_kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("actor kind {:?}", r.actor_kind)))?,
                id: r.actor_id,
                label: r.actor_label,
                ip: r.ip,
            },
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
        })
    }
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// An action (`auth.login_failed`) or a prefix ending in a dot (`auth.`).
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
}

impl TenantScope<'_> {
    /// Records an action outside any other change (an export, a reveal).
    pub async fn audit(&self, actor: Actor, record: AuditRecord) -> Result<()> {
        on_db!(self.store, |db| {
            insert_audit!(db, self.tenant, &actor, record)?;
        });
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn list_audit(
        &self,
        page: PageRequest,
        filter: &AuditFilter,
    ) -> Result<Page<AuditEntry>> {
        let before = page.after.unwrap_or(i64::MAX);
        let action_prefix = filter.action.as_ref().filter(|a| a.ends_with('.')).cloned();
        let action_exact = filter.action.as_ref().filter(|a| !a.ends_with('.'));
        let rows: Vec<AuditRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, at, actor_kind, actor_id, actor_label, ip, action, target_kind, \
                 target_id, details FROM audit_log \
                 WHERE tenant_id = $1 AND id < $2 \
                 AND ($3 IS NULL OR action = $3) \
                 AND ($4 IS NULL OR substr(action, 1, length($4)) = $4) \
                 AND ($5 IS NULL OR target_kind = $5) \
                 AND ($6 IS NULL OR target_id = $6) \
                 ORDER BY id DESC LIMIT $7",
            )
            .bind(self.tenant.0)
            .bind(before)
            .bind(action_exact)
            .bind(&action_prefix)
            .bind(&filter.target_kind)
            .bind(&filter.target_id)
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
        });
        let entries = rows
            .into_iter()
            .map(AuditEntry::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(entries, page, |e| e.id.0))
    }
}
