//! Adds through channel codes, as a WeCom sync page or callback stores them: the code's
//! tags put on the customer, the add recorded (routing counts a member's adds today
//! from these rows, reports a code's adds), the contact way of a code routing to more
//! than one member asked to move on to the next (a `wecom.contact_way` job, one waiting
//! per code), and the report
//! figures of the day moved (`rollup`). An add whose `state` no live code has is kept
//! for the unknown code (id 0): counted, never dropped. A relation a code brought that
//! ends is counted against it on the day it ends.

use std::collections::{HashMap, HashSet};

use siyu_domain::acquisition::report::{AcquisitionFigures, UNKNOWN_CODE};
use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::ConnectorId;

use super::codes::{CodeRef, contact_way_job};
use super::rollup::{RelationEnd, Rollup, Touch, touch_first, zone_in};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, TenantScope};

/// A relation new to siyu that carries a `state`: through a live code, or an unknown one.
#[derive(Debug, Clone)]
pub(crate) struct CodeAdd<'a> {
    /// The live code of its state; none: the unknown code.
    pub code: Option<&'a CodeRef>,
    pub customer: CustomerId,
    pub external_userid: &'a str,
    /// The member added.
    pub userid: &'a str,
    pub added_at: i64,
}

/// The staff ids of a connector's members, by userid.
async fn member_staff(tx: &mut Tx, connector: ConnectorId) -> Result<HashMap<String, i64>> {
    #[derive(sqlx::FromRow)]
    struct MemberRow {
        userid: String,
        staff_id: i64,
    }
    let rows: Vec<MemberRow> = on_tx!(tx, |c| {
        sqlx::query_as("SELECT userid, staff_id FROM wecom_members WHERE connector_id = $1")
            .bind(connector.0)
            .fetch_all(&mut *c)
            .await?
    });
    Ok(rows.into_iter().map(|r| (r.userid, r.staff_id)).collect())
}

/// Writes the adds through live codes (an unknown code's have no row), many to a
/// statement; answers those written now (code, external userid, member): a repeat of
/// one recorded before is not.
async fn record_adds_in<'a>(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    adds: &[CodeAdd<'a>],
    staff_of: &HashMap<String, i64>,
) -> Result<HashSet<(i64, &'a str, &'a str)>> {
    let through_codes: Vec<(&CodeAdd<'a>, &CodeRef)> = adds
        .iter()
        .filter_map(|a| a.code.map(|code| (a, code)))
        .collect();
    let mut recorded = HashSet::new();
    for chunk in through_codes.chunks(200) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(8)).collect();
        let sql = format!(
            "INSERT INTO channel_code_adds (tenant_id, code_id, external_userid, userid, \
             staff_id, customer_id, route, added_at) VALUES {} \
             ON CONFLICT (code_id, external_userid, userid) DO NOTHING \
             RETURNING code_id, external_userid, userid",
            values.join(",")
        );
        let written: Vec<(i64, String, String)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for (add, code) in chunk {
                query = query
                    .bind(tenant.0)
                    .bind(code.id.0)
                    .bind(add.external_userid)
                    .bind(add.userid)
                    .bind(staff_of.get(add.userid).copied())
                    .bind(add.customer.0)
                    .bind(code.route.as_deref())
                    .bind(add.added_at);
            }
            query.fetch_all(&mut *c).await?
        });
        for (code, external, userid) in written {
            // the caller's strings, so the set borrows nothing from the rows
            if let Some((add, _)) = chunk.iter().find(|(a, c)| {
                c.id.0 == code && a.external_userid == external && a.userid == userid
            }) {
                recorded.insert((code, add.external_userid, add.userid));
            }
        }
    }
    Ok(recorded)
}

impl TenantScope<'_> {
    /// Records adds through codes in the caller's transaction (see the module's
    /// documentation); answers whether a contact way job was asked for.
    pub(crate) async fn record_code_adds_in(
        &self,
        tx: &mut Tx,
        connector: ConnectorId,
        adds: &[CodeAdd<'_>],
        actor: &Actor,
    ) -> Result<bool> {
        if adds.is_empty() {
            return Ok(false);
        }
        let mut pairs: Vec<(CustomerId, TagId)> = adds
            .iter()
            .filter_map(|a| a.code.map(|code| (a, code)))
            .flat_map(|(a, code)| code.tag_ids.iter().map(|t| (a.customer, *t)))
            .collect();
        pairs.sort_unstable_by_key(|(c, t)| (c.0, t.0));
        pairs.dedup();
        if !pairs.is_empty() {
            self.add_tag_pairs_in(
                tx,
                &pairs,
                TagOrigin::ChannelCode,
                Some("channel code"),
                actor,
            )
            .await?;
        }
        let staff_of = member_staff(tx, connector).await?;
        let zone = zone_in(tx, self.tenant).await?;
        let mut rollup = Rollup::default();
        let mut touches = Vec::new();
        let mut moved: Vec<NewJob> = Vec::new();
        let recorded = record_adds_in(tx, self.tenant, adds, &staff_of).await?;
        for add in adds {
            let staff = staff_of.get(add.userid).copied();
            // the caller passes a relation new to siyu once: an unknown code's add is
            // always new; a live code's is new when its row was written now
            if let Some(code) = add.code
                && !recorded.contains(&(code.id.0, add.external_userid, add.userid))
            {
                continue;
            }
            let code_id = add.code.map_or(UNKNOWN_CODE, |c| c.id.0);
            let day = zone.day_of(add.added_at);
            let one_add = AcquisitionFigures {
                adds: 1,
                ..Default::default()
            };
            rollup.both(code_id, staff, day, one_add);
            touches.push(Touch {
                customer: add.customer,
                code: code_id,
                staff,
                added_at: add.added_at,
            });
            // a code with one member holds them whatever happens: nothing to move
            if let Some(code) = add.code.filter(|c| c.rotates) {
                let job = contact_way_job(self.tenant, code.id);
                if code.connector_id == Some(connector)
                    && !moved.iter().any(|j| j.unique_key == job.unique_key)
                {
                    moved.push(job);
                }
            }
        }
        touch_first(tx, self.tenant, zone, &touches, &mut rollup).await?;
        rollup.write(tx, self.tenant).await?;
        // answers whether a job was made now (one already waiting sees these adds)
        Ok(!moved.is_empty() && enqueue_in(tx, &moved).await?.iter().any(Option::is_some))
    }

    /// Counts an ended relation against the code that brought it, on the day it ended
    /// (see [`Self::record_relation_ends_in`]).
    pub(crate) async fn record_relation_end_in(
        &self,
        tx: &mut Tx,
        connector: ConnectorId,
        external_userid: &str,
        userid: &str,
        at: i64,
        end: RelationEnd,
    ) -> Result<()> {
        let ended = EndedRelation {
            external_userid,
            userid,
            at,
            end,
        };
        self.record_relation_ends_in(tx, connector, &[ended]).await
    }

    /// Counts ended relations against the codes that brought them, each on the day it
    /// ended: the code of its latest add through a code, else the unknown code when it
    /// came with a state. Transfers are not losses and count nothing. Looked up many
    /// relations to a statement (a flood's deletions come thousands to a group).
    pub(crate) async fn record_relation_ends_in(
        &self,
        tx: &mut Tx,
        connector: ConnectorId,
        ended: &[EndedRelation<'_>],
    ) -> Result<()> {
        let counted: Vec<(&EndedRelation<'_>, AcquisitionFigures)> = ended
            .iter()
            .filter_map(|e| {
                let figures = match e.end {
                    RelationEnd::ByCustomer => AcquisitionFigures {
                        deleted_by_customer: 1,
                        ..Default::default()
                    },
                    RelationEnd::ByMember => AcquisitionFigures {
                        deleted_by_member: 1,
                        ..Default::default()
                    },
                    RelationEnd::Transferred | RelationEnd::Unseen => return None,
                };
                Some((e, figures))
            })
            .collect();
        if counted.is_empty() {
            return Ok(());
        }
        let latest = latest_code_adds_in(tx, self.tenant, &counted).await?;
        // those no code's add brought: the unknown code's when they came with a state
        let unmatched: Vec<usize> = (0..counted.len())
            .filter(|i| !latest.contains_key(i))
            .collect();
        let with_state = if unmatched.is_empty() {
            HashSet::new()
        } else {
            came_with_state_in(tx, connector, &counted, &unmatched).await?
        };
        let staff_of = if with_state.is_empty() {
            HashMap::new()
        } else {
            member_staff(tx, connector).await?
        };
        let zone = zone_in(tx, self.tenant).await?;
        let mut rollup = Rollup::default();
        for (i, (ended, change)) in counted.iter().enumerate() {
            let (code, staff) = match latest.get(&i) {
                Some(add) => (add.code_id, add.staff_id),
                None if with_state.contains(&i) => {
                    (UNKNOWN_CODE, staff_of.get(ended.userid).copied())
                }
                None => continue, // not brought by a code
            };
            rollup.both(code, staff, zone.day_of(ended.at), *change);
        }
        rollup.write(tx, self.tenant).await
    }
}

/// Relations looked up together: at most this many to a statement.
const LOOKUP_CHUNK: usize = 500;

/// A relation's latest add through a code at or before its end.
#[derive(sqlx::FromRow)]
struct LatestAdd {
    i: i64,
    code_id: i64,
    staff_id: Option<i64>,
    added_at: i64,
    id: i64,
}

/// The latest add through a code of each ended relation, at or before its end, by the
/// relation's index in `counted`.
async fn latest_code_adds_in(
    tx: &mut Tx,
    tenant: siyu_domain::ids::TenantId,
    counted: &[(&EndedRelation<'_>, AcquisitionFigures)],
) -> Result<HashMap<usize, LatestAdd>> {
    let mut latest: HashMap<usize, LatestAdd> = HashMap::new();
    for (n, chunk) in counted.chunks(LOOKUP_CHUNK).enumerate() {
        // placeholders in the order they are bound: on SQLite they are `?`
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(4)).collect();
        let tenant_p = p.next();
        // VALUES columns are named column1, column2, … on both databases; CROSS JOIN
        // keeps SQLite's planner on looking each up (it would rather walk the tenant's
        // adds by time, thousands of times slower)
        let sql = format!(
            "SELECT v.column1 AS i, a.code_id, a.staff_id, a.added_at, a.id \
             FROM (VALUES {}) AS v CROSS JOIN channel_code_adds a WHERE a.tenant_id = {tenant_p} \
             AND a.external_userid = v.column2 AND a.userid = v.column3 \
             AND a.added_at <= v.column4",
            values.join(",")
        );
        let rows: Vec<LatestAdd> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for (k, (ended, _)) in chunk.iter().enumerate() {
                query = query
                    .bind((n * LOOKUP_CHUNK + k) as i64)
                    .bind(ended.external_userid)
                    .bind(ended.userid)
                    .bind(ended.at);
            }
            query.bind(tenant.0).fetch_all(&mut *c).await?
        });
        for row in rows {
            let i = row.i as usize;
            if latest
                .get(&i)
                .is_none_or(|kept| (row.added_at, row.id) > (kept.added_at, kept.id))
            {
                latest.insert(i, row);
            }
        }
    }
    Ok(latest)
}

/// Which of the `unmatched` relations (indexes in `counted`) came with a `state`.
async fn came_with_state_in(
    tx: &mut Tx,
    connector: ConnectorId,
    counted: &[(&EndedRelation<'_>, AcquisitionFigures)],
    unmatched: &[usize],
) -> Result<HashSet<usize>> {
    let mut with_state = HashSet::new();
    for chunk in unmatched.chunks(LOOKUP_CHUNK) {
        let mut p = Placeholders::for_tx(tx);
        let values: Vec<String> = chunk.iter().map(|_| p.row(3)).collect();
        let connector_p = p.next();
        let sql = format!(
            "SELECT v.column1 FROM (VALUES {}) AS v CROSS JOIN wecom_follows f \
             WHERE f.connector_id = {connector_p} AND f.external_userid = v.column2 \
             AND f.userid = v.column3 AND f.state <> ''",
            values.join(",")
        );
        let found: Vec<i64> = on_tx!(tx, |c| {
            let mut query = sqlx::query_scalar(&sql);
            for i in chunk {
                let ended = counted[*i].0;
                query = query
                    .bind(*i as i64)
                    .bind(ended.external_userid)
                    .bind(ended.userid);
            }
            query.bind(connector.0).fetch_all(&mut *c).await?
        });
        with_state.extend(found.into_iter().map(|i| i as usize));
    }
    Ok(with_state)
}

/// A relation that ended, for the reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndedRelation<'a> {
    pub external_userid: &'a str,
    /// The member.
    pub userid: &'a str,
    /// When it ended (ms).
    pub at: i64,
    pub end: RelationEnd,
}
