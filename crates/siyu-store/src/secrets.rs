//! Secrets a tenant stores (connector secrets, webhook signing keys), sealed at rest.
//!
//! The plaintext exists only in memory: it is sealed with the server's secret key before
//! it is written, with the tenant and name bound in, and opened after it is read.

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, AuditRecord, action};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

/// The name of a stored secret, such as `wecom.corp_secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName(String);

impl SecretName {
    pub fn new(name: &str) -> Result<Self, DomainError> {
        let valid = !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(DomainError::invalid(
                "name",
                "must be 1 to 100 of letters, digits, '.', '_' and '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl crate::Store {
    /// Whether anything is sealed with the secret key (a connector's secrets, a stored
    /// secret): a server must not start with a new key over them.
    pub async fn holds_sealed_secrets(&self) -> Result<bool> {
        Ok(on_db!(self, |db| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM connectors) OR EXISTS (SELECT 1 FROM tenant_secrets)",
            )
            .fetch_one(db)
            .await?
        }))
    }
}

impl TenantScope<'_> {
    fn secret_context(&self, name: &SecretName) -> String {
        format!("siyu:tenant:{}:secret:{}", self.tenant.0, name.0)
    }

    /// Stores (or replaces) a secret.
    pub async fn put_secret(&self, name: &SecretName, value: &[u8], actor: &Actor) -> Result<()> {
        let key = self
            .store
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        let sealed = key.seal(value, &self.secret_context(name));
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO tenant_secrets (tenant_id, name, sealed, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET sealed = $3, updated_at = $4",
            )
            .bind(self.tenant.0)
            .bind(name.as_str())
            .bind(&sealed)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SECRET_STORED, "secret", name.as_str())
                .with_details(json!({"bytes": value.len()})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The secret stored under the name, stored first as `make` gives it when there is
    /// none (audited then). Two callers at once get the same secret: the first stored
    /// wins and is read back.
    pub async fn secret_or_put(
        &self,
        name: &SecretName,
        make: impl FnOnce() -> Vec<u8>,
        actor: &Actor,
    ) -> Result<Vec<u8>> {
        if let Some(value) = self.get_secret(name).await? {
            return Ok(value);
        }
        let key = self
            .store
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        let value = make();
        let sealed = key.seal(&value, &self.secret_context(name));
        let mut tx = self.store.begin().await?;
        let stored = on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO tenant_secrets (tenant_id, name, sealed, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING",
            )
            .bind(self.tenant.0)
            .bind(name.as_str())
            .bind(&sealed)
            .bind(now_ms())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if stored > 0 {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::SECRET_STORED, "secret", name.as_str())
                    .with_details(json!({"bytes": value.len()})),
            )
            .await?;
        }
        tx.commit().await?;
        self.get_secret(name)
            .await?
            .ok_or(StoreError::NotFound("secret"))
    }

    /// Reads a secret back, or `None` if none is stored under the name.
    pub async fn get_secret(&self, name: &SecretName) -> Result<Option<Vec<u8>>> {
        let key = self
            .store
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        let sealed: Option<Vec<u8>> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT sealed FROM tenant_secrets WHERE tenant_id = $1 AND name = $2",
            )
            .bind(self.tenant.0)
            .bind(name.as_str())
            .fetch_optional(db)
            .await?
        });
        sealed
            .map(|s| {
                key.open(&s, &self.secret_context(name))
                    .map_err(StoreError::from)
            })
            .transpose()
    }

    /// The names of the stored secrets (never their values).
    pub async fn list_secret_names(&self) -> Result<Vec<String>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar("SELECT name FROM tenant_secrets WHERE tenant_id = $1 ORDER BY name")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        }))
    }

    pub async fn delete_secret(&self, name: &SecretName, actor: &Actor) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let deleted = on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM tenant_secrets WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant.0)
                .bind(name.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound("secret"));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SECRET_DELETED, "secret", name.as_str()),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sealed bytes as stored, for tests that check nothing is stored in the clear.
    #[doc(hidden)]
    pub async fn raw_sealed_secret(&self, name: &SecretName) -> Result<Option<Vec<u8>>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT sealed FROM tenant_secrets WHERE tenant_id = $1 AND name = $2",
            )
            .bind(self.tenant.0)
            .bind(name.as_str())
            .fetch_optional(db)
            .await?
        }))
    }
}
