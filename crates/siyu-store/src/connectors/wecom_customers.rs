//! A WeCom corp's external contacts onto siyu's customers, a page at a time.
//!
//! One page of `batch/get_by_user` (up to 100 follow relations) is stored in one
//! transaction with the sync's checkpoint, so a sync cut off anywhere (a crash, 45009)
//! goes on from the last stored page and stores nothing twice:
//!
//! - a contact new to siyu, or whose details changed since the last sync (a fingerprint
//!   in `wecom_contacts`), is an identify event of the tenant's `WeCom` source, through
//!   ingestion, carrying `wecom_external_userid` and `wechat_unionid`: identity
//!   resolution links them to a profile the brand already has (a unionid from the
//!   official account or the mini-program) or makes one;
//! - a follow relation new to siyu is a `Contact Added` event at WeCom's add time,
//!   with the member, add way and `state` (as `channel_code`, so channel-code segments
//!   and tag rules see adds made before siyu was connected);
//! - every relation is upserted into `wecom_follows` (remark, description, corp tags,
//!   add way, state), a customer without an owner gets the member who added them
//!   first, and the corp tags of mirrored WeCom groups are put on the customer.
//!
//! A contact already linked and unchanged costs no event: a daily sync of a quiet corp
//! writes follow rows only.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::connector::WecomCounts;
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::IdentityKind;
use siyu_domain::ids::{ConnectorId, JobId, StaffId};
use siyu_domain::tracking::{EventType, TrackedEvent};

use super::wecom_contact_rows::{
    known_contacts, known_relations, link_contacts, marked_since, owners_in, write_follows,
};
use crate::db::{now_ms, on_db};
use crate::sources::SourceRef;
use crate::tracked::{IngestItem, IngestOutcome};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// The tenant's source that WeCom's data arrives from.
pub const WECOM_SOURCE: &str = "WeCom";
/// The event a new follow relation is recorded as.
pub const CONTACT_ADDED: &str = "Contact Added";

/// An external contact with one of their follow relations, as a sync page gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomContactRecord {
    pub external_userid: String,
    pub unionid: Option<String>,
    pub name: String,
    pub avatar: String,
    /// 0 unknown, 1 male, 2 female.
    pub gender: i64,
    /// 1 WeChat, 2 WeCom.
    pub contact_type: i64,
    pub corp_name: String,
    pub follow: WecomFollowRecord,
}

/// A follow relation: a member has the customer as an external contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomFollowRecord {
    pub userid: String,
    pub remark: String,
    pub description: String,
    /// When the member added them (ms).
    pub added_at: i64,
    /// WeCom's corp tag ids on this relation.
    pub tag_ids: Vec<String>,
    pub add_way: i64,
    pub state: String,
    pub oper_userid: String,
    /// The member's personal tags (type 2), when read (`get` has them, the sync's
    /// `batch/get_by_user` does not): `None` keeps those stored.
    pub personal_tags: Option<Vec<String>>,
}

impl WecomContactRecord {
    /// The traits an identify event carries for this contact.
    fn traits(&self) -> Map<String, Value> {
        let mut traits = Map::new();
        if !self.name.is_empty() {
            traits.insert("name".into(), json!(self.name));
        }
        if !self.avatar.is_empty() {
            traits.insert("avatar".into(), json!(self.avatar));
        }
        match self.gender {
            1 => {
                traits.insert("gender".into(), json!("male"));
            }
            2 => {
                traits.insert("gender".into(), json!("female"));
            }
            _ => {}
        }
        if self.contact_type == 2 && !self.corp_name.is_empty() {
            traits.insert("company".into(), json!({"name": self.corp_name}));
        }
        traits
    }

    /// What siyu knows of the contact, hashed: a change makes a new identify event.
    fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(&self.external_userid);
        hash.update([0]);
        hash.update(self.unionid.as_deref().unwrap_or(""));
        hash.update([0]);
        hash.update(Value::Object(self.traits()).to_string());
        hash.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn external_ids(&self) -> Map<String, Value> {
        let mut ids =
            vec![json!({"id": self.external_userid, "type": IdentityKind::WECOM_EXTERNAL_USERID})];
        if let Some(unionid) = self.unionid.as_deref().filter(|u| !u.is_empty()) {
            ids.push(json!({"id": unionid, "type": IdentityKind::WECHAT_UNIONID}));
        }
        let mut context = Map::new();
        context.insert("externalIds".into(), Value::Array(ids));
        context
    }
}

/// How much of a contact its records hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDetail {
    /// Read from WeCom (`get`, a sync page): the contact and its relations as they are.
    Read,
    /// Told by an add's callback: the relation (member, state, time) and nothing of the
    /// contact; relations siyu has are left as they are, and the contact is read later.
    Callback,
}

/// The sync a page belongs to, whose checkpoint commits with it.
#[derive(Debug, Clone)]
pub struct SyncPosition<'a> {
    pub what: &'a str,
    pub job: JobId,
    /// Where the next page starts.
    pub checkpoint: &'a Value,
}

/// What storing a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactsStored {
    pub relations: u64,
    /// Contacts identified (new or changed).
    pub identified: u64,
    /// Relations new to siyu (a `Contact Added` each).
    pub added: u64,
    /// A code's contact way was asked to move on (a job waits).
    pub ways_moved: bool,
    /// Nothing was stored: siyu marked a tag on one of these relations after the page
    /// was read from WeCom, so the page may lack it. Read it again.
    pub stale: bool,
}

/// The context a page is stored with: the tenant's WeCom source, members by userid,
/// mirrored corp tags by WeCom id.
#[derive(Debug, Clone)]
pub struct WecomContext {
    pub source: SourceRef,
    pub members: HashMap<String, StaffId>,
    pub tags: HashMap<String, TagId>,
}

impl TenantScope<'_> {
    /// The tenant's `WeCom` source, made the first time.
    pub async fn wecom_source(&self, actor: &Actor) -> Result<SourceRef> {
        self.server_source(WECOM_SOURCE, actor).await
    }

    /// What a page is stored with (see [`WecomContext`]).
    pub async fn wecom_context(&self, id: ConnectorId, actor: &Actor) -> Result<WecomContext> {
        let source = self.wecom_source(actor).await?;
        let members = self
            .wecom_members(id)
            .await?
            .into_iter()
            .map(|m| (m.userid, StaffId(m.staff_id)))
            .collect();
        let tags = self.wecom_tag_map(id).await?;
        Ok(WecomContext {
            source,
            members,
            tags,
        })
    }

    /// Stores one page of contacts (see the module's documentation) with the sync's
    /// new checkpoint, in one transaction.
    pub async fn store_wecom_contacts(
        &self,
        id: ConnectorId,
        context: &WecomContext,
        page: &[WecomContactRecord],
        position: Option<SyncPosition<'_>>,
        read_at: Option<i64>,
        actor: &Actor,
    ) -> Result<ContactsStored> {
        self.check_connector(id).await?;
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let stored = self
            .store_wecom_contacts_in(
                &mut tx,
                id,
                context,
                page,
                read_at,
                RecordDetail::Read,
                actor,
            )
            .await?;
        if stored.stale {
            return Ok(stored);
        }
        if let Some(position) = position {
            let checkpoint = position.checkpoint.to_string();
            let moved = on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE connector_syncs SET checkpoint = $1, items = items + $2 \
                     WHERE connector_id = $3 AND what = $4 AND job_id = $5",
                )
                .bind(&checkpoint)
                .bind(stored.relations as i64)
                .bind(id.0)
                .bind(position.what)
                .bind(position.job.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
            });
            if moved == 0 {
                // another job took the sync over: this one stores nothing more
                return Err(StoreError::Conflict(format!(
                    "the {} sync of connector {} is no longer job {}'s",
                    position.what, id.0, position.job.0
                )));
            }
        }
        tx.commit().await?;
        if stored.ways_moved {
            self.store.notify_jobs();
        }
        Ok(stored)
    }

    /// Stores contacts in the caller's transaction (a customers' one): a page read
    /// from WeCom, or adds as their callbacks told them ([`RecordDetail`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_wecom_contacts_in(
        &self,
        tx: &mut Tx,
        id: ConnectorId,
        context: &WecomContext,
        page: &[WecomContactRecord],
        read_at: Option<i64>,
        detail: RecordDetail,
        actor: &Actor,
    ) -> Result<ContactsStored> {
        let now = now_ms();
        let mut stored = ContactsStored {
            relations: page.len() as u64,
            ..Default::default()
        };
        let contacts: Vec<&WecomContactRecord> = {
            let mut seen = HashSet::new();
            page.iter()
                .filter(|c| seen.insert(c.external_userid.as_str()))
                .collect()
        };
        let external: Vec<&str> = contacts
            .iter()
            .map(|c| c.external_userid.as_str())
            .collect();
        if let Some(read_at) = read_at
            && marked_since(tx, id, &external, read_at).await?
        {
            return Ok(ContactsStored {
                stale: true,
                ..ContactsStored::default()
            });
        }
        let known = known_contacts(tx, id, &external).await?;
        let relations = known_relations(tx, id, &external).await?;
        // the channel codes the new relations came through, by their state
        let states: Vec<&str> = {
            let mut states: Vec<&str> = page
                .iter()
                .filter(|c| {
                    !c.follow.state.is_empty()
                        && !relations
                            .contains(&(c.external_userid.clone(), c.follow.userid.clone()))
                })
                .map(|c| c.follow.state.as_str())
                .collect();
            states.sort_unstable();
            states.dedup();
            states
        };
        let codes = if states.is_empty() {
            HashMap::new()
        } else {
            crate::acquisition::live_codes_by_state_in(tx, self.tenant, &states).await?
        };
        // the events: an identify for each contact new or changed, a Contact Added for
        // each relation new to siyu
        let mut items = Vec::new();
        let mut identified: Vec<(&WecomContactRecord, String, usize)> = Vec::new();
        for contact in &contacts {
            let fingerprint = match detail {
                RecordDetail::Read => contact.fingerprint(),
                // what the callback says is no news of a contact siyu has; a new one is
                // linked now, with no fingerprint, so that reading it later identifies
                // it with its details
                RecordDetail::Callback if known.contains_key(&contact.external_userid) => {
                    continue;
                }
                RecordDetail::Callback => String::new(),
            };
            if known
                .get(&contact.external_userid)
                .is_some_and(|(_, f)| *f == fingerprint)
            {
                continue;
            }
            identified.push((contact, fingerprint.clone(), items.len()));
            items.push(IngestItem {
                source: context.source,
                event: TrackedEvent {
                    event_type: EventType::Identify,
                    message_id: format!("wecom-{}-{}-{fingerprint}", id.0, contact.external_userid),
                    user_id: None,
                    anonymous_id: None,
                    name: String::new(),
                    properties: Map::new(),
                    traits: contact.traits(),
                    context: contact.external_ids(),
                    group_id: None,
                    previous_id: None,
                    timestamp: now,
                    received_at: now,
                    commerce: None,
                    customer: None,
                },
            });
        }
        let mut added_relations: HashSet<(&str, &str)> = HashSet::new();
        for contact in page {
            let key = (
                contact.external_userid.as_str(),
                contact.follow.userid.as_str(),
            );
            if relations.contains(&(key.0.to_owned(), key.1.to_owned()))
                || !added_relations.insert(key)
            {
                continue;
            }
            items.push(IngestItem {
                source: context.source,
                event: contact_added(id, contact, codes.get(&contact.follow.state), detail, now),
            });
        }
        stored.identified = identified.len() as u64;
        stored.added = added_relations.len() as u64;
        let outcomes = if items.is_empty() {
            Vec::new()
        } else {
            crate::ingest::ingest_in(tx, &items).await?
        };
        // each contact's profile: the one it is linked to, or the one its identify
        // event was stored on, or (a repeat of an earlier event) the owner of its id
        let mut customers: HashMap<&str, CustomerId> =
            known.iter().map(|(k, (c, _))| (k.as_str(), *c)).collect();
        for (contact, _, index) in &identified {
            if let Some(IngestOutcome::Stored(customer)) = outcomes.get(*index) {
                customers.insert(contact.external_userid.as_str(), *customer);
            }
        }
        let missing: Vec<&str> = external
            .iter()
            .copied()
            .filter(|e| !customers.contains_key(e))
            .collect();
        for (value, customer) in owners_in(tx, self.tenant, &missing).await? {
            if let Some(e) = missing.iter().find(|e| **e == value) {
                customers.insert(e, customer);
            }
        }
        let linked: Vec<(&str, CustomerId, &str)> = identified
            .iter()
            .filter_map(|(contact, fingerprint, _)| {
                let external = contact.external_userid.as_str();
                customers
                    .get(external)
                    .map(|customer| (external, *customer, fingerprint.as_str()))
            })
            .collect();
        link_contacts(tx, self.tenant, id, &linked, now).await?;
        let follows: Vec<&WecomContactRecord> = match detail {
            RecordDetail::Read => page.iter().collect(),
            RecordDetail::Callback => page
                .iter()
                .filter(|c| {
                    added_relations
                        .contains(&(c.external_userid.as_str(), c.follow.userid.as_str()))
                })
                .collect(),
        };
        write_follows(tx, self.tenant, id, &follows, &customers, detail, now).await?;
        // owners: a customer without one gets the member who added them first
        let mut first: HashMap<CustomerId, (i64, StaffId)> = HashMap::new();
        for contact in page {
            let (Some(customer), Some(staff)) = (
                customers.get(contact.external_userid.as_str()),
                context.members.get(&contact.follow.userid),
            ) else {
                continue;
            };
            let entry = first
                .entry(*customer)
                .or_insert((contact.follow.added_at, *staff));
            if contact.follow.added_at < entry.0 {
                *entry = (contact.follow.added_at, *staff);
            }
        }
        let mut by_staff: HashMap<StaffId, Vec<i64>> = HashMap::new();
        for (customer, (_, staff)) in &first {
            by_staff.entry(*staff).or_default().push(customer.0);
        }
        for (staff, ids) in by_staff {
            let sql = format!(
                "UPDATE customers SET owner_staff_id = $1, updated_at = $2 \
                 WHERE tenant_id = $3 AND owner_staff_id IS NULL AND id IN ({})",
                crate::db::id_list(&ids)
            );
            on_tx!(tx, |c| {
                sqlx::query(&sql)
                    .bind(staff.0)
                    .bind(now)
                    .bind(self.tenant.0)
                    .execute(&mut *c)
                    .await?;
            });
        }
        // corp tags of mirrored groups, put on the customer (taken off at the end of a
        // full sync, when every relation is known: `reconcile_wecom_tags`)
        let mut pairs: Vec<(CustomerId, TagId)> = Vec::new();
        for contact in page {
            let Some(customer) = customers.get(contact.external_userid.as_str()) else {
                continue;
            };
            pairs.extend(
                contact
                    .follow
                    .tag_ids
                    .iter()
                    .filter_map(|t| context.tags.get(t))
                    .map(|tag| (*customer, *tag)),
            );
        }
        pairs.sort_unstable_by_key(|(c, t)| (c.0, t.0));
        pairs.dedup();
        if !pairs.is_empty() {
            // a tag taken off in siyu and not yet off in WeCom stays off
            let mut ids: Vec<i64> = pairs.iter().map(|(c, _)| c.0).collect();
            ids.dedup();
            let waiting = super::wecom_marks::waiting_marks_in(tx, id, &ids).await?;
            if !waiting.is_empty() {
                let wecom = super::wecom_marks::by_siyu_tag(&context.tags);
                pairs.retain(|(c, t)| {
                    !wecom
                        .get(t)
                        .is_some_and(|w| waiting.contains(&(c.0, w.clone())))
                });
            }
        }
        if !pairs.is_empty() {
            self.add_tag_pairs_in(tx, &pairs, TagOrigin::Wecom, Some("WeCom corp tag"), actor)
                .await?;
        }
        // adds with a state: through live codes tagged, recorded, their ways moved on;
        // through unknown ones counted for the unknown code
        let mut code_adds = Vec::new();
        for contact in page {
            let key = (
                contact.external_userid.as_str(),
                contact.follow.userid.as_str(),
            );
            if let (false, Some(customer), true) = (
                contact.follow.state.is_empty(),
                customers.get(key.0),
                added_relations.contains(&key),
            ) {
                code_adds.push(crate::acquisition::CodeAdd {
                    code: codes.get(&contact.follow.state),
                    customer: *customer,
                    external_userid: key.0,
                    userid: key.1,
                    added_at: if contact.follow.added_at > 0 {
                        contact.follow.added_at
                    } else {
                        now
                    },
                });
            }
        }
        let ways_moved = self.record_code_adds_in(tx, id, &code_adds, actor).await?;
        stored.ways_moved = ways_moved;
        Ok(stored)
    }
}

/// The `Contact Added` event of a relation, at WeCom's add time; the live channel code
/// of its state, if any, named (a state no live code has stays as `channel_code` alone:
/// an unknown code's add, kept all the same). An add's callback does not say how the
/// customer added (`add_way`): its event leaves it out.
fn contact_added(
    id: ConnectorId,
    contact: &WecomContactRecord,
    code: Option<&crate::acquisition::CodeRef>,
    detail: RecordDetail,
    now: i64,
) -> TrackedEvent {
    let follow = &contact.follow;
    let mut properties = Map::new();
    properties.insert("member".into(), json!(follow.userid));
    if detail == RecordDetail::Read {
        properties.insert("add_way".into(), json!(follow.add_way));
    }
    properties.insert("state".into(), json!(follow.state));
    if !follow.state.is_empty() {
        properties.insert("channel_code".into(), json!(follow.state));
    }
    if let Some(code) = code {
        properties.insert("channel_code_id".into(), json!(code.id.0));
        properties.insert("channel_code_name".into(), json!(code.name));
    }
    properties.insert("connector_id".into(), json!(id.0));
    let at = if follow.added_at > 0 {
        follow.added_at
    } else {
        now
    };
    TrackedEvent {
        event_type: EventType::Track,
        message_id: format!(
            "wecom-added-{}-{}-{}-{}",
            id.0, contact.external_userid, follow.userid, follow.added_at
        ),
        user_id: None,
        anonymous_id: None,
        name: CONTACT_ADDED.into(),
        properties,
        traits: Map::new(),
        context: contact.external_ids(),
        group_id: None,
        previous_id: None,
        timestamp: at,
        received_at: now,
        commerce: None,
        customer: None,
    }
}

impl TenantScope<'_> {
    /// What siyu holds of the corp (see [`WecomCounts`]).
    pub async fn wecom_counts(&self, id: ConnectorId) -> Result<WecomCounts> {
        self.check_connector(id).await?;
        type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let row: Row = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT \
                 (SELECT COUNT(*) FROM wecom_members WHERE connector_id = $1 AND left_at IS NULL), \
                 (SELECT COUNT(*) FROM wecom_members WHERE connector_id = $1 AND left_at IS NOT NULL), \
                 (SELECT COUNT(*) FROM wecom_departments WHERE connector_id = $1), \
                 (SELECT COUNT(*) FROM wecom_contacts WHERE connector_id = $1), \
                 (SELECT COUNT(DISTINCT COALESCE(c.merged_into_id, w.customer_id)) FROM wecom_contacts w \
                  JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.customer_id \
                  WHERE w.connector_id = $1), \
                 (SELECT COUNT(*) FROM wecom_follows WHERE connector_id = $1 AND deleted_at IS NULL), \
                 (SELECT COUNT(*) FROM wecom_follows WHERE connector_id = $1 AND deleted_at IS NOT NULL), \
                 (SELECT COUNT(*) FROM wecom_tags WHERE connector_id = $1), \
                 (SELECT COUNT(*) FROM wecom_group_chats WHERE connector_id = $1 AND dismissed_at IS NULL), \
                 (SELECT COUNT(DISTINCT m.member_id) FROM wecom_chat_members m \
                  JOIN wecom_group_chats g ON g.connector_id = m.connector_id AND g.chat_id = m.chat_id \
                  WHERE m.connector_id = $1 AND m.member_type = 2 AND m.quit_at IS NULL \
                  AND g.dismissed_at IS NULL)",
            )
            .bind(id.0)
            .fetch_one(db)
            .await?
        });
        let (
            members,
            members_left,
            departments,
            contacts,
            customers,
            relations,
            relations_ended,
            mirrored_tags,
            group_chats,
            chat_customers,
        ) = row;
        Ok(WecomCounts {
            members,
            members_left,
            departments,
            contacts,
            customers,
            relations,
            relations_ended,
            mirrored_tags,
            group_chats,
            chat_customers,
        })
    }
}
