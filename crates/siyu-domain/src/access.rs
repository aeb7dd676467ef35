//! Who may do what: permissions, roles and data scopes.
//!
//! A role is a named set of permissions. Six built-in roles exist in every tenant and
//! take their permissions from this file, so an upgrade that adds a permission updates
//! them everywhere; custom roles store theirs. A staff member has one role and a data
//! scope (which customers they see); an API token has a role and the whole tenant.
//!
//! Nobody can hand out more than they hold: a role or token may only be created or
//! assigned by a principal whose own permissions include all of it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::ids::RoleId;

macro_rules! permissions {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// One thing a principal may do. The string form (`units.write`) is the API name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        pub enum Permission {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }
        }

        impl FromStr for Permission {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($name => Ok(Permission::$variant),)* _ => Err(()) }
            }
        }
    };
}

permissions! {
    UnitsRead => "units.read": "see the unit tree",
    UnitsWrite => "units.write": "create, rename, move and delete units",
    StaffRead => "staff.read": "see staff members",
    StaffWrite => "staff.write": "add, change and remove staff members",
    RolesRead => "roles.read": "see roles and their permissions",
    RolesWrite => "roles.write": "create, change and delete custom roles",
    TokensRead => "tokens.read": "see API tokens (never their secret)",
    TokensWrite => "tokens.write": "create and revoke API tokens",
    AuditRead => "audit.read": "read the audit log",
    SettingsWrite => "settings.write": "change tenant settings and connected accounts",
    SourcesRead => "sources.read": "see data sources",
    SourcesWrite => "sources.write": "create sources and rotate write keys",
    CustomersRead => "customers.read": "see customer profiles (masked personal data)",
    CustomersWrite => "customers.write": "change traits, notes and owners of customers",
    CustomersReveal => "customers.reveal": "reveal masked phone numbers and emails (audited)",
    CustomersImport => "customers.import": "import customers and orders",
    CustomersExport => "customers.export": "export customers (audited)",
    CustomersDelete => "customers.delete": "erase customers on request (audited)",
    CustomersMerge => "customers.merge": "undo a merge of two customer profiles (audited)",
    OrdersRead => "orders.read": "see orders and after-sales",
    OrdersWrite => "orders.write": "record orders and after-sales",
    TagsRead => "tags.read": "see tags and tag rules",
    TagsWrite => "tags.write": "manage tags and tag rules, tag customers",
    SegmentsRead => "segments.read": "see segments and their members",
    SegmentsWrite => "segments.write": "create and change segments",
    ContentRead => "content.read": "see the content library and templates",
    ContentWrite => "content.write": "manage the content library and templates",
    BroadcastsRead => "broadcasts.read": "see mass sends",
    BroadcastsWrite => "broadcasts.write": "create and schedule mass sends",
    BroadcastsConfirm => "broadcasts.confirm": "confirm mass sends assigned to oneself",
    JourneysRead => "journeys.read": "see journeys",
    JourneysWrite => "journeys.write": "create and change journeys",
    CasesRead => "cases.read": "see cases",
    CasesWrite => "cases.write": "work and reply to cases",
    KnowledgeRead => "knowledge.read": "use the knowledge base and quick replies",
    KnowledgeWrite => "knowledge.write": "edit the knowledge base and quick replies",
    CampaignsRead => "campaigns.read": "see channel codes, links and campaigns",
    CampaignsWrite => "campaigns.write": "run channel codes, links, fission campaigns and coupons",
    PointsRead => "points.read": "see points ledgers",
    PointsWrite => "points.write": "adjust points and manage rewards",
    AnalyticsRead => "analytics.read": "read dashboards and reports",
    JobsRead => "jobs.read": "see background jobs (imports, backfills, sends) and their progress",
    JobsManage => "jobs.manage": "cancel waiting background jobs and retry failed ones (audited)",
    ConnectorsRead => "connectors.read": "see channel connectors (WeCom), their health and syncs",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions, kept sorted so that it stores and prints the same way always.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn all() -> Self {
        Self(Permission::ALL.iter().copied().collect())
    }

    pub fn contains(&self, permission: Permission) -> bool {
        self.0.contains(&permission)
    }

    pub fn is_subset(&self, other: &PermissionSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form: names joined by spaces.
    pub fn to_stored(&self) -> String {
        self.iter()
            .map(Permission::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads the stored form, skipping names this version does not know (a newer
    /// version may have written them; they are kept out rather than failing the load).
    pub fn from_stored(stored: &str) -> Self {
        stored
            .split_whitespace()
            .filter_map(|name| name.parse().ok())
            .collect()
    }

    /// Reads permission names from a request, naming the first unknown one.
    pub fn parse_names(field: &str, names: &[String]) -> Result<Self, DomainError> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                name.parse::<Permission>().map_err(|()| {
                    DomainError::invalid(
                        format!("{field}[{i}]"),
                        format!("unknown permission {name:?}"),
                    )
                })
            })
            .collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// The roles every tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    Admin,
    Operations,
    Service,
    Content,
    Growth,
    Analyst,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 6] = [
        BuiltinRole::Admin,
        BuiltinRole::Operations,
        BuiltinRole::Service,
        BuiltinRole::Content,
        BuiltinRole::Growth,
        BuiltinRole::Analyst,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinRole::Admin => "admin",
            BuiltinRole::Operations => "operations",
            BuiltinRole::Service => "service",
            BuiltinRole::Content => "content",
            BuiltinRole::Growth => "growth",
            BuiltinRole::Analyst => "analyst",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            BuiltinRole::Admin => "administrator: tenants, units, staff, roles, tokens, settings",
            BuiltinRole::Operations => {
                "operations lead: segments, campaigns, mass sends, journeys, dashboards"
            }
            BuiltinRole::Service => "customer service: their customers, cases, quick replies",
            BuiltinRole::Content => "content staff: content library and templates",
            BuiltinRole::Growth => "growth staff: channel codes, fission, coupons and points",
            BuiltinRole::Analyst => "analyst: reports, segments and exports",
        }
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        let list: &[Permission] = match self {
            BuiltinRole::Admin => return PermissionSet::all(),
            BuiltinRole::Operations => &[
                UnitsRead,
                StaffRead,
                RolesRead,
                SourcesRead,
                CustomersRead,
                CustomersWrite,
                CustomersImport,
                CustomersExport,
                OrdersRead,
                TagsRead,
                TagsWrite,
                SegmentsRead,
                SegmentsWrite,
                ContentRead,
                BroadcastsRead,
                BroadcastsWrite,
                BroadcastsConfirm,
                JourneysRead,
                JourneysWrite,
                CasesRead,
                KnowledgeRead,
                CampaignsRead,
                CampaignsWrite,
                PointsRead,
                AnalyticsRead,
                JobsRead,
                JobsManage,
                ConnectorsRead,
            ],
            BuiltinRole::Service => &[
                CustomersRead,
                CustomersWrite,
                OrdersRead,
                TagsRead,
                TagsWrite,
                SegmentsRead,
                ContentRead,
                BroadcastsRead,
                BroadcastsConfirm,
                CasesRead,
                CasesWrite,
                KnowledgeRead,
                PointsRead,
            ],
            BuiltinRole::Content => &[
                TagsRead,
                SegmentsRead,
                ContentRead,
                ContentWrite,
                BroadcastsRead,
                KnowledgeRead,
                KnowledgeWrite,
                AnalyticsRead,
            ],
            BuiltinRole::Growth => &[
                SourcesRead,
                CustomersRead,
                TagsRead,
                TagsWrite,
                SegmentsRead,
                ContentRead,
                BroadcastsRead,
                CampaignsRead,
                CampaignsWrite,
                PointsRead,
                PointsWrite,
                AnalyticsRead,
            ],
            BuiltinRole::Analyst => &[
                UnitsRead,
                CustomersRead,
                CustomersExport,
                OrdersRead,
                TagsRead,
                SegmentsRead,
                SegmentsWrite,
                ContentRead,
                BroadcastsRead,
                JourneysRead,
                CampaignsRead,
                PointsRead,
                AnalyticsRead,
            ],
        };
        list.iter().copied().collect()
    }
}

/// A role as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub description: String,
    /// Built-in roles cannot be changed or deleted.
    pub builtin: bool,
    #[schema(value_type = Vec<String>)]
    pub permissions: PermissionSet,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// Checks the name of a custom role: lowercase letters, digits, `-` and `_`, not a
/// built-in name. Names are identifiers used by the CLI (`--role NAME`).
pub fn check_role_name(field: &str, name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(DomainError::invalid(
            field,
            "must be 1 to 64 of a-z, 0-9, '-' and '_'",
        ));
    }
    if BuiltinRole::from_name(name).is_some() {
        return Err(DomainError::invalid(
            field,
            format!("{name:?} is the name of a built-in role"),
        ));
    }
    Ok(name.to_owned())
}

/// Which customers a staff member sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataScope {
    /// Only customers they own.
    Own,
    /// Customers of their unit and the units below it.
    UnitSubtree,
    /// Every customer of the tenant.
    Tenant,
}

impl DataScope {
    pub fn as_str(self) -> &'static str {
        match self {
            DataScope::Own => "own",
            DataScope::UnitSubtree => "unit_subtree",
            DataScope::Tenant => "tenant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "own" => Some(DataScope::Own),
            "unit_subtree" => Some(DataScope::UnitSubtree),
            "tenant" => Some(DataScope::Tenant),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
            assert_eq!(
                serde_json::to_string(p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
    }

    #[test]
    fn stored_form_round_trips_and_skips_unknown() {
        let set: PermissionSet = [Permission::UnitsRead, Permission::AuditRead]
            .into_iter()
            .collect();
        assert_eq!(PermissionSet::from_stored(&set.to_stored()), set);
        assert_eq!(
            PermissionSet::from_stored("units.read future.thing audit.read"),
            set
        );
    }

    #[test]
    fn parse_names_points_at_the_bad_one() {
        let err =
            PermissionSet::parse_names("permissions", &["units.read".into(), "units.fly".into()])
                .unwrap_err();
        assert_eq!(
            err,
            DomainError::invalid("permissions[1]", "unknown permission \"units.fly\"")
        );
    }

    #[test]
    fn every_builtin_role_is_within_admin_and_admin_holds_all() {
        let admin = BuiltinRole::Admin.permissions();
        assert_eq!(admin.len(), Permission::ALL.len());
        for role in BuiltinRole::ALL {
            assert!(role.permissions().is_subset(&admin));
            assert_eq!(BuiltinRole::from_name(role.name()), Some(role));
        }
        // least privilege: only admin manages staff, roles, tokens and the audit log
        for role in &BuiltinRole::ALL[1..] {
            let p = role.permissions();
            for admin_only in [
                Permission::StaffWrite,
                Permission::RolesWrite,
                Permission::TokensWrite,
                Permission::AuditRead,
                Permission::SettingsWrite,
                Permission::CustomersDelete,
            ] {
                assert!(!p.contains(admin_only), "{} has {admin_only}", role.name());
            }
        }
    }

    #[test]
    fn only_admin_and_operations_see_and_manage_jobs() {
        for role in BuiltinRole::ALL {
            let p = role.permissions();
            let expected = matches!(role, BuiltinRole::Admin | BuiltinRole::Operations);
            assert_eq!(
                p.contains(Permission::JobsRead),
                expected,
                "{}",
                role.name()
            );
            assert_eq!(
                p.contains(Permission::JobsManage),
                expected,
                "{}",
                role.name()
            );
        }
        assert_eq!("jobs.manage".parse(), Ok(Permission::JobsManage));
    }

    #[test]
    fn custom_role_names_are_identifiers_and_not_builtin() {
        assert_eq!(
            check_role_name("name", " store-manager ").unwrap(),
            "store-manager"
        );
        assert!(check_role_name("name", "admin").is_err());
        assert!(check_role_name("name", "Store Manager").is_err());
        assert!(check_role_name("name", "").is_err());
    }
}

/// A bearer API token as the API shows it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiToken {
    pub id: crate::ids::ApiTokenId,
    pub name: String,
    pub role_id: RoleId,
    pub role: String,
    /// The first characters of the token, to tell tokens apart.
    pub display_prefix: String,
    pub created_by_staff_id: Option<crate::ids::StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

/// How long a console session lasts at most, and without use.
pub const SESSION_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
pub const SESSION_IDLE_MS: i64 = 24 * 3600 * 1000;

/// Who is making a request, once their session or token is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: crate::ids::TenantId,
    pub kind: PrincipalKind,
    pub role_id: RoleId,
    pub role: String,
    pub permissions: PermissionSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    Staff {
        staff_id: crate::ids::StaffId,
        email: String,
        unit_id: crate::ids::UnitId,
        data_scope: DataScope,
        session_id: crate::ids::SessionId,
    },
    ApiToken {
        token_id: crate::ids::ApiTokenId,
        name: String,
    },
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// The data scope: a token sees the whole tenant.
    pub fn data_scope(&self) -> DataScope {
        match &self.kind {
            PrincipalKind::Staff { data_scope, .. } => *data_scope,
            PrincipalKind::ApiToken { .. } => DataScope::Tenant,
        }
    }

    pub fn staff_id(&self) -> Option<crate::ids::StaffId> {
        match &self.kind {
            PrincipalKind::Staff { staff_id, .. } => Some(*staff_id),
            PrincipalKind::ApiToken { .. } => None,
        }
    }

    /// The actor to record in the audit log for this principal's actions.
    pub fn actor(&self, ip: Option<String>) -> crate::audit::Actor {
        use crate::audit::{Actor, ActorKind};
        match &self.kind {
            PrincipalKind::Staff {
                staff_id, email, ..
            } => Actor {
                kind: ActorKind::Staff,
                id: Some(staff_id.0),
                label: email.clone(),
                ip,
            },
            PrincipalKind::ApiToken { token_id, name } => Actor {
                kind: ActorKind::ApiToken,
                id: Some(token_id.0),
                label: name.clone(),
                ip,
            },
        }
    }
}

/// The customers a principal may see and change: what their data scope comes to once
/// the unit tree and the staff in it are known. The store carries one in every tenant
/// scope and applies it to every read and write of customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every customer of the tenant (tenant-wide staff, API tokens, the system).
    Tenant,
    /// Only customers owned by these staff (their own, or their unit subtree's).
    Owners(Vec<crate::ids::StaffId>),
}

impl Reach {
    /// Whether a customer with this owner is within reach (an unowned customer is only
    /// within a tenant-wide reach).
    pub fn covers(&self, owner: Option<crate::ids::StaffId>) -> bool {
        match self {
            Reach::Tenant => true,
            Reach::Owners(owners) => owner.is_some_and(|o| owners.contains(&o)),
        }
    }

    /// The owners it is limited to; `None` for the whole tenant.
    pub fn owners(&self) -> Option<&[crate::ids::StaffId]> {
        match self {
            Reach::Tenant => None,
            Reach::Owners(owners) => Some(owners),
        }
    }

    pub fn is_tenant_wide(&self) -> bool {
        matches!(self, Reach::Tenant)
    }
}

#[cfg(test)]
mod reach_tests {
    use super::Reach;
    use crate::ids::StaffId;

    #[test]
    fn an_owner_list_covers_only_its_owners_and_never_the_unowned() {
        let reach = Reach::Owners(vec![StaffId(3), StaffId(5)]);
        assert!(reach.covers(Some(StaffId(5))));
        assert!(!reach.covers(Some(StaffId(4))));
        assert!(!reach.covers(None));
        assert!(Reach::Tenant.covers(None));
        assert_eq!(Reach::Owners(vec![]).owners(), Some(&[][..]));
    }
}
