//! Group codes (群活码): each a WeCom join way over an ordered pool of the corp's group
//! chats (`siyu_domain::acquisition::group_codes`). The `wecom.join_way` job keeps the
//! way on the pool's first chats with room; a chat stored after a callback (or a sync)
//! asks it to look again for every code whose pool holds the chat or whose people are
//! in it (a room WeCom opened for the code, adopted into its pool). Joins are the
//! mirrored members of the corp's chats who carry a code's `state`.
//!
//! Reach: a code is within a principal's reach when staff they reach made it.

use std::collections::HashMap;

use serde_json::json;
use siyu_domain::acquisition::group_codes::{
    ChatFill, GroupChatFigures, GroupCode, GroupCodeReport, GroupCodeReportRow, GroupCodeSpec,
    JoinWayState,
};
use siyu_domain::acquisition::report::{ReportRange, date_of_day};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{ChannelAccountId, ConnectorId, GroupCodeId, StaffId, TenantId};
use siyu_domain::page::{Page, PageRequest};

use super::accounts::named;
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// A mirrored chat's members now (those who have not quit), as the column `members` of a
/// query over `wecom_group_chats c`.
const MEMBERS_NOW: &str = "(SELECT COUNT(*) FROM wecom_chat_members m \
     WHERE m.connector_id = c.connector_id AND m.chat_id = c.chat_id AND m.quit_at IS NULL) \
     AS members";

const COLUMNS: &str = "id, name, state, connector_id, account_id, chat_ids, auto_create_room, \
     room_base_name, room_base_id, way_config_id, way_chat_ids, way_qr_code_url, way_error, \
     way_synced_at, created_by_staff_id, created_at, updated_at, deleted_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    state: String,
    connector_id: i64,
    account_id: Option<i64>,
    chat_ids: String,
    auto_create_room: bool,
    room_base_name: String,
    room_base_id: i64,
    way_config_id: Option<String>,
    way_chat_ids: Option<String>,
    way_qr_code_url: Option<String>,
    way_error: Option<String>,
    way_synced_at: Option<i64>,
    created_by_staff_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

fn chat_list(json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("group code chats: {e}")))
}

impl Row {
    fn code(self) -> Result<(GroupCode, Option<i64>)> {
        let way = if self.way_config_id.is_some() || self.way_error.is_some() {
            Some(JoinWayState {
                config_id: self.way_config_id,
                chat_ids: match &self.way_chat_ids {
                    Some(json) => chat_list(json)?,
                    None => Vec::new(),
                },
                qr_code_url: self.way_qr_code_url,
                error: self.way_error,
                synced_at: self.way_synced_at,
            })
        } else {
            None
        };
        Ok((
            GroupCode {
                id: GroupCodeId(self.id),
                chat_ids: chat_list(&self.chat_ids)?,
                name: self.name,
                state: self.state,
                connector_id: ConnectorId(self.connector_id),
                account_id: self.account_id.map(ChannelAccountId),
                auto_create_room: self.auto_create_room,
                room_base_name: self.room_base_name,
                room_base_id: self.room_base_id,
                join_way: way,
                created_by_staff_id: self.created_by_staff_id.map(StaffId),
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            self.deleted_at,
        ))
    }
}

/// What WeCom made of a group code's join way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinWayUpdate {
    Synced {
        config_id: String,
        chat_ids: Vec<String>,
        qr_code_url: Option<String>,
    },
    Failed(String),
}

/// The job that brings a group code's join way in line (one waits per code).
fn join_way_job(tenant: TenantId, id: GroupCodeId) -> NewJob {
    NewJob::new(
        siyu_domain::jobs::kind::WECOM_JOIN_WAY,
        json!({ "code_id": id.0 }),
    )
    .for_tenant(tenant)
    .unique_key(format!("join_way:{}", id.0))
}

/// Asks, in the caller's transaction, the join way job of every live group code of the
/// connector whose pool holds this chat or whose `state` one of its members carries, to
/// look again (the chat filled, emptied, was dismissed, or is a room WeCom opened for
/// the code). Answers whether any job was made.
pub(crate) async fn look_again_at_chat_in(
    tx: &mut Tx,
    tenant: TenantId,
    connector: ConnectorId,
    chat_id: &str,
) -> Result<bool> {
    let codes: Vec<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT g.id FROM group_codes g WHERE g.tenant_id = $1 \
             AND g.connector_id = $2 AND g.deleted_at IS NULL AND (g.chat_ids LIKE $3 \
             OR EXISTS (SELECT 1 FROM wecom_chat_members m WHERE m.connector_id = g.connector_id \
             AND m.chat_id = $4 AND m.state = g.state))",
        )
        .bind(tenant.0)
        .bind(connector.0)
        .bind(format!("%{}%", json!(chat_id)))
        .bind(chat_id)
        .fetch_all(&mut *c)
        .await?
    });
    let jobs: Vec<NewJob> = codes
        .into_iter()
        .map(|id| join_way_job(tenant, GroupCodeId(id)))
        .collect();
    if jobs.is_empty() {
        return Ok(false);
    }
    let made = enqueue_in(tx, &jobs).await?;
    Ok(made.iter().any(Option::is_some))
}

impl TenantScope<'_> {
    /// Whether the code's connector, chats and account exist.
    async fn check_group_code_spec(&self, spec: &GroupCodeSpec) -> Result<()> {
        let chats = self
            .wecom_group_chats(spec.connector_id)
            .await
            .map_err(|e| named(e, "connector_id", "no such connector"))?;
        if let Some(unknown) = spec.chat_ids.iter().find(|id| {
            !chats
                .iter()
                .any(|c| &c.chat_id == *id && c.dismissed_at.is_none())
        }) {
            return Err(StoreError::Domain(siyu_domain::DomainError::invalid(
                "chat_ids",
                format!("{unknown} is not a live group chat of the connector (sync it first)"),
            )));
        }
        if let Some(account) = spec.account_id {
            self.get_channel_account(account)
                .await
                .map_err(|e| named(e, "account_id", "no such channel account"))?;
        }
        Ok(())
    }

    /// Makes a group code and asks for its join way. Audited.
    pub async fn create_group_code(
        &self,
        spec: &GroupCodeSpec,
        made_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<GroupCode> {
        self.check_group_code_spec(spec).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO group_codes (tenant_id, connector_id, name, state, account_id, \
                 chat_ids, auto_create_room, room_base_name, room_base_id, created_by_staff_id, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                 RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(spec.connector_id.0)
            .bind(&spec.name)
            .bind(&spec.state)
            .bind(spec.account_id.map(|a| a.0))
            .bind(json!(spec.chat_ids).to_string())
            .bind(spec.auto_create_room)
            .bind(&spec.room_base_name)
            .bind(spec.room_base_id)
            .bind(made_by.map(|s| s.0))
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a live group code has this state", ""))?
        });
        enqueue_in(&mut tx, &[join_way_job(self.tenant, GroupCodeId(id))]).await?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::GROUP_CODE_CREATED, "group_code", id)
                .with_details(json!({"name": spec.name, "state": spec.state})),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        self.get_group_code(GroupCodeId(id)).await
    }

    /// A live group code within reach.
    pub async fn get_group_code(&self, id: GroupCodeId) -> Result<GroupCode> {
        let sql = format!(
            "SELECT {COLUMNS} FROM group_codes WHERE tenant_id = $1 AND id = $2 \
             AND deleted_at IS NULL{}",
            self.owner_clause("created_by_staff_id")
        );
        let row: Option<Row> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        Ok(row.ok_or(StoreError::NotFound("group code"))?.code()?.0)
    }

    /// The live group codes within reach, by id.
    pub async fn list_group_codes(&self, page: PageRequest) -> Result<Page<GroupCode>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM group_codes WHERE tenant_id = $1 AND id > $2 \
             AND deleted_at IS NULL{} ORDER BY id LIMIT $3",
            self.owner_clause("created_by_staff_id")
        );
        let rows: Vec<Row> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let codes = rows
            .into_iter()
            .map(|r| r.code().map(|(c, _)| c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(codes, page, |c: &GroupCode| c.id.0))
    }

    /// Changes a live group code within reach and asks its join way to follow. Audited.
    pub async fn update_group_code(
        &self,
        id: GroupCodeId,
        spec: &GroupCodeSpec,
        actor: &Actor,
    ) -> Result<GroupCode> {
        self.get_group_code(id).await?;
        self.check_group_code_spec(spec).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE group_codes SET name = $1, account_id = $2, chat_ids = $3, \
                 auto_create_room = $4, room_base_name = $5, room_base_id = $6, updated_at = $7 \
                 WHERE tenant_id = $8 AND id = $9",
            )
            .bind(&spec.name)
            .bind(spec.account_id.map(|a| a.0))
            .bind(json!(spec.chat_ids).to_string())
            .bind(spec.auto_create_room)
            .bind(&spec.room_base_name)
            .bind(spec.room_base_id)
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        enqueue_in(&mut tx, &[join_way_job(self.tenant, id)]).await?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::GROUP_CODE_UPDATED, "group_code", id.0)
                .with_details(json!({"name": spec.name, "chat_ids": spec.chat_ids})),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        self.get_group_code(id).await
    }

    /// Deletes a live group code within reach: its join way is deleted on WeCom; who
    /// joined by it stays attributed. Audited.
    pub async fn delete_group_code(&self, id: GroupCodeId, actor: &Actor) -> Result<()> {
        let before = self.get_group_code(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE group_codes SET deleted_at = $1, updated_at = $1 \
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        enqueue_in(&mut tx, &[join_way_job(self.tenant, id)]).await?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::GROUP_CODE_DELETED, "group_code", id.0)
                .with_details(json!({"name": before.name})),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        Ok(())
    }

    /// A group code, deleted or not, whoever's it is, and when it was deleted: what the
    /// join way job brings WeCom in line with.
    pub async fn group_code_for_wecom(&self, id: GroupCodeId) -> Result<(GroupCode, Option<i64>)> {
        let sql = format!("SELECT {COLUMNS} FROM group_codes WHERE tenant_id = $1 AND id = $2");
        let row: Option<Row> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("group code"))?.code()
    }

    /// Adds to a code's pool the live chats of its connector, not in it yet, whose
    /// members carry its state (rooms WeCom opened for it), oldest first; answers the
    /// pool as it is now.
    pub async fn adopt_group_code_rooms(&self, code: &GroupCode) -> Result<Vec<String>> {
        let found: Vec<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT c.chat_id FROM wecom_group_chats c WHERE c.connector_id = $1 \
                 AND c.dismissed_at IS NULL AND EXISTS (SELECT 1 FROM wecom_chat_members m \
                 WHERE m.connector_id = c.connector_id AND m.chat_id = c.chat_id AND m.state = $2) \
                 ORDER BY c.created_at, c.chat_id",
            )
            .bind(code.connector_id.0)
            .bind(&code.state)
            .fetch_all(db)
            .await?
        });
        let mut pool = code.chat_ids.clone();
        let before = pool.len();
        for chat in found {
            if !pool.contains(&chat) {
                pool.push(chat);
            }
        }
        if pool.len() > before {
            on_db!(self.store, |db| {
                sqlx::query(
                    "UPDATE group_codes SET chat_ids = $1 WHERE tenant_id = $2 AND id = $3",
                )
                .bind(json!(pool).to_string())
                .bind(self.tenant.0)
                .bind(code.id.0)
                .execute(db)
                .await?;
            });
        }
        Ok(pool)
    }

    /// How full each chat of a pool is, in the pool's order.
    pub async fn chat_fills(
        &self,
        connector: ConnectorId,
        pool: &[String],
    ) -> Result<Vec<ChatFill>> {
        #[derive(sqlx::FromRow)]
        struct Fill {
            chat_id: String,
            dismissed: bool,
            members: i64,
        }
        let rows: Vec<Fill> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT c.chat_id, c.dismissed_at IS NOT NULL AS dismissed, {MEMBERS_NOW} \
                 FROM wecom_group_chats c WHERE c.connector_id = $1 AND c.tenant_id = $2",
            ))
            .bind(connector.0)
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let by_id: HashMap<&str, &Fill> = rows.iter().map(|r| (r.chat_id.as_str(), r)).collect();
        Ok(pool
            .iter()
            .map(|id| match by_id.get(id.as_str()) {
                Some(f) => ChatFill {
                    chat_id: id.clone(),
                    members: f.members,
                    gone: f.dismissed,
                },
                None => ChatFill {
                    chat_id: id.clone(),
                    members: 0,
                    gone: true,
                },
            })
            .collect())
    }

    /// Keeps what WeCom made of a code's join way.
    pub async fn record_join_way(&self, id: GroupCodeId, update: &JoinWayUpdate) -> Result<()> {
        on_db!(self.store, |db| {
            match update {
                JoinWayUpdate::Synced {
                    config_id,
                    chat_ids,
                    qr_code_url,
                } => {
                    sqlx::query(
                        "UPDATE group_codes SET way_config_id = $1, way_chat_ids = $2, \
                         way_qr_code_url = COALESCE($3, way_qr_code_url), way_error = NULL, \
                         way_synced_at = $4 WHERE tenant_id = $5 AND id = $6",
                    )
                    .bind(config_id)
                    .bind(json!(chat_ids).to_string())
                    .bind(qr_code_url)
                    .bind(now_ms())
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(db)
                    .await?;
                }
                JoinWayUpdate::Failed(error) => {
                    sqlx::query(
                        "UPDATE group_codes SET way_error = $1 WHERE tenant_id = $2 AND id = $3",
                    )
                    .bind(error)
                    .bind(self.tenant.0)
                    .bind(id.0)
                    .execute(db)
                    .await?;
                }
            }
        });
        Ok(())
    }

    /// What the group codes within reach (deleted ones that brought anyone too) brought
    /// from the first to the last local day of the range: joins by their state, and of
    /// those who left, per code and per chat.
    pub async fn group_code_report(&self, range: ReportRange) -> Result<GroupCodeReport> {
        #[derive(sqlx::FromRow)]
        struct JoinRow {
            code_id: i64,
            chat_id: String,
            joins: i64,
            left_: i64,
        }
        #[derive(sqlx::FromRow)]
        struct ChatRow {
            chat_id: String,
            name: String,
            members: i64,
            dismissed: bool,
        }
        let zone = self.time_zone().await?;
        let (from, to) = (
            zone.start_of_day(range.first_day),
            zone.start_of_day(range.last_day + 1),
        );
        let reach = self.owner_clause("g.created_by_staff_id");
        let joins_sql = format!(
            "SELECT g.id AS code_id, m.chat_id, COUNT(*) AS joins, \
             COUNT(m.quit_at) AS left_ FROM group_codes g JOIN wecom_chat_members m \
             ON m.connector_id = g.connector_id AND m.state = g.state AND m.member_type = 2 \
             WHERE g.tenant_id = $1 AND m.join_time >= $2 AND m.join_time < $3{reach} \
             GROUP BY g.id, m.chat_id"
        );
        let codes_sql = format!(
            "SELECT {COLUMNS} FROM group_codes g WHERE g.tenant_id = $1{reach} ORDER BY g.id"
        );
        let (joins, codes, chats): (Vec<JoinRow>, Vec<Row>, Vec<ChatRow>) =
            on_db!(self.store, |db| {
                let joins = sqlx::query_as(&joins_sql)
                    .bind(self.tenant.0)
                    .bind(from)
                    .bind(to)
                    .fetch_all(db)
                    .await?;
                let codes = sqlx::query_as(&codes_sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?;
                let chats = sqlx::query_as(&format!(
                    "SELECT c.chat_id, c.name, c.dismissed_at IS NOT NULL AS dismissed, \
                     {MEMBERS_NOW} FROM wecom_group_chats c WHERE c.tenant_id = $1",
                ))
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?;
                (joins, codes, chats)
            });
        let chats: HashMap<&str, &ChatRow> =
            chats.iter().map(|c| (c.chat_id.as_str(), c)).collect();
        let mut rows = Vec::new();
        for row in codes {
            let (code, deleted_at) = row.code()?;
            let mine: Vec<&JoinRow> = joins.iter().filter(|j| j.code_id == code.id.0).collect();
            if deleted_at.is_some() && mine.is_empty() {
                continue;
            }
            let mut order: Vec<String> = code.chat_ids.clone();
            for j in &mine {
                if !order.contains(&j.chat_id) {
                    order.push(j.chat_id.clone());
                }
            }
            let figures: Vec<GroupChatFigures> = order
                .into_iter()
                .map(|chat_id| {
                    let (joins, left) = mine
                        .iter()
                        .find(|j| j.chat_id == chat_id)
                        .map_or((0, 0), |j| (j.joins, j.left_));
                    let chat = chats.get(chat_id.as_str());
                    let members = chat.map_or(0, |c| c.members);
                    GroupChatFigures {
                        name: chat.map(|c| c.name.clone()).unwrap_or_default(),
                        has_room: chat.is_some_and(|c| {
                            !c.dismissed
                                && c.members < siyu_domain::acquisition::group_codes::QR_JOIN_LIMIT
                        }),
                        chat_id,
                        joins,
                        left,
                        members,
                    }
                })
                .collect();
            let joins: i64 = figures.iter().map(|c| c.joins).sum();
            let left: i64 = figures.iter().map(|c| c.left).sum();
            rows.push(GroupCodeReportRow {
                code_id: code.id,
                name: code.name,
                state: code.state,
                joins,
                left,
                net_joins: joins - left,
                chats: figures,
            });
        }
        Ok(GroupCodeReport {
            from: date_of_day(range.first_day),
            to: date_of_day(range.last_day),
            joins: rows.iter().map(|r| r.joins).sum(),
            left: rows.iter().map(|r| r.left).sum(),
            rows,
        })
    }
}
