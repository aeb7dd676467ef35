//! Customer transfers between WeCom members (客户继承), one row per customer relation
//! (`wecom_transfers`, migration 23), followed to their end by the runtime's
//! `wecom.transfer` and `wecom.transfer_result` jobs.
//!
//! Asking ([`TenantScope::ask_wecom_transfers`]) checks what siyu knows before WeCom is
//! called, so a refusal comes back in the answer with its reason rather than as a job
//! that fails a day later: the members (the handover must have left for a resigned
//! transfer and not for an in-office one; the takeover must still be here and within
//! the caller's reach), the customers (every one named must exist and be within reach,
//! else not found, as everywhere), and per customer whether the handover has them, a
//! transfer is under way already, or (in office) two transfers in the last 90 days were
//! started already — WeCom's limit, which siyu keeps from its own rows. The rest are
//! recorded `asking` with their job, in one transaction, audited: the job exists if and
//! only if the rows do. At most one transfer per customer and corp is under way (a
//! partial unique index), so two requests racing cannot both ask.
//!
//! What the jobs report, the lists and the customers of members who left are in
//! `wecom_transfer_state.rs`.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{ConnectorId, JobId, StaffId, TransferId};
use siyu_domain::jobs::kind;
use siyu_domain::transfer::{
    IN_OFFICE_LIMIT, LIMIT_WINDOW_MS, MemberRef, NewTransfers, RefusalCode, TransferCustomers,
    TransferKind, TransferPayload, TransferRefusal, TransferStatus, WecomTransfer,
};

use super::wecom_staff::WecomMemberRow;
use crate::audit;
use crate::db::{id_list, now_ms, on_db};
use crate::jobs::{NewJob, enqueue_in};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
pub(super) struct TransferRow {
    id: i64,
    connector_id: i64,
    kind: String,
    external_userid: String,
    customer_id: Option<i64>,
    handover_userid: String,
    handover_staff_id: Option<i64>,
    takeover_userid: String,
    takeover_staff_id: Option<i64>,
    status: String,
    errcode: Option<i64>,
    reason: Option<String>,
    takeover_at: Option<i64>,
    asked_at: i64,
    finished_at: Option<i64>,
    job_id: Option<i64>,
    asked_by_staff_id: Option<i64>,
}

pub(super) const COLUMNS: &str = "id, connector_id, kind, external_userid, customer_id, handover_userid, \
     handover_staff_id, takeover_userid, takeover_staff_id, status, errcode, reason, \
     takeover_at, asked_at, finished_at, job_id, asked_by_staff_id";

pub(super) fn transfer_of(row: TransferRow) -> Result<WecomTransfer> {
    let corrupt = |e: DomainError| StoreError::Corrupt(format!("transfer {}: {e}", row.id));
    Ok(WecomTransfer {
        id: TransferId(row.id),
        connector_id: ConnectorId(row.connector_id),
        kind: TransferKind::parse("kind", &row.kind).map_err(corrupt)?,
        external_userid: row.external_userid,
        customer_id: row.customer_id.map(CustomerId),
        handover_userid: row.handover_userid,
        handover_staff_id: row.handover_staff_id.map(StaffId),
        takeover_userid: row.takeover_userid,
        takeover_staff_id: row.takeover_staff_id.map(StaffId),
        status: TransferStatus::parse("status", &row.status).map_err(corrupt)?,
        errcode: row.errcode,
        reason: row.reason,
        takeover_at: row.takeover_at,
        asked_at: row.asked_at,
        finished_at: row.finished_at,
        job_id: row.job_id.map(JobId),
        asked_by_staff_id: row.asked_by_staff_id.map(StaffId),
    })
}

/// What asking for transfers did: the job that asks WeCom (none when every customer
/// was refused), how many relations it asks for, and the customers siyu refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransfersAsked {
    pub job: Option<JobId>,
    pub asked: u64,
    pub refused: Vec<TransferRefusal>,
}

impl TenantScope<'_> {
    /// Records transfers and their job, or refuses (see the module's documentation).
    pub async fn ask_wecom_transfers(
        &self,
        id: ConnectorId,
        new: &NewTransfers,
        asked_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<TransfersAsked> {
        self.check_connector(id).await?;
        let handover = self.transfer_member(id, "handover", &new.handover).await?;
        let takeover = self.transfer_member(id, "takeover", &new.takeover).await?;
        if handover.userid == takeover.userid {
            return Err(DomainError::invalid(
                "takeover",
                "must be another member than the handover",
            )
            .into());
        }
        match (new.kind, handover.left_at) {
            (TransferKind::Resigned, None) => {
                return Err(DomainError::invalid(
                    "kind",
                    "the handover member has not left the corp: use in_office (WeCom 40097)",
                )
                .into());
            }
            (TransferKind::InOffice, Some(_)) => {
                return Err(DomainError::invalid(
                    "kind",
                    "the handover member has left the corp: use resigned",
                )
                .into());
            }
            _ => {}
        }
        if takeover.left_at.is_some() || !matches!(takeover.status, 1 | 4) {
            return Err(DomainError::invalid(
                "takeover",
                "the takeover member must be active in the corp",
            )
            .into());
        }
        let (targets, mut refused) = self
            .transfer_targets(id, &handover.userid, &new.customers)
            .await?;
        // the customers go to the takeover's staff: someone the caller could hand them to
        self.check_owner_within_reach(Some(StaffId(takeover.staff_id)))?;

        let now = now_ms();
        let mut tx = self.store.begin_writing().await?;
        sweep_stale(&mut tx, id, now).await?;
        let external: Vec<&str> = targets.iter().map(|(_, e)| e.as_str()).collect();
        let pending = pending_in(&mut tx, id, &external).await?;
        let counts = if new.kind == TransferKind::InOffice {
            in_office_counts(&mut tx, id, &external, now - LIMIT_WINDOW_MS).await?
        } else {
            HashMap::new()
        };
        let mut asked: Vec<(CustomerId, &str)> = Vec::new();
        for (customer, external) in &targets {
            let code = if pending.contains(external) {
                Some(RefusalCode::AlreadyBeingTransferred)
            } else if counts.get(external).copied().unwrap_or(0) >= IN_OFFICE_LIMIT {
                Some(RefusalCode::TransferredTwice)
            } else {
                None
            };
            match code {
                Some(code) => refused.push(TransferRefusal::new(
                    Some(*customer),
                    Some(external.clone()),
                    code,
                )),
                None => asked.push((*customer, external)),
            }
        }
        if asked.is_empty() {
            tx.commit().await?;
            return Ok(TransfersAsked {
                job: None,
                asked: 0,
                refused,
            });
        }
        let payload = TransferPayload {
            connector_id: id,
            kind: new.kind,
            handover_userid: handover.userid.clone(),
            takeover_userid: takeover.userid.clone(),
            message: new.message.clone(),
        };
        let payload = serde_json::to_value(&payload)
            .map_err(|e| StoreError::Corrupt(format!("a transfer payload: {e}")))?;
        let mut job = NewJob::new(kind::WECOM_TRANSFER, payload).for_tenant(self.tenant);
        if let Some(staff) = asked_by {
            job = job.created_by(staff);
        }
        let job = enqueue_in(&mut tx, &[job])
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| StoreError::Conflict("the transfer's job was not made".into()))?;
        let rows = NewRows {
            tenant: self.tenant.0,
            connector: id,
            kind: new.kind,
            handover: &handover,
            takeover: &takeover,
            job,
            asked_by,
            now,
        };
        rows.insert(&mut tx, &asked).await?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONNECTOR_TRANSFER_ASKED, "connector", id.0).with_details(
                json!({
                    "job_id": job.0,
                    "kind": new.kind.as_str(),
                    "handover_userid": handover.userid,
                    "takeover_userid": takeover.userid,
                    "customers": asked.iter().map(|(c, _)| c.0).collect::<Vec<_>>(),
                    "refused": refused.len(),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.store.notify_jobs();
        Ok(TransfersAsked {
            job: Some(job),
            asked: asked.len() as u64,
            refused,
        })
    }

    /// A member named in a transfer: a staff id that is no staff is not found; staff
    /// or a userid that is no member of this corp is refused naming the field.
    async fn transfer_member(
        &self,
        id: ConnectorId,
        side: &str,
        member: &MemberRef,
    ) -> Result<WecomMemberRow> {
        let (userid, staff) = match member {
            MemberRef::Staff(staff) => {
                self.get_staff(*staff).await?;
                (None, Some(staff.0))
            }
            MemberRef::Userid(userid) => (Some(userid.as_str()), None),
        };
        let row: Option<WecomMemberRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT userid, staff_id, name, main_department, status, left_at, welcome \
                 FROM wecom_members WHERE connector_id = $1 AND tenant_id = $2 \
                 AND (userid = $3 OR staff_id = $4)",
            )
            .bind(id.0)
            .bind(self.tenant.0)
            .bind(userid)
            .bind(staff)
            .fetch_optional(db)
            .await?
        });
        row.ok_or_else(|| {
            let field = match member {
                MemberRef::Staff(_) => format!("{side}_staff_id"),
                MemberRef::Userid(_) => format!("{side}_userid"),
            };
            DomainError::invalid(
                field,
                "is not a member of this WeCom corp (sync its staff first)",
            )
            .into()
        })
    }

    /// The relations of the handover member with the customers named: every customer
    /// must exist and be within reach (else not found); those the handover does not
    /// have are refused.
    async fn transfer_targets(
        &self,
        id: ConnectorId,
        handover: &str,
        customers: &TransferCustomers,
    ) -> Result<(Vec<(CustomerId, String)>, Vec<TransferRefusal>)> {
        let mut targets = Vec::new();
        let mut refused = Vec::new();
        match customers {
            TransferCustomers::Ids(ids) => {
                let survivors = self.survivors(ids).await?;
                self.check_reach(&survivors).await?;
                let relations = self.handover_relations(id, handover, &survivors).await?;
                for customer in survivors {
                    let mine: Vec<&(CustomerId, String)> =
                        relations.iter().filter(|(c, _)| *c == customer).collect();
                    if mine.is_empty() {
                        refused.push(TransferRefusal::new(
                            Some(customer),
                            None,
                            RefusalCode::NotHandoversCustomer,
                        ));
                    }
                    targets.extend(mine.into_iter().cloned());
                }
            }
            TransferCustomers::External(external) => {
                let linked = self.linked_customers(id, external).await?;
                let customers: Vec<CustomerId> = {
                    let mut seen = HashSet::new();
                    linked
                        .values()
                        .copied()
                        .filter(|c| seen.insert(*c))
                        .collect()
                };
                self.check_reach(&customers).await?;
                let live: HashSet<String> = self
                    .handover_relations(id, handover, &customers)
                    .await?
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect();
                for e in external {
                    let customer = *linked
                        .get(e.as_str())
                        .ok_or(StoreError::NotFound("customer"))?;
                    if live.contains(e) {
                        targets.push((customer, e.clone()));
                    } else {
                        refused.push(TransferRefusal::new(
                            Some(customer),
                            Some(e.clone()),
                            RefusalCode::NotHandoversCustomer,
                        ));
                    }
                }
            }
        }
        Ok((targets, refused))
    }

    /// The live profiles of these ids (a merged one's survivor), in order, each once;
    /// an id that is no live customer of the tenant is not found.
    async fn survivors(&self, ids: &[CustomerId]) -> Result<Vec<CustomerId>> {
        let mut of: HashMap<i64, i64> = HashMap::new();
        for chunk in ids.chunks(500) {
            let list: Vec<i64> = chunk.iter().map(|c| c.0).collect();
            let sql = format!(
                "SELECT c.id, COALESCE(c.merged_into_id, c.id) FROM customers c \
                 LEFT JOIN customers s ON s.tenant_id = c.tenant_id AND s.id = c.merged_into_id \
                 WHERE c.tenant_id = $1 AND c.id IN ({}) \
                 AND COALESCE(s.erased_at, c.erased_at) IS NULL",
                id_list(&list)
            );
            let rows: Vec<(i64, i64)> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .fetch_all(db)
                    .await?
            });
            of.extend(rows);
        }
        let mut seen = HashSet::new();
        let mut survivors = Vec::new();
        for c in ids {
            let survivor = *of.get(&c.0).ok_or(StoreError::NotFound("customer"))?;
            if seen.insert(survivor) {
                survivors.push(CustomerId(survivor));
            }
        }
        Ok(survivors)
    }

    /// The profiles these external userids are linked to in this corp; one siyu does
    /// not know is not found.
    async fn linked_customers<'e>(
        &self,
        id: ConnectorId,
        external: &'e [String],
    ) -> Result<HashMap<&'e str, CustomerId>> {
        let mut linked = HashMap::new();
        for chunk in external.chunks(300) {
            let sql = |p: &mut Placeholders| {
                let (connector, tenant) = (p.next(), p.next());
                format!(
                    "SELECT w.external_userid, COALESCE(c.merged_into_id, w.customer_id) \
                     FROM wecom_contacts w JOIN customers c \
                     ON c.tenant_id = w.tenant_id AND c.id = w.customer_id \
                     WHERE w.connector_id = {connector} AND w.tenant_id = {tenant} \
                     AND c.erased_at IS NULL AND w.external_userid IN {}",
                    p.row(chunk.len())
                )
            };
            let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
                let sql = sql(&mut Placeholders::for_backend(self.store.backend()));
                let mut query = sqlx::query_as(&sql).bind(id.0).bind(self.tenant.0);
                for e in chunk {
                    query = query.bind(e);
                }
                query.fetch_all(db).await?
            });
            for (e, customer) in rows {
                if let Some(named) = chunk.iter().find(|n| **n == e) {
                    linked.insert(named.as_str(), CustomerId(customer));
                }
            }
        }
        if external.iter().any(|e| !linked.contains_key(e.as_str())) {
            return Err(StoreError::NotFound("customer"));
        }
        Ok(linked)
    }

    /// The handover's live relations with these profiles: (profile, external userid).
    async fn handover_relations(
        &self,
        id: ConnectorId,
        handover: &str,
        customers: &[CustomerId],
    ) -> Result<Vec<(CustomerId, String)>> {
        let mut relations = Vec::new();
        for chunk in customers.chunks(500) {
            let list: Vec<i64> = chunk.iter().map(|c| c.0).collect();
            let sql = format!(
                "SELECT COALESCE(c.merged_into_id, f.customer_id), f.external_userid \
                 FROM wecom_follows f JOIN customers c \
                 ON c.tenant_id = f.tenant_id AND c.id = f.customer_id \
                 WHERE f.connector_id = $1 AND f.tenant_id = $2 AND f.userid = $3 \
                 AND f.deleted_at IS NULL AND COALESCE(c.merged_into_id, f.customer_id) IN ({}) \
                 ORDER BY f.external_userid",
                id_list(&list)
            );
            let rows: Vec<(i64, String)> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(id.0)
                    .bind(self.tenant.0)
                    .bind(handover)
                    .fetch_all(db)
                    .await?
            });
            relations.extend(rows.into_iter().map(|(c, e)| (CustomerId(c), e)));
        }
        Ok(relations)
    }
}

/// The rows of one ask.
struct NewRows<'a> {
    tenant: i64,
    connector: ConnectorId,
    kind: TransferKind,
    handover: &'a WecomMemberRow,
    takeover: &'a WecomMemberRow,
    job: JobId,
    asked_by: Option<StaffId>,
    now: i64,
}

impl NewRows<'_> {
    async fn insert(&self, tx: &mut Tx, asked: &[(CustomerId, &str)]) -> Result<()> {
        for chunk in asked.chunks(200) {
            let mut p = Placeholders::for_tx(tx);
            let values: Vec<String> = chunk.iter().map(|_| p.row(13)).collect();
            let sql = format!(
                "INSERT INTO wecom_transfers (connector_id, tenant_id, kind, external_userid, \
                 customer_id, handover_userid, handover_staff_id, takeover_userid, \
                 takeover_staff_id, status, asked_at, job_id, asked_by_staff_id) VALUES {}",
                values.join(",")
            );
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for (customer, external) in chunk {
                    query = query
                        .bind(self.connector.0)
                        .bind(self.tenant)
                        .bind(self.kind.as_str())
                        .bind(*external)
                        .bind(customer.0)
                        .bind(&self.handover.userid)
                        .bind(self.handover.staff_id)
                        .bind(&self.takeover.userid)
                        .bind(self.takeover.staff_id)
                        .bind(TransferStatus::Asking.as_str())
                        .bind(self.now)
                        .bind(self.job.0)
                        .bind(self.asked_by.map(|s| s.0));
                }
                query.execute(&mut *c).await.map_err(|e| {
                    StoreError::from_constraint(
                        e,
                        "a transfer of one of these customers is already under way",
                        "",
                    )
                })?;
            });
        }
        Ok(())
    }
}

/// Fails the `asking` transfers whose job ended without asking WeCom (cancelled, or
/// dead without saying so), so they neither block the customer nor count.
async fn sweep_stale(tx: &mut Tx, id: ConnectorId, now: i64) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE wecom_transfers SET status = 'failed', finished_at = $1, \
             reason = 'its job ended before WeCom was asked' \
             WHERE connector_id = $2 AND status = 'asking' AND NOT EXISTS (SELECT 1 FROM jobs j \
             WHERE j.id = wecom_transfers.job_id AND j.state IN ('waiting', 'running'))",
        )
        .bind(now)
        .bind(id.0)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// The external userids of `external` with a transfer under way.
async fn pending_in(tx: &mut Tx, id: ConnectorId, external: &[&str]) -> Result<HashSet<String>> {
    let mut pending = HashSet::new();
    for chunk in external.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let connector = p.next();
        let sql = format!(
            "SELECT external_userid FROM wecom_transfers WHERE connector_id = {connector} \
             AND status IN ('asking', 'waiting') AND external_userid IN {}",
            p.row(chunk.len())
        );
        let rows: Vec<String> = on_tx!(tx, |c| {
            let mut query = sqlx::query_scalar(&sql).bind(id.0);
            for e in chunk {
                query = query.bind(*e);
            }
            query.fetch_all(&mut *c).await?
        });
        pending.extend(rows);
    }
    Ok(pending)
}

/// In-office transfers WeCom started (or siyu is about to ask for) per customer since
/// `since`: what WeCom's limit of two per 90 days counts.
async fn in_office_counts(
    tx: &mut Tx,
    id: ConnectorId,
    external: &[&str],
    since: i64,
) -> Result<HashMap<String, i64>> {
    let mut counts = HashMap::new();
    for chunk in external.chunks(300) {
        let mut p = Placeholders::for_tx(tx);
        let (connector, since_p) = (p.next(), p.next());
        let sql = format!(
            "SELECT external_userid, COUNT(*) FROM wecom_transfers \
             WHERE connector_id = {connector} AND kind = 'in_office' AND asked_at >= {since_p} \
             AND status <> 'failed' AND errcode IS NULL AND external_userid IN {} \
             GROUP BY external_userid",
            p.row(chunk.len())
        );
        let rows: Vec<(String, i64)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql).bind(id.0).bind(since);
            for e in chunk {
                query = query.bind(*e);
            }
            query.fetch_all(&mut *c).await?
        });
        counts.extend(rows);
    }
    Ok(counts)
}
