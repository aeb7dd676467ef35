//! Large customer exports ([`kind::CUSTOMER_EXPORT`]): the customers a definition matches
//! (or every customer) within the asker's reach when it runs, as the CSV of
//! `GET /api/v1/customers/export`, written to a file every node can serve
//! (`GET /api/v1/customers/exports/{job_id}/file`). Phone and e-mail are masked unless
//! the asker revealed them (checked, and audited, when it was asked for).
//!
//! Exactly once: the file, the export's row and the job's completion commit together
//! (`TenantScope::finish_export`); a try cut off before that stored nothing.

use serde::{Deserialize, Serialize};
use siyu_audience::Condition;
use siyu_domain::audit::Actor;
use siyu_domain::customer::{Customer, EXPORT_HEADER, export_row};
use siyu_domain::jobs::kind;
use siyu_domain::page::PageRequest;

use crate::acting::scope_of;
use crate::tagging::{matching, tenant_of};
use crate::{JobError, JobHandler, Services, handler_fn};

/// Customers read per step.
const STEP: usize = 500;

/// What an export job does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerExport {
    /// Who: those a definition matches; everyone within reach when absent.
    pub condition: Option<Condition>,
    /// Phone and e-mail in full.
    pub reveal: bool,
    /// Who asked: the job reads with their data scope.
    pub actor: Actor,
}

pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(kind::CUSTOMER_EXPORT, move |ctx| {
        let services = services.clone();
        async move {
            let job: CustomerExport = ctx.payload()?;
            let tenant = tenant_of(&ctx)?;
            let scope = scope_of(&services.store, tenant, &job.actor).await?;
            let mut csv = csv::WriterBuilder::new().from_writer(Vec::new());
            csv.write_record(EXPORT_HEADER).map_err(JobError::retry)?;
            let mut rows = 0i64;
            match &job.condition {
                Some(condition) => {
                    let mut ids = matching(&services.audiences, &scope, condition).await?;
                    ids.reverse(); // newest first, as the list shows them
                    let total = ids.len() as i64;
                    for (n, part) in ids.chunks(STEP).enumerate() {
                        let mut customers = scope.customers_by_ids(part).await?;
                        customers.sort_by_key(|c| std::cmp::Reverse(c.id.0));
                        rows += write(&mut csv, customers, job.reveal)?;
                        let done = ((n + 1) * STEP).min(ids.len()) as i64;
                        ctx.progress(done, Some(total), None).await?;
                    }
                }
                None => {
                    let mut after = None;
                    loop {
                        let page = PageRequest {
                            after,
                            after_pair: None,
                            limit: STEP as u32,
                        };
                        let list = scope.list_customers(page, None).await?;
                        after = list.items.last().map(|c| c.id.0);
                        let more = list.next_cursor.is_some();
                        rows += write(&mut csv, list.items, job.reveal)?;
                        ctx.progress(rows, None, None).await?;
                        if !more {
                            break;
                        }
                    }
                }
            }
            let bytes = csv.into_inner().map_err(JobError::retry)?;
            let name = format!("customers-{}.csv", ctx.job.id.0);
            let stored = scope
                .finish_export(ctx.job.id, &ctx.worker, &name, "text/csv", bytes, rows)
                .await?;
            if !stored {
                tracing::warn!(
                    job = ctx.job.id.0,
                    "an export job was no longer this worker's"
                );
            }
            Ok(())
        }
    })
}

/// Writes customers as rows (masked unless revealed); answers how many.
fn write(
    csv: &mut csv::Writer<Vec<u8>>,
    customers: Vec<Customer>,
    reveal: bool,
) -> Result<i64, JobError> {
    let n = customers.len() as i64;
    for customer in customers {
        let customer = if reveal { customer } else { customer.masked() };
        csv.write_record(export_row(&customer))
            .map_err(JobError::retry)?;
    }
    Ok(n)
}
