//! Channel accounts: a brand's accounts on the platforms it acquires from.

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::acquisition::{ChannelAccount, ChannelAccountSpec, DomainClass, Platform};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{ChannelAccountId, StaffId, UnitId};
use siyu_domain::page::{Page, PageRequest};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

const ACCOUNT_COLUMNS: &str =
    "id, platform, name, domain_class, handle, unit_id, owner_staff_id, created_at";

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    platform: String,
    name: String,
    domain_class: String,
    handle: String,
    unit_id: Option<i64>,
    owner_staff_id: Option<i64>,
    created_at: i64,
}

impl TryFrom<AccountRow> for ChannelAccount {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self> {
        Ok(ChannelAccount {
            id: ChannelAccountId(r.id),
            platform: Platform::parse("platform", &r.platform)
                .map_err(|_| StoreError::Corrupt(format!("platform {:?}", r.platform)))?,
            name: r.name,
            domain_class: DomainClass::parse("domain_class", &r.domain_class)
                .map_err(|_| StoreError::Corrupt(format!("domain class {:?}", r.domain_class)))?,
            handle: r.handle,
            unit_id: r.unit_id.map(UnitId),
            owner_staff_id: r.owner_staff_id.map(StaffId),
            created_at: r.created_at,
        })
    }
}

/// An object a body names that does not exist, as a 422 naming the field (the body is
/// wrong, not the path).
pub(super) fn named(error: StoreError, field: &str, message: &str) -> StoreError {
    match error {
        StoreError::NotFound(_) => StoreError::Domain(DomainError::invalid(field, message)),
        e => e,
    }
}

impl TenantScope<'_> {
    /// Whether the account's unit and owner exist, the owner within reach.
    async fn check_account_spec(&self, spec: &ChannelAccountSpec) -> Result<()> {
        if let Some(unit) = spec.unit_id {
            self.get_unit(unit)
                .await
                .map_err(|e| named(e, "unit_id", "no such unit"))?;
        }
        if let Some(owner) = spec.owner_staff_id {
            self.get_staff(owner)
                .await
                .map_err(|e| named(e, "owner_staff_id", "no such staff member"))?;
            self.check_owner_within_reach(Some(owner))?;
        }
        Ok(())
    }

    pub async fn create_channel_account(
        &self,
        spec: &ChannelAccountSpec,
        actor: &Actor,
    ) -> Result<ChannelAccount> {
        self.check_account_spec(spec).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO channel_accounts (tenant_id, platform, name, domain_class, handle, \
                 unit_id, owner_staff_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(spec.platform.as_str())
            .bind(&spec.name)
            .bind(spec.domain_class.as_str())
            .bind(&spec.handle)
            .bind(spec.unit_id.map(|u| u.0))
            .bind(spec.owner_staff_id.map(|s| s.0))
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| {
                StoreError::from_constraint(e, "an account of this name is on that platform", "")
            })?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CHANNEL_ACCOUNT_CREATED, "channel_account", id)
                .with_details(json!({"platform": spec.platform.as_str(), "name": spec.name})),
        )
        .await?;
        tx.commit().await?;
        self.get_channel_account(ChannelAccountId(id)).await
    }

    pub async fn get_channel_account(&self, id: ChannelAccountId) -> Result<ChannelAccount> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<AccountRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("channel account"))?
            .try_into()
    }

    /// The tenant's accounts, by id.
    pub async fn list_channel_accounts(&self, page: PageRequest) -> Result<Page<ChannelAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        );
        let rows: Vec<AccountRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let accounts = rows
            .into_iter()
            .map(ChannelAccount::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(accounts, page, |a| a.id.0))
    }

    /// Changes an account; its owner, before and after, must be within reach.
    pub async fn update_channel_account(
        &self,
        id: ChannelAccountId,
        spec: &ChannelAccountSpec,
        actor: &Actor,
    ) -> Result<ChannelAccount> {
        let before = self.get_channel_account(id).await?;
        self.check_owner_within_reach(before.owner_staff_id)?;
        self.check_account_spec(spec).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE channel_accounts SET platform = $1, name = $2, domain_class = $3, \
                 handle = $4, unit_id = $5, owner_staff_id = $6, updated_at = $7 \
                 WHERE tenant_id = $8 AND id = $9",
            )
            .bind(spec.platform.as_str())
            .bind(&spec.name)
            .bind(spec.domain_class.as_str())
            .bind(&spec.handle)
            .bind(spec.unit_id.map(|u| u.0))
            .bind(spec.owner_staff_id.map(|s| s.0))
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| {
                StoreError::from_constraint(e, "an account of this name is on that platform", "")
            })?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CHANNEL_ACCOUNT_UPDATED, "channel_account", id.0)
                .with_details(json!({"platform": spec.platform.as_str(), "name": spec.name})),
        )
        .await?;
        tx.commit().await?;
        self.get_channel_account(id).await
    }

    /// Deletes an account no code names (deleted codes included: what they brought
    /// stays attributed to the account).
    pub async fn delete_channel_account(&self, id: ChannelAccountId, actor: &Actor) -> Result<()> {
        let before = self.get_channel_account(id).await?;
        self.check_owner_within_reach(before.owner_staff_id)?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM channel_accounts WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(|e| {
                    StoreError::from_constraint(
                        e,
                        "",
                        "channel codes, group codes or links name this account, deleted ones \
                         included (their history keeps it): move the live ones to another \
                         account; an account with history stays",
                    )
                })?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CHANNEL_ACCOUNT_DELETED, "channel_account", id.0)
                .with_details(json!({"name": before.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
