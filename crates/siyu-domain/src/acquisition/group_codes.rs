//! Group codes (群活码): one QR that seats people in a brand's customer group chats, as
//! they fill.
//!
//! WeCom's join way (`groupchat/add_join_way`) seats people who scan it in the first of
//! at most [`WAY_CHATS_MAX`] chats with room; a chat takes people by QR only while it
//! has fewer than [`QR_JOIN_LIMIT`] members, and with `auto_create_room` WeCom opens the
//! next room itself when all are full. A group code holds a longer, ordered list of
//! chats (its pool): siyu keeps the way on the first [`WAY_CHATS_MAX`] of them that have
//! room ([`way_chats`]), moving it on as they fill, and adopts the rooms WeCom opened
//! for it (their members carry the code's `state`). A join carries no state in its
//! callback (`change_external_chat`), so siyu reads the chat (`groupchat/get`), whose
//! members show the `state` they came by: that is the attribution.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::error::check_name;
use crate::ids::{ChannelAccountId, ConnectorId, GroupCodeId, StaffId};

/// The most chats one join way seats people in.
pub const WAY_CHATS_MAX: usize = 5;
/// A chat takes people by QR only below this many members.
pub const QR_JOIN_LIMIT: i64 = 200;
/// The most chats a group code's pool holds.
pub const POOL_MAX: usize = 100;

/// A group code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupCode {
    pub id: GroupCodeId,
    pub name: String,
    pub state: String,
    pub connector_id: ConnectorId,
    pub account_id: Option<ChannelAccountId>,
    /// The pool: the chats people are seated in, in order (rooms WeCom opened for the
    /// code are added at the end).
    pub chat_ids: Vec<String>,
    pub auto_create_room: bool,
    /// The next room WeCom opens is named this and `room_base_id` (counting up).
    pub room_base_name: String,
    pub room_base_id: i64,
    /// The join way as WeCom last took it.
    pub join_way: Option<JoinWayState>,
    pub created_by_staff_id: Option<StaffId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A group code's join way on WeCom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JoinWayState {
    pub config_id: Option<String>,
    /// The chats the way seats people in now.
    pub chat_ids: Vec<String>,
    /// WeCom's QR image of the way.
    pub qr_code_url: Option<String>,
    /// WeCom's refusal of the last try, until one goes through.
    pub error: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<i64>,
}

/// A group code as given to make one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupCode {
    pub name: String,
    /// 1–30 letters, digits, `-` and `_`, unique among the tenant's live group codes.
    pub state: String,
    /// The WeCom connector whose chats it seats people in.
    pub connector_id: ConnectorId,
    pub account_id: Option<ChannelAccountId>,
    /// The pool of chats (their `chat_id`s, at least one), in the order they fill.
    pub chat_ids: Vec<String>,
    /// Whether WeCom opens the next room when all are full (default true).
    pub auto_create_room: Option<bool>,
    /// The next room's name (default: the code's name).
    pub room_base_name: Option<String>,
    /// The next room's number (default 1).
    pub room_base_id: Option<i64>,
}

/// Changes to a group code; fields left out stay (`account_id` may be `null`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCodeChange {
    pub name: Option<String>,
    pub chat_ids: Option<Vec<String>>,
    pub auto_create_room: Option<bool>,
    pub room_base_name: Option<String>,
    pub room_base_id: Option<i64>,
    #[serde(default, deserialize_with = "crate::patch::present_or_null")]
    #[schema(value_type = Option<ChannelAccountId>)]
    pub account_id: Option<Option<ChannelAccountId>>,
}

/// A group code checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCodeSpec {
    pub name: String,
    pub state: String,
    pub connector_id: ConnectorId,
    pub account_id: Option<ChannelAccountId>,
    pub chat_ids: Vec<String>,
    pub auto_create_room: bool,
    pub room_base_name: String,
    pub room_base_id: i64,
}

fn check_chats(chat_ids: Vec<String>) -> Result<Vec<String>, DomainError> {
    let mut pool: Vec<String> = Vec::with_capacity(chat_ids.len());
    for id in chat_ids {
        let id = id.trim().to_owned();
        if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "chat_ids",
                "a chat_id is 1 to 64 characters",
            ));
        }
        if !pool.contains(&id) {
            pool.push(id);
        }
    }
    if pool.is_empty() || pool.len() > POOL_MAX {
        return Err(DomainError::invalid(
            "chat_ids",
            format!("a group code seats people in 1 to {POOL_MAX} chats"),
        ));
    }
    Ok(pool)
}

fn check_room_base(name: &str, id: i64) -> Result<(String, i64), DomainError> {
    let name = check_name("room_base_name", name, 30)?;
    if !(0..=1_000_000).contains(&id) {
        return Err(DomainError::invalid(
            "room_base_id",
            "must be from 0 to 1,000,000",
        ));
    }
    Ok((name, id))
}

impl NewGroupCode {
    pub fn check(self) -> Result<GroupCodeSpec, DomainError> {
        let name = check_name("name", &self.name, 100)?;
        let base_name = self
            .room_base_name
            .unwrap_or_else(|| name.chars().take(30).collect());
        let (room_base_name, room_base_id) =
            check_room_base(&base_name, self.room_base_id.unwrap_or(1))?;
        Ok(GroupCodeSpec {
            state: super::check_state(&self.state)?,
            connector_id: self.connector_id,
            account_id: self.account_id,
            chat_ids: check_chats(self.chat_ids)?,
            auto_create_room: self.auto_create_room.unwrap_or(true),
            room_base_name,
            room_base_id,
            name,
        })
    }
}

impl GroupCodeChange {
    /// The code as it will be after the change.
    pub fn apply(self, to: &GroupCode) -> Result<GroupCodeSpec, DomainError> {
        let (room_base_name, room_base_id) = check_room_base(
            self.room_base_name.as_deref().unwrap_or(&to.room_base_name),
            self.room_base_id.unwrap_or(to.room_base_id),
        )?;
        Ok(GroupCodeSpec {
            name: match self.name {
                Some(name) => check_name("name", &name, 100)?,
                None => to.name.clone(),
            },
            state: to.state.clone(),
            connector_id: to.connector_id,
            account_id: self.account_id.unwrap_or(to.account_id),
            chat_ids: check_chats(self.chat_ids.unwrap_or_else(|| to.chat_ids.clone()))?,
            auto_create_room: self.auto_create_room.unwrap_or(to.auto_create_room),
            room_base_name,
            room_base_id,
        })
    }
}

/// How full a chat of a pool is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatFill {
    pub chat_id: String,
    /// Members now (staff and customers).
    pub members: i64,
    /// Dismissed, or not (or no longer) a chat of the corp siyu knows.
    pub gone: bool,
}

impl ChatFill {
    pub fn has_room(&self) -> bool {
        !self.gone && self.members < QR_JOIN_LIMIT
    }
}

/// The chats a code's join way should seat people in: the first [`WAY_CHATS_MAX`] of
/// the pool, in order, that have room. When none has, the last live chat of the pool
/// (a way needs one; with `auto_create_room` WeCom opens the next room from it), and
/// none when every chat is gone.
pub fn way_chats(pool: &[ChatFill]) -> Vec<String> {
    let open: Vec<String> = pool
        .iter()
        .filter(|c| c.has_room())
        .take(WAY_CHATS_MAX)
        .map(|c| c.chat_id.clone())
        .collect();
    if !open.is_empty() {
        return open;
    }
    pool.iter()
        .rev()
        .find(|c| !c.gone)
        .map(|c| vec![c.chat_id.clone()])
        .unwrap_or_default()
}

/// One chat's part in a group code's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupChatFigures {
    pub chat_id: String,
    pub name: String,
    /// Customers who joined it by the code in the range.
    pub joins: i64,
    /// Of those, who left it in the range.
    pub left: i64,
    /// Members now (staff and customers).
    pub members: i64,
    /// Whether people can still join it by QR.
    pub has_room: bool,
}

/// One group code's figures in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupCodeReportRow {
    pub code_id: GroupCodeId,
    pub name: String,
    pub state: String,
    pub joins: i64,
    pub left: i64,
    /// Joins less those who left.
    pub net_joins: i64,
    /// Per chat, the pool's order, then chats the code's people joined outside it.
    pub chats: Vec<GroupChatFigures>,
}

/// What group codes brought over a range of local days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupCodeReport {
    pub from: String,
    pub to: String,
    pub rows: Vec<GroupCodeReportRow>,
    pub joins: i64,
    pub left: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(id: &str, members: i64) -> ChatFill {
        ChatFill {
            chat_id: id.into(),
            members,
            gone: false,
        }
    }

    #[test]
    fn the_way_moves_on_as_chats_fill() {
        let mut pool: Vec<ChatFill> = (1..=7).map(|i| fill(&format!("g{i}"), 10)).collect();
        assert_eq!(way_chats(&pool), ["g1", "g2", "g3", "g4", "g5"]);
        pool[0].members = 199;
        assert_eq!(way_chats(&pool)[0], "g1", "199 members still take one more");
        pool[0].members = 200;
        assert_eq!(way_chats(&pool), ["g2", "g3", "g4", "g5", "g6"]);
        pool[2].gone = true;
        assert_eq!(way_chats(&pool), ["g2", "g4", "g5", "g6", "g7"]);
        for c in &mut pool {
            c.members = 250;
        }
        assert_eq!(way_chats(&pool), ["g7"], "all full: the last live chat");
        pool[6].gone = true;
        assert_eq!(way_chats(&pool), ["g6"]);
        for c in &mut pool {
            c.gone = true;
        }
        assert!(way_chats(&pool).is_empty());
    }

    #[test]
    fn a_group_code_needs_a_state_and_chats() {
        let good = || NewGroupCode {
            name: "新品体验群".into(),
            state: "grp-1".into(),
            connector_id: ConnectorId(1),
            account_id: None,
            chat_ids: vec!["wr1".into(), "wr2".into(), "wr1".into()],
            auto_create_room: None,
            room_base_name: None,
            room_base_id: None,
        };
        let spec = good().check().unwrap();
        assert_eq!(spec.chat_ids, ["wr1", "wr2"]);
        assert!(spec.auto_create_room);
        assert_eq!(
            (spec.room_base_name.as_str(), spec.room_base_id),
            ("新品体验群", 1)
        );
        let mut bad = good();
        bad.state = "has space".into();
        assert!(bad.check().is_err());
        let mut bad = good();
        bad.chat_ids = vec![];
        assert!(bad.check().is_err());
        let mut bad = good();
        bad.room_base_id = Some(-1);
        assert!(bad.check().is_err());
    }
}
