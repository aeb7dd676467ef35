//! Where transfers stand (see `wecom_transfers.rs` for asking): the lists, what the
//! runtime's jobs report, and the customers of members who left.
//!
//! The jobs report back through [`TenantScope::record_wecom_transfer_outcomes`]; a
//! succeeded transfer moves the customer's owner to the takeover member's staff in the
//! same transaction (only from the handover's staff or from nobody: an owner someone
//! chose since stays), audited as an assignment. Outcomes are recorded only on
//! transfers still under way, so a job that runs twice changes nothing the second time.
//!
//! Members who left keep their customers until they are assigned:
//! [`TenantScope::unassigned_wecom_customers`] lists those relations that no transfer
//! is moving yet.

use serde_json::json;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, JobId, StaffId, TransferId};
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::transfer::{TransferStatus, UnassignedCustomer, WecomTransfer};

use super::wecom_transfers::{COLUMNS, TransferRow, transfer_of};
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::{Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

/// A transfer's new state, as WeCom told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOutcome {
    pub id: TransferId,
    pub status: TransferStatus,
    pub errcode: Option<i64>,
    pub reason: Option<String>,
    /// When the takeover happens or happened (ms), if WeCom said.
    pub takeover_at: Option<i64>,
}

/// A transfer is under way: `waiting`, or `asking` while its job may still ask.
const PENDING: &str = "(t.status = 'waiting' OR (t.status = 'asking' AND EXISTS (SELECT 1 FROM \
     jobs j WHERE j.id = t.job_id AND j.state IN ('waiting', 'running'))))";

impl TenantScope<'_> {
    /// The corp's transfers within the caller's reach, newest first, of one status if
    /// asked.
    pub async fn list_wecom_transfers(
        &self,
        id: ConnectorId,
        status: Option<TransferStatus>,
        page: PageRequest,
    ) -> Result<Page<WecomTransfer>> {
        self.check_connector(id).await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM wecom_transfers WHERE connector_id = $1 AND tenant_id = $2 \
             AND ($3 IS NULL OR status = $3) AND id < $4{} ORDER BY id DESC LIMIT $5",
            self.within_reach("customer_id")
        );
        let rows: Vec<TransferRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(status.map(TransferStatus::as_str))
                .bind(page.after.unwrap_or(i64::MAX))
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let items = rows
            .into_iter()
            .map(transfer_of)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |t| t.id.0))
    }

    /// The transfers a `wecom.transfer` job asks for (for the runtime).
    pub async fn wecom_transfers_of_job(
        &self,
        id: ConnectorId,
        job: JobId,
    ) -> Result<Vec<WecomTransfer>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM wecom_transfers WHERE connector_id = $1 AND tenant_id = $2 \
             AND job_id = $3 ORDER BY id"
        );
        let rows: Vec<TransferRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(job.0)
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(transfer_of).collect()
    }

    /// Records what WeCom said of transfers still under way (a finished one stays as
    /// it is): a succeeded one moves the customer's owner to the takeover's staff, from
    /// the handover's or from nobody, audited, in the same transaction. Answers how
    /// many rows changed.
    pub async fn record_wecom_transfer_outcomes(
        &self,
        id: ConnectorId,
        outcomes: &[TransferOutcome],
        actor: &Actor,
    ) -> Result<u64> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let mut changed = 0;
        let mut moved = Vec::new();
        for outcome in outcomes {
            let finished = (!outcome.status.is_pending()).then_some(now);
            let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = on_tx!(&mut tx, |c| {
                sqlx::query_as(
                    "UPDATE wecom_transfers SET status = $1, errcode = $2, reason = $3, \
                     takeover_at = COALESCE($4, takeover_at), finished_at = $5 \
                     WHERE connector_id = $6 AND tenant_id = $7 AND id = $8 \
                     AND status IN ('asking', 'waiting') \
                     RETURNING customer_id, handover_staff_id, takeover_staff_id",
                )
                .bind(outcome.status.as_str())
                .bind(outcome.errcode)
                .bind(&outcome.reason)
                .bind(outcome.takeover_at)
                .bind(finished)
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(outcome.id.0)
                .fetch_optional(&mut *c)
                .await?
            });
            let Some((customer, handover, takeover)) = row else {
                continue;
            };
            changed += 1;
            if outcome.status != TransferStatus::Succeeded {
                continue;
            }
            let (Some(customer), Some(takeover)) = (customer, takeover) else {
                continue;
            };
            if let Some(customer) =
                take_over_owner(&mut tx, self, customer, handover, takeover, now).await?
            {
                audit::record(
                    &mut tx,
                    self.tenant,
                    actor,
                    AuditRecord::new(action::CUSTOMER_ASSIGNED, "staff", takeover)
                        .with_details(json!({"customers": [customer.0], "from_staff_id": handover,
                               "wecom_transfer_id": outcome.id.0, "connector_id": id.0})),
                )
                .await?;
                moved.push(customer);
            }
        }
        crate::feed::note_changed(&mut tx, self.tenant, &moved).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Fails the transfers of a job that WeCom was never asked for (the job gave up).
    pub async fn fail_asking_wecom_transfers(
        &self,
        id: ConnectorId,
        job: JobId,
        reason: &str,
    ) -> Result<u64> {
        Ok(on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE wecom_transfers SET status = 'failed', reason = $1, finished_at = $2 \
                 WHERE connector_id = $3 AND tenant_id = $4 AND job_id = $5 AND status = 'asking'",
            )
            .bind(reason)
            .bind(now_ms())
            .bind(id.0)
            .bind(self.tenant.0)
            .bind(job.0)
            .execute(db)
            .await?
            .rows_affected()
        }))
    }

    /// The live relations of members who left that no transfer is moving, within the
    /// caller's reach (of one member when `handover` is given), by customer and member.
    pub async fn unassigned_wecom_customers(
        &self,
        id: ConnectorId,
        handover: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<UnassignedCustomer>> {
        self.check_connector(id).await?;
        let customer = "COALESCE(c.merged_into_id, f.customer_id)";
        let (after_customer, after_staff) = page.after_pair.unwrap_or((0, 0));
        let sql = format!(
            "SELECT {customer} AS customer_id, f.external_userid, f.userid, m.staff_id, \
             m.name, m.left_at, (SELECT t.status FROM wecom_transfers t \
             WHERE t.connector_id = f.connector_id AND t.external_userid = f.external_userid \
             AND t.handover_userid = f.userid ORDER BY t.id DESC LIMIT 1) AS last_status \
             FROM wecom_follows f \
             JOIN wecom_members m ON m.connector_id = f.connector_id AND m.userid = f.userid \
             JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
             WHERE f.connector_id = $1 AND f.tenant_id = $2 AND f.deleted_at IS NULL \
             AND m.left_at IS NOT NULL AND c.erased_at IS NULL AND ($3 IS NULL OR f.userid = $3) \
             AND NOT EXISTS (SELECT 1 FROM wecom_transfers t WHERE t.connector_id = f.connector_id \
             AND t.external_userid = f.external_userid AND {PENDING}) \
             AND ({customer} > $4 OR ({customer} = $4 AND m.staff_id > $5)){} \
             ORDER BY {customer}, m.staff_id LIMIT $6",
            self.within_reach(customer)
        );
        type Row = (i64, String, String, i64, String, i64, Option<String>);
        let rows: Vec<Row> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(id.0)
                .bind(self.tenant.0)
                .bind(handover)
                .bind(after_customer)
                .bind(after_staff)
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let items = rows
            .into_iter()
            .map(|(customer, external, userid, staff, name, left_at, last)| {
                Ok(UnassignedCustomer {
                    customer_id: CustomerId(customer),
                    external_userid: external,
                    handover_userid: userid,
                    handover_staff_id: StaffId(staff),
                    handover_name: name,
                    left_at,
                    last_transfer_status: last
                        .map(|s| TransferStatus::parse("status", &s))
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("a transfer's status: {e}")))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows_by_pair(items, page, |u| {
            (u.customer_id.0, u.handover_staff_id.0)
        }))
    }
}

/// Moves a customer (its live profile) to the takeover's staff when its owner is the
/// handover's staff or nobody; answers the profile when it moved.
async fn take_over_owner(
    tx: &mut Tx,
    scope: &TenantScope<'_>,
    customer: i64,
    handover: Option<i64>,
    takeover: i64,
    now: i64,
) -> Result<Option<CustomerId>> {
    let moved: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "UPDATE customers SET owner_staff_id = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND id = (SELECT COALESCE(merged_into_id, id) FROM customers \
             WHERE tenant_id = $3 AND id = $4) AND erased_at IS NULL AND merged_into_id IS NULL \
             AND (owner_staff_id IS NULL OR owner_staff_id = $5) \
             AND (owner_staff_id IS NULL OR owner_staff_id <> $1) RETURNING id",
        )
        .bind(takeover)
        .bind(now)
        .bind(scope.tenant.0)
        .bind(customer)
        .bind(handover)
        .fetch_optional(&mut *c)
        .await?
    });
    Ok(moved.map(CustomerId))
}
