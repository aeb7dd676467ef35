//! Storing tracked events: deduplication, identity resolution, traits and the events
//! themselves, for many requests in one transaction (group commit: the caller gathers
//! concurrent batches and hands them over together, so the cost of a durable commit is
//! shared).
//!
//! Identity resolution: the identities an event names (user id, anonymous id, email,
//! phone, external ids) are looked up; none found makes a new profile; one found is the
//! profile; several found are one person, so the profiles merge into one — except that
//! a profile holds at most one value of each of the tenant's identifying kinds (by
//! default `user_id`; see `IdentitySettings`), so two profiles with different user ids
//! stay apart and the event goes to the one its user id names. A merge moves identities and
//! events to the survivor, keeps each trait's newest value, points the merged profile at
//! the survivor, and is recorded in `customer_merges`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use siyu_domain::currency::CurrencySettings;
use siyu_domain::customer::CustomerId;
use siyu_domain::identity::Identity;
use siyu_domain::ids::TenantId;
use siyu_domain::order::{Commerce, NewOrder};
use siyu_domain::tracking::{EventType, PAGE_VIEWED, SCREEN_VIEWED, TrackedEvent};

use crate::db::now_ms;
use crate::sources::SourceRef;
use crate::traits::GroupCall;
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, Store, StoreError};
use batch::{Batch, CHUNK};
use resolve::{identifying_kinds, prefetch_owners, resolve_customer};

use crate::tracked::{IngestItem, IngestOutcome};

mod batch;
mod currency;
mod resolve;

impl Store {
    /// Stores events in one transaction and says, for each, whether it was stored (and
    /// on which profile) or was a duplicate. Nothing is stored if this fails.
    ///
    /// The work is done in as few statements as the data allows, because each statement
    /// costs a round trip: message ids are claimed, identities looked up, events
    /// inserted and seen times updated for the whole group at once; only new people,
    /// new identities, trait changes and merges take statements of their own.
    pub async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>> {
        // the group caches the profiles it reads: no one else may change them meanwhile
        // (an import, another server process, a hand edit)
        let tenants: Vec<_> = items.iter().map(|i| i.source.tenant).collect();
        let mut tx = self.begin_changing_customers(&tenants).await?;
        let outcomes = ingest_in(&mut tx, items).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Forgets message ids older than the deduplication window.
    pub async fn prune_message_ids(&self, window_ms: i64) -> Result<u64> {
        let before = now_ms() - window_ms;
        Ok(crate::on_db!(self, |db| {
            sqlx::query("DELETE FROM message_ids WHERE received_at < $1")
                .bind(before)
                .execute(db)
                .await?
                .rows_affected()
        }))
    }
}

/// Stores events inside a transaction that holds the customer lock of their tenants
/// (see [`Store::begin_changing_customers`]); [`Store::ingest`] and the ingest log's
/// apply both come here.
pub(crate) async fn ingest_in(tx: &mut Tx, items: &[IngestItem]) -> Result<Vec<IngestOutcome>> {
    let tenants: Vec<_> = items.iter().map(|i| i.source.tenant).collect();
    let mut batch = Batch::default();
    let refused = batch.check_currencies(tx, items).await?;
    let fresh = claim_message_ids(tx, items, &refused).await?;
    // each new event's identities, worked out once (normalising phones and emails)
    let identities: Vec<Vec<Identity>> = items
        .iter()
        .zip(&fresh)
        .map(|(item, fresh)| {
            if *fresh {
                item.event.identities()
            } else {
                Vec::new()
            }
        })
        .collect();
    batch.known = prefetch_owners(tx, items, &identities).await?;
    for tenant in &tenants {
        if !batch.identifying.contains_key(tenant) {
            let kinds = identifying_kinds(tx, *tenant).await?;
            batch.identifying.insert(*tenant, kinds);
        }
    }
    batch.prefetch_profiles(tx, items, &identities).await?;
    batch.names = crate::traits::ApplyTraits::load(tx, items).await?;
    let mut stored: Vec<Option<CustomerId>> = Vec::with_capacity(items.len());
    let mut per_source: HashMap<SourceRef, (i64, i64)> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if !fresh[index] {
            stored.push(None);
            continue;
        }
        let event = &item.event;
        let tenant = item.source.tenant;
        let customer = resolve_customer(
            tx,
            item.source,
            event,
            &identities[index],
            &mut batch,
            items,
        )
        .await?;
        if !event.traits.is_empty() {
            batch
                .update_traits(tx, item.source, customer, event, &identities[index])
                .await?;
        }
        if let Some((group_id, traits)) = event.group() {
            batch.groups.push(GroupCall {
                source: item.source,
                customer,
                group_id: group_id.to_owned(),
                traits: traits.clone(),
                at: event.timestamp,
            });
        }
        match &event.commerce {
            Some(Commerce::Completed(order)) => {
                batch.orders.push((tenant, customer, order.clone()));
            }
            Some(Commerce::Refunded {
                order_id,
                amount,
                reason,
            }) => {
                // the order may be one of this group's: written first
                batch.flush(tx, items).await?;
                crate::orders::refund_order(
                    tx,
                    tenant,
                    customer,
                    order_id,
                    *amount,
                    reason.as_deref(),
                )
                .await?;
            }
            None => {}
        }
        batch.seen(tenant, customer, event.timestamp);
        batch.events.push((index, customer));
        let counter = per_source.entry(item.source).or_insert((0, i64::MIN));
        counter.0 += 1;
        counter.1 = counter.1.max(event.received_at);
        stored.push(Some(customer));
    }
    batch.flush(tx, items).await?;
    for (source, dropped) in std::mem::take(&mut batch.dropped) {
        on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE sources SET traits_dropped = traits_dropped + $1 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(dropped)
            .bind(source.tenant.0)
            .bind(source.source.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
    }
    for (source, (received, last)) in per_source {
        on_tx!(tx, |c| {
            sqlx::query(
                    "UPDATE sources SET received = received + $1, \
                     last_event_at = CASE WHEN last_event_at IS NULL OR last_event_at < $2 THEN $2 ELSE last_event_at END \
                     WHERE tenant_id = $3 AND id = $4",
                )
                .bind(received)
                .bind(last)
                .bind(source.tenant.0)
                .bind(source.source.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    // the audience indexes follow these; each customer's sources are kept
    let mut touched: HashMap<TenantId, Vec<CustomerId>> = HashMap::new();
    let mut sources: HashMap<(i64, i64, i64), i64> = HashMap::new();
    let mut codes: HashMap<(i64, i64, String), i64> = HashMap::new();
    for (item, customer) in items.iter().zip(&stored) {
        if let Some(c) = customer {
            let survivor = batch.survivor(*c);
            touched
                .entry(item.source.tenant)
                .or_default()
                .push(survivor);
            let first = sources
                .entry((item.source.tenant.0, survivor.0, item.source.source.0))
                .or_insert(item.event.timestamp);
            *first = (*first).min(item.event.timestamp);
            if let Some(code) = item.event.channel_code() {
                let first = codes
                    .entry((item.source.tenant.0, survivor.0, code.to_owned()))
                    .or_insert(item.event.timestamp);
                *first = (*first).min(item.event.timestamp);
            }
        }
    }
    crate::feed::note_sources(tx, &sources).await?;
    crate::feed::note_channel_codes(tx, &codes).await?;
    for (tenant, customers) in touched {
        crate::feed::note_changed(tx, tenant, &customers).await?;
    }
    Ok(stored
        .into_iter()
        .zip(refused)
        .map(|(c, refused)| match (c, refused) {
            (Some(c), _) => IngestOutcome::Stored(batch.survivor(c)),
            (None, Some(reason)) => IngestOutcome::Refused(reason),
            (None, None) => IngestOutcome::Duplicate,
        })
        .collect())
}

/// The name an event is counted under in a customer's event counts: a track's event
/// name, `Page Viewed` and `Screen Viewed` for views; identify, group and alias calls
/// are not counted.
pub fn aggregate_name(event: &TrackedEvent) -> Option<&str> {
    match event.event_type {
        EventType::Track => Some(&event.name),
        EventType::Page => Some(PAGE_VIEWED),
        EventType::Screen => Some(SCREEN_VIEWED),
        _ => None,
    }
}

/// Claims each item's message id for its source, except refused items'; says which
/// items are new. A message id seen before (or twice in this group) is a duplicate.
async fn claim_message_ids(
    tx: &mut Tx,
    items: &[IngestItem],
    refused: &[Option<String>],
) -> Result<Vec<bool>> {
    let mut claimed: HashSet<(i64, String)> = HashSet::new();
    let claiming: Vec<&IngestItem> = items
        .iter()
        .zip(refused)
        .filter(|(_, r)| r.is_none())
        .map(|(item, _)| item)
        .collect();
    for chunk in claiming.chunks(CHUNK) {
        let mut sql =
            String::from("INSERT INTO message_ids (source_id, message_id, received_at) VALUES ");
        let mut p = Placeholders::for_tx(tx);
        let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(3)).collect();
        sql.push_str(&rows_sql.join(","));
        sql.push_str(
            " ON CONFLICT (source_id, message_id) DO NOTHING RETURNING source_id, message_id",
        );
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for item in chunk {
                query = query
                    .bind(item.source.source.0)
                    .bind(&item.event.message_id)
                    .bind(item.event.received_at);
            }
            query.fetch_all(&mut *c).await?
        });
        claimed.extend(rows);
    }
    // the first item with a claimed id is new; a second one in the group is not
    Ok(items
        .iter()
        .zip(refused)
        .map(|(item, refused)| {
            refused.is_none()
                && claimed.remove(&(item.source.source.0, item.event.message_id.clone()))
        })
        .collect())
}

/// Records one order of an `Order Completed` event; says whether the customer's
/// figures need recomputing. The event is stored whatever becomes of its order: an
/// order id that belongs to another customer leaves that order alone, and a unit that
/// does not exist is dropped from the order (kept in its properties). An order the rules
/// refuse (its currency was checked before the group began, so only a rare case is
/// left: the same order twice in one group at different rates) is left alone, logged.
pub(super) async fn record_order(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    order: &NewOrder,
    settings: &CurrencySettings,
) -> Result<bool> {
    let mut outcome =
        crate::orders::upsert_order_row(tx, tenant, customer, order, settings, "event").await;
    if matches!(outcome, Err(StoreError::Domain(_))) && order.unit_id.is_some() {
        let mut without_unit = order.clone();
        if let Some(unit) = without_unit.unit_id.take() {
            without_unit
                .properties
                .insert("unit_id".into(), Value::from(unit.0));
        }
        outcome =
            crate::orders::upsert_order_row(tx, tenant, customer, &without_unit, settings, "event")
                .await;
    }
    match outcome {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(StoreError::Domain(refused)) => {
            tracing::warn!(tenant = %tenant, order = %order.order_id, reason = %refused,
                "an order event's order was not recorded");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
