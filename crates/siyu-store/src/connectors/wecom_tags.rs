//! WeCom corp tag groups and tags mirrored by siyu tag groups and tags.
//!
//! A siyu tag group paired with a WeCom group (`wecom_tag_groups`) is a "WeCom group";
//! its tags pair with WeCom's by id (`wecom_tags`), so a rename on either side keeps the
//! pairing. Mirroring adopts a siyu group or tag of the same name before making one
//! (so a mirror cut off between making a tag and pairing it pairs it the next time,
//! instead of making a second), and a name taken elsewhere in the tenant gets the
//! group's name in brackets (siyu's tag names are unique in a tenant; WeCom's only in
//! their group). A tag WeCom no longer has is unpaired; siyu keeps it with its history.

use std::collections::{HashMap, HashSet};

use siyu_domain::audience::{TagGroupId, TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, JobId};

use crate::db::{now_ms, on_db};
use crate::{Result, StoreError, TenantScope};

/// The colour of a tag mirrored from WeCom (WeCom's tags have none).
pub const WECOM_TAG_COLOUR: &str = "#07C160";

/// A corp tag group as WeCom lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomTagGroupRecord {
    pub group_id: String,
    pub name: String,
    pub tags: Vec<WecomTagRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomTagRecord {
    pub tag_id: String,
    pub name: String,
}

/// What a mirror did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TagsMirrored {
    pub groups: u64,
    pub tags: u64,
    pub created: u64,
    pub unpaired: u64,
}

/// What finishing a full customer sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncFinished {
    /// Relations WeCom no longer lists, ended.
    pub ended: u64,
    /// Mirrored tags taken off customers no relation carries them for any more.
    pub tags_removed: u64,
}

impl TenantScope<'_> {
    /// WeCom tag id → the siyu tag mirroring it.
    pub async fn wecom_tag_map(&self, id: ConnectorId) -> Result<HashMap<String, TagId>> {
        self.check_connector(id).await?;
        let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT wecom_tag_id, tag_id FROM wecom_tags WHERE connector_id = $1")
                .bind(id.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().map(|(w, t)| (w, TagId(t))).collect())
    }

    /// Mirrors WeCom's corp tags (see the module's documentation).
    pub async fn mirror_wecom_tags(
        &self,
        id: ConnectorId,
        groups: &[WecomTagGroupRecord],
        actor: &Actor,
    ) -> Result<TagsMirrored> {
        self.check_connector(id).await?;
        let mut done = TagsMirrored::default();
        let paired_groups: HashMap<String, i64> = on_db!(self.store, |db| {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT wecom_group_id, tag_group_id FROM wecom_tag_groups WHERE connector_id = $1",
            )
            .bind(id.0)
            .fetch_all(db)
            .await?
        })
        .into_iter()
        .collect();
        let paired_tags = self.wecom_tag_map(id).await?;
        for group in groups {
            done.groups += 1;
            let siyu_groups = self.tag_groups().await?;
            let paired_ids: HashSet<i64> = paired_groups.values().copied().collect();
            let siyu_group = match paired_groups
                .get(&group.group_id)
                .and_then(|g| siyu_groups.iter().find(|s| s.id.0 == *g))
            {
                Some(g) => {
                    if g.name != group.name && !siyu_groups.iter().any(|s| s.name == group.name) {
                        self.update_tag_group(g.id, Some(&group.name), None, actor)
                            .await?;
                    }
                    g.id
                }
                None => {
                    let adopt = siyu_groups
                        .iter()
                        .find(|s| s.name == group.name && !paired_ids.contains(&s.id.0));
                    let g = match adopt {
                        Some(g) => g.id,
                        None => {
                            done.created += 1;
                            let name = free_name(
                                &group.name,
                                "WeCom",
                                siyu_groups.iter().map(|s| s.name.as_str()),
                            );
                            self.create_tag_group(&name, None, 0, actor).await?.id
                        }
                    };
                    self.pair_group(id, &group.group_id, g).await?;
                    g
                }
            };
            for tag in &group.tags {
                done.tags += 1;
                self.mirror_tag(id, group, siyu_group, tag, &paired_tags, &mut done, actor)
                    .await?;
            }
        }
        // what WeCom no longer has is unpaired
        let listed_tags: HashSet<&str> = groups
            .iter()
            .flat_map(|g| g.tags.iter().map(|t| t.tag_id.as_str()))
            .collect();
        let listed_groups: HashSet<&str> = groups.iter().map(|g| g.group_id.as_str()).collect();
        for gone in paired_tags
            .keys()
            .filter(|t| !listed_tags.contains(t.as_str()))
        {
            done.unpaired += 1;
            on_db!(self.store, |db| {
                sqlx::query("DELETE FROM wecom_tags WHERE connector_id = $1 AND wecom_tag_id = $2")
                    .bind(id.0)
                    .bind(gone)
                    .execute(db)
                    .await?;
            });
        }
        for gone in paired_groups
            .keys()
            .filter(|g| !listed_groups.contains(g.as_str()))
        {
            on_db!(self.store, |db| {
                sqlx::query(
                    "DELETE FROM wecom_tag_groups WHERE connector_id = $1 AND wecom_group_id = $2",
                )
                .bind(id.0)
                .bind(gone)
                .execute(db)
                .await?;
            });
        }
        Ok(done)
    }

    #[allow(clippy::too_many_arguments)]
    async fn mirror_tag(
        &self,
        id: ConnectorId,
        group: &WecomTagGroupRecord,
        siyu_group: TagGroupId,
        tag: &WecomTagRecord,
        paired: &HashMap<String, TagId>,
        done: &mut TagsMirrored,
        actor: &Actor,
    ) -> Result<()> {
        let tags = self.tags().await?;
        if let Some(existing) = paired
            .get(&tag.tag_id)
            .and_then(|t| tags.iter().find(|s| s.id == *t))
        {
            if existing.name != tag.name && !tags.iter().any(|s| s.name == tag.name) {
                self.update_tag(existing.id, Some(&tag.name), None, None, None, actor)
                    .await?;
            }
            return Ok(());
        }
        let paired_ids: HashSet<TagId> = paired.values().copied().collect();
        let adopt = tags.iter().find(|s| {
            s.group_id == siyu_group && s.name == tag.name && !paired_ids.contains(&s.id)
        });
        let siyu_tag = match adopt {
            Some(t) => t.id,
            None => {
                done.created += 1;
                let name = free_name(&tag.name, &group.name, tags.iter().map(|s| s.name.as_str()));
                self.create_tag(siyu_group, &name, WECOM_TAG_COLOUR, 0, actor)
                    .await?
                    .id
            }
        };
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO wecom_tags (connector_id, tenant_id, wecom_tag_id, wecom_group_id, tag_id) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector_id, wecom_tag_id) \
                 DO UPDATE SET tag_id = excluded.tag_id, wecom_group_id = excluded.wecom_group_id",
            )
            .bind(id.0)
            .bind(self.tenant.0)
            .bind(&tag.tag_id)
            .bind(&group.group_id)
            .bind(siyu_tag.0)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    async fn pair_group(&self, id: ConnectorId, wecom: &str, group: TagGroupId) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO wecom_tag_groups (connector_id, tenant_id, wecom_group_id, tag_group_id) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (connector_id, wecom_group_id) \
                 DO UPDATE SET tag_group_id = excluded.tag_group_id",
            )
            .bind(id.0)
            .bind(self.tenant.0)
            .bind(wecom)
            .bind(group.0)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// Ends a full customer sync run by `job` that started at `started_at`: relations
    /// it did not see are ended (but those of members who left, which WeCom keeps until
    /// they are assigned), mirrored tags no live relation carries are taken off
    /// (only those WeCom put on: a tag an operator put on stays), and the sync is
    /// marked finished.
    pub async fn finish_wecom_customer_sync(
        &self,
        id: ConnectorId,
        what: &str,
        job: JobId,
        started_at: i64,
        actor: &Actor,
    ) -> Result<SyncFinished> {
        self.check_connector(id).await?;
        let now = now_ms();
        // members who left are not read (WeCom lists active members only), yet their
        // customers stay theirs until a resigned transfer assigns them
        let ended = on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE wecom_follows SET deleted_at = $1 WHERE connector_id = $2 \
                 AND deleted_at IS NULL AND synced_at < $3 AND userid NOT IN \
                 (SELECT userid FROM wecom_members WHERE connector_id = $2 AND left_at IS NOT NULL)",
            )
            .bind(now)
            .bind(id.0)
            .bind(started_at)
            .execute(db)
            .await?
            .rows_affected()
        });
        let tags_removed = self.reconcile_wecom_tags(id, actor).await?;
        let finished = on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE connector_syncs SET finished_at = $1 \
                 WHERE connector_id = $2 AND what = $3 AND job_id = $4",
            )
            .bind(now)
            .bind(id.0)
            .bind(what)
            .bind(job.0)
            .execute(db)
            .await?
            .rows_affected()
        });
        if finished == 0 {
            return Err(StoreError::Conflict(format!(
                "the {what} sync of connector {} is no longer job {}'s",
                id.0, job.0
            )));
        }
        Ok(SyncFinished {
            ended,
            tags_removed,
        })
    }

    /// Takes mirrored tags off customers with live relations none of which carries
    /// them, except where a change made in siyu waits to be marked on WeCom (checked
    /// in each part's transaction).
    async fn reconcile_wecom_tags(&self, id: ConnectorId, actor: &Actor) -> Result<u64> {
        let map = self.wecom_tag_map(id).await?;
        if map.is_empty() {
            return Ok(0);
        }
        let follows: Vec<(i64, String)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT COALESCE(c.merged_into_id, f.customer_id), f.tag_ids FROM wecom_follows f \
                 JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
                 WHERE f.connector_id = $1 AND f.deleted_at IS NULL",
            )
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        let mut related: HashSet<i64> = HashSet::new();
        let mut carried: HashSet<(i64, i64)> = HashSet::new();
        for (customer, tag_ids) in follows {
            related.insert(customer);
            let ids: Vec<String> = serde_json::from_str(&tag_ids)
                .map_err(|e| StoreError::Corrupt(format!("a follow's tag ids: {e}")))?;
            for tag in ids.iter().filter_map(|t| map.get(t)) {
                carried.insert((customer, tag.0));
            }
        }
        let mirrored: Vec<i64> = map.values().map(|t| t.0).collect();
        let on: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, tag_id FROM customer_tags \
                 WHERE tenant_id = $1 AND tag_id IN ({})",
                crate::db::id_list(&mirrored)
            ))
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let mut off: HashMap<i64, Vec<i64>> = HashMap::new();
        for (customer, tag) in on {
            if related.contains(&customer) && !carried.contains(&(customer, tag)) {
                off.entry(tag).or_default().push(customer);
            }
        }
        let wecom_ids = super::wecom_marks::by_siyu_tag(&map);
        let mut removed = 0;
        for (tag, customers) in off {
            for chunk in customers.chunks(500) {
                let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
                let waiting = super::wecom_marks::waiting_marks_in(&mut tx, id, chunk).await?;
                let wecom = wecom_ids.get(&TagId(tag));
                let chunk: Vec<CustomerId> = chunk
                    .iter()
                    .filter(|c| !wecom.is_some_and(|w| waiting.contains(&(**c, w.clone()))))
                    .map(|c| CustomerId(*c))
                    .collect();
                let result = self
                    .change_tags_in(
                        &mut tx,
                        &chunk,
                        &[],
                        &[TagId(tag)],
                        TagOrigin::Wecom,
                        Some("WeCom corp tag removed"),
                        actor,
                        None,
                    )
                    .await?;
                tx.commit().await?;
                removed += result.removed;
            }
        }
        Ok(removed)
    }
}

/// `name`, or `name (context)` when a name in `taken` has it already.
fn free_name<'a>(name: &str, context: &str, mut taken: impl Iterator<Item = &'a str>) -> String {
    if taken.any(|t| t == name) {
        format!("{name} ({context})")
    } else {
        name.to_owned()
    }
}
