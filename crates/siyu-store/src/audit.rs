//! Reading and writing the audit log.

use siyu_domain::audit::{Actor, ActorKind, AuditEntry, AuditRecord};
use siyu_domain::ids::{AuditEntryId, TenantId};
use siyu_domain::page::{Page, PageRequest};

use crate::db::{now_ms, on_db};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

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
    /// Records an action outside any other change (an export, a reveal), in a
    /// transaction of its own.
    pub async fn audit(&self, actor: Actor, record: AuditRecord) -> Result<()> {
        let mut tx = self.store.begin().await?;
        crate::audit::record(&mut tx, self.tenant, &actor, record).await?;
        tx.commit().await
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

/// The statement that writes one audit entry.
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_log (tenant_id, at, actor_kind, actor_id, \
     actor_label, ip, action, target_kind, target_id, details) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Records an audit entry in the transaction that makes the change it is about, so
/// there is no change without its entry (nor an entry without its change).
pub(crate) async fn record(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    record: AuditRecord,
) -> Result<()> {
    let at = now_ms();
    on_tx!(tx, |c| {
        sqlx::query(INSERT_AUDIT)
            .bind(tenant.0)
            .bind(at)
            .bind(actor.kind.as_str())
            .bind(actor.id)
            .bind(&actor.label)
            .bind(&actor.ip)
            .bind(record.action)
            .bind(record.target_kind)
            .bind(&record.target_id)
            .bind(record.details.to_string())
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Records many audit entries by one actor in a few statements, in the transaction of
/// the change (bulk changes that are audited one entry per thing changed).
pub(crate) async fn insert_audits(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    records: &[AuditRecord],
) -> Result<()> {
    let at = now_ms();
    for chunk in records.chunks(50) {
        let mut p = Placeholders::for_tx(tx);
        let rows: Vec<String> = (0..chunk.len()).map(|_| p.row(10)).collect();
        let sql = format!(
            "INSERT INTO audit_log (tenant_id, at, actor_kind, actor_id, actor_label, ip, \
             action, target_kind, target_id, details) VALUES {}",
            rows.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = query
                    .bind(tenant.0)
                    .bind(at)
                    .bind(actor.kind.as_str())
                    .bind(actor.id)
                    .bind(&actor.label)
                    .bind(&actor.ip)
                    .bind(record.action)
                    .bind(record.target_kind)
                    .bind(&record.target_id)
                    .bind(record.details.to_string());
            }
            query.execute(&mut *c).await?.rows_affected()
        });
    }
    Ok(())
}
