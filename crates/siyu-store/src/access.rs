//! Roles and API tokens.

use serde_json::json;
use siyu_domain::access::{ApiToken, BuiltinRole, PermissionSet, Role};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{ApiTokenId, RoleId, StaffId};
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::{DomainError, token};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: i64,
    name: String,
    description: String,
    builtin: bool,
    permissions: String,
    created_at: i64,
    updated_at: i64,
}

/// A built-in role takes its permissions from the code, so upgrades reach it.
pub(crate) fn role_permissions(name: &str, builtin: bool, stored: &str) -> PermissionSet {
    match BuiltinRole::from_name(name).filter(|_| builtin) {
        Some(role) => role.permissions(),
        None => PermissionSet::from_stored(stored),
    }
}

impl From<RoleRow> for Role {
    fn from(r: RoleRow) -> Self {
        Role {
            id: RoleId(r.id),
            permissions: role_permissions(&r.name, r.builtin, &r.permissions),
            name: r.name,
            description: r.description,
            builtin: r.builtin,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const ROLE_COLUMNS: &str = "id, name, description, builtin, permissions, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ApiTokenRow {
    id: i64,
    name: String,
    role_id: i64,
    role: String,
    display_prefix: String,
    created_by_staff_id: Option<i64>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<ApiTokenRow> for ApiToken {
    fn from(r: ApiTokenRow) -> Self {
        ApiToken {
            id: ApiTokenId(r.id),
            name: r.name,
            role_id: RoleId(r.role_id),
            role: r.role,
            display_prefix: r.display_prefix,
            created_by_staff_id: r.created_by_staff_id.map(StaffId),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.role_id, r.name AS role, t.display_prefix, \
     t.created_by_staff_id, t.created_at, t.expires_at, t.last_used_at, t.revoked_at \
     FROM api_tokens t JOIN roles r ON r.tenant_id = t.tenant_id AND r.id = t.role_id";

impl TenantScope<'_> {
    // ----- roles -----

    pub async fn list_roles(&self, page: PageRequest) -> Result<Page<Role>> {
        let sql = format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows: Vec<RoleRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        Ok(Page::from_rows(
            rows.into_iter().map(Role::from).collect(),
            page,
            |r| r.id.0,
        ))
    }

    pub async fn get_role(&self, id: RoleId) -> Result<Role> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2");
        let row: Option<RoleRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.map(Role::from).ok_or(StoreError::NotFound("role"))
    }

    /// Finds a role by name; an unknown name is an invalid `role` field.
    pub async fn role_by_name(&self, name: &str) -> Result<Role> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND name = $2");
        let row: Option<RoleRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(name.trim())
                .fetch_optional(db)
                .await?
        });
        row.map(Role::from).ok_or_else(|| {
            DomainError::invalid("role", format!("there is no role named {:?}", name.trim())).into()
        })
    }

    pub async fn create_role(
        &self,
        name: &str,
        description: &str,
        permissions: &PermissionSet,
        actor: &Actor,
    ) -> Result<Role> {
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO roles (tenant_id, name, description, builtin, permissions, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(name)
            .bind(description)
            .bind(false)
            .bind(permissions.to_stored())
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a role with this name exists", ""))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::ROLE_CREATED, "role", id)
                .with_details(json!({"name": name, "permissions": permissions})),
        )
        .await?;
        tx.commit().await?;
        self.get_role(RoleId(id)).await
    }

    pub async fn update_role(
        &self,
        id: RoleId,
        description: Option<&str>,
        permissions: Option<&PermissionSet>,
        actor: &Actor,
    ) -> Result<Role> {
        let role = self.get_role(id).await?;
        if role.builtin {
            return Err(StoreError::Conflict(
                "built-in roles cannot be changed".into(),
            ));
        }
        let description = description.unwrap_or(&role.description);
        let permissions = permissions.unwrap_or(&role.permissions);
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE roles SET description = $1, permissions = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(description)
            .bind(permissions.to_stored())
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::ROLE_UPDATED, "role", id).with_details(json!({
                "name": role.name, "from": role.permissions, "to": permissions
            })),
        )
        .await?;
        tx.commit().await?;
        self.get_role(id).await
    }

    pub async fn delete_role(&self, id: RoleId, actor: &Actor) -> Result<()> {
        let role = self.get_role(id).await?;
        if role.builtin {
            return Err(StoreError::Conflict(
                "built-in roles cannot be deleted".into(),
            ));
        }
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(|e| {
                    StoreError::from_constraint(
                        e,
                        "",
                        "staff or API tokens still have this role; give them another first",
                    )
                })?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::ROLE_DELETED, "role", id)
                .with_details(json!({"name": role.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ----- API tokens -----

    /// Creates an API token with a role; returns it and its secret, which is not stored
    /// and cannot be shown again.
    pub async fn create_api_token(
        &self,
        name: &str,
        role: &Role,
        expires_at: Option<i64>,
        created_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<(ApiToken, String)> {
        let secret = token::generate_api_token();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO api_tokens (tenant_id, role_id, name, token_hash, display_prefix, \
                 created_by_staff_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(role.id.0)
            .bind(name)
            .bind(token::hash(&secret))
            .bind(token::display_prefix(&secret))
            .bind(created_by.map(|s| s.0))
            .bind(now)
            .bind(expires_at)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "token exists", "role not found"))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TOKEN_CREATED, "api_token", id).with_details(json!({
                "name": name, "role": role.name, "expires_at": expires_at
            })),
        )
        .await?;
        tx.commit().await?;
        Ok((self.get_api_token(ApiTokenId(id)).await?, secret))
    }

    pub async fn list_api_tokens(&self, page: PageRequest) -> Result<Page<ApiToken>> {
        let sql =
            format!("{TOKEN_SELECT} WHERE t.tenant_id = $1 AND t.id > $2 ORDER BY t.id LIMIT $3");
        let rows: Vec<ApiTokenRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        Ok(Page::from_rows(
            rows.into_iter().map(ApiToken::from).collect(),
            page,
            |t| t.id.0,
        ))
    }

    pub async fn get_api_token(&self, id: ApiTokenId) -> Result<ApiToken> {
        let sql = format!("{TOKEN_SELECT} WHERE t.tenant_id = $1 AND t.id = $2");
        let row: Option<ApiTokenRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.map(ApiToken::from)
            .ok_or(StoreError::NotFound("api token"))
    }

    /// Revokes a token; it stops working at once. Revoking twice is harmless.
    pub async fn revoke_api_token(&self, id: ApiTokenId, actor: &Actor) -> Result<ApiToken> {
        let token = self.get_api_token(id).await?;
        if token.revoked_at.is_none() {
            let mut tx = self.store.begin().await?;
            on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
                )
                .bind(now_ms())
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            });
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::TOKEN_REVOKED, "api_token", id)
                    .with_details(json!({"name": token.name})),
            )
            .await?;
            tx.commit().await?;
        }
        self.get_api_token(id).await
    }
}
