//! WeCom's relation changes, taken in bulk and applied in bulk.
//!
//! An add (`add_external_contact`) or a deletion (`del_follow_user`,
//! `del_external_contact`) is the callback a brand receives most: a live stream or an
//! ad brings thousands a minute. Each is taken by the callback route into
//! `wecom_relation_changes` (its event as JSON), many callbacks to a transaction, with
//! the key that makes a repeat a no-op ([`Store::take_wecom_relation_changes`]); the
//! connector's `wecom.relation_changes` job (one waits or runs per connector) applies
//! them oldest first, thousands to a transaction, from what the callback itself says
//! ([`TenantScope::apply_wecom_relation_changes`]): an add links or makes the customer,
//! records the relation and its `Contact Added` (the member, the code), gives an owner
//! to a customer without one, puts the code's tags on, counts the add for the code and
//! moves its contact way on; a deletion ends the relation, records `Contact Deleted` or
//! `Contact Transferred`, counts it for the code and makes mirrored tags match.
//!
//! Where they wait differs per database, and so does how a crash repeats nothing and
//! loses nothing:
//! - **SQLite**: in the intake file, beside the ingest log, so that taking never waits
//!   for the main file's writer; the main file records the last change applied in the
//!   applying transaction (see `relation_intake`).
//! - **PostgreSQL**: in a table, taken with the job's enqueueing in one transaction and
//!   deleted in the transaction that applies them. Taking and applying take turns per
//!   connector (its advisory lock), so the job's last look at what waits and its
//!   completion cannot miss a change taken meanwhile: either the job sees it, or the
//!   change's intake finds the job done and enqueues the next.
//!
//! What needs WeCom (the contact's name, unionid, remarks and tags by `get`, the
//! welcome within WeCom's 20 seconds) follows as jobs enqueued in the applying
//! transaction, within WeCom's rate limits.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, json};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, JobId, TenantId};

use super::relation_intake as intake;
use super::wecom_chats::wecom_event;
use super::wecom_customers::{RecordDetail, WecomContactRecord, WecomContext};
use crate::acquisition::{EndedRelation, RelationEnd};
use crate::db::{now_ms, on_db};
use crate::jobs::{NewJob, complete_job_in, enqueue_in};
use crate::tx::{Placeholders, Tx, lock_relation_changes, on_tx};
use crate::{Result, Store, StoreError, TenantScope};

/// A relation change's callback, checked and read, to be taken.
#[derive(Debug, Clone, Copy)]
pub struct TakenCallback<'a> {
    pub tenant: TenantId,
    pub connector: ConnectorId,
    /// What makes a repeat of the callback the same (see `connector_callbacks`).
    pub dedupe_key: &'a str,
    /// The event, as JSON, for the job to read.
    pub event: &'a str,
}

/// A change taken and not yet applied.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WaitingRelationChange {
    pub id: i64,
    /// The event as taken (JSON).
    pub event: String,
}

/// A relation change as its callback tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationChange {
    /// A customer added a member: the relation as the callback tells it (member,
    /// state, time; nothing of the contact).
    Added(Box<WecomContactRecord>),
    /// A relation ended.
    Ended {
        external_userid: String,
        /// The member.
        userid: String,
        /// When (ms).
        at: i64,
        end: RelationEnd,
        /// Makes a repeat of its event a duplicate.
        message_id: String,
    },
}

/// Changes to apply in one transaction, in the order taken. No relation may end and
/// then be added again among them: adds are applied before ends.
#[derive(Debug, Clone)]
pub struct RelationChanges<'a> {
    /// The first waiting change these begin at (on SQLite, applying them is refused
    /// when it was applied meanwhile).
    pub first: i64,
    /// The last waiting change these go up to: all waiting up to it are deleted (those
    /// that could not be read included).
    pub through: i64,
    pub changes: &'a [RelationChange],
    /// Jobs that follow them (welcomes, reading the contacts), enqueued with them.
    pub follow_ups: Vec<NewJob>,
}

/// What applying changes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangesApplied {
    /// Relations new to siyu.
    pub added: u64,
    /// Live relations ended.
    pub ended: u64,
    /// Nothing waits any more: the job was completed with them.
    pub drained: bool,
}

/// The job that applies a connector's waiting changes (one waits or runs at a time).
pub fn relation_changes_job(tenant: TenantId, connector: ConnectorId) -> NewJob {
    NewJob::new(
        siyu_domain::jobs::kind::WECOM_RELATION_CHANGES,
        json!({ "connector_id": connector.0 }),
    )
    .for_tenant(tenant)
    .with_priority(5)
    .unique_key(format!("relation_changes:{}", connector.0))
}

impl Store {
    /// Takes relation changes' callbacks in one transaction: each is kept unless a
    /// callback with its key was taken before, and each connector with changes taken
    /// gets its job. Answers, in order, whether each was taken (false: a repeat).
    /// On SQLite they are kept in the intake file (see `relation_intake`).
    pub async fn take_wecom_relation_changes(
        &self,
        taken: &[TakenCallback<'_>],
    ) -> Result<Vec<bool>> {
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((_, log)) = self.relation_intake() {
            let mut tx = Tx::Sqlite(log.begin_with("BEGIN IMMEDIATE").await?);
            let answers = keep_taken(&mut tx, taken).await?;
            tx.commit().await?;
            for (tenant, connector) in connectors_of(taken) {
                self.ensure_relation_changes_job(tenant, connector).await?;
            }
            return Ok(answers);
        }
        let mut locked: Vec<ConnectorId> = taken.iter().map(|t| t.connector).collect();
        locked.sort_unstable_by_key(|c| c.0);
        locked.dedup();
        let mut tx = self.begin_writing().await?;
        lock_relation_changes(&mut tx, &locked).await?;
        let answers = keep_taken(&mut tx, taken).await?;
        let jobs: Vec<NewJob> = connectors_of(taken)
            .into_iter()
            .map(|(tenant, connector)| relation_changes_job(tenant, connector))
            .collect();
        // runners are woken only for a job made now (one already waiting sees these)
        let made = !jobs.is_empty()
            && enqueue_in(&mut tx, &jobs)
                .await?
                .iter()
                .any(Option::is_some);
        tx.commit().await?;
        if made {
            self.notify_jobs();
        }
        Ok(answers)
    }
}

/// The connectors callbacks were taken for, each once: each gets its job, repeats
/// included, so that a repeat after a failure (the intake takes a failed group again
/// one by one) still gets the job its first time may not have.
fn connectors_of(taken: &[TakenCallback<'_>]) -> Vec<(TenantId, ConnectorId)> {
    let mut connectors: Vec<(TenantId, ConnectorId)> =
        taken.iter().map(|t| (t.tenant, t.connector)).collect();
    connectors.sort_unstable_by_key(|(t, c)| (t.0, c.0));
    connectors.dedup();
    connectors
}

/// Keeps the callbacks not taken before (by their keys in `connector_callbacks`) in
/// `wecom_relation_changes`, in the transaction's database; answers whether each was
/// kept.
async fn keep_taken(tx: &mut Tx, taken: &[TakenCallback<'_>]) -> Result<Vec<bool>> {
    let now = now_ms();
    let mut answers = Vec::with_capacity(taken.len());
    for chunk in taken.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(3)).collect();
        let sql = format!(
            "INSERT INTO connector_callbacks (connector_id, dedupe_key, received_at) \
             VALUES {} ON CONFLICT (connector_id, dedupe_key) DO NOTHING \
             RETURNING connector_id, dedupe_key",
            values.join(",")
        );
        let mut new: HashSet<(i64, String)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for callback in chunk {
                query = query
                    .bind(callback.connector.0)
                    .bind(callback.dedupe_key)
                    .bind(now);
            }
            query.fetch_all(&mut *c).await?
        })
        .into_iter()
        .collect();
        // a key twice in one group is new once, the first time
        let kept: Vec<&TakenCallback<'_>> = chunk
            .iter()
            .filter(|t| new.remove(&(t.connector.0, t.dedupe_key.to_owned())))
            .collect();
        answers.extend(
            chunk
                .iter()
                .map(|t| kept.iter().any(|k| std::ptr::eq(*k, t))),
        );
        if kept.is_empty() {
            continue;
        }
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = kept.iter().map(|_| p.row(4)).collect();
        let sql = format!(
            "INSERT INTO wecom_relation_changes (tenant_id, connector_id, event, \
             received_at) VALUES {}",
            values.join(",")
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for callback in &kept {
                query = query
                    .bind(callback.tenant.0)
                    .bind(callback.connector.0)
                    .bind(callback.event)
                    .bind(now);
            }
            query.execute(&mut *c).await?;
        });
    }
    Ok(answers)
}

impl TenantScope<'_> {
    /// The oldest `limit` changes waiting for the connector.
    pub async fn waiting_wecom_relation_changes(
        &self,
        id: ConnectorId,
        limit: i64,
    ) -> Result<Vec<WaitingRelationChange>> {
        if let Some(files) = self.store.relation_intake() {
            return intake::waiting(files, self.tenant, id, limit).await;
        }
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, event FROM wecom_relation_changes WHERE tenant_id = $1 \
                 AND connector_id = $2 ORDER BY id LIMIT $3",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(limit)
            .fetch_all(db)
            .await?
        }))
    }

    /// How many changes wait for the connector.
    pub async fn waiting_wecom_relation_change_count(&self, id: ConnectorId) -> Result<i64> {
        if let Some(files) = self.store.relation_intake() {
            return intake::waiting_count(files, self.tenant, id).await;
        }
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM wecom_relation_changes WHERE tenant_id = $1 \
                 AND connector_id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_one(db)
            .await?
        }))
    }

    /// Applies changes (see the module's documentation) in one transaction with their
    /// deletion from those waiting and their follow-up jobs; when none waits after
    /// them, `job` (held by `worker`) is completed in it too. A job no longer this
    /// worker's applies nothing (a conflict).
    pub async fn apply_wecom_relation_changes(
        &self,
        id: ConnectorId,
        context: &WecomContext,
        changes: &RelationChanges<'_>,
        job: JobId,
        worker: &str,
        actor: &Actor,
    ) -> Result<ChangesApplied> {
        self.check_connector(id).await?;
        let intake = self.store.relation_intake();
        // on SQLite: the last change applied once these are, and whether any waits
        // after it, read before the main file's writer is taken (one taken after this
        // look is found by the look after the commit)
        let (after, waits) = match intake {
            Some((main, log)) => {
                let after = match changes.through {
                    0 => intake::applied_through(main, self.tenant, id).await?,
                    through => through,
                };
                (
                    after,
                    intake::waits_after(log, self.tenant, id, after).await?,
                )
            }
            None => (changes.through, false),
        };
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        lock_relation_changes(&mut tx, &[id]).await?;
        let added: Vec<WecomContactRecord> = changes
            .changes
            .iter()
            .filter_map(|c| match c {
                RelationChange::Added(record) => Some((**record).clone()),
                RelationChange::Ended { .. } => None,
            })
            .collect();
        let mut applied = ChangesApplied::default();
        let mut ways_moved = false;
        if !added.is_empty() {
            let stored = self
                .store_wecom_contacts_in(
                    &mut tx,
                    id,
                    context,
                    &added,
                    None,
                    RecordDetail::Callback,
                    actor,
                )
                .await?;
            applied.added = stored.added;
            ways_moved = stored.ways_moved;
        }
        applied.ended = self
            .end_relations_in(&mut tx, id, context, changes, actor)
            .await?;
        if intake.is_some() {
            if changes.through > 0 {
                intake::mark_applied_in(&mut tx, id, changes.first, changes.through).await?;
            }
        } else if changes.through > 0 {
            // under the connector's lock: the first is gone when another applied it
            let deleted: Vec<i64> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar(
                    "DELETE FROM wecom_relation_changes WHERE tenant_id = $1 \
                     AND connector_id = $2 AND id <= $3 RETURNING id",
                )
                .bind(self.tenant.0)
                .bind(id.0)
                .bind(changes.through)
                .fetch_all(&mut *c)
                .await?
            });
            if !deleted.contains(&changes.first) {
                return Err(StoreError::Conflict(format!(
                    "relation change {} of connector {} was applied meanwhile",
                    changes.first, id.0
                )));
            }
        }
        let followed = !changes.follow_ups.is_empty()
            && enqueue_in(&mut tx, &changes.follow_ups)
                .await?
                .iter()
                .any(Option::is_some);
        let more = match intake {
            Some(_) => waits,
            None => on_tx!(&mut tx, |c| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT id FROM wecom_relation_changes WHERE tenant_id = $1 \
                     AND connector_id = $2 LIMIT 1",
                )
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await?
            })
            .is_some(),
        };
        if !more {
            if !complete_job_in(&mut tx, job, worker).await? {
                return Err(StoreError::Conflict(format!(
                    "job {} is no longer {worker}'s",
                    job.0
                )));
            }
            applied.drained = true;
        }
        tx.commit().await?;
        if ways_moved || followed {
            self.store.notify_jobs();
        }
        if let Some((_, log)) = intake {
            // applied: what follows is housekeeping, whose failure the sweep mends, so it
            // is logged rather than failing a group that committed
            if let Err(error) = after_applied(self, log, id, after, applied.drained).await {
                tracing::warn!(%error, connector = id.0, "after applying relation changes");
            }
        }
        Ok(applied)
    }

    /// Ends the live relations among `changes`, records each end's event and counts it
    /// for its code, and makes the mirrored tags of their customers match; answers how
    /// many ended.
    async fn end_relations_in(
        &self,
        tx: &mut Tx,
        id: ConnectorId,
        context: &WecomContext,
        changes: &RelationChanges<'_>,
        actor: &Actor,
    ) -> Result<u64> {
        let now = now_ms();
        let mut ended = Vec::new();
        let mut items = Vec::new();
        let ends: Vec<FollowEnd<'_>> = changes
            .changes
            .iter()
            .filter_map(|change| match change {
                RelationChange::Ended {
                    external_userid,
                    userid,
                    at,
                    end,
                    message_id,
                } => Some(FollowEnd {
                    external_userid,
                    userid,
                    at: *at,
                    end: *end,
                    message_id,
                }),
                RelationChange::Added(_) => None,
            })
            .collect();
        let customers = end_follows_in(tx, id, &ends, now).await?;
        for (change, customer) in ends.iter().zip(customers) {
            let FollowEnd {
                external_userid,
                userid,
                at,
                end,
                message_id,
            } = change;
            let Some(customer) = customer else {
                continue; // a relation siyu does not have live: nothing ends
            };
            // (one found gone on reading the contact ends again, as what ended it)
            ended.push((
                EndedRelation {
                    external_userid,
                    userid,
                    at: *at,
                    end: *end,
                },
                customer,
            ));
            let (name, by) = match end {
                RelationEnd::ByCustomer => ("Contact Deleted", Some("customer")),
                RelationEnd::ByMember => ("Contact Deleted", Some("member")),
                RelationEnd::Transferred | RelationEnd::Unseen => ("Contact Transferred", None),
            };
            let mut properties = Map::new();
            properties.insert("member".into(), json!(userid));
            if let Some(by) = by {
                properties.insert("by".into(), json!(by));
            }
            properties.insert("connector_id".into(), json!(id.0));
            items.push(wecom_event(
                context,
                external_userid,
                name,
                properties,
                *at,
                (*message_id).clone(),
            ));
        }
        if ended.is_empty() {
            return Ok(0);
        }
        let relations: Vec<EndedRelation> = ended.iter().map(|(e, _)| *e).collect();
        self.record_relation_ends_in(tx, id, &relations).await?;
        crate::ingest::ingest_in(tx, &items).await?;
        let map = self.wecom_tag_map(id).await?;
        if !map.is_empty() {
            let mut customers: Vec<i64> = ended.iter().map(|(_, c)| *c).collect();
            customers.sort_unstable();
            customers.dedup();
            for customer in customers {
                let live: i64 = on_tx!(tx, |c| {
                    sqlx::query_scalar(
                        "SELECT COALESCE(merged_into_id, id) FROM customers \
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(self.tenant.0)
                    .bind(customer)
                    .fetch_one(&mut *c)
                    .await?
                });
                self.match_wecom_tags_in(tx, id, CustomerId(live), &map, actor)
                    .await?;
            }
        }
        Ok(ended.len() as u64)
    }
}

/// A relation's end as a group of changes tells of it.
struct FollowEnd<'a> {
    external_userid: &'a str,
    userid: &'a str,
    at: i64,
    end: RelationEnd,
    message_id: &'a String,
}

/// Relations ended together: at most this many to a statement.
const END_CHUNK: usize = 500;

/// Marks the follows of `ends` ended (a live one, or one ended without a cause that
/// now has one), in order; answers, for each, the customer of a follow it ended. The
/// first end of each relation in the group goes in statements of many; a relation
/// ended again in the same group is done after, one at a time, as it depends on the
/// first.
async fn end_follows_in(
    tx: &mut Tx,
    connector: ConnectorId,
    ends: &[FollowEnd<'_>],
    now: i64,
) -> Result<Vec<Option<i64>>> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let (first, again): (Vec<usize>, Vec<usize>) =
        (0..ends.len()).partition(|i| seen.insert((ends[*i].external_userid, ends[*i].userid)));
    let mut customers: Vec<Option<i64>> = vec![None; ends.len()];
    #[derive(sqlx::FromRow)]
    struct Ended {
        external_userid: String,
        userid: String,
        customer_id: i64,
    }
    for chunk in first.chunks(END_CHUNK) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(5)).collect();
        let connector_p = p.next();
        // VALUES columns are named column1, column2, … on both databases; SQLite's
        // RETURNING names only the updated table's columns; placeholders are bound in
        // the order they are written (on SQLite they are `?`)
        let sql = format!(
            "UPDATE wecom_follows SET deleted_at = v.column3, ended_by = v.column4, \
             synced_at = v.column5 FROM (VALUES {}) AS v \
             WHERE wecom_follows.connector_id = {connector_p} \
             AND wecom_follows.external_userid = v.column1 AND wecom_follows.userid = v.column2 \
             AND (wecom_follows.deleted_at IS NULL \
               OR (wecom_follows.ended_by IS NULL AND v.column4 IS NOT NULL)) \
             RETURNING wecom_follows.external_userid, wecom_follows.userid, \
             wecom_follows.customer_id",
            values.join(",")
        );
        let rows: Vec<Ended> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for i in chunk {
                let end = &ends[*i];
                query = query
                    .bind(end.external_userid)
                    .bind(end.userid)
                    .bind(end.at)
                    .bind(end.end.ended_by())
                    .bind(now);
            }
            query.bind(connector.0).fetch_all(&mut *c).await?
        });
        let by_relation: HashMap<(&str, &str), i64> = rows
            .iter()
            .map(|r| {
                (
                    (r.external_userid.as_str(), r.userid.as_str()),
                    r.customer_id,
                )
            })
            .collect();
        for i in chunk {
            let end = &ends[*i];
            customers[*i] = by_relation.get(&(end.external_userid, end.userid)).copied();
        }
    }
    for i in again {
        let end = &ends[i];
        customers[i] = end_follow_in(
            tx,
            connector,
            end.external_userid,
            end.userid,
            end.at,
            end.end,
            now,
        )
        .await?;
    }
    Ok(customers)
}

/// Marks one follow ended (a live one, or one ended without a cause that now has one);
/// answers its customer when it did.
pub(super) async fn end_follow_in(
    tx: &mut Tx,
    connector: ConnectorId,
    external_userid: &str,
    userid: &str,
    at: i64,
    end: RelationEnd,
    now: i64,
) -> Result<Option<i64>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
            "UPDATE wecom_follows SET deleted_at = $1, ended_by = $5, synced_at = $6 \
             WHERE connector_id = $2 AND external_userid = $3 AND userid = $4 \
             AND (deleted_at IS NULL OR (ended_by IS NULL AND $5 IS NOT NULL)) \
             RETURNING customer_id",
        )
        .bind(at)
        .bind(connector.0)
        .bind(external_userid)
        .bind(userid)
        .bind(end.ended_by())
        .bind(now)
        .fetch_optional(&mut *c)
        .await?
    }))
}

/// On SQLite, after a group is applied: when the job completed with it, a change taken
/// after its look (the intake then still saw the job running) gets the next job; and the
/// applied changes are deleted from the intake file (a trim lost to a crash is done by
/// the next).
async fn after_applied(
    scope: &TenantScope<'_>,
    log: &sqlx::SqlitePool,
    id: ConnectorId,
    after: i64,
    drained: bool,
) -> Result<()> {
    if drained && intake::waits_after(log, scope.tenant, id, after).await? {
        scope
            .store
            .ensure_relation_changes_job(scope.tenant, id)
            .await?;
    }
    intake::trim(log, scope.tenant, id, after).await?;
    Ok(())
}
