//! Data scope as a type: a request's [`TenantScope`] is made from its principal and
//! limited to the customers the principal may reach (own customers, those of the
//! unit subtree's staff, or the whole tenant), so that no handler has to remember to
//! restrict a list, a read or a change itself. Store methods over customers narrow
//! their SQL with [`TenantScope::owner_clause`] or check one customer with
//! [`TenantScope::check_reach`].

use siyu_domain::access::{DataScope, Principal, PrincipalKind, Reach};
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{StaffId, TenantId, UnitId};
use siyu_domain::tenancy::{StaffStatus, unit_subtree};

use crate::db::{id_list, on_db};
use crate::{Result, Store, StoreError, TenantScope};

impl Store {
    /// The principal's tenant, limited to the customers their data scope reaches (an
    /// API token reaches the whole tenant).
    pub async fn scope_for(&self, principal: &Principal) -> Result<TenantScope<'_>> {
        let whole = self.tenant(principal.tenant_id);
        let reach = match &principal.kind {
            PrincipalKind::ApiToken { .. } => Reach::Tenant,
            PrincipalKind::Staff {
                staff_id,
                unit_id,
                data_scope,
                ..
            } => match data_scope {
                DataScope::Tenant => Reach::Tenant,
                DataScope::Own => Reach::Owners(vec![*staff_id]),
                DataScope::UnitSubtree => {
                    let units = unit_subtree(*unit_id, &whole.unit_parents().await?);
                    Reach::Owners(whole.staff_ids_in_units(&units).await?)
                }
            },
        };
        Ok(TenantScope { reach, ..whole })
    }

    /// The scope a staff member has now, for work done later on their behalf (a job
    /// they asked for): their current data scope, or a conflict when they are no longer
    /// active (what they asked for is not done with a reach they lost).
    pub async fn scope_of_staff(
        &self,
        tenant: TenantId,
        staff: StaffId,
    ) -> Result<TenantScope<'_>> {
        #[derive(sqlx::FromRow)]
        struct StaffReachRow {
            unit_id: i64,
            data_scope: String,
            status: String,
        }
        let row: Option<StaffReachRow> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT unit_id, data_scope, status FROM staff WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(staff.0)
            .fetch_optional(db)
            .await?
        });
        let row = row.ok_or(StoreError::NotFound("staff"))?;
        if row.status != StaffStatus::Active.as_str() {
            return Err(StoreError::Conflict(format!(
                "staff member {} is no longer active",
                staff.0
            )));
        }
        let data_scope = DataScope::parse(&row.data_scope)
            .ok_or_else(|| StoreError::Corrupt(format!("data scope {:?}", row.data_scope)))?;
        let whole = self.tenant(tenant);
        let reach = match data_scope {
            DataScope::Tenant => Reach::Tenant,
            DataScope::Own => Reach::Owners(vec![staff]),
            DataScope::UnitSubtree => {
                let units = unit_subtree(UnitId(row.unit_id), &whole.unit_parents().await?);
                Reach::Owners(whole.staff_ids_in_units(&units).await?)
            }
        };
        Ok(TenantScope { reach, ..whole })
    }
}

impl TenantScope<'_> {
    /// The same tenant with its whole reach: for a step a narrower principal is allowed
    /// to take on the whole tenant (a count of everyone, say) — a visible widening.
    pub fn whole_tenant(&self) -> Self {
        TenantScope {
            store: self.store,
            tenant: self.tenant,
            reach: Reach::Tenant,
        }
    }

    /// An SQL condition (starting with ` AND`) that keeps only customers within reach,
    /// on the owner column given (`owner_staff_id`, `c.owner_staff_id`); empty for the
    /// whole tenant. Staff ids are numbers, so they are written into the statement.
    pub(crate) fn owner_clause(&self, column: &str) -> String {
        match &self.reach {
            Reach::Tenant => String::new(),
            Reach::Owners(owners) if owners.is_empty() => " AND 1 = 0".to_owned(),
            Reach::Owners(owners) => {
                let ids: Vec<i64> = owners.iter().map(|s| s.0).collect();
                format!(" AND {column} IN ({})", id_list(&ids))
            }
        }
    }

    /// An SQL condition (starting with ` AND`) that keeps only rows whose customer (the
    /// column given, `customer_id`) is within reach; empty for the whole tenant.
    pub(crate) fn within_reach(&self, customer_column: &str) -> String {
        if self.reach.is_tenant_wide() {
            return String::new();
        }
        format!(
            " AND {customer_column} IN (SELECT id FROM customers WHERE tenant_id = {}{})",
            self.tenant.0,
            self.owner_clause("owner_staff_id")
        )
    }

    /// Whether these customers are all within reach; `NotFound("customer")` otherwise
    /// (a customer out of reach is not the caller's to know of).
    pub(crate) async fn check_reach(&self, customers: &[CustomerId]) -> Result<()> {
        let reached = self.reachable(customers).await?;
        if reached.len() == customers.len() {
            Ok(())
        } else {
            Err(StoreError::NotFound("customer"))
        }
    }

    /// The customers of `ids` within reach, in the order given (all of them, unchecked,
    /// for the whole tenant): a bulk change skips the others as it skips unknown ids.
    pub async fn reachable(&self, ids: &[CustomerId]) -> Result<Vec<CustomerId>> {
        if self.reach.is_tenant_wide() {
            return Ok(ids.to_vec());
        }
        let mut within = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let list: Vec<i64> = chunk.iter().map(|c| c.0).collect();
            let sql = format!(
                "SELECT id FROM customers WHERE tenant_id = $1 AND id IN ({}){}",
                id_list(&list),
                self.owner_clause("owner_staff_id")
            );
            let found: Vec<i64> = on_db!(self.store, |db| {
                sqlx::query_scalar(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?
            });
            within.extend(found);
        }
        Ok(ids
            .iter()
            .copied()
            .filter(|c| within.contains(&c.0))
            .collect())
    }

    /// `OutOfReach` unless a staff member could own customers within reach (handing a
    /// customer to someone outside it would put the customer out of the scope).
    pub(crate) fn check_owner_within_reach(&self, staff: Option<StaffId>) -> Result<()> {
        match staff {
            Some(staff) if !self.reach.covers(Some(staff)) => Err(StoreError::OutOfReach(
                "that staff member is outside your data scope".into(),
            )),
            _ => Ok(()),
        }
    }

    /// `OutOfReach` unless the scope reaches the whole tenant (`what` needs it).
    pub fn check_tenant_wide(&self, what: &str) -> Result<()> {
        if self.reach.is_tenant_wide() {
            Ok(())
        } else {
            Err(StoreError::OutOfReach(format!(
                "{what} needs a data scope over all customers"
            )))
        }
    }

    /// Whether a customer with this owner is within reach.
    pub fn reaches(&self, owner: Option<StaffId>) -> bool {
        self.reach.covers(owner)
    }
}
