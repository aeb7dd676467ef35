//! Customer group chats: read with `groupchat/list` (by owner, 100 owners a call) and
//! `groupchat/get`, stored whole (see `siyu-store`'s `wecom_chats`). The sync reads
//! every chat of the members with customer contact and marks chats WeCom no longer
//! lists dismissed; `change_external_chat` reads the one chat again (or dismisses it).

use std::collections::HashSet;

use siyu_connect::wecom::WecomClient;
use siyu_connect::wecom::api::{GroupChatInfo, OWNERS_PER_CHAT_LIST};
use siyu_domain::ids::ConnectorId;
use siyu_store::{TenantScope, WecomChatMemberRecord, WecomChatRecord, WecomContext};

use super::host::StoreHost;
use super::sync::job_error;
use crate::runner::JobError;

/// What reading the chats did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatsRead {
    pub chats: u64,
    pub joined: u64,
    pub left: u64,
    pub dismissed: u64,
}

/// Reads every chat these members own and stores it; chats siyu had that WeCom no
/// longer lists are dismissed.
pub async fn sync_chats(
    client: &WecomClient<StoreHost>,
    scope: &TenantScope<'_>,
    id: ConnectorId,
    context: &WecomContext,
    owners: &[String],
) -> Result<ChatsRead, JobError> {
    let mut read = ChatsRead::default();
    let mut listed = HashSet::new();
    for batch in owners.chunks(OWNERS_PER_CHAT_LIST) {
        for chat in client.group_chats(batch).await.map_err(job_error)? {
            listed.insert(chat.chat_id.clone());
            let stored = read_chat(client, scope, id, context, &chat.chat_id).await?;
            read.chats += 1;
            read.joined += stored.joined;
            read.left += stored.left;
        }
    }
    for known in scope.wecom_group_chats(id).await? {
        if known.dismissed_at.is_none() && !listed.contains(&known.chat_id) {
            scope.dismiss_wecom_chat(id, &known.chat_id).await?;
            read.dismissed += 1;
        }
    }
    Ok(read)
}

/// Reads one chat and stores it (a chat WeCom no longer knows is dismissed).
pub async fn read_chat(
    client: &WecomClient<StoreHost>,
    scope: &TenantScope<'_>,
    id: ConnectorId,
    context: &WecomContext,
    chat_id: &str,
) -> Result<ChatsRead, JobError> {
    match client.group_chat(chat_id).await.map_err(job_error)? {
        Some(chat) => {
            let stored = scope
                .store_wecom_chat(id, context, &chat_record(&chat))
                .await?;
            Ok(ChatsRead {
                chats: 1,
                joined: stored.joined,
                left: stored.left,
                dismissed: 0,
            })
        }
        None => {
            scope.dismiss_wecom_chat(id, chat_id).await?;
            Ok(ChatsRead {
                dismissed: 1,
                ..ChatsRead::default()
            })
        }
    }
}

fn chat_record(chat: &GroupChatInfo) -> WecomChatRecord {
    WecomChatRecord {
        chat_id: chat.chat_id.clone(),
        name: chat.name.clone(),
        owner_userid: chat.owner.clone(),
        notice: chat.notice.clone(),
        member_version: chat.member_version.clone(),
        created_at: chat.create_time.saturating_mul(1_000),
        members: chat
            .member_list
            .iter()
            .map(|m| WecomChatMemberRecord {
                member_id: m.userid.clone(),
                member_type: m.member_type,
                name: m.name.clone(),
                join_time: m.join_time.saturating_mul(1_000),
                join_scene: m.join_scene,
                invitor: m
                    .invitor
                    .as_ref()
                    .map(|i| i.userid.clone())
                    .unwrap_or_default(),
                state: m.state.clone().unwrap_or_default(),
            })
            .collect(),
    }
}
