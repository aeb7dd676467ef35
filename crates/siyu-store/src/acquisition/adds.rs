//! Adds through channel codes, as a WeCom sync page or callback stores them: the code's
//! tags put on the customer, the add recorded (routing counts a member's adds today
//! from these rows, reports a code's adds), the code's contact way asked to move on to
//! the next member (a `wecom.contact_way` job, one waiting per code), and the report
//! figures of the day moved (`rollup`). An add whose `state` no live code has is kept
//! for the unknown code (id 0): counted, never dropped. A relation a code brought that
//! ends is counted against it on the day it ends.

use std::collections::HashMap;

use siyu_domain::acquisition::report::{AcquisitionFigures, UNKNOWN_CODE};
use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::ConnectorId;

use super::codes::{CodeRef, contact_way_job};
use super::rollup::{RelationEnd, Rollup, Touch, touch_first, zone_in};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
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
        for add in adds {
            let staff = staff_of.get(add.userid).copied();
            let recorded = match add.code {
                Some(code) => on_tx!(tx, |c| {
                    sqlx::query(
                        "INSERT INTO channel_code_adds (tenant_id, code_id, external_userid, \
                         userid, staff_id, customer_id, route, added_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (code_id, external_userid, userid) DO NOTHING",
                    )
                    .bind(self.tenant.0)
                    .bind(code.id.0)
                    .bind(add.external_userid)
                    .bind(add.userid)
                    .bind(staff)
                    .bind(add.customer.0)
                    .bind(code.route.as_deref())
                    .bind(add.added_at)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                        == 1
                }),
                // the caller passes a relation new to siyu once
                None => true,
            };
            if !recorded {
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
            if let Some(code) = add.code {
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
        if !moved.is_empty() {
            enqueue_in(tx, &moved).await?;
        }
        Ok(!moved.is_empty())
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
    /// came with a state. Transfers are not losses and count nothing.
    pub(crate) async fn record_relation_ends_in(
        &self,
        tx: &mut Tx,
        connector: ConnectorId,
        ended: &[EndedRelation<'_>],
    ) -> Result<()> {
        #[derive(sqlx::FromRow)]
        struct AddRow {
            code_id: i64,
            staff_id: Option<i64>,
        }
        let mut rollup = Rollup::default();
        let mut zone = None;
        let mut staff_of = None;
        for ended in ended {
            let change = match ended.end {
                RelationEnd::ByCustomer => AcquisitionFigures {
                    deleted_by_customer: 1,
                    ..Default::default()
                },
                RelationEnd::ByMember => AcquisitionFigures {
                    deleted_by_member: 1,
                    ..Default::default()
                },
                RelationEnd::Transferred | RelationEnd::Unseen => continue,
            };
            let add: Option<AddRow> = on_tx!(tx, |c| {
                sqlx::query_as(
                    "SELECT code_id, staff_id FROM channel_code_adds WHERE tenant_id = $1 \
                     AND external_userid = $2 AND userid = $3 AND added_at <= $4 \
                     ORDER BY added_at DESC, id DESC LIMIT 1",
                )
                .bind(self.tenant.0)
                .bind(ended.external_userid)
                .bind(ended.userid)
                .bind(ended.at)
                .fetch_optional(&mut *c)
                .await?
            });
            let (code, staff) = match add {
                Some(add) => (add.code_id, add.staff_id),
                None => {
                    let state: Option<String> = on_tx!(tx, |c| {
                        sqlx::query_scalar(
                            "SELECT state FROM wecom_follows WHERE connector_id = $1 \
                             AND external_userid = $2 AND userid = $3",
                        )
                        .bind(connector.0)
                        .bind(ended.external_userid)
                        .bind(ended.userid)
                        .fetch_optional(&mut *c)
                        .await?
                    });
                    if state.is_none_or(|s| s.is_empty()) {
                        continue; // not brought by a code
                    }
                    if staff_of.is_none() {
                        staff_of = Some(member_staff(tx, connector).await?);
                    }
                    let staff = staff_of.as_ref().and_then(|s| s.get(ended.userid)).copied();
                    (UNKNOWN_CODE, staff)
                }
            };
            let zone = match zone {
                Some(zone) => zone,
                None => *zone.insert(zone_in(tx, self.tenant).await?),
            };
            rollup.both(code, staff, zone.day_of(ended.at), change);
        }
        rollup.write(tx, self.tenant).await
    }
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
