//! Running imports: checked rows from [`ImportReader`] stored in batches, with progress.
//!
//! Customer rows go through the same path as tracked events (an `identify` from the
//! tenant's `CSV import` source), so identity resolution, merges and trait times work
//! exactly as for live data. Each row's message id is a fingerprint of its content: a
//! row imported again within the deduplication window is recognised and skipped, and
//! after it an identify with the same identities and traits changes nothing. Order rows
//! are upserts on the order id. A batch is one transaction, so a row is stored whole
//! or not at all.

use serde_json::{Map, Value, json};
use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::{CustomerId, SourceKind};
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::import::{
    CustomerRecord, CustomerRef, ImportJob, ImportKind, ImportReader, ImportStatus,
    MAX_REPORTED_REJECTS, Record, RejectedRow,
};
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::tracking::{EventType, TrackedEvent};
use std::collections::HashMap;

use crate::db::{now_ms, on_db};
use crate::privacy::ConsentChange;
use crate::sources::SourceRef;
use crate::tracked::{IngestItem, IngestOutcome};
use crate::{Result, StoreError, TenantScope};
use siyu_domain::traits::TOO_MANY_TRAITS;

/// The name of the source customer imports are recorded under.
pub const IMPORT_SOURCE: &str = "CSV import";

/// Rows per transaction.
const BATCH: usize = 500;

/// An import job that stopped updating this long ago has lost its process.
const STALE_MS: i64 = 120_000;

/// Where an import run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportProgress {
    pub processed: u64,
    pub stored: u64,
    /// Rows that changed nothing: imported before.
    pub unchanged: u64,
    pub rejected: u64,
    /// The first refused rows (up to [`MAX_REPORTED_REJECTS`]).
    pub rejects: Vec<RejectedRow>,
}

impl ImportProgress {
    fn reject(&mut self, row: RejectedRow) {
        self.processed += 1;
        self.rejected += 1;
        if self.rejects.len() < MAX_REPORTED_REJECTS {
            self.rejects.push(row);
        }
    }
}

#[derive(sqlx::FromRow)]
struct ImportRow {
    id: i64,
    kind: String,
    status: String,
    file_name: String,
    total_rows: i64,
    processed_rows: i64,
    stored_rows: i64,
    rejected_rows: i64,
    rejects: String,
    error: Option<String>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

const IMPORT_COLUMNS: &str = "id, kind, status, file_name, total_rows, processed_rows, \
     stored_rows, rejected_rows, rejects, error, created_by, created_at, updated_at";

impl TryFrom<ImportRow> for ImportJob {
    type Error = StoreError;

    fn try_from(r: ImportRow) -> Result<ImportJob> {
        let mut status = ImportStatus::parse("status", &r.status)
            .map_err(|_| StoreError::Corrupt(format!("import {}: status", r.id)))?;
        if status == ImportStatus::Running && now_ms() - r.updated_at > STALE_MS {
            status = ImportStatus::Interrupted;
        }
        Ok(ImportJob {
            id: r.id,
            kind: ImportKind::parse("kind", &r.kind)
                .map_err(|_| StoreError::Corrupt(format!("import {}: kind", r.id)))?,
            status,
            file_name: r.file_name,
            total_rows: r.total_rows,
            processed_rows: r.processed_rows,
            stored_rows: r.stored_rows,
            rejected_rows: r.rejected_rows,
            rejects: serde_json::from_str(&r.rejects).unwrap_or_default(),
            error: r.error,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The identify event an imported customer row stands for.
fn identify_of(record: &CustomerRecord, received_at: i64) -> TrackedEvent {
    let mut user_id = None;
    let mut anonymous_id = None;
    let mut external = Vec::new();
    for identity in &record.identities {
        match identity.kind.as_str() {
            IdentityKind::USER_ID if user_id.is_none() => user_id = Some(identity.value.clone()),
            IdentityKind::ANONYMOUS_ID if anonymous_id.is_none() => {
                anonymous_id = Some(identity.value.clone())
            }
            // email and phone are traits (the reader put them there)
            IdentityKind::EMAIL | IdentityKind::PHONE => {}
            kind => external.push(json!({"id": identity.value, "type": kind})),
        }
    }
    let mut context = Map::new();
    if !external.is_empty() {
        context.insert("externalIds".into(), Value::Array(external));
    }
    TrackedEvent {
        event_type: EventType::Identify,
        message_id: format!("import-{}", record.fingerprint()),
        user_id,
        anonymous_id,
        name: String::new(),
        properties: Map::new(),
        traits: record.traits.clone(),
        context,
        group_id: None,
        previous_id: None,
        timestamp: received_at,
        received_at,
        commerce: None,
    }
}

impl TenantScope<'_> {
    /// The tenant's `CSV import` source, made the first time.
    async fn import_source(&self, actor: &Actor) -> Result<SourceRef> {
        for _ in 0..2 {
            let found: Option<i64> = on_db!(self.store, |db| {
                sqlx::query_scalar("SELECT id FROM sources WHERE tenant_id = $1 AND name = $2")
                    .bind(self.tenant.0)
                    .bind(IMPORT_SOURCE)
                    .fetch_optional(db)
                    .await?
            });
            if let Some(id) = found {
                return Ok(SourceRef {
                    tenant: self.tenant,
                    source: siyu_domain::customer::SourceId(id),
                    kind: SourceKind::Server,
                    time_zone: self.time_zone().await?,
                });
            }
            match self
                .create_source(IMPORT_SOURCE, SourceKind::Server, actor)
                .await
            {
                Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("cannot make the import source".into()))
    }

    /// Stores the rows of `reader`, calling `progress` after every batch (and recording
    /// it on the import `job`, if there is one). Refused rows are counted and reported,
    /// not fatal; a database failure stops the import (what was stored stays stored).
    pub async fn run_import<R: std::io::Read>(
        &self,
        reader: ImportReader<R>,
        actor: &Actor,
        job: Option<i64>,
        mut progress: impl FnMut(&ImportProgress),
    ) -> Result<ImportProgress> {
        let mut state = ImportProgress::default();
        let mut source = None;
        let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
        let mut reader = reader.peekable();
        while reader.peek().is_some() {
            batch.clear();
            while batch.len() < BATCH {
                match reader.next() {
                    Some(Ok(record)) => batch.push(record),
                    Some(Err(rejected)) => state.reject(rejected),
                    None => break,
                }
            }
            let customers: Vec<&CustomerRecord> = batch
                .iter()
                .filter_map(|r| match r {
                    Record::Customer(c) => Some(c),
                    Record::Order(_) => None,
                })
                .collect();
            if !customers.is_empty() {
                let source = match source {
                    Some(s) => s,
                    None => *source.insert(self.import_source(actor).await?),
                };
                self.import_customers(source, &customers, actor, &mut state)
                    .await?;
            }
            for record in &batch {
                if let Record::Order(order) = record {
                    let recorded = match &order.customer {
                        CustomerRef::Id(id) => {
                            self.record_order(CustomerId(*id), &order.order, "import")
                                .await
                        }
                        CustomerRef::Identity(identity) => {
                            self.record_order_for(identity, &order.order, "import")
                                .await
                        }
                    };
                    match recorded {
                        Ok((_, created)) => {
                            state.processed += 1;
                            if created {
                                state.stored += 1
                            } else {
                                state.unchanged += 1
                            }
                        }
                        Err(
                            e @ (StoreError::NotFound(_)
                            | StoreError::Conflict(_)
                            | StoreError::Domain(_)),
                        ) => state.reject(RejectedRow {
                            line: order.line,
                            reason: match e {
                                StoreError::Domain(siyu_domain::DomainError::Invalid(f)) => {
                                    format!("{}: {}", f.field, f.message)
                                }
                                other => other.to_string(),
                            },
                        }),
                        Err(e) => return Err(e),
                    }
                }
            }
            if let Some(job) = job {
                self.update_import(job, &state, ImportStatus::Running, None)
                    .await?;
            }
            progress(&state);
        }
        progress(&state);
        Ok(state)
    }

    async fn import_customers(
        &self,
        source: SourceRef,
        customers: &[&CustomerRecord],
        actor: &Actor,
        state: &mut ImportProgress,
    ) -> Result<()> {
        let now = now_ms();
        // a row naming a tag the tenant lacks is refused whole
        let tags = if customers.iter().any(|r| !r.tags.is_empty()) {
            self.tag_catalog().await?
        } else {
            HashMap::new()
        };
        let mut accepted: Vec<&CustomerRecord> = Vec::with_capacity(customers.len());
        for record in customers {
            match record.tags.iter().find(|t| !tags.contains_key(*t)) {
                Some(unknown) => state.reject(RejectedRow {
                    line: record.line,
                    reason: format!("tags: there is no tag named {unknown:?}"),
                }),
                None => accepted.push(record),
            }
        }
        let items: Vec<IngestItem> = accepted
            .iter()
            .map(|record| IngestItem {
                source,
                event: identify_of(record, now),
            })
            .collect();
        // a row with more new trait names than the tenant's limits allow is refused
        // whole, like a tracked event (see `traits`)
        let refusals = self.store.trait_refusals(&items).await?;
        let (accepted, items): (Vec<&CustomerRecord>, Vec<IngestItem>) = accepted
            .into_iter()
            .zip(items)
            .zip(refusals)
            .filter_map(|((record, item), refusal)| match refusal {
                Some(reason) => {
                    state.reject(RejectedRow {
                        line: record.line,
                        reason: format!("{TOO_MANY_TRAITS}: {reason}"),
                    });
                    None
                }
                None => Some((record, item)),
            })
            .unzip();
        // each row whole: its profile and identities, its consents and its tags commit
        // together (a crash between them would leave an opted-out customer contactable)
        let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
        let outcomes = crate::ingest::ingest_in(&mut tx, &items).await?;
        let mut tagging: HashMap<Vec<i64>, Vec<CustomerId>> = HashMap::new();
        let mut consents: Vec<(CustomerId, ConsentChange)> = Vec::new();
        // rows imported before whose consents and tags may not have been recorded (a
        // crash right after the profiles were stored): their profiles, found at once
        let again: Vec<&Identity> = accepted
            .iter()
            .zip(&outcomes)
            .filter(|(record, outcome)| {
                **outcome == IngestOutcome::Duplicate
                    && !(record.consents.is_empty() && record.tags.is_empty())
            })
            .flat_map(|(record, _)| record.identities.iter())
            .collect();
        let owners = self.identity_owners(&again).await?;
        for (record, outcome) in accepted.iter().zip(outcomes) {
            state.processed += 1;
            let customer = match outcome {
                IngestOutcome::Duplicate => {
                    state.unchanged += 1;
                    if record.consents.is_empty() && record.tags.is_empty() {
                        continue;
                    }
                    let found = record.identities.iter().find_map(|i| {
                        owners
                            .get(&(i.kind.as_str().to_owned(), i.value.clone()))
                            .copied()
                    });
                    match found {
                        Some(id) => id,
                        None => continue,
                    }
                }
                IngestOutcome::Stored(customer) => {
                    state.stored += 1;
                    customer
                }
                // identify calls carry no order, so nothing here is refused
                IngestOutcome::Refused(_) => continue,
            };
            if !record.tags.is_empty() {
                let mut ids: Vec<i64> = record.tags.iter().map(|t| tags[t]).collect();
                ids.sort_unstable();
                tagging.entry(ids).or_default().push(customer);
            }
            for (channel, status) in &record.consents {
                consents.push((
                    customer,
                    ConsentChange {
                        channel: *channel,
                        status: *status,
                        source: "import".into(),
                        note: Some(format!("line {}", record.line)),
                        at: None,
                    },
                ));
            }
        }
        // recorded only where it changes what is in force, so importing the same file
        // again adds nothing to the consent history
        self.record_consents_in(&mut tx, &consents, true, actor)
            .await?;
        // tags already on a customer stay as they are: importing again adds nothing
        for (ids, customers) in tagging {
            let ids: Vec<TagId> = ids.into_iter().map(TagId).collect();
            self.change_tags_in(
                &mut tx,
                &customers,
                &ids,
                &[],
                TagOrigin::Import,
                Some("import"),
                actor,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts recording an import job (the API's imports, which run in the background).
    pub async fn create_import(
        &self,
        kind: ImportKind,
        file_name: &str,
        total_rows: i64,
        actor: &Actor,
    ) -> Result<ImportJob> {
        // rows name any customer, or make new ones: only for a tenant-wide reach
        self.check_tenant_wide("importing")?;
        let now = now_ms();
        let id: i64 = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "INSERT INTO imports (tenant_id, kind, status, file_name, total_rows, created_by, \
                 created_at, updated_at) VALUES ($1, $2, 'running', $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(kind.as_str())
            .bind(file_name)
            .bind(total_rows)
            .bind(&actor.label)
            .bind(now)
            .fetch_one(db)
            .await?
        });
        self.get_import(id).await
    }

    /// Records an import's progress, and its end when `status` is not `running`.
    pub async fn update_import(
        &self,
        id: i64,
        progress: &ImportProgress,
        status: ImportStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let rejects = serde_json::to_string(&progress.rejects).unwrap_or_else(|_| "[]".into());
        on_db!(self.store, |db| {
            sqlx::query(
                "UPDATE imports SET status = $1, processed_rows = $2, stored_rows = $3, \
                 rejected_rows = $4, rejects = $5, error = $6, updated_at = $7 \
                 WHERE tenant_id = $8 AND id = $9",
            )
            .bind(status.as_str())
            .bind(progress.processed as i64)
            .bind((progress.stored + progress.unchanged) as i64)
            .bind(progress.rejected as i64)
            .bind(rejects)
            .bind(error)
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    pub async fn get_import(&self, id: i64) -> Result<ImportJob> {
        let sql = format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE tenant_id = $1 AND id = $2");
        let row: Option<ImportRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("import"))?.try_into()
    }

    /// Imports, newest first.
    pub async fn list_imports(&self, page: PageRequest) -> Result<Page<ImportJob>> {
        let sql = format!(
            "SELECT {IMPORT_COLUMNS} FROM imports WHERE tenant_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<ImportRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after.unwrap_or(i64::MAX))
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let jobs = rows
            .into_iter()
            .map(ImportJob::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(jobs, page, |j| j.id))
    }
}
