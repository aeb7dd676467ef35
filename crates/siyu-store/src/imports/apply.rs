//! Storing the records of one part of an import in the caller's transaction: customer
//! rows as identify events of the tenant's `CSV import` source (through ingestion, so
//! identity resolution, merges and trait times work exactly as for live data; each
//! row's message id is a fingerprint of its content, so a row imported again is
//! recognised), order rows as upserts on the order id. What can be decided before the
//! transaction (tags that do not exist, trait names over the tenant's limits) is, so the
//! transaction holds the write lock only to write.

use std::collections::HashMap;
use std::io::Read;
use std::iter::Peekable;

use serde_json::{Map, Value, json};
use siyu_domain::audience::{TagId, TagOrigin};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::import::{
    CustomerRecord, CustomerRef, ImportReader, OrderRecord, Record, RejectedRow,
};
use siyu_domain::tracking::{EventType, TrackedEvent};
use siyu_domain::traits::TOO_MANY_TRAITS;

use super::{IMPORT_SOURCE, ImportProgress, PART};
use crate::db::now_ms;
use crate::orders::{
    check_currency_of, currency_settings, refresh_order_stats_of, upsert_order_row,
};
use crate::privacy::ConsentChange;
use crate::sources::SourceRef;
use crate::tracked::{IngestItem, IngestOutcome};
use crate::tx::Tx;
use crate::{Result, StoreError, TenantScope};

/// Reads the next part of a file: up to [`PART`] records, the rows the reader refused
/// counted in `state`. Answers the records and how many items it took from the reader.
pub(super) fn read_part<R: Read>(
    rows: &mut Peekable<ImportReader<R>>,
    state: &mut ImportProgress,
) -> (Vec<Record>, u64) {
    let mut records = Vec::with_capacity(PART);
    let mut items = 0;
    while items < PART as u64 {
        match rows.next() {
            Some(Ok(record)) => records.push(record),
            Some(Err(rejected)) => state.reject(rejected),
            None => break,
        }
        items += 1;
    }
    (records, items)
}

/// A part's records with what was decided before its transaction.
pub(super) struct Prepared<'r> {
    source: Option<SourceRef>,
    /// Customer rows to store, with their identify events.
    customers: Vec<&'r CustomerRecord>,
    items: Vec<IngestItem>,
    tags: HashMap<String, i64>,
    orders: Vec<&'r OrderRecord>,
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
        customer: None,
    }
}

impl TenantScope<'_> {
    /// The tenant's `CSV import` source, made the first time.
    async fn import_source(&self, actor: &Actor) -> Result<SourceRef> {
        self.server_source(IMPORT_SOURCE, actor).await
    }

    /// What can be decided about a part before its transaction: customer rows naming a
    /// tag the tenant lacks, or bringing more new trait names than the tenant's limits
    /// allow, are refused whole (counted in `state`).
    pub(super) async fn prepare_part<'r>(
        &self,
        records: &'r [Record],
        actor: &Actor,
        state: &mut ImportProgress,
    ) -> Result<Prepared<'r>> {
        let mut customers = Vec::new();
        let mut orders = Vec::new();
        for record in records {
            match record {
                Record::Customer(c) => customers.push(c),
                Record::Order(o) => orders.push(o),
            }
        }
        let mut prepared = Prepared {
            source: None,
            customers: Vec::new(),
            items: Vec::new(),
            tags: HashMap::new(),
            orders,
        };
        if customers.is_empty() {
            return Ok(prepared);
        }
        let source = self.import_source(actor).await?;
        prepared.source = Some(source);
        if customers.iter().any(|r| !r.tags.is_empty()) {
            prepared.tags = self.tag_catalog().await?;
        }
        let now = now_ms();
        let mut accepted: Vec<&CustomerRecord> = Vec::with_capacity(customers.len());
        for record in customers {
            match record.tags.iter().find(|t| !prepared.tags.contains_key(*t)) {
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
        for ((record, item), refusal) in accepted.into_iter().zip(items).zip(refusals) {
            match refusal {
                Some(reason) => state.reject(RejectedRow {
                    line: record.line,
                    reason: format!("{TOO_MANY_TRAITS}: {reason}"),
                }),
                None => {
                    prepared.customers.push(record);
                    prepared.items.push(item);
                }
            }
        }
        Ok(prepared)
    }

    /// Stores a prepared part in `tx` (begun by `begin_changing_customers`).
    pub(super) async fn write_part(
        &self,
        tx: &mut Tx,
        prepared: Prepared<'_>,
        actor: &Actor,
        state: &mut ImportProgress,
    ) -> Result<()> {
        if !prepared.items.is_empty() {
            self.write_customers(tx, &prepared, actor, state).await?;
        }
        if !prepared.orders.is_empty() {
            self.write_orders(tx, &prepared.orders, state).await?;
        }
        Ok(())
    }

    async fn write_customers(
        &self,
        tx: &mut Tx,
        prepared: &Prepared<'_>,
        actor: &Actor,
        state: &mut ImportProgress,
    ) -> Result<()> {
        let accepted = &prepared.customers;
        // each row whole: its profile and identities, its consents and its tags commit
        // together (a crash between them would leave an opted-out customer contactable)
        let outcomes = crate::ingest::ingest_in(tx, &prepared.items).await?;
        let mut tagging: HashMap<Vec<i64>, Vec<CustomerId>> = HashMap::new();
        let mut consents: Vec<(CustomerId, ConsentChange)> = Vec::new();
        // rows imported before (by another import of the same file) whose consents and
        // tags may differ: their profiles, found at once
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
                let mut ids: Vec<i64> = record.tags.iter().map(|t| prepared.tags[t]).collect();
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
        self.record_consents_in(tx, &consents, true, actor).await?;
        // tags already on a customer stay as they are: importing again adds nothing
        for (ids, customers) in tagging {
            let ids: Vec<TagId> = ids.into_iter().map(TagId).collect();
            self.change_tags_in(
                tx,
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
        Ok(())
    }

    /// Upserts order rows in `tx`. A row the data refuses (an unknown customer or unit,
    /// an order id of another customer, a currency without a rate) is counted refused;
    /// every such refusal is found by a read before any write, so the transaction stays
    /// usable. A new customer named by an identity is made in `tx` too, after the
    /// order's currency is known to be acceptable (a refused order makes no profile).
    async fn write_orders(
        &self,
        tx: &mut Tx,
        orders: &[&OrderRecord],
        state: &mut ImportProgress,
    ) -> Result<()> {
        let settings = currency_settings(tx, self.tenant).await?;
        let mut buyers: Vec<CustomerId> = Vec::with_capacity(orders.len());
        for record in orders {
            let recorded = async {
                check_currency_of(tx, self.tenant, &settings, &record.order).await?;
                let customer = match &record.customer {
                    CustomerRef::Id(id) => {
                        crate::profiles::live_customer_in(tx, self.tenant, CustomerId(*id)).await?
                    }
                    CustomerRef::Identity(identity) => {
                        crate::profiles::ensure_customer_in(tx, self.tenant, identity).await?
                    }
                };
                let (_, created) = upsert_order_row(
                    tx,
                    self.tenant,
                    customer,
                    &record.order,
                    &settings,
                    "import",
                )
                .await?;
                Ok::<_, StoreError>((customer, created))
            }
            .await;
            match recorded {
                Ok((customer, created)) => {
                    buyers.push(customer);
                    state.processed += 1;
                    if created {
                        state.stored += 1
                    } else {
                        state.unchanged += 1
                    }
                }
                Err(
                    e @ (StoreError::NotFound(_) | StoreError::Conflict(_) | StoreError::Domain(_)),
                ) => state.reject(RejectedRow {
                    line: record.line,
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
        // each buyer's figures once, from all their orders
        refresh_order_stats_of(tx, self.tenant, &buyers).await
    }

    /// Stores the rows of `reader` (the command line's import: no import row, no job),
    /// a part per transaction, calling `progress` after each. Refused rows are counted
    /// and reported, not fatal; a database failure stops the import (the parts stored
    /// stay stored; importing the file again stores the rest and changes nothing else).
    pub async fn run_import<R: Read>(
        &self,
        reader: ImportReader<R>,
        actor: &Actor,
        mut progress: impl FnMut(&ImportProgress),
    ) -> Result<ImportProgress> {
        // rows name any customer, or make new ones: only for a tenant-wide reach
        self.check_tenant_wide("importing")?;
        let mut state = ImportProgress::default();
        let mut rows = reader.peekable();
        while rows.peek().is_some() {
            let (records, _) = read_part(&mut rows, &mut state);
            let mut next = state.clone();
            let prepared = self.prepare_part(&records, actor, &mut next).await?;
            let mut tx = self.store.begin_changing_customers(&[self.tenant]).await?;
            self.write_part(&mut tx, prepared, actor, &mut next).await?;
            tx.commit().await?;
            state = next;
            progress(&state);
        }
        progress(&state);
        Ok(state)
    }
}
