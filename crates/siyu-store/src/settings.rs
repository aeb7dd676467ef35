//! Tenant settings: JSON values by key, versioned so servers notice a change made
//! through another one. Each change is audited.

use serde_json::{Value, json};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::engagement::quiet_hours::{self, QuietHours};
use siyu_domain::ids::TenantId;

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

impl TenantScope<'_> {
    // --- settings ---

    /// A tenant setting (JSON), if set.
    pub async fn setting(&self, key: &str) -> Result<Option<Value>> {
        let value: Option<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2",
            )
            .bind(self.tenant.0)
            .bind(key)
            .fetch_optional(db)
            .await?
        });
        value
            .map(|v| {
                serde_json::from_str(&v)
                    .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))
            })
            .transpose()
    }

    /// When the tenant's settings last changed (0 if never): servers compare it to
    /// notice a change made through another one.
    pub async fn settings_version(&self) -> Result<i64> {
        let at: Option<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT MAX(updated_at) FROM tenant_settings WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_one(db)
                .await?
        });
        Ok(at.unwrap_or(0))
    }

    /// The tenant's quiet hours (off when never set).
    pub async fn quiet_hours(&self) -> Result<QuietHours> {
        match self.setting(quiet_hours::SETTING_KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| StoreError::Corrupt(format!("quiet hours: {e}"))),
            None => Ok(QuietHours::default()),
        }
    }

    /// Sets the tenant's quiet hours (checked by the caller). Audited.
    pub async fn set_quiet_hours(&self, hours: &QuietHours, actor: &Actor) -> Result<()> {
        let value = serde_json::to_value(hours)
            .map_err(|e| StoreError::Corrupt(format!("quiet hours: {e}")))?;
        self.put_setting(quiet_hours::SETTING_KEY, &value, actor)
            .await
    }

    /// Sets a tenant setting. Audited.
    pub async fn put_setting(&self, key: &str, value: &Value, actor: &Actor) -> Result<()> {
        // in turn with the tenant's other changes, so that its version moves on once
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        put_setting_tx(&mut tx, self.tenant, key, value, actor).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The time a settings change is recorded with: now, or just after the tenant's newest
/// change, whichever is later. The tenant's settings version (the newest time) so moves
/// on with every change, however close together two changes come (one millisecond) and
/// however far apart the clocks of the servers that make them. Writers call it in a
/// transaction that has the tenant's turn (`Store::begin_changing_customers`), so two
/// changes never take the same time.
pub(crate) async fn next_version(tx: &mut Tx, tenant: TenantId) -> Result<i64> {
    let newest: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT MAX(updated_at) FROM tenant_settings WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_one(&mut *c)
            .await?
    });
    Ok(now_ms().max(newest.unwrap_or(0) + 1))
}

/// Writes a tenant setting and its audit record in the caller's transaction (for a
/// setting whose change must be checked against what the transaction reads).
pub(crate) async fn put_setting_tx(
    tx: &mut Tx,
    tenant: TenantId,
    key: &str,
    value: &Value,
    actor: &Actor,
) -> Result<()> {
    let version = next_version(tx, tenant).await?;
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(key)
        .bind(value.to_string())
        .bind(version)
        .execute(&mut *c)
        .await?;
    });
    audit::record(
        tx,
        tenant,
        actor,
        AuditRecord::new(action::SETTINGS_CHANGED, "setting", 0)
            .with_details(json!({"key": key, "value": value})),
    )
    .await
}
