//! The corp the stand-in serves: departments, members, external contacts, who follows
//! whom, corp tags and customer groups — the data WeCom keeps and its APIs read.
//!
//! Indexed for the calls siyu makes most: follow relations are kept per member in a
//! `BTreeMap` keyed by `external_userid`, so a `batch/get_by_user` page is a range read
//! that resumes after the last id it returned (O(page), and stable while contacts are
//! added or removed between pages); a reverse index gives a contact's followers for
//! `externalcontact/get`. Names on the wire follow WeCom's JSON field names; Rust field
//! names follow them too except where Rust reserves the word (`type_`).

use std::collections::{BTreeMap, HashMap};

/// A department (`department/list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: u64,
    pub name: String,
    /// 0 for the root.
    pub parentid: u64,
    pub order: u64,
}

/// A member (staff) of the corp (`user/get`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub userid: String,
    pub name: String,
    pub department: Vec<u64>,
    pub main_department: u64,
    /// 1 active, 2 disabled, 4 not activated, 5 left.
    pub status: u8,
    /// Has customer contact (客户联系) enabled: listed by `get_follow_user_list`.
    pub customer_contact: bool,
}

impl Member {
    /// An active member with customer contact, in one department.
    pub fn new(userid: &str, name: &str, department: u64) -> Self {
        Self {
            userid: userid.to_owned(),
            name: name.to_owned(),
            department: vec![department],
            main_department: department,
            status: 1,
            customer_contact: true,
        }
    }
}

/// An external contact (客户) as `externalcontact/get` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalContact {
    pub external_userid: String,
    pub name: String,
    /// 1 WeChat user, 2 WeCom user.
    pub type_: u8,
    /// 0 unknown, 1 male, 2 female.
    pub gender: u8,
    pub unionid: Option<String>,
    pub corp_name: String,
    pub corp_full_name: String,
    pub position: String,
    pub avatar: String,
}

impl ExternalContact {
    /// A WeChat customer (type 1) with a name and nothing else.
    pub fn wechat(external_userid: &str, name: &str) -> Self {
        Self {
            external_userid: external_userid.to_owned(),
            name: name.to_owned(),
            type_: 1,
            ..Self::default()
        }
    }
}

/// One member's relation with one customer (`follow_user` / `follow_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowInfo {
    pub remark: String,
    pub description: String,
    /// Unix seconds.
    pub createtime: u64,
    /// Corp tag ids (`et…`).
    pub tag_ids: Vec<String>,
    /// Personal tags (type 2): names only, no id.
    pub personal_tags: Vec<String>,
    pub add_way: u32,
    pub state: String,
    pub oper_userid: String,
    pub remark_corp_name: String,
    pub remark_mobiles: Vec<String>,
}

/// A corp tag group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagGroup {
    pub group_id: String,
    pub group_name: String,
    pub create_time: u64,
    pub order: u64,
    pub deleted: bool,
    /// Its tags' ids, in creation order.
    pub tag_ids: Vec<String>,
}

/// A corp tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: String,
    pub name: String,
    pub group_id: String,
    pub create_time: u64,
    pub order: u64,
    pub deleted: bool,
}

/// A customer group chat (客户群).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChat {
    pub chat_id: String,
    pub name: String,
    pub owner: String,
    pub create_time: u64,
    pub notice: String,
    pub member_list: Vec<ChatMember>,
    pub admin_list: Vec<String>,
    /// 0 normal, 1 owner left, 2 inheriting, 3 inherited.
    pub status: u8,
    pub member_version: String,
    /// Dismissed chats are no longer listed.
    pub dismissed: bool,
}

/// A member of a group chat: staff (type 1) or customer (type 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatMember {
    pub userid: String,
    /// 1 member, 2 external contact.
    pub type_: u8,
    pub unionid: Option<String>,
    pub join_time: u64,
    /// 1 invited, 2 link, 3 QR code.
    pub join_scene: u8,
    pub invitor: Option<String>,
    pub group_nickname: String,
    pub name: String,
    pub state: Option<String>,
}

/// Everything the stand-in's corp holds. Build it with the builder methods (or
/// [`Corp::generate`]) and hand it to [`crate::Standin::start`].
#[derive(Debug, Clone, Default)]
pub struct Corp {
    pub corp_id: String,
    pub(crate) secrets: Vec<String>,
    pub(crate) departments: BTreeMap<u64, Department>,
    pub(crate) members: BTreeMap<String, Member>,
    pub(crate) contacts: HashMap<String, ExternalContact>,
    /// userid → external_userid → relation.
    pub(crate) relations: HashMap<String, BTreeMap<String, FollowInfo>>,
    /// external_userid → its followers, in the order they were added.
    pub(crate) followers: HashMap<String, Vec<String>>,
    pub(crate) tag_groups: BTreeMap<String, TagGroup>,
    pub(crate) tags: BTreeMap<String, Tag>,
    pub(crate) chats: BTreeMap<String, GroupChat>,
    pub(crate) next_tag: u64,
    pub(crate) next_group: u64,
}

impl Corp {
    pub fn new(corp_id: &str) -> Self {
        Self {
            corp_id: corp_id.to_owned(),
            next_tag: 1,
            next_group: 1,
            ..Self::default()
        }
    }

    /// An app secret `gettoken` accepts.
    pub fn add_secret(mut self, secret: &str) -> Self {
        self.secrets.push(secret.to_owned());
        self
    }

    pub fn add_department(mut self, id: u64, name: &str, parentid: u64) -> Self {
        self.departments.insert(
            id,
            Department {
                id,
                name: name.to_owned(),
                parentid,
                order: 100_000_000 - id.min(99_999_999),
            },
        );
        self
    }

    pub fn add_member(mut self, member: Member) -> Self {
        self.insert_member(member);
        self
    }

    pub fn add_contact(mut self, contact: ExternalContact) -> Self {
        self.insert_contact(contact);
        self
    }

    /// `userid` follows (has added) `external_userid`.
    pub fn follow(mut self, userid: &str, external_userid: &str, info: FollowInfo) -> Self {
        self.insert_follow(userid, external_userid, info);
        self
    }

    /// A tag group with its tags; their ids are generated (`etGRP…`, `etTAG…`).
    pub fn add_tag_group(mut self, group_name: &str, tag_names: &[&str]) -> Self {
        let group_id = self.create_group(group_name, 0, 0);
        for name in tag_names {
            self.create_tag(&group_id, name, 0, 0);
        }
        self
    }

    pub fn add_group_chat(mut self, chat: GroupChat) -> Self {
        self.chats.insert(chat.chat_id.clone(), chat);
        self
    }

    /// The id of the tag named `tag_name` in the group `group_name` (not deleted).
    pub fn tag_id(&self, group_name: &str, tag_name: &str) -> Option<String> {
        let group = self
            .tag_groups
            .values()
            .find(|g| !g.deleted && g.group_name == group_name)?;
        group
            .tag_ids
            .iter()
            .filter_map(|id| self.tags.get(id))
            .find(|t| !t.deleted && t.name == tag_name)
            .map(|t| t.id.clone())
    }

    /// Every (live) tag id, in id order.
    pub fn tag_ids(&self) -> Vec<String> {
        self.tags
            .values()
            .filter(|t| !t.deleted)
            .map(|t| t.id.clone())
            .collect()
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The customer group chats not dismissed.
    pub fn chats(&self) -> impl Iterator<Item = &GroupChat> {
        self.chats.values().filter(|c| !c.dismissed)
    }

    pub fn contact(&self, external_userid: &str) -> Option<&ExternalContact> {
        self.contacts.get(external_userid)
    }

    pub fn contact_count(&self) -> usize {
        self.contacts.len()
    }

    /// How many (member, customer) pairs there are.
    pub fn relation_count(&self) -> usize {
        self.relations.values().map(BTreeMap::len).sum()
    }

    pub fn relation(&self, userid: &str, external_userid: &str) -> Option<&FollowInfo> {
        self.relations.get(userid)?.get(external_userid)
    }

    /// The customers a member follows, in `external_userid` order.
    pub fn customers_of(&self, userid: &str) -> Vec<String> {
        self.relations
            .get(userid)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    // ---- in-place changes (for `Standin::with_corp`), shared by the builder, the APIs
    // and the arrangements

    pub fn insert_member(&mut self, member: Member) {
        self.members.insert(member.userid.clone(), member);
    }

    pub fn insert_contact(&mut self, contact: ExternalContact) {
        self.contacts
            .insert(contact.external_userid.clone(), contact);
    }

    /// `userid` follows `external_userid` (the relation is replaced when it exists).
    pub fn insert_follow(&mut self, userid: &str, external_userid: &str, info: FollowInfo) {
        let previous = self
            .relations
            .entry(userid.to_owned())
            .or_default()
            .insert(external_userid.to_owned(), info);
        if previous.is_none() {
            self.followers
                .entry(external_userid.to_owned())
                .or_default()
                .push(userid.to_owned());
        }
    }

    /// Ends the relation; its last state.
    pub fn remove_follow(&mut self, userid: &str, external_userid: &str) -> Option<FollowInfo> {
        let info = self.relations.get_mut(userid)?.remove(external_userid)?;
        if let Some(followers) = self.followers.get_mut(external_userid) {
            followers.retain(|u| u != userid);
            if followers.is_empty() {
                self.followers.remove(external_userid);
            }
        }
        Some(info)
    }

    pub(crate) fn relation_mut(
        &mut self,
        userid: &str,
        external_userid: &str,
    ) -> Option<&mut FollowInfo> {
        self.relations.get_mut(userid)?.get_mut(external_userid)
    }

    pub(crate) fn followers_of(&self, external_userid: &str) -> &[String] {
        self.followers
            .get(external_userid)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub(crate) fn live_tag_count(&self) -> usize {
        self.tags.values().filter(|t| !t.deleted).count()
    }

    pub(crate) fn create_group(&mut self, name: &str, order: u64, now: u64) -> String {
        let group_id = format!("etGRP{:06}", self.next_group);
        self.next_group += 1;
        self.tag_groups.insert(
            group_id.clone(),
            TagGroup {
                group_id: group_id.clone(),
                group_name: name.to_owned(),
                create_time: now,
                order,
                deleted: false,
                tag_ids: Vec::new(),
            },
        );
        group_id
    }

    pub(crate) fn create_tag(
        &mut self,
        group_id: &str,
        name: &str,
        order: u64,
        now: u64,
    ) -> String {
        let id = format!("etTAG{:06}", self.next_tag);
        self.next_tag += 1;
        self.tags.insert(
            id.clone(),
            Tag {
                id: id.clone(),
                name: name.to_owned(),
                group_id: group_id.to_owned(),
                create_time: now,
                order,
                deleted: false,
            },
        );
        if let Some(group) = self.tag_groups.get_mut(group_id) {
            group.tag_ids.push(id.clone());
            group.deleted = false;
        }
        id
    }

    /// Marks tags deleted, deletes groups left without live tags, and takes the tags off
    /// every customer (WeCom does too).
    pub(crate) fn delete_tags(&mut self, tag_ids: &[String]) {
        let mut touched = Vec::new();
        for id in tag_ids {
            if let Some(tag) = self.tags.get_mut(id) {
                tag.deleted = true;
                touched.push(tag.group_id.clone());
            }
        }
        for group_id in touched {
            let all_deleted = self.tag_groups.get(&group_id).is_some_and(|g| {
                g.tag_ids
                    .iter()
                    .all(|t| self.tags.get(t).is_none_or(|t| t.deleted))
            });
            if all_deleted && let Some(group) = self.tag_groups.get_mut(&group_id) {
                group.deleted = true;
            }
        }
        for relations in self.relations.values_mut() {
            for info in relations.values_mut() {
                info.tag_ids.retain(|t| !tag_ids.contains(t));
            }
        }
    }

    pub(crate) fn live_tag(&self, id: &str) -> Option<&Tag> {
        self.tags.get(id).filter(|t| !t.deleted)
    }
}
