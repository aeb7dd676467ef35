//! Connector accounts (a tenant's account on a channel: a WeCom corp's app) and what
//! calls through them leave behind: the shared access token, the calls counted against
//! the channel's limits, paused APIs and health (`calls.rs`), callbacks taken once
//! (`callbacks.rs`), sync checkpoints and sends (`records.rs`); and WeCom's corp
//! mirrored: departments and members onto units and staff (`wecom_staff.rs`), external
//! contacts onto customers (`wecom_customers.rs`), corp tags onto tags (`wecom_tags.rs`);
//! customers transferred between members, followed to their end (`wecom_transfers.rs`,
//! `wecom_transfer_state.rs`).
//!
//! A connector's secrets are sealed with the server's secret key, the tenant and the
//! connector bound in (a sealed value moved to another row does not open), and opened
//! only by [`TenantScope::connector_secrets`], which the runtime calls to work and the
//! callback route to check a callback's signature.

mod callbacks;
mod calls;
mod records;
mod relation_intake;
pub(crate) use relation_intake::trim_all as trim_applied_relation_changes;
mod wecom_chats;
mod wecom_contact_rows;
mod wecom_customers;
mod wecom_events;
mod wecom_marks;
mod wecom_relation_changes;
pub use wecom_chats::{ChatStored, WecomChatMemberRecord, WecomChatRecord};
pub use wecom_events::ContactRead;
mod wecom_staff;
mod wecom_tags;
mod wecom_transfer_state;
mod wecom_transfers;

use serde_json::json;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::connector::{Connector, ConnectorConfig, ConnectorHealth, ConnectorKind};
use siyu_domain::ids::ConnectorId;

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

pub use callbacks::{CallbackConnector, KEEP_CALLBACK_KEYS_MS};
pub use calls::{ApiPause, CallBudget, CallLimits, StoredToken};
pub use records::{NewConnectorSend, SyncAsked};
pub use wecom_customers::{
    CONTACT_ADDED, ContactsStored, RecordDetail, SyncPosition, WECOM_SOURCE, WecomContactRecord,
    WecomContext, WecomFollowRecord,
};
pub(crate) use wecom_marks::queue_wecom_marks_in;
pub use wecom_marks::{WecomMark, WecomRelation};
pub use wecom_relation_changes::{
    ChangesApplied, RelationChange, RelationChanges, TakenCallback, WaitingRelationChange,
    relation_changes_job,
};
pub use wecom_staff::{
    DepartmentUnits, MemberSynced, WecomDepartmentRecord, WecomMemberRecord, WecomMemberRow,
};
pub use wecom_tags::{
    SyncFinished, TagsMirrored, WECOM_TAG_COLOUR, WecomTagGroupRecord, WecomTagRecord,
};
pub use wecom_transfer_state::TransferOutcome;
pub use wecom_transfers::TransfersAsked;

#[derive(sqlx::FromRow)]
struct ConnectorRow {
    id: i64,
    kind: String,
    name: String,
    config: String,
    healthy: bool,
    last_success_at: Option<i64>,
    last_error_at: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const CONNECTOR_COLUMNS: &str = "id, kind, name, config, healthy, last_success_at, \
     last_error_at, last_error, created_at, updated_at";

fn connector_of(row: ConnectorRow) -> Result<Connector> {
    Ok(Connector {
        id: ConnectorId(row.id),
        kind: ConnectorKind::parse("kind", &row.kind)
            .map_err(|e| StoreError::Corrupt(format!("connector {}: {e}", row.id)))?,
        name: row.name,
        config: serde_json::from_str(&row.config)
            .map_err(|e| StoreError::Corrupt(format!("connector {} config: {e}", row.id)))?,
        health: ConnectorHealth {
            healthy: row.healthy,
            last_success_at: row.last_success_at,
            last_error_at: row.last_error_at,
            last_error: row.last_error,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A connector with its secrets opened, for the runtime to work with.
#[derive(Clone)]
pub struct ConnectorSecrets {
    pub connector: Connector,
    /// The secrets as the domain sealed them (JSON bytes).
    pub secrets: Vec<u8>,
}

impl std::fmt::Debug for ConnectorSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSecrets")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

impl TenantScope<'_> {
    fn connector_context(&self, id: ConnectorId) -> String {
        format!("siyu:tenant:{}:connector:{}", self.tenant.0, id.0)
    }

    fn seal_for(&self, id: ConnectorId, secrets: &[u8]) -> Result<Vec<u8>> {
        let key = self
            .store
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        Ok(key.seal(secrets, &self.connector_context(id)))
    }

    /// Stores a new connector, its secrets sealed (refused without a secret key).
    pub async fn create_connector(
        &self,
        config: &ConnectorConfig,
        actor: &Actor,
    ) -> Result<Connector> {
        if self.store.secret_key.is_none() {
            return Err(StoreError::NoSecretKey);
        }
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO connectors (tenant_id, kind, name, config, sealed_secrets, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(config.kind.as_str())
            .bind(&config.name)
            .bind(config.settings.to_string())
            .bind(Vec::<u8>::new())
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a connector with this name exists", ""))?
        });
        let id = ConnectorId(id);
        let sealed = self.seal_for(id, &config.secrets)?;
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE connectors SET sealed_secrets = $1 WHERE id = $2")
                .bind(&sealed)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONNECTOR_CREATED, "connector", id.0.to_string())
                .with_details(json!({"kind": config.kind.as_str(), "name": config.name})),
        )
        .await?;
        let connector = connector_in(&mut tx, self, id).await?;
        tx.commit().await?;
        Ok(connector)
    }

    pub async fn list_connectors(&self) -> Result<Vec<Connector>> {
        let sql =
            format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<ConnectorRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(connector_of).collect()
    }

    pub async fn get_connector(&self, id: ConnectorId) -> Result<Connector> {
        let sql =
            format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE tenant_id = $1 AND id = $2");
        let row: Option<ConnectorRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.map(connector_of)
            .transpose()?
            .ok_or(StoreError::NotFound("connector"))
    }

    /// A connector with its secrets opened: only for the runtime's work and checking
    /// callbacks, never shown.
    pub async fn connector_secrets(&self, id: ConnectorId) -> Result<ConnectorSecrets> {
        let key = self
            .store
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        let connector = self.get_connector(id).await?;
        let sealed: Vec<u8> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT sealed_secrets FROM connectors WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_one(db)
            .await?
        });
        let secrets = key.open(&sealed, &self.connector_context(id))?;
        Ok(ConnectorSecrets { connector, secrets })
    }

    /// Replaces a connector's name, settings and secrets with a checked configuration.
    pub async fn update_connector(
        &self,
        id: ConnectorId,
        config: &ConnectorConfig,
        actor: &Actor,
    ) -> Result<Connector> {
        let sealed = self.seal_for(id, &config.secrets)?;
        let before = self.get_connector(id).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let updated = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE connectors SET name = $1, config = $2, sealed_secrets = $3, \
                 updated_at = $4 WHERE tenant_id = $5 AND id = $6",
            )
            .bind(&config.name)
            .bind(config.settings.to_string())
            .bind(&sealed)
            .bind(now)
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a connector with this name exists", ""))?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound("connector"));
        }
        // new secrets may mean a new app: its token is fetched afresh
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM connector_tokens WHERE connector_id = $1")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONNECTOR_UPDATED, "connector", id.0.to_string())
                .with_details(json!({
                    "name": config.name,
                    "before": before.config,
                    "after": config.settings,
                })),
        )
        .await?;
        let connector = connector_in(&mut tx, self, id).await?;
        tx.commit().await?;
        Ok(connector)
    }

    /// Deletes a connector and what was mirrored through it (members' links, follow
    /// relations, departments); customers and staff stay. Jobs still waiting for it
    /// find it gone and end with that error; sends already made keep their record.
    pub async fn delete_connector(&self, id: ConnectorId, actor: &Actor) -> Result<()> {
        let connector = self.get_connector(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            for table in [
                "connector_tokens",
                "connector_call_windows",
                "connector_api_pauses",
                "connector_callbacks",
                "connector_syncs",
                "wecom_departments",
                "wecom_members",
                "wecom_follows",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE connector_id = $1"))
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
            sqlx::query("UPDATE connector_sends SET connector_id = NULL WHERE connector_id = $1")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM connectors WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONNECTOR_DELETED, "connector", id.0.to_string())
                .with_details(json!({"kind": connector.kind.as_str(), "name": connector.name})),
        )
        .await?;
        tx.commit().await?;
        if let Some((_, log)) = self.store.relation_intake() {
            // its numbers are never given again, so what a crash leaves here is inert
            relation_intake::forget_connector(log, id).await?;
        }
        Ok(())
    }
}

async fn connector_in(tx: &mut Tx, scope: &TenantScope<'_>, id: ConnectorId) -> Result<Connector> {
    let sql =
        format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE tenant_id = $1 AND id = $2");
    let row: ConnectorRow = on_tx!(tx, |c| {
        sqlx::query_as(&sql)
            .bind(scope.tenant.0)
            .bind(id.0)
            .fetch_one(&mut *c)
            .await?
    });
    connector_of(row)
}
