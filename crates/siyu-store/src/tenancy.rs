//! Tenants, units and staff.

use std::collections::HashMap;

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::access::{BuiltinRole, DataScope};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{RoleId, StaffId, TenantId, UnitId};
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::tenancy::{
    NewStaff, NewTenant, NewUnit, Staff, StaffChanges, StaffStatus, Tenant, Unit, UnitChanges,
    UnitKind, check_unit_move, check_unit_placement,
};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, Store, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: i64,
    name: String,
    time_zone: String,
    created_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: TenantId(r.id),
            name: r.name,
            time_zone: r.time_zone,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UnitRow {
    id: i64,
    parent_id: Option<i64>,
    kind: String,
    name: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UnitRow> for Unit {
    type Error = StoreError;
    fn try_from(r: UnitRow) -> Result<Self> {
        Ok(Unit {
            id: UnitId(r.id),
            parent_id: r.parent_id.map(UnitId),
            kind: UnitKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unit kind {:?}", r.kind)))?,
            name: r.name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const UNIT_COLUMNS: &str = "id, parent_id, kind, name, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct StaffRow {
    id: i64,
    unit_id: i64,
    role_id: i64,
    role: String,
    email: Option<String>,
    name: String,
    data_scope: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
}

impl TryFrom<StaffRow> for Staff {
    type Error = StoreError;
    fn try_from(r: StaffRow) -> Result<Self> {
        Ok(Staff {
            id: StaffId(r.id),
            unit_id: UnitId(r.unit_id),
            email: r.email,
            name: r.name,
            role_id: RoleId(r.role_id),
            role: r.role,
            data_scope: DataScope::parse(&r.data_scope)
                .ok_or_else(|| StoreError::Corrupt(format!("data scope {:?}", r.data_scope)))?,
            status: StaffStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("staff status {:?}", r.status)))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
        })
    }
}

/// Staff joined with their role's name. `s` is the staff table.
pub(crate) const STAFF_SELECT: &str = "SELECT s.id, s.unit_id, s.role_id, r.name AS role, \
     s.email, s.name, s.data_scope, s.status, s.created_at, s.updated_at, s.last_login_at \
     FROM staff s JOIN roles r ON r.tenant_id = s.tenant_id AND r.id = s.role_id";

impl Store {
    /// Creates a tenant with its root unit (kind group, named after the tenant), the
    /// built-in roles, and its first administrator, in one transaction.
    pub async fn create_tenant(&self, new: &NewTenant, actor: &Actor) -> Result<(Tenant, Staff)> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let (tenant_id, staff_id): (i64, i64) = on_tx!(&mut tx, |c| {
            let tenant_id: i64 = sqlx::query_scalar(
                "INSERT INTO tenants (name, created_at, time_zone) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(&new.name)
            .bind(now)
            .bind(new.time_zone.name())
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a tenant with this name exists", ""))?;
            let root_id: i64 = sqlx::query_scalar(
                "INSERT INTO units (tenant_id, parent_id, kind, name, created_at, updated_at) \
                 VALUES ($1, NULL, 'group', $2, $3, $3) RETURNING id",
            )
            .bind(tenant_id)
            .bind(&new.name)
            .bind(now)
            .fetch_one(&mut *c)
            .await?;
            let mut admin_role_id = 0;
            for role in BuiltinRole::ALL {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO roles (tenant_id, name, description, builtin, permissions, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, '', $5, $5) RETURNING id",
                )
                .bind(tenant_id)
                .bind(role.name())
                .bind(role.description())
                .bind(true)
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
                if role == BuiltinRole::Admin {
                    admin_role_id = id;
                }
            }
            let staff_id: i64 = sqlx::query_scalar(
                "INSERT INTO staff (tenant_id, unit_id, role_id, email, name, password_hash, \
                 data_scope, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'tenant', 'active', $7, $7) RETURNING id",
            )
            .bind(tenant_id)
            .bind(root_id)
            .bind(admin_role_id)
            .bind(&new.admin_email)
            .bind(&new.admin_name)
            .bind(&new.admin_password_hash)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| {
                StoreError::from_constraint(e, "a staff member with this email exists", "")
            })?;
            (tenant_id, staff_id)
        });
        audit::record(
            &mut tx,
            TenantId(tenant_id),
            actor,
            AuditRecord::new(action::TENANT_CREATED, "tenant", tenant_id).with_details(
                json!({"name": new.name, "admin_email": new.admin_email, "admin_staff_id": staff_id})
            )
        )
        .await?;
        tx.commit().await?;
        let scope = self.tenant(TenantId(tenant_id));
        let tenant = scope.get().await?;
        let admin = scope
            .find_staff_by_email(&new.admin_email)
            .await?
            .ok_or(StoreError::NotFound("staff"))?;
        Ok((tenant, admin))
    }

    pub async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> = on_db!(self, |db| {
            sqlx::query_as("SELECT id, name, time_zone, created_at FROM tenants WHERE name = $1")
                .bind(name.trim())
                .fetch_optional(db)
                .await?
        });
        Ok(row.map(Tenant::from))
    }

    /// Every tenant, for operators (`siyu tenant list`) and jobs.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows: Vec<TenantRow> = on_db!(self, |db| {
            sqlx::query_as("SELECT id, name, time_zone, created_at FROM tenants ORDER BY id")
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().map(Tenant::from).collect())
    }
}

impl TenantScope<'_> {
    pub async fn get(&self) -> Result<Tenant> {
        let row: Option<TenantRow> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT id, name, time_zone, created_at FROM tenants WHERE id = $1")
                .bind(self.tenant.0)
                .fetch_optional(db)
                .await?
        });
        row.map(Tenant::from).ok_or(StoreError::NotFound("tenant"))
    }

    /// The time zone the tenant keeps its days in.
    pub async fn time_zone(&self) -> Result<siyu_domain::time::TimeZone> {
        Ok(siyu_domain::time::TimeZone::of_stored(
            &self.get().await?.time_zone,
        ))
    }

    // ----- units -----

    pub async fn list_units(&self, page: PageRequest) -> Result<Page<Unit>> {
        let sql = format!(
            "SELECT {UNIT_COLUMNS} FROM units WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows: Vec<UnitRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let units = rows
            .into_iter()
            .map(Unit::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(units, page, |u| u.id.0))
    }

    pub async fn get_unit(&self, id: UnitId) -> Result<Unit> {
        let sql = format!("SELECT {UNIT_COLUMNS} FROM units WHERE tenant_id = $1 AND id = $2");
        let row: Option<UnitRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("unit"))?.try_into()
    }

    pub async fn root_unit(&self) -> Result<Unit> {
        let sql =
            format!("SELECT {UNIT_COLUMNS} FROM units WHERE tenant_id = $1 AND parent_id IS NULL");
        let row: Option<UnitRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("unit"))?.try_into()
    }

    /// Each unit of the tenant and its parent: the shape of the tree.
    pub async fn unit_parents(&self) -> Result<HashMap<UnitId, Option<UnitId>>> {
        let rows: Vec<(i64, Option<i64>)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT id, parent_id FROM units WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, parent)| (UnitId(id), parent.map(UnitId)))
            .collect())
    }

    pub async fn create_unit(&self, new: &NewUnit, actor: &Actor) -> Result<Unit> {
        let parent = self.get_unit(new.parent_id).await?;
        check_unit_placement(new.kind, parent.kind)?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO units (tenant_id, parent_id, kind, name, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(new.parent_id.0)
            .bind(new.kind.as_str())
            .bind(&new.name)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "unit exists", "parent unit not found"))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::UNIT_CREATED, "unit", id).with_details(json!({
                "name": new.name, "kind": new.kind.as_str(), "parent_id": new.parent_id.0
            })),
        )
        .await?;
        tx.commit().await?;
        self.get_unit(UnitId(id)).await
    }

    pub async fn update_unit(
        &self,
        id: UnitId,
        changes: &UnitChanges,
        actor: &Actor,
    ) -> Result<Unit> {
        let unit = self.get_unit(id).await?;
        // the move is checked against the tree inside the transaction that makes it,
        // and such transactions take turns: two moves at once cannot make a cycle
        let mut tx = self.store.begin_changing_units(self.tenant).await?;
        if let Some(parent_id) = changes.parent_id {
            if unit.parent_id.is_none() {
                return Err(DomainError::invalid("parent_id", "the root unit cannot move").into());
            }
            let parent = self.get_unit(parent_id).await?;
            check_unit_placement(unit.kind, parent.kind)?;
            let rows: Vec<(i64, Option<i64>)> = on_tx!(&mut tx, |c| {
                sqlx::query_as("SELECT id, parent_id FROM units WHERE tenant_id = $1")
                    .bind(self.tenant.0)
                    .fetch_all(&mut *c)
                    .await?
            });
            let parents = rows
                .into_iter()
                .map(|(id, parent)| (UnitId(id), parent.map(UnitId)))
                .collect();
            check_unit_move(id, parent_id, &parents)?;
        }
        let name = changes.name.clone().unwrap_or(unit.name.clone());
        let parent_id = changes.parent_id.or(unit.parent_id);
        let tenant = self.tenant;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE units SET name = $1, parent_id = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(&name)
            .bind(parent_id.map(|p| p.0))
            .bind(now_ms())
            .bind(tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            tenant,
            actor,
            AuditRecord::new(action::UNIT_UPDATED, "unit", id).with_details(json!({
                "name": name, "parent_id": parent_id.map(|p| p.0)
            })),
        )
        .await?;
        tx.commit().await?;
        self.get_unit(id).await
    }

    /// Deletes a unit that has no units or staff below it. The root unit stays.
    pub async fn delete_unit(&self, id: UnitId, actor: &Actor) -> Result<()> {
        let unit = self.get_unit(id).await?;
        if unit.parent_id.is_none() {
            return Err(StoreError::Conflict(
                "the root unit cannot be deleted".into(),
            ));
        }
        let users = self.definitions_using_unit(id.0).await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the unit is used by {}: change them first",
                users.join(", ")
            )));
        }
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM units WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(|e| {
                    StoreError::from_constraint(
                        e,
                        "",
                        "the unit still has units or staff below it; move or remove them first",
                    )
                })?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::UNIT_DELETED, "unit", id)
                .with_details(json!({"name": unit.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ----- staff -----

    /// Lists staff, optionally only those in `units` (a data scope's unit subtree).
    pub async fn list_staff(
        &self,
        page: PageRequest,
        units: Option<&[UnitId]>,
    ) -> Result<Page<Staff>> {
        // The unit ids are integers from our own tree, so they are inlined as literals:
        // one statement for both databases, no injection possible.
        let unit_filter = match units {
            Some([]) => {
                return Ok(Page::from_rows(vec![], page, |s: &Staff| s.id.0));
            }
            Some(units) => format!(
                " AND s.unit_id IN ({})",
                units
                    .iter()
                    .map(|id| id.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => String::new(),
        };
        let sql = format!(
            "{STAFF_SELECT} WHERE s.tenant_id = $1 AND s.id > $2{unit_filter} ORDER BY s.id LIMIT $3"
        );
        let rows: Vec<StaffRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let staff = rows
            .into_iter()
            .map(Staff::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(staff, page, |s| s.id.0))
    }

    pub async fn get_staff(&self, id: StaffId) -> Result<Staff> {
        let sql = format!("{STAFF_SELECT} WHERE s.tenant_id = $1 AND s.id = $2");
        let row: Option<StaffRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("staff"))?.try_into()
    }

    pub async fn find_staff_by_email(&self, email: &str) -> Result<Option<Staff>> {
        let sql = format!("{STAFF_SELECT} WHERE s.tenant_id = $1 AND s.email = $2");
        let row: Option<StaffRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(email.trim().to_lowercase())
                .fetch_optional(db)
                .await?
        });
        row.map(Staff::try_from).transpose()
    }

    pub async fn create_staff(&self, new: &NewStaff, actor: &Actor) -> Result<Staff> {
        self.get_unit(new.unit_id).await?;
        let role = self.role_by_name(&new.role).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO staff (tenant_id, unit_id, role_id, email, name, password_hash, \
                 data_scope, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(new.unit_id.0)
            .bind(role.id.0)
            .bind(&new.email)
            .bind(&new.name)
            .bind(&new.password_hash)
            .bind(new.data_scope.as_str())
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| {
                StoreError::from_constraint(
                    e,
                    "a staff member with this email exists",
                    "unit or role not found",
                )
            })?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::STAFF_CREATED, "staff", id).with_details(json!({
                "email": new.email, "role": role.name, "unit_id": new.unit_id.0,
                "data_scope": new.data_scope.as_str()
            })),
        )
        .await?;
        tx.commit().await?;
        self.get_staff(StaffId(id)).await
    }

    /// Changes a staff member. A new password, a disabled status or a new role ends
    /// their sessions, so the change takes effect at once; a disabled status or a new
    /// role also revokes the API tokens they created. Deleting them revokes those too.
    pub async fn update_staff(
        &self,
        id: StaffId,
        changes: &StaffChanges,
        actor: &Actor,
    ) -> Result<Staff> {
        let before = self.get_staff(id).await?;
        if let Some(unit) = changes.unit_id {
            self.get_unit(unit).await?;
        }
        let role = match &changes.role {
            Some(name) => Some(self.role_by_name(name).await?),
            None => None,
        };
        let role_changed = role.as_ref().is_some_and(|r| r.id != before.role_id);
        let revoke_tokens = changes.status == Some(StaffStatus::Disabled) || role_changed;
        let end_sessions = changes.password_hash.is_some()
            || changes.email.is_some()
            || changes.status == Some(StaffStatus::Disabled)
            || role_changed;
        let mut changed = serde_json::Map::new();
        if let Some(u) = changes.unit_id {
            changed.insert("unit_id".into(), json!(u.0));
        }
        if let Some(n) = &changes.name {
            changed.insert("name".into(), json!(n));
        }
        if let Some(d) = changes.data_scope {
            changed.insert("data_scope".into(), json!(d.as_str()));
        }
        if let Some(s) = changes.status {
            changed.insert("status".into(), json!(s.as_str()));
        }
        if let Some(e) = &changes.email {
            changed.insert("email".into(), json!(e));
        }
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE staff SET unit_id = $1, role_id = $2, name = $3, \
                 password_hash = COALESCE($4, password_hash), data_scope = $5, status = $6, \
                 updated_at = $7, email = COALESCE($10, email) WHERE tenant_id = $8 AND id = $9",
            )
            .bind(changes.unit_id.unwrap_or(before.unit_id).0)
            .bind(role.as_ref().map(|r| r.id).unwrap_or(before.role_id).0)
            .bind(changes.name.as_deref().unwrap_or(&before.name))
            .bind(&changes.password_hash)
            .bind(changes.data_scope.unwrap_or(before.data_scope).as_str())
            .bind(changes.status.unwrap_or(before.status).as_str())
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(&changes.email)
            .execute(&mut *c)
            .await
            .map_err(|e| {
                StoreError::from_constraint(e, "a staff member with this email exists", "")
            })?;
            if end_sessions {
                sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND staff_id = $2")
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
            if revoke_tokens {
                // tokens they made must not outlive the access they had
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE tenant_id = $2 AND created_by_staff_id = $3 AND revoked_at IS NULL",
                )
                .bind(now_ms())
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            }
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::STAFF_UPDATED, "staff", id)
                .with_details(serde_json::Value::Object(changed)),
        )
        .await?;
        if let Some(role) = role.as_ref().filter(|_| role_changed) {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::STAFF_ROLE_CHANGED, "staff", id)
                    .with_details(json!({"from": before.role, "to": role.name})),
            )
            .await?;
        }
        if changes.password_hash.is_some() {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::STAFF_PASSWORD_CHANGED, "staff", id),
            )
            .await?;
        }
        tx.commit().await?;
        self.get_staff(id).await
    }

    pub async fn delete_staff(&self, id: StaffId, actor: &Actor) -> Result<()> {
        let staff = self.get_staff(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE api_tokens SET created_by_staff_id = NULL, \
                 revoked_at = COALESCE(revoked_at, $1) \
                 WHERE tenant_id = $2 AND created_by_staff_id = $3",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
            // their customers lose their owner; the audience indexes follow
            sqlx::query(
                "INSERT INTO customer_changes (tenant_id, customer_id, at) \
                 SELECT tenant_id, id, $3 FROM customers WHERE tenant_id = $1 AND owner_staff_id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "UPDATE customers SET owner_staff_id = NULL \
                 WHERE tenant_id = $1 AND owner_staff_id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
            sqlx::query("DELETE FROM staff WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(|e| {
                    StoreError::from_constraint(e, "", "the staff member is still referenced")
                })?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::STAFF_DELETED, "staff", id)
                .with_details(json!({"email": staff.email})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
