//! A WeCom corp's departments and members onto siyu's units and staff.
//!
//! Departments are kept as WeCom has them, each with the unit an admin mapped it to
//! (`map_wecom_department`); a member joins the unit of their main department's nearest
//! mapped department (itself or an ancestor), else the tenant's root unit. Members are
//! matched to staff by userid (`wecom_members`): a new member becomes a staff member
//! without an email or a password, with the role and data scope the connector names,
//! in the same transaction as their `wecom_members` row, so a sync cut off between the
//! two cannot make the same member twice.

use std::collections::HashMap;

use serde_json::json;
use siyu_domain::access::DataScope;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::connector::{WecomDepartment, WecomMember};
use siyu_domain::ids::{ConnectorId, StaffId, UnitId};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

/// A department as WeCom lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomDepartmentRecord {
    pub department_id: i64,
    pub name: String,
    /// 0 for the root.
    pub parent_id: i64,
}

/// The unit each department's members join (see [`DepartmentUnits::unit_for`]).
#[derive(Debug, Clone)]
pub struct DepartmentUnits {
    departments: HashMap<i64, WecomDepartment>,
    root: UnitId,
}

impl DepartmentUnits {
    /// The unit a member of `department` joins: the nearest mapped department's (the
    /// department itself or an ancestor), else the root unit.
    pub fn unit_for(&self, department: Option<i64>) -> UnitId {
        let mut at = department;
        // a cycle cannot come from WeCom, but a bound costs nothing
        for _ in 0..64 {
            let Some(d) = at.and_then(|a| self.departments.get(&a)) else {
                break;
            };
            if let Some(unit) = d.unit_id {
                return unit;
            }
            at = Some(d.parent_id);
        }
        self.root
    }
}

/// A member as WeCom gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomMemberRecord {
    pub userid: String,
    pub name: String,
    pub main_department: Option<i64>,
    /// 1 active, 2 disabled, 4 not activated, 5 left.
    pub status: i64,
}

impl WecomMemberRecord {
    /// Whether the member may work in siyu (active or not yet activated in WeCom).
    pub fn is_active(&self) -> bool {
        matches!(self.status, 1 | 4)
    }
}

/// A member as siyu keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WecomMemberRow {
    pub userid: String,
    pub staff_id: i64,
    pub name: String,
    pub main_department: Option<i64>,
    pub status: i64,
    pub left_at: Option<i64>,
    pub welcome: Option<String>,
}

impl From<WecomMemberRow> for WecomMember {
    fn from(row: WecomMemberRow) -> Self {
        WecomMember {
            userid: row.userid,
            staff_id: StaffId(row.staff_id),
            name: row.name,
            main_department: row.main_department,
            status: row.status,
            left_at: row.left_at,
            welcome: row.welcome,
        }
    }
}

/// What syncing one member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSynced {
    Created(StaffId),
    Updated(StaffId),
    Unchanged(StaffId),
}

impl TenantScope<'_> {
    /// Keeps WeCom's departments: new ones added, names and parents updated, ones WeCom
    /// no longer lists removed (their mapping with them); mappings stay.
    pub async fn save_wecom_departments(
        &self,
        id: ConnectorId,
        departments: &[WecomDepartmentRecord],
    ) -> Result<()> {
        self.check_connector(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            for d in departments {
                sqlx::query(
                    "INSERT INTO wecom_departments (connector_id, tenant_id, department_id, name, parent_id) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector_id, department_id) \
                     DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id",
                )
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(d.department_id)
                .bind(&d.name)
                .bind(d.parent_id)
                .execute(&mut *c)
                .await?;
            }
            let known: Vec<i64> = sqlx::query_scalar(
                "SELECT department_id FROM wecom_departments WHERE connector_id = $1",
            )
            .bind(id.0)
            .fetch_all(&mut *c)
            .await?;
            for gone in known
                .into_iter()
                .filter(|k| !departments.iter().any(|d| d.department_id == *k))
            {
                sqlx::query(
                    "DELETE FROM wecom_departments WHERE connector_id = $1 AND department_id = $2",
                )
                .bind(id.0)
                .bind(gone)
                .execute(&mut *c)
                .await?;
            }
        });
        tx.commit().await?;
        Ok(())
    }

    /// The corp's departments as last synced, with their units.
    pub async fn wecom_departments(&self, id: ConnectorId) -> Result<Vec<WecomDepartment>> {
        self.check_connector(id).await?;
        let rows: Vec<(i64, String, i64, Option<i64>)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT department_id, name, parent_id, unit_id FROM wecom_departments \
                 WHERE connector_id = $1 ORDER BY department_id",
            )
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(department_id, name, parent_id, unit)| WecomDepartment {
                department_id,
                name,
                parent_id,
                unit_id: unit.map(UnitId),
            })
            .collect())
    }

    /// Maps a department to a unit (or unmaps it); members synced after follow it.
    pub async fn map_wecom_department(
        &self,
        id: ConnectorId,
        department: i64,
        unit: Option<UnitId>,
        actor: &Actor,
    ) -> Result<WecomDepartment> {
        self.check_connector(id).await?;
        if let Some(unit) = unit {
            self.get_unit(unit).await?;
        }
        let mut tx = self.store.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE wecom_departments SET unit_id = $1 WHERE connector_id = $2 AND department_id = $3",
            )
            .bind(unit.map(|u| u.0))
            .bind(id.0)
            .bind(department)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound("department"));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONNECTOR_UPDATED, "connector", id.0)
                .with_details(json!({"department_id": department, "unit_id": unit.map(|u| u.0)})),
        )
        .await?;
        tx.commit().await?;
        self.wecom_departments(id)
            .await?
            .into_iter()
            .find(|d| d.department_id == department)
            .ok_or(StoreError::NotFound("department"))
    }

    /// Where each department's members go, read once for a whole staff sync.
    pub async fn wecom_department_units(&self, id: ConnectorId) -> Result<DepartmentUnits> {
        Ok(DepartmentUnits {
            departments: self
                .wecom_departments(id)
                .await?
                .into_iter()
                .map(|d| (d.department_id, d))
                .collect(),
            root: self.root_unit().await?.id,
        })
    }

    /// One member synced so far (or who left).
    pub async fn wecom_member(
        &self,
        id: ConnectorId,
        userid: &str,
    ) -> Result<Option<WecomMemberRow>> {
        self.check_connector(id).await?;
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT userid, staff_id, name, main_department, status, left_at, welcome \
                 FROM wecom_members WHERE connector_id = $1 AND userid = $2",
            )
            .bind(id.0)
            .bind(userid)
            .fetch_optional(db)
            .await?
        }))
    }

    /// The WeCom userid of a staff member in the connector's corp, if they are a member.
    pub async fn wecom_userid_of(&self, id: ConnectorId, staff: StaffId) -> Result<Option<String>> {
        self.check_connector(id).await?;
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT userid FROM wecom_members WHERE connector_id = $1 AND staff_id = $2",
            )
            .bind(id.0)
            .bind(staff.0)
            .fetch_optional(db)
            .await?
        }))
    }

    /// The members synced so far (and those who left).
    pub async fn wecom_members(&self, id: ConnectorId) -> Result<Vec<WecomMemberRow>> {
        self.check_connector(id).await?;
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT userid, staff_id, name, main_department, status, left_at, welcome \
                 FROM wecom_members WHERE connector_id = $1 ORDER BY userid",
            )
            .bind(id.0)
            .fetch_all(db)
            .await?
        }))
    }

    /// Sets the welcome message a customer who adds the member is sent (`None`: the
    /// connector's).
    pub async fn set_wecom_member_welcome(
        &self,
        id: ConnectorId,
        userid: &str,
        welcome: Option<&str>,
        actor: &Actor,
    ) -> Result<WecomMember> {
        self.check_connector(id).await?;
        let mut tx = self.store.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE wecom_members SET welcome = $1 WHERE connector_id = $2 AND userid = $3",
            )
            .bind(welcome)
            .bind(id.0)
            .bind(userid)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound("member"));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONNECTOR_UPDATED, "connector", id.0)
                .with_details(json!({"member": userid, "welcome": welcome.is_some()})),
        )
        .await?;
        tx.commit().await?;
        self.wecom_member(id, userid)
            .await?
            .map(WecomMember::from)
            .ok_or(StoreError::NotFound("member"))
    }

    /// Brings one member into siyu: a new one becomes staff (no email, no password) of
    /// `unit` with `role` and `scope`; a known one gets their name, and their unit when
    /// their main department changed; their status follows WeCom's (a member disabled
    /// in WeCom is disabled here, through [`TenantScope::update_staff`], which ends
    /// their sessions).
    pub async fn sync_wecom_member(
        &self,
        id: ConnectorId,
        member: &WecomMemberRecord,
        unit: UnitId,
        role: &str,
        scope: DataScope,
        actor: &Actor,
    ) -> Result<MemberSynced> {
        let known = self.wecom_member(id, &member.userid).await?;
        let now = now_ms();
        let Some(known) = known else {
            if !member.is_active() {
                // a member who never worked here need not become staff
                return Ok(MemberSynced::Unchanged(StaffId(0)));
            }
            let role = self.role_by_name(role).await?;
            let mut tx = self.store.begin().await?;
            let staff: i64 = on_tx!(&mut tx, |c| {
                let staff: i64 = sqlx::query_scalar(
                    "INSERT INTO staff (tenant_id, unit_id, role_id, email, name, password_hash, \
                     data_scope, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, NULL, $4, NULL, $5, 'active', $6, $6) RETURNING id",
                )
                .bind(self.tenant.0)
                .bind(unit.0)
                .bind(role.id.0)
                .bind(&member.name)
                .bind(scope.as_str())
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
                sqlx::query(
                    "INSERT INTO wecom_members (connector_id, tenant_id, userid, staff_id, name, \
                     main_department, status, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(&member.userid)
                .bind(staff)
                .bind(&member.name)
                .bind(member.main_department)
                .bind(member.status)
                .bind(now)
                .execute(&mut *c)
                .await?;
                staff
            });
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::STAFF_CREATED, "staff", staff).with_details(json!({
                    "wecom_userid": member.userid, "role": role.name, "unit_id": unit.0,
                    "data_scope": scope.as_str()
                })),
            )
            .await?;
            tx.commit().await?;
            return Ok(MemberSynced::Created(StaffId(staff)));
        };
        let staff = StaffId(known.staff_id);
        let current = self.get_staff(staff).await?;
        let mut changes = siyu_domain::tenancy::StaffChanges::default();
        if current.name != member.name {
            changes.name = Some(member.name.clone());
        }
        if known.main_department != member.main_department && current.unit_id != unit {
            changes.unit_id = Some(unit);
        }
        let wanted = if member.is_active() {
            siyu_domain::tenancy::StaffStatus::Active
        } else {
            siyu_domain::tenancy::StaffStatus::Disabled
        };
        // a member came back (or was enabled in WeCom): active again; an admin's own
        // disabling of an active member stays until WeCom's status changes
        if current.status != wanted && (known.status != member.status || known.left_at.is_some()) {
            changes.status = Some(wanted);
        }
        let changed =
            changes.name.is_some() || changes.unit_id.is_some() || changes.status.is_some();
        if changed {
            self.update_staff(staff, &changes, actor).await?;
        }
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE wecom_members SET name = $1, main_department = $2, status = $3, \
                 left_at = NULL, synced_at = $4 WHERE connector_id = $5 AND userid = $6",
            )
            .bind(&member.name)
            .bind(member.main_department)
            .bind(member.status)
            .bind(now)
            .bind(id.0)
            .bind(&member.userid)
            .execute(db)
            .await?;
        });
        Ok(if changed {
            MemberSynced::Updated(staff)
        } else {
            MemberSynced::Unchanged(staff)
        })
    }

    /// A member WeCom no longer lists has left: their staff is disabled (sessions
    /// ended, tokens revoked), then the member marked left. Done again, it changes
    /// nothing. Their customers wait for the resigned-member handling.
    pub async fn wecom_member_left(
        &self,
        id: ConnectorId,
        userid: &str,
        actor: &Actor,
    ) -> Result<Option<StaffId>> {
        let Some(known) = self.wecom_member(id, userid).await? else {
            return Ok(None);
        };
        let staff = StaffId(known.staff_id);
        if known.left_at.is_some() {
            return Ok(Some(staff));
        }
        let current = self.get_staff(staff).await?;
        if current.status != siyu_domain::tenancy::StaffStatus::Disabled {
            let changes = siyu_domain::tenancy::StaffChanges {
                status: Some(siyu_domain::tenancy::StaffStatus::Disabled),
                ..Default::default()
            };
            self.update_staff(staff, &changes, actor).await?;
        }
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE wecom_members SET left_at = $1, status = 5 WHERE connector_id = $2 AND userid = $3",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(userid)
            .execute(db)
            .await?;
        });
        Ok(Some(staff))
    }
}
