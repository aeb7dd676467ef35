//! A corp's customer group chats (客户群), kept current by the sync and by
//! `change_external_chat`: each chat read with `groupchat/get` is stored whole, in one
//! transaction with what it means for profiles. A customer found in a chat who was not
//! there before gets `Group Chat Joined` (at their join time, with the join scene and
//! the `state` of the join way that brought them), one no longer there `Group Chat
//! Left`; so reading a chat again changes nothing, and group codes and group SOP (later
//! issues) can count on who is in which chat.

use std::collections::HashMap;

use serde_json::{Map, json};
use siyu_domain::connector::WecomGroupChat;
use siyu_domain::identity::IdentityKind;
use siyu_domain::ids::ConnectorId;
use siyu_domain::tracking::{EventType, TrackedEvent};

use super::wecom_contact_rows::owners_in;
use super::wecom_customers::WecomContext;
use crate::db::{now_ms, on_db};
use crate::tracked::IngestItem;
use crate::tx::on_tx;
use crate::{Result, TenantScope};

/// A chat as WeCom answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomChatRecord {
    pub chat_id: String,
    pub name: String,
    pub owner_userid: String,
    pub notice: String,
    pub member_version: String,
    /// ms
    pub created_at: i64,
    pub members: Vec<WecomChatMemberRecord>,
}

/// Someone in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomChatMemberRecord {
    /// A userid (staff) or an external userid (a customer).
    pub member_id: String,
    /// 1 staff, 2 customer.
    pub member_type: i64,
    pub name: String,
    /// ms
    pub join_time: i64,
    pub join_scene: i64,
    pub invitor: String,
    pub state: String,
}

/// What storing a chat changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatStored {
    pub joined: u64,
    pub left: u64,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    member_id: String,
    member_type: i64,
}

impl TenantScope<'_> {
    /// Stores a chat as WeCom answered it (see the module's documentation).
    pub async fn store_wecom_chat(
        &self,
        id: ConnectorId,
        context: &WecomContext,
        chat: &WecomChatRecord,
    ) -> Result<ChatStored> {
        self.check_connector(id).await?;
        let now = now_ms();
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let present: Vec<MemberRow> = on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO wecom_group_chats (connector_id, tenant_id, chat_id, name, \
                 owner_userid, notice, member_version, created_at, synced_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (connector_id, chat_id) DO UPDATE SET name = excluded.name, \
                 owner_userid = excluded.owner_userid, notice = excluded.notice, \
                 member_version = excluded.member_version, synced_at = excluded.synced_at, \
                 dismissed_at = NULL",
            )
            .bind(id.0)
            .bind(self.tenant.0)
            .bind(&chat.chat_id)
            .bind(&chat.name)
            .bind(&chat.owner_userid)
            .bind(&chat.notice)
            .bind(&chat.member_version)
            .bind(chat.created_at)
            .bind(now)
            .execute(&mut *c)
            .await?;
            sqlx::query_as(
                "SELECT member_id, member_type FROM wecom_chat_members \
                 WHERE connector_id = $1 AND chat_id = $2 AND quit_at IS NULL",
            )
            .bind(id.0)
            .bind(&chat.chat_id)
            .fetch_all(&mut *c)
            .await?
        });
        let was: HashMap<&str, i64> = present
            .iter()
            .map(|m| (m.member_id.as_str(), m.member_type))
            .collect();
        let joined: Vec<&WecomChatMemberRecord> = chat
            .members
            .iter()
            .filter(|m| !was.contains_key(m.member_id.as_str()))
            .collect();
        let left: Vec<&MemberRow> = present
            .iter()
            .filter(|p| !chat.members.iter().any(|m| m.member_id == p.member_id))
            .collect();
        // the events first: a customer new to siyu gets a profile
        let mut items = Vec::new();
        for m in joined.iter().filter(|m| m.member_type == 2) {
            let mut properties = Map::new();
            properties.insert("chat_id".into(), json!(chat.chat_id));
            properties.insert("chat_name".into(), json!(chat.name));
            properties.insert("join_scene".into(), json!(m.join_scene));
            if !m.state.is_empty() {
                properties.insert("state".into(), json!(m.state));
            }
            if !m.invitor.is_empty() {
                properties.insert("invitor".into(), json!(m.invitor));
            }
            properties.insert("connector_id".into(), json!(id.0));
            let at = if m.join_time > 0 { m.join_time } else { now };
            items.push(wecom_event(
                context,
                &m.member_id,
                "Group Chat Joined",
                properties,
                at,
                format!(
                    "wecom-chat-joined-{}-{}-{}-{at}",
                    id.0, chat.chat_id, m.member_id
                ),
            ));
        }
        for m in left.iter().filter(|m| m.member_type == 2) {
            let mut properties = Map::new();
            properties.insert("chat_id".into(), json!(chat.chat_id));
            properties.insert("chat_name".into(), json!(chat.name));
            properties.insert("connector_id".into(), json!(id.0));
            items.push(wecom_event(
                context,
                &m.member_id,
                "Group Chat Left",
                properties,
                now,
                format!(
                    "wecom-chat-left-{}-{}-{}-{now}",
                    id.0, chat.chat_id, m.member_id
                ),
            ));
        }
        if !items.is_empty() {
            crate::ingest::ingest_in(&mut tx, &items).await?;
        }
        let customers: Vec<&str> = chat
            .members
            .iter()
            .filter(|m| m.member_type == 2)
            .map(|m| m.member_id.as_str())
            .collect();
        let owners: HashMap<String, i64> = owners_in(&mut tx, self.tenant, &customers)
            .await?
            .into_iter()
            .map(|(e, c)| (e, c.0))
            .collect();
        on_tx!(&mut tx, |c| {
            for m in &chat.members {
                sqlx::query(
                    "INSERT INTO wecom_chat_members (connector_id, tenant_id, chat_id, member_id, \
                     member_type, customer_id, name, join_time, join_scene, invitor, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (connector_id, chat_id, member_id) DO UPDATE SET \
                     member_type = excluded.member_type, customer_id = excluded.customer_id, \
                     name = excluded.name, join_time = excluded.join_time, \
                     join_scene = excluded.join_scene, invitor = excluded.invitor, \
                     state = excluded.state, quit_at = NULL",
                )
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(&chat.chat_id)
                .bind(&m.member_id)
                .bind(m.member_type)
                .bind(owners.get(&m.member_id).copied())
                .bind(&m.name)
                .bind(m.join_time)
                .bind(m.join_scene)
                .bind(&m.invitor)
                .bind(&m.state)
                .execute(&mut *c)
                .await?;
            }
            for m in &left {
                sqlx::query(
                    "UPDATE wecom_chat_members SET quit_at = $1 WHERE connector_id = $2 \
                     AND chat_id = $3 AND member_id = $4",
                )
                .bind(now)
                .bind(id.0)
                .bind(&chat.chat_id)
                .bind(&m.member_id)
                .execute(&mut *c)
                .await?;
            }
        });
        // group codes whose pool holds the chat, or whose people are in it, look again
        let moved =
            crate::acquisition::look_again_at_chat_in(&mut tx, self.tenant, id, &chat.chat_id)
                .await?;
        tx.commit().await?;
        if moved {
            self.store.notify_jobs();
        }
        Ok(ChatStored {
            joined: joined.len() as u64,
            left: left.len() as u64,
        })
    }

    /// A chat was dismissed: it and everyone in it are marked so.
    pub async fn dismiss_wecom_chat(&self, id: ConnectorId, chat_id: &str) -> Result<()> {
        self.check_connector(id).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE wecom_group_chats SET dismissed_at = $1 WHERE connector_id = $2 \
                 AND chat_id = $3 AND dismissed_at IS NULL",
            )
            .bind(now)
            .bind(id.0)
            .bind(chat_id)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "UPDATE wecom_chat_members SET quit_at = $1 WHERE connector_id = $2 \
                 AND chat_id = $3 AND quit_at IS NULL",
            )
            .bind(now)
            .bind(id.0)
            .bind(chat_id)
            .execute(&mut *c)
            .await?;
        });
        let moved =
            crate::acquisition::look_again_at_chat_in(&mut tx, self.tenant, id, chat_id).await?;
        tx.commit().await?;
        if moved {
            self.store.notify_jobs();
        }
        Ok(())
    }

    /// The chats siyu knows, newest first, with how many are in each now.
    pub async fn wecom_group_chats(&self, id: ConnectorId) -> Result<Vec<WecomGroupChat>> {
        self.check_connector(id).await?;
        type Row = (String, String, String, i64, i64, i64, Option<i64>);
        let rows: Vec<Row> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT g.chat_id, g.name, g.owner_userid, \
                 (SELECT COUNT(*) FROM wecom_chat_members m WHERE m.connector_id = g.connector_id \
                  AND m.chat_id = g.chat_id AND m.quit_at IS NULL), \
                 (SELECT COUNT(*) FROM wecom_chat_members m WHERE m.connector_id = g.connector_id \
                  AND m.chat_id = g.chat_id AND m.quit_at IS NULL AND m.member_type = 2), \
                 g.created_at, g.dismissed_at FROM wecom_group_chats g \
                 WHERE g.connector_id = $1 ORDER BY g.created_at DESC, g.chat_id",
            )
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(chat_id, name, owner_userid, members, customers, created_at, dismissed_at)| {
                    WecomGroupChat {
                        chat_id,
                        name,
                        owner_userid,
                        members,
                        customers,
                        created_at,
                        dismissed_at,
                    }
                },
            )
            .collect())
    }
}

/// A track event WeCom told of, on the profile its external userid names (through
/// ingestion, from the tenant's WeCom source).
pub(super) fn wecom_event(
    context: &WecomContext,
    external_userid: &str,
    name: &str,
    properties: Map<String, serde_json::Value>,
    at: i64,
    message_id: String,
) -> IngestItem {
    let mut external = Map::new();
    external.insert(
        "externalIds".into(),
        json!([{"id": external_userid, "type": IdentityKind::WECOM_EXTERNAL_USERID}]),
    );
    IngestItem {
        source: context.source,
        event: TrackedEvent {
            event_type: EventType::Track,
            message_id,
            user_id: None,
            anonymous_id: None,
            name: name.to_owned(),
            properties,
            traits: Map::new(),
            context: external,
            group_id: None,
            previous_id: None,
            timestamp: at,
            received_at: now_ms(),
            commerce: None,
            customer: None,
        },
    }
}
