//! Tenants, their unit trees and their staff.
//!
//! A tenant is one enterprise (a WeCom corp). Its units form a tree with a single root of
//! kind `group`: a group company with brands and subsidiaries below it and stores at the
//! leaves. Staff belong to one unit. Every row a tenant owns carries its tenant id.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::access::DataScope;
use crate::ids::{RoleId, StaffId, TenantId, UnitId};

pub const NAME_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// The time zone its days start in (an IANA name, `Asia/Shanghai`; see
    /// `siyu_domain::time::TimeZone`).
    pub time_zone: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Tenant names are how operators address a tenant from the CLI (`--tenant NAME`).
pub fn check_tenant_name(name: &str) -> Result<String, DomainError> {
    crate::error::check_name("name", name, 64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Group,
    Brand,
    Subsidiary,
    Store,
}

impl UnitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Group => "group",
            UnitKind::Brand => "brand",
            UnitKind::Subsidiary => "subsidiary",
            UnitKind::Store => "store",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(UnitKind::Group),
            "brand" => Some(UnitKind::Brand),
            "subsidiary" => Some(UnitKind::Subsidiary),
            "store" => Some(UnitKind::Store),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Unit {
    pub id: UnitId,
    /// Null only for the root unit of the tenant.
    pub parent_id: Option<UnitId>,
    pub kind: UnitKind,
    pub name: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// Checks that a unit of `kind` may sit below a parent of `parent_kind`: stores are the
/// leaves of the tree, and only the root may lack a parent.
pub fn check_unit_placement(kind: UnitKind, parent_kind: UnitKind) -> Result<(), DomainError> {
    if parent_kind == UnitKind::Store {
        return Err(DomainError::invalid(
            "parent_id",
            "a store cannot have units below it",
        ));
    }
    if kind == UnitKind::Group && parent_kind != UnitKind::Group {
        return Err(DomainError::invalid(
            "kind",
            "a group can only sit below another group",
        ));
    }
    Ok(())
}

/// Checks that moving `unit` below `new_parent` keeps the tree a tree. `parents` maps
/// every unit of the tenant to its parent.
pub fn check_unit_move(
    unit: UnitId,
    new_parent: UnitId,
    parents: &HashMap<UnitId, Option<UnitId>>,
) -> Result<(), DomainError> {
    let mut cursor = Some(new_parent);
    let mut steps = 0;
    while let Some(current) = cursor {
        if current == unit {
            return Err(DomainError::invalid(
                "parent_id",
                "a unit cannot move below itself or one of its own units",
            ));
        }
        steps += 1;
        if steps > parents.len() {
            break; // a cycle in stored data; refuse to loop forever
        }
        cursor = parents.get(&current).copied().flatten();
    }
    Ok(())
}

/// The ids of `root` and every unit below it.
pub fn unit_subtree(root: UnitId, parents: &HashMap<UnitId, Option<UnitId>>) -> Vec<UnitId> {
    let mut children: HashMap<UnitId, Vec<UnitId>> = HashMap::new();
    for (&id, &parent) in parents {
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(id);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            for kid in kids {
                if !out.contains(kid) {
                    out.push(*kid);
                }
            }
        }
        i += 1;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffStatus {
    /// Can sign in.
    Active,
    /// Cannot sign in; sessions end. Their customers stay theirs until transferred.
    Disabled,
}

impl StaffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffStatus::Active => "active",
            StaffStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(StaffStatus::Active),
            "disabled" => Some(StaffStatus::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Staff {
    pub id: StaffId,
    pub unit_id: UnitId,
    /// None for a member synced from WeCom whom no admin has invited yet: they cannot
    /// sign in until given an email and a password.
    pub email: Option<String>,
    pub name: String,
    pub role_id: RoleId,
    pub role: String,
    pub data_scope: DataScope,
    pub status: StaffStatus,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> HashMap<UnitId, Option<UnitId>> {
        // 1 ─┬─ 2 ── 4
        //    └─ 3
        HashMap::from([
            (UnitId(1), None),
            (UnitId(2), Some(UnitId(1))),
            (UnitId(3), Some(UnitId(1))),
            (UnitId(4), Some(UnitId(2))),
        ])
    }

    #[test]
    fn moves_that_would_make_a_cycle_are_refused() {
        let t = tree();
        assert!(check_unit_move(UnitId(2), UnitId(4), &t).is_err());
        assert!(check_unit_move(UnitId(2), UnitId(2), &t).is_err());
        assert!(check_unit_move(UnitId(4), UnitId(3), &t).is_ok());
    }

    #[test]
    fn subtree_holds_the_unit_and_all_below() {
        let mut sub = unit_subtree(UnitId(1), &tree());
        sub.sort();
        assert_eq!(sub, vec![UnitId(1), UnitId(2), UnitId(3), UnitId(4)]);
        assert_eq!(unit_subtree(UnitId(3), &tree()), vec![UnitId(3)]);
    }

    #[test]
    fn stores_are_leaves() {
        assert!(check_unit_placement(UnitKind::Store, UnitKind::Brand).is_ok());
        assert!(check_unit_placement(UnitKind::Store, UnitKind::Store).is_err());
        assert!(check_unit_placement(UnitKind::Group, UnitKind::Brand).is_err());
    }
}

/// A tenant to create, with its first administrator.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    /// UTC unless set with [`NewTenant::in_time_zone`].
    pub time_zone: crate::time::TimeZone,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_password_hash: String,
}

impl NewTenant {
    pub fn new(name: &str, admin_email: &str, admin_password: &str) -> Result<Self, DomainError> {
        let name = check_tenant_name(name)?;
        let admin_email = crate::error::normalize_email("admin_email", admin_email)?;
        crate::password::check_policy("admin_password", admin_password)?;
        Ok(Self {
            admin_name: admin_email.split('@').next().unwrap_or("admin").to_owned(),
            time_zone: crate::time::TimeZone::UTC,
            name,
            admin_email,
            admin_password_hash: crate::password::hash(admin_password),
        })
    }
}

impl NewTenant {
    /// The tenant keeps its days in this zone (fixed at creation: stored per-day counts
    /// follow it).
    pub fn in_time_zone(mut self, zone: crate::time::TimeZone) -> Self {
        self.time_zone = zone;
        self
    }
}

/// A unit to create below an existing one.
#[derive(Debug, Clone)]
pub struct NewUnit {
    pub parent_id: UnitId,
    pub kind: UnitKind,
    pub name: String,
}

impl NewUnit {
    pub fn new(parent_id: UnitId, kind: UnitKind, name: &str) -> Result<Self, DomainError> {
        Ok(Self {
            parent_id,
            kind,
            name: crate::error::check_name("name", name, NAME_MAX)?,
        })
    }
}

/// Changes to a unit; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UnitChanges {
    pub name: Option<String>,
    pub parent_id: Option<UnitId>,
}

impl UnitChanges {
    pub fn new(name: Option<&str>, parent_id: Option<UnitId>) -> Result<Self, DomainError> {
        Ok(Self {
            name: name
                .map(|n| crate::error::check_name("name", n, NAME_MAX))
                .transpose()?,
            parent_id,
        })
    }
}

/// A staff member to add. `role` is a role name of the tenant.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub unit_id: UnitId,
    pub role: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub data_scope: DataScope,
}

impl NewStaff {
    pub fn new(
        unit_id: UnitId,
        role: &str,
        email: &str,
        name: &str,
        password: Option<&str>,
        data_scope: DataScope,
    ) -> Result<Self, DomainError> {
        let email = crate::error::normalize_email("email", email)?;
        let name = crate::error::check_name("name", name, NAME_MAX)?;
        if let Some(p) = password {
            crate::password::check_policy("password", p)?;
        }
        Ok(Self {
            unit_id,
            role: role.trim().to_owned(),
            email,
            name,
            password_hash: password.map(crate::password::hash),
            data_scope,
        })
    }
}

/// Changes to a staff member; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct StaffChanges {
    pub unit_id: Option<UnitId>,
    pub role: Option<String>,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub data_scope: Option<DataScope>,
    pub status: Option<StaffStatus>,
    /// A new sign-in email (normalised); giving one to a member synced from WeCom, with
    /// a password, is how an admin invites them.
    pub email: Option<String>,
}

impl StaffChanges {
    pub fn set_email(&mut self, email: &str) -> Result<(), DomainError> {
        self.email = Some(crate::error::normalize_email("email", email)?);
        Ok(())
    }

    pub fn set_name(&mut self, name: &str) -> Result<(), DomainError> {
        self.name = Some(crate::error::check_name("name", name, NAME_MAX)?);
        Ok(())
    }

    pub fn set_password(&mut self, password: &str) -> Result<(), DomainError> {
        crate::password::check_policy("password", password)?;
        self.password_hash = Some(crate::password::hash(password));
        Ok(())
    }
}
