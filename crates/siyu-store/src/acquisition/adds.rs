//! Adds through channel codes, as a WeCom sync page or callback stores them: the code's
//! tags put on the customer, the add recorded (routing counts a member's adds today
//! from these rows, reports a code's adds), and the code's contact way asked to move on
//! to the next member (a `wecom.contact_way` job, one waiting per code).

use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::ConnectorId;

use super::codes::{CodeRef, contact_way_job};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Tx, on_tx};
use crate::{Result, TenantScope};

/// A relation new to siyu that came through a live code.
#[derive(Debug, Clone)]
pub(crate) struct CodeAdd<'a> {
    pub code: &'a CodeRef,
    pub customer: CustomerId,
    pub external_userid: &'a str,
    /// The member added.
    pub userid: &'a str,
    pub added_at: i64,
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
            .flat_map(|a| a.code.tag_ids.iter().map(|t| (a.customer, *t)))
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
        let mut moved: Vec<NewJob> = Vec::new();
        for add in adds {
            on_tx!(tx, |c| {
                sqlx::query(
                    "INSERT INTO channel_code_adds (tenant_id, code_id, external_userid, userid, \
                     staff_id, customer_id, route, added_at) VALUES ($1, $2, $3, $4, \
                     (SELECT staff_id FROM wecom_members WHERE connector_id = $5 AND userid = $6), \
                     $7, $8, $9) ON CONFLICT (code_id, external_userid, userid) DO NOTHING",
                )
                .bind(self.tenant.0)
                .bind(add.code.id.0)
                .bind(add.external_userid)
                .bind(add.userid)
                .bind(connector.0)
                .bind(add.userid)
                .bind(add.customer.0)
                .bind(add.code.route.as_deref())
                .bind(add.added_at)
                .execute(&mut *c)
                .await?;
            });
            let job = contact_way_job(self.tenant, add.code.id);
            if add.code.connector_id == Some(connector)
                && !moved.iter().any(|j| j.unique_key == job.unique_key)
            {
                moved.push(job);
            }
        }
        if !moved.is_empty() {
            enqueue_in(tx, &moved).await?;
        }
        Ok(!moved.is_empty())
    }
}
