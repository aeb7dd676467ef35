//! What WeCom's callbacks change, one contact at a time: a contact read again after an
//! add or an edit (its relations, corp and personal tags; relations WeCom no longer
//! lists ended; mirrored tags made to match), a relation ended by either side, and the
//! events that say so on the profile (`Contact Deleted`, `Contact Transferred`),
//! through ingestion like every event.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::ConnectorId;

use super::wecom_chats::wecom_event;
use super::wecom_customers::{WecomContactRecord, WecomContext};
use super::wecom_marks::waiting_marks_in;
use crate::db::{now_ms, on_db};
use crate::tracked::IngestOutcome;
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

/// What storing a contact read from WeCom did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactRead {
    /// Stored; the profile it is linked to (none when WeCom listed no relation).
    Stored(Option<CustomerId>),
    /// Not stored: a tag was marked on it after it was read.
    Stale,
}

impl TenantScope<'_> {
    /// The profile an external contact is linked to, if any.
    pub async fn wecom_customer(
        &self,
        id: ConnectorId,
        external_userid: &str,
    ) -> Result<Option<CustomerId>> {
        self.check_connector(id).await?;
        let found: Option<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT COALESCE(c.merged_into_id, w.customer_id) FROM wecom_contacts w \
                 JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.customer_id \
                 WHERE w.connector_id = $1 AND w.external_userid = $2",
            )
            .bind(id.0)
            .bind(external_userid)
            .fetch_optional(db)
            .await?
        });
        Ok(found.map(CustomerId))
    }

    /// Stores a contact as WeCom answered it (`get`, asked at `read_at`: every
    /// relation, `records` one per member): like a sync page, then the relations siyu
    /// had that WeCom no longer lists are ended and the customer's mirrored tags made
    /// to match their relations. Answers the profile, or [`ContactRead::Stale`] when
    /// siyu marked a tag on a relation since `read_at` (read it again).
    pub async fn store_wecom_contact(
        &self,
        id: ConnectorId,
        context: &WecomContext,
        external_userid: &str,
        records: &[WecomContactRecord],
        read_at: i64,
        actor: &Actor,
    ) -> Result<ContactRead> {
        let stored = self
            .store_wecom_contacts(id, context, records, None, Some(read_at), actor)
            .await?;
        if stored.stale {
            return Ok(ContactRead::Stale);
        }
        let listed: Vec<&str> = records.iter().map(|r| r.follow.userid.as_str()).collect();
        let known: Vec<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT userid FROM wecom_follows WHERE connector_id = $1 \
                 AND external_userid = $2 AND deleted_at IS NULL",
            )
            .bind(id.0)
            .bind(external_userid)
            .fetch_all(db)
            .await?
        });
        let now = now_ms();
        for gone in known.iter().filter(|u| !listed.contains(&u.as_str())) {
            self.end_wecom_relation(id, external_userid, gone, now, crate::RelationEnd::Unseen)
                .await?;
        }
        let customer = self.wecom_customer(id, external_userid).await?;
        if let Some(customer) = customer {
            self.match_wecom_tags(id, customer, actor).await?;
        }
        Ok(ContactRead::Stored(customer))
    }

    /// The next `limit` contacts with a live relation whose personal tags were never
    /// read with `get` (first: an add applied from its callback is read so), or read
    /// before `read_before` (oldest first): what the background sweep reads next. Answers them and how many such contacts there are.
    pub async fn wecom_contacts_to_read(
        &self,
        id: ConnectorId,
        read_before: i64,
        limit: i64,
    ) -> Result<(Vec<String>, i64)> {
        self.check_connector(id).await?;
        const UNREAD: &str = "FROM wecom_follows WHERE connector_id = $1 \
             AND deleted_at IS NULL AND (personal_tags_at IS NULL OR personal_tags_at < $2)";
        let next: Vec<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(&format!(
                "SELECT external_userid {UNREAD} GROUP BY external_userid \
                 ORDER BY MIN(COALESCE(personal_tags_at, 0)), external_userid LIMIT $3"
            ))
            .bind(id.0)
            .bind(read_before)
            .bind(limit)
            .fetch_all(db)
            .await?
        });
        let left: i64 = on_db!(self.store, |db| {
            sqlx::query_scalar(&format!("SELECT COUNT(DISTINCT external_userid) {UNREAD}"))
                .bind(id.0)
                .bind(read_before)
                .fetch_one(db)
                .await?
        });
        Ok((next, left))
    }

    /// Ends a relation (either side deleted it, or WeCom transferred the customer) and,
    /// the first time, counts it against the channel code that brought it; answers the
    /// profile when siyu had it. A relation found gone on reading the contact (no one
    /// said who ended it) is ended again by the deletion told afterwards.
    pub async fn end_wecom_relation(
        &self,
        id: ConnectorId,
        external_userid: &str,
        userid: &str,
        at: i64,
        end: crate::RelationEnd,
    ) -> Result<Option<CustomerId>> {
        self.check_connector(id).await?;
        let mut tx = self.store.begin().await?;
        let ended = super::wecom_relation_changes::end_follow_in(
            &mut tx,
            id,
            external_userid,
            userid,
            at,
            end,
            now_ms(),
        )
        .await?;
        if ended.is_some() {
            self.record_relation_end_in(&mut tx, id, external_userid, userid, at, end)
                .await?;
        }
        tx.commit().await?;
        self.wecom_customer(id, external_userid).await
    }

    /// Makes a customer's mirrored tags match the corp tags of their live relations: a
    /// mirrored tag no relation carries comes off, one a relation carries goes on,
    /// except where a change made in siyu waits to be marked on WeCom (it is newer than
    /// what WeCom said). A customer with no live relation keeps their tags. Read and
    /// written in one transaction, so a change queued meanwhile is seen. Answers how
    /// many changed.
    pub async fn match_wecom_tags(
        &self,
        id: ConnectorId,
        customer: CustomerId,
        actor: &Actor,
    ) -> Result<u64> {
        let map = self.wecom_tag_map(id).await?;
        if map.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let changed = self
            .match_wecom_tags_in(&mut tx, id, customer, &map, actor)
            .await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// [`Self::match_wecom_tags`] in the caller's (customers') transaction, with the
    /// connector's tag map (not empty).
    pub(super) async fn match_wecom_tags_in(
        &self,
        tx: &mut crate::tx::Tx,
        id: ConnectorId,
        customer: CustomerId,
        map: &HashMap<String, TagId>,
        actor: &Actor,
    ) -> Result<u64> {
        let carried: Vec<String> = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "SELECT f.tag_ids FROM wecom_follows f \
                 JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
                 WHERE f.connector_id = $1 AND f.deleted_at IS NULL \
                 AND COALESCE(c.merged_into_id, f.customer_id) = $2",
            )
            .bind(id.0)
            .bind(customer.0)
            .fetch_all(&mut *c)
            .await?
        });
        if carried.is_empty() {
            return Ok(0);
        }
        let mut wanted: HashSet<TagId> = HashSet::new();
        for tag_ids in carried {
            let ids: Vec<String> = serde_json::from_str(&tag_ids)
                .map_err(|e| StoreError::Corrupt(format!("a follow's tag ids: {e}")))?;
            wanted.extend(ids.iter().filter_map(|t| map.get(t)).copied());
        }
        let waiting: HashSet<TagId> = waiting_marks_in(tx, id, &[customer.0])
            .await?
            .into_iter()
            .filter_map(|(_, w)| map.get(&w).copied())
            .collect();
        let mirrored: HashSet<TagId> = map.values().copied().collect();
        let has: HashSet<TagId> = on_tx!(tx, |c| {
            sqlx::query_scalar::<_, i64>(
                "SELECT tag_id FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(self.tenant.0)
            .bind(customer.0)
            .fetch_all(&mut *c)
            .await?
        })
        .into_iter()
        .map(TagId)
        .collect();
        let off: Vec<TagId> = has
            .iter()
            .filter(|t| mirrored.contains(t) && !wanted.contains(t) && !waiting.contains(t))
            .copied()
            .collect();
        let put: Vec<(CustomerId, TagId)> = wanted
            .iter()
            .filter(|t| !has.contains(t) && !waiting.contains(t))
            .map(|t| (customer, *t))
            .collect();
        let mut changed = 0;
        if !off.is_empty() {
            changed += self
                .change_tags_in(
                    tx,
                    &[customer],
                    &[],
                    &off,
                    TagOrigin::Wecom,
                    Some("WeCom corp tag removed"),
                    actor,
                    None,
                )
                .await?
                .removed;
        }
        if !put.is_empty() {
            changed += self
                .add_tag_pairs_in(tx, &put, TagOrigin::Wecom, Some("WeCom corp tag"), actor)
                .await?;
        }
        Ok(changed)
    }

    /// Records an event WeCom told of on the contact's profile (through ingestion, from
    /// the tenant's WeCom source), `message_id` making a repeat a duplicate. Answers
    /// the profile it was stored on (`None` for a repeat).
    pub async fn record_wecom_event(
        &self,
        context: &WecomContext,
        external_userid: &str,
        name: &str,
        properties: Map<String, Value>,
        at: i64,
        message_id: String,
    ) -> Result<Option<CustomerId>> {
        let item = wecom_event(context, external_userid, name, properties, at, message_id);
        let outcome = self.store.ingest(&[item]).await?;
        Ok(match outcome.first() {
            Some(IngestOutcome::Stored(customer)) => Some(*customer),
            _ => None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RelationRow {
    connector_id: i64,
    external_userid: String,
    userid: String,
    staff_id: Option<i64>,
    member_name: Option<String>,
    remark: String,
    description: String,
    add_way: i64,
    state: String,
    added_at: i64,
    tag_ids: String,
    personal_tags: Option<String>,
    personal_tags_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl TenantScope<'_> {
    /// A customer's follow relations on every connector (their merged profiles'
    /// included), live first. The caller checks the customer is within reach.
    pub async fn wecom_relations_for_customer(
        &self,
        customer: CustomerId,
    ) -> Result<Vec<siyu_domain::connector::WecomRelationView>> {
        let rows: Vec<RelationRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT f.connector_id, f.external_userid, f.userid, m.staff_id, m.name AS member_name, \
                 f.remark, f.description, f.add_way, f.state, f.added_at, f.tag_ids, \
                 f.personal_tags, f.personal_tags_at, f.deleted_at FROM wecom_follows f \
                 JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
                 LEFT JOIN wecom_members m ON m.connector_id = f.connector_id AND m.userid = f.userid \
                 WHERE f.tenant_id = $1 AND (f.customer_id = $2 OR c.merged_into_id = $2) \
                 ORDER BY f.deleted_at IS NOT NULL, f.added_at",
            )
            .bind(self.tenant.0)
            .bind(customer.0)
            .fetch_all(db)
            .await?
        });
        let names: HashMap<i64, String> = self
            .tags()
            .await?
            .into_iter()
            .map(|t| (t.id.0, t.name))
            .collect();
        let mut maps: HashMap<i64, HashMap<String, TagId>> = HashMap::new();
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let map = match maps.entry(row.connector_id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(new) => {
                    new.insert(self.wecom_tag_map(ConnectorId(row.connector_id)).await?)
                }
            };
            let ids: Vec<String> = serde_json::from_str(&row.tag_ids)
                .map_err(|e| StoreError::Corrupt(format!("a follow's tag ids: {e}")))?;
            let corp_tags = ids
                .iter()
                .filter_map(|t| map.get(t))
                .filter_map(|t| names.get(&t.0).cloned())
                .collect();
            let personal_tags = row
                .personal_tags
                .as_deref()
                .map(serde_json::from_str::<Vec<String>>)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("a follow's personal tags: {e}")))?;
            let masked =
                |text: String| siyu_domain::personal::mask_mobiles_in_text(&text).unwrap_or(text);
            views.push(siyu_domain::connector::WecomRelationView {
                connector_id: ConnectorId(row.connector_id),
                external_userid: row.external_userid,
                member: row.userid,
                staff_id: row.staff_id.map(siyu_domain::ids::StaffId),
                member_name: row.member_name,
                remark: masked(row.remark),
                description: masked(row.description),
                add_way: row.add_way,
                state: row.state,
                added_at: row.added_at,
                corp_tags,
                personal_tags,
                personal_tags_at: row.personal_tags_at,
                deleted_at: row.deleted_at,
            });
        }
        Ok(views)
    }
}
