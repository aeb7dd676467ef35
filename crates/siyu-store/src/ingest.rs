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

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};
use siyu_domain::DomainError;
use siyu_domain::currency::{CurrencySettings, ExchangeRate};
use siyu_domain::customer::SourceId;
use siyu_domain::customer::{CustomerId, display_name, merge_traits};
use siyu_domain::identity::{Identity, IdentityKind, IdentitySettings};
use siyu_domain::ids::TenantId;
use siyu_domain::order::{Commerce, NewOrder};
use siyu_domain::tracking::{EventType, PAGE_VIEWED, SCREEN_VIEWED, TrackedEvent};
use siyu_domain::traits::TraitScope;

use crate::sources::SourceRef;
use crate::traits::{ApplyTraits, GroupCall, apply_group_calls};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, Store, StoreError, now_ms};

/// One event to store, with the source it came from.
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub source: SourceRef,
    pub event: TrackedEvent,
}

/// What became of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored(CustomerId),
    /// Its messageId was seen from this source within the deduplication window.
    Duplicate,
    /// Not stored, for the reason given: an `Order Completed` in a currency the tenant
    /// has no exchange rate for. Its message id is not taken, so it can be sent again
    /// once a rate is set.
    Refused(String),
}

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
    crate::audiences::note_sources(tx, &sources).await?;
    crate::audiences::note_channel_codes(tx, &codes).await?;
    for (tenant, customers) in touched {
        crate::audiences::note_changed(tx, tenant, &customers).await?;
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

/// Says, per item, why it would be refused: an order in a currency with no exchange
/// rate to the tenant currency (neither its own nor the tenant's, nor one it was
/// recorded with before). Also gives the currency settings of the tenants with orders.
/// The currency and rate of orders recorded before, by order id.
type StoredCurrencies = HashMap<String, (String, ExchangeRate)>;

/// What [`currency_refusals`] finds: each tenant's currency settings, the orders
/// recorded before, and why each item would be refused.
type CurrencyCheck = (
    HashMap<TenantId, CurrencySettings>,
    HashMap<TenantId, StoredCurrencies>,
    Vec<Option<String>>,
);

async fn currency_refusals(tx: &mut Tx, items: &[IngestItem]) -> Result<CurrencyCheck> {
    // the currency and rate of orders recorded before, which keep their rate
    let mut order_ids: HashMap<TenantId, Vec<&str>> = HashMap::new();
    for item in items {
        if let Some(Commerce::Completed(order)) = &item.event.commerce {
            order_ids
                .entry(item.source.tenant)
                .or_default()
                .push(&order.order_id);
        }
    }
    let mut currencies = HashMap::new();
    let mut stored = HashMap::new();
    for (tenant, ids) in order_ids {
        let settings = crate::orders::currency_settings(tx, tenant).await?;
        currencies.insert(tenant, settings);
        stored.insert(
            tenant,
            crate::orders::stored_currencies(tx, tenant, &ids).await?,
        );
    }
    let mut refused = Vec::with_capacity(items.len());
    for item in items {
        let Some(Commerce::Completed(order)) = &item.event.commerce else {
            refused.push(None);
            continue;
        };
        let tenant = item.source.tenant;
        let settings = &currencies[&tenant];
        let was = stored.get(&tenant).and_then(|s| s.get(&order.order_id));
        refused.push(match crate::orders::currency_of(settings, order, was) {
            Ok(_) => None,
            Err(StoreError::Domain(DomainError::Invalid(f))) => {
                Some(format!("properties.{}: {}", f.field, f.message))
            }
            Err(e) => return Err(e),
        });
    }
    Ok((currencies, stored, refused))
}

impl Store {
    /// Says, per item, why applying it would refuse it: an order in a currency with no
    /// exchange rate. Tracking calls ask before logging, so that such an event is
    /// refused in the answer rather than after it (applying checks again: the rates may
    /// change in between).
    ///
    /// The tenant's rates alone settle nearly every order (read once per tenant and kept
    /// a few seconds, see `recent`); only an order they would refuse is looked up, since
    /// it may keep the rate it was recorded with before.
    pub async fn currency_refusals(&self, items: &[IngestItem]) -> Result<Vec<Option<String>>> {
        let mut settings: HashMap<TenantId, CurrencySettings> = HashMap::new();
        let mut doubtful = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let Some(Commerce::Completed(order)) = &item.event.commerce else {
                continue;
            };
            let tenant = item.source.tenant;
            let rates = match settings.entry(tenant) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                // read again when applied, in the applying transaction
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.tenant(tenant).currency_settings_kept().await?)
                }
            };
            if crate::orders::currency_of(rates, order, None).is_err() {
                doubtful.push(index);
            }
        }
        let mut refused = vec![None; items.len()];
        if doubtful.is_empty() {
            return Ok(refused);
        }
        let subset: Vec<IngestItem> = doubtful.iter().map(|i| items[*i].clone()).collect();
        let mut tx = self.begin().await?;
        let (_, _, answers) = currency_refusals(&mut tx, &subset).await?;
        drop(tx);
        for (index, answer) in doubtful.into_iter().zip(answers) {
            refused[index] = answer;
        }
        Ok(refused)
    }
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's limits on bound
/// parameters.
const CHUNK: usize = 200;

type IdentityKey = (i64, String, String);

/// A changed profile's row: id, traits, trait times, name, email, phone.
type ProfileUpdate = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A profile as one group knows it: read once, changed in memory, written at the next
/// flush (inserted, if the group made it).
struct Profile {
    tenant: TenantId,
    traits: Map<String, Value>,
    times: Map<String, Value>,
    email: Option<String>,
    phone: Option<String>,
    /// Made by this group and not inserted yet; its first sighting.
    new: Option<i64>,
    dirty: bool,
}

/// Ids handed to new profiles before they are inserted, so that a whole group's new
/// people are inserted with one statement (and their identities with another).
#[derive(Default)]
struct IdPool {
    ids: VecDeque<i64>,
    /// SQLite: the last id handed out (the transaction holds the write lock, so nobody
    /// else takes ids meanwhile).
    sqlite_last: Option<i64>,
}

/// A profile's values of its tenant's identifying kinds: (kind, value).
type Keys = Vec<(String, String)>;

/// What one group of events has learned and not yet written.
#[derive(Default)]
struct Batch {
    /// Owners of identities: looked up for the whole group, then kept current.
    known: HashMap<IdentityKey, CustomerId>,
    /// Each tenant's identifying kinds, in rank order.
    identifying: HashMap<TenantId, Vec<String>>,
    /// The values of identifying kinds of each profile the group has met, all of them.
    keys: HashMap<CustomerId, Keys>,
    /// Profiles whose traits the group reads or changes.
    profiles: HashMap<CustomerId, Profile>,
    pool: IdPool,
    /// Identities to link: tenant, profile, kind, value, source.
    identities: Vec<(TenantId, CustomerId, String, String, SourceId)>,
    /// Orders of `Order Completed` events.
    orders: Vec<(TenantId, CustomerId, NewOrder)>,
    /// Events to insert: the item and its profile.
    events: Vec<(usize, CustomerId)>,
    /// Seen-time ranges to apply per profile.
    seen: HashMap<(TenantId, CustomerId), (i64, i64)>,
    /// Profiles merged during this group, and where they went.
    merged: HashMap<CustomerId, CustomerId>,
    /// The currency settings of tenants with orders in the group.
    currencies: HashMap<TenantId, CurrencySettings>,
    /// The orders of the group recorded before it, by tenant and order id.
    stored_orders: HashMap<TenantId, StoredCurrencies>,
    /// The trait names of the group's tenants, and the limits they are admitted under.
    names: ApplyTraits,
    /// Group calls to record on memberships.
    groups: Vec<GroupCall>,
    /// Trait names dropped for want of room, per source.
    dropped: HashMap<SourceRef, i64>,
}

impl IdPool {
    /// Reserves ids for new profiles: PostgreSQL draws them from the table's sequence;
    /// SQLite counts on from the highest id ever given (`sqlite_sequence`), which the
    /// inserts then move past.
    async fn reserve(&mut self, tx: &mut Tx) -> Result<()> {
        const AHEAD: i64 = 64;
        match tx {
            Tx::Sqlite(t) => {
                let last = match self.sqlite_last {
                    Some(last) => last,
                    None => {
                        sqlx::query_scalar::<_, i64>(
                            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'customers'), 0)",
                        )
                        .fetch_one(&mut **t)
                        .await?
                    }
                };
                self.ids.extend(last + 1..=last + AHEAD);
                self.sqlite_last = Some(last + AHEAD);
            }
            Tx::Postgres(t) => {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, $1)",
                )
                .bind(AHEAD)
                .fetch_all(&mut **t)
                .await?;
                self.ids.extend(ids);
            }
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct CachedProfileRow {
    id: i64,
    traits: String,
    trait_times: String,
    email: Option<String>,
    phone: Option<String>,
}

impl Batch {
    /// Says, per item, why it is refused: an order in a currency with no exchange rate
    /// (the rest of an event's order is checked before it reaches the store).
    async fn check_currencies(
        &mut self,
        tx: &mut Tx,
        items: &[IngestItem],
    ) -> Result<Vec<Option<String>>> {
        let (settings, stored, refused) = currency_refusals(tx, items).await?;
        self.currencies.extend(settings);
        self.stored_orders.extend(stored);
        Ok(refused)
    }

    fn seen(&mut self, tenant: TenantId, customer: CustomerId, at: i64) {
        let range = self.seen.entry((tenant, customer)).or_insert((at, at));
        range.0 = range.0.min(at);
        range.1 = range.1.max(at);
    }

    fn survivor(&self, mut customer: CustomerId) -> CustomerId {
        while let Some(next) = self.merged.get(&customer) {
            customer = *next;
        }
        customer
    }

    /// Reads, in a few statements, the identifying values of every profile the group's
    /// identities name, and the traits of those that events with traits name.
    async fn prefetch_profiles(
        &mut self,
        tx: &mut Tx,
        items: &[IngestItem],
        identities: &[Vec<Identity>],
    ) -> Result<()> {
        let mut owners: HashMap<TenantId, HashSet<CustomerId>> = HashMap::new();
        let mut with_traits: HashMap<TenantId, HashSet<CustomerId>> = HashMap::new();
        for (item, named) in items.iter().zip(identities) {
            let tenant = item.source.tenant;
            for identity in named {
                let key = (
                    tenant.0,
                    identity.kind.as_str().to_owned(),
                    identity.value.clone(),
                );
                if let Some(owner) = self.known.get(&key) {
                    owners.entry(tenant).or_default().insert(*owner);
                    if !item.event.traits.is_empty() {
                        with_traits.entry(tenant).or_default().insert(*owner);
                    }
                }
            }
        }
        for (tenant, customers) in owners {
            let kinds = self.kinds_of(tenant);
            let customers: Vec<CustomerId> = customers.into_iter().collect();
            for chunk in customers.chunks(CHUNK) {
                for customer in chunk {
                    self.keys.insert(*customer, Vec::new());
                }
                if kinds.is_empty() {
                    continue;
                }
                let mut p = Placeholders::for_tx(tx);
                let tenant_p = p.next();
                let kinds_p = p.row(kinds.len());
                let sql = format!(
                    "SELECT customer_id, kind, value FROM identities WHERE tenant_id = {tenant_p} \
                     AND kind IN {kinds_p} AND customer_id IN {}",
                    p.row(chunk.len())
                );
                let rows: Vec<(i64, String, String)> = on_tx!(tx, |c| {
                    let mut query = sqlx::query_as(&sql).bind(tenant.0);
                    for kind in &kinds {
                        query = query.bind(kind);
                    }
                    for customer in chunk {
                        query = query.bind(customer.0);
                    }
                    query.fetch_all(&mut *c).await?
                });
                for (customer, kind, value) in rows {
                    self.keys
                        .entry(CustomerId(customer))
                        .or_default()
                        .push((kind, value));
                }
            }
        }
        for (tenant, customers) in with_traits {
            let customers: Vec<CustomerId> = customers.into_iter().collect();
            for chunk in customers.chunks(CHUNK) {
                self.load_profiles(tx, tenant, chunk).await?;
            }
        }
        Ok(())
    }

    async fn load_profiles(
        &mut self,
        tx: &mut Tx,
        tenant: TenantId,
        customers: &[CustomerId],
    ) -> Result<()> {
        let mut p = Placeholders::for_tx(tx);
        let tenant_p = p.next();
        let sql = format!(
            "SELECT id, traits, trait_times, email, phone FROM customers \
             WHERE tenant_id = {tenant_p} AND id IN {}",
            p.row(customers.len())
        );
        let rows: Vec<CachedProfileRow> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql).bind(tenant.0);
            for customer in customers {
                query = query.bind(customer.0);
            }
            query.fetch_all(&mut *c).await?
        });
        for row in rows {
            self.profiles.insert(
                CustomerId(row.id),
                Profile {
                    tenant,
                    traits: parse_map(&row.traits),
                    times: parse_map(&row.trait_times),
                    email: row.email,
                    phone: row.phone,
                    new: None,
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    /// A tenant's identifying kinds, in rank order.
    fn kinds_of(&self, tenant: TenantId) -> Vec<String> {
        self.identifying.get(&tenant).cloned().unwrap_or_default()
    }

    /// A profile's values of identifying kinds, from what the group knows or else the
    /// database.
    async fn keys_of(
        &mut self,
        tx: &mut Tx,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Keys> {
        if let Some(known) = self.keys.get(&customer) {
            return Ok(known.clone());
        }
        let kinds = self.kinds_of(tenant);
        let mut keys: Keys = Vec::new();
        if !kinds.is_empty() {
            let mut p = Placeholders::for_tx(tx);
            let (tenant_p, customer_p) = (p.next(), p.next());
            let sql = format!(
                "SELECT kind, value FROM identities WHERE tenant_id = {tenant_p} \
                 AND customer_id = {customer_p} AND kind IN {}",
                p.row(kinds.len())
            );
            keys = on_tx!(tx, |c| {
                let mut query = sqlx::query_as(&sql).bind(tenant.0).bind(customer.0);
                for kind in &kinds {
                    query = query.bind(kind);
                }
                query.fetch_all(&mut *c).await?
            });
        }
        self.keys.insert(customer, keys.clone());
        Ok(keys)
    }

    /// A new profile, inserted at the next flush.
    async fn new_customer(
        &mut self,
        tx: &mut Tx,
        tenant: TenantId,
        seen_at: i64,
    ) -> Result<CustomerId> {
        if self.pool.ids.is_empty() {
            self.pool.reserve(tx).await?;
        }
        let id = CustomerId(
            self.pool
                .ids
                .pop_front()
                .ok_or_else(|| StoreError::Corrupt("no customer id could be reserved".into()))?,
        );
        self.profiles.insert(
            id,
            Profile {
                tenant,
                traits: Map::new(),
                times: Map::new(),
                email: None,
                phone: None,
                new: Some(seen_at),
                dirty: true,
            },
        );
        self.keys.insert(id, Vec::new());
        Ok(id)
    }

    /// Links an identity to a profile (written at the next flush).
    fn link(&mut self, source: SourceRef, customer: CustomerId, identity: &Identity) {
        let tenant = source.tenant;
        self.identities.push((
            tenant,
            customer,
            identity.kind.as_str().to_owned(),
            identity.value.clone(),
            source.source,
        ));
        self.known.insert(
            (
                tenant.0,
                identity.kind.as_str().to_owned(),
                identity.value.clone(),
            ),
            customer,
        );
        // an identifying value joins the profile's known ones (resolution read them
        // before linking, so they are cached)
        let kind = identity.kind.as_str();
        if self.kinds_of(tenant).iter().any(|k| k == kind) {
            debug_assert!(
                self.keys.contains_key(&customer),
                "resolution reads a profile's identifying values before linking"
            );
            if let Some(keys) = self.keys.get_mut(&customer)
                && !keys.iter().any(|(k, _)| k == kind)
            {
                keys.push((kind.to_owned(), identity.value.clone()));
            }
        }
    }

    /// Applies the event's traits to its profile in memory, and fills the profile's
    /// email and phone columns from identities it now holds.
    async fn update_traits(
        &mut self,
        tx: &mut Tx,
        source: SourceRef,
        customer: CustomerId,
        event: &TrackedEvent,
        identities: &[Identity],
    ) -> Result<()> {
        let tenant = source.tenant;
        if !self.profiles.contains_key(&customer) {
            self.load_profiles(tx, tenant, &[customer]).await?;
        }
        let owned = |kind: &str| {
            identities
                .iter()
                .find(|i| {
                    i.kind.as_str() == kind
                        && self
                            .known
                            .get(&(tenant.0, kind.to_owned(), i.value.clone()))
                            .is_some_and(|o| self.survivor(*o) == customer)
                })
                .map(|i| i.value.clone())
        };
        let (email, phone) = (owned(IdentityKind::EMAIL), owned(IdentityKind::PHONE));
        let profile = self
            .profiles
            .get_mut(&customer)
            .ok_or(StoreError::NotFound("customer"))?;
        // the profile and tenant limits: names without room are dropped, the rest kept
        let admitted =
            self.names
                .admit(tenant, TraitScope::Customer, &profile.traits, &event.traits);
        if admitted.dropped > 0 {
            tracing::warn!(tenant = %tenant, source = %source.source, customer = %customer,
                message_id = %event.message_id, dropped = admitted.dropped,
                "trait names over the limits dropped");
            *self.dropped.entry(source).or_default() += admitted.dropped as i64;
        }
        if merge_traits(
            &mut profile.traits,
            &mut profile.times,
            &admitted.traits,
            event.timestamp,
        ) {
            profile.dirty = true;
        }
        if profile.email.is_none() && email.is_some() {
            profile.email = email;
            profile.dirty = true;
        }
        if profile.phone.is_none() && phone.is_some() {
            profile.phone = phone;
            profile.dirty = true;
        }
        Ok(())
    }

    /// Forgets what the group read of profiles a merge has just changed.
    fn forget(&mut self, customers: &[CustomerId]) {
        for customer in customers {
            self.profiles.remove(customer);
            self.keys.remove(customer);
        }
    }

    /// Writes everything pending: new profiles, identities, changed traits, orders,
    /// events, event counts and seen times (before a merge moves rows, and at the end
    /// of the group).
    async fn flush(&mut self, tx: &mut Tx, items: &[IngestItem]) -> Result<()> {
        self.write_profiles(tx).await?;
        let mut groups = std::mem::take(&mut self.groups);
        for call in &mut groups {
            call.customer = self.survivor(call.customer);
        }
        let dropped = apply_group_calls(tx, &groups, &mut self.names).await?;
        for (call, dropped) in groups.iter().zip(dropped) {
            if dropped > 0 {
                tracing::warn!(tenant = %call.source.tenant, source = %call.source.source,
                    customer = %call.customer, group = %call.group_id, dropped,
                    "group trait names over the limits dropped");
                *self.dropped.entry(call.source).or_default() += dropped as i64;
            }
        }
        self.names.flush(tx).await?;
        let identities = std::mem::take(&mut self.identities);
        for chunk in identities.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO identities (tenant_id, customer_id, kind, value, source_id, created_at) VALUES ",
            );
            let mut p = Placeholders::for_tx(tx);
            let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(6)).collect();
            sql.push_str(&rows_sql.join(","));
            sql.push_str(" ON CONFLICT (tenant_id, kind, value) DO NOTHING");
            let now = now_ms();
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for (tenant, customer, kind, value, source) in chunk {
                    query = query
                        .bind(tenant.0)
                        .bind(customer.0)
                        .bind(kind)
                        .bind(value)
                        .bind(source.0)
                        .bind(now);
                }
                query.execute(&mut *c).await?.rows_affected()
            });
        }
        let orders = std::mem::take(&mut self.orders);
        let mut bought: HashMap<TenantId, Vec<CustomerId>> = HashMap::new();
        // orders not recorded before go in many to a statement; the rest (sent again,
        // twice in the group, naming a unit, refused) one by one, after them, in order
        let mut first_time: HashMap<TenantId, Vec<(usize, CustomerId, &NewOrder)>> = HashMap::new();
        let mut seen_ids: HashSet<(TenantId, &str)> = HashSet::new();
        for (at, (tenant, customer, order)) in orders.iter().enumerate() {
            let recorded = self
                .stored_orders
                .get(tenant)
                .is_some_and(|s| s.contains_key(&order.order_id));
            if !recorded && seen_ids.insert((*tenant, order.order_id.as_str())) {
                first_time
                    .entry(*tenant)
                    .or_default()
                    .push((at, self.survivor(*customer), order));
            }
        }
        let mut done = vec![false; orders.len()];
        for (tenant, group) in &first_time {
            let settings = self.currencies.get(tenant).cloned().unwrap_or_default();
            let rows: Vec<(CustomerId, &NewOrder)> =
                group.iter().map(|(_, c, o)| (*c, *o)).collect();
            let inserted =
                crate::orders::insert_new_orders(tx, *tenant, &rows, &settings, "event").await?;
            for ((at, customer, _), inserted) in group.iter().zip(inserted) {
                if inserted {
                    done[*at] = true;
                    bought.entry(*tenant).or_default().push(*customer);
                }
            }
        }
        for ((tenant, customer, order), done) in orders.iter().zip(done) {
            if done {
                continue;
            }
            let customer = self.survivor(*customer);
            let settings = self.currencies.get(tenant).cloned().unwrap_or_default();
            if record_order(tx, *tenant, customer, order, &settings).await? {
                bought.entry(*tenant).or_default().push(customer);
            }
        }
        for (tenant, customers) in bought {
            crate::orders::refresh_order_stats_of(tx, tenant, &customers).await?;
        }
        self.write_events(tx, items).await
    }

    /// Inserts the new profiles and writes the changed ones.
    async fn write_profiles(&mut self, tx: &mut Tx) -> Result<()> {
        let now = now_ms();
        let mut new_rows = Vec::new();
        let mut changed: HashMap<TenantId, Vec<ProfileUpdate>> = HashMap::new();
        for (id, profile) in self.profiles.iter_mut().filter(|(_, p)| p.dirty) {
            let traits = Value::Object(profile.traits.clone()).to_string();
            let times = Value::Object(profile.times.clone()).to_string();
            let name = display_name(&profile.traits);
            match profile.new.take() {
                Some(seen) => new_rows.push((
                    id.0,
                    profile.tenant,
                    traits,
                    times,
                    name,
                    profile.email.clone(),
                    profile.phone.clone(),
                    seen,
                )),
                None => changed.entry(profile.tenant).or_default().push((
                    id.0,
                    traits,
                    times,
                    name,
                    profile.email.clone(),
                    profile.phone.clone(),
                )),
            }
            profile.dirty = false;
        }
        for chunk in new_rows.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO customers (id, tenant_id, traits, trait_times, name, email, phone, \
                 first_seen_at, last_seen_at, created_at, updated_at) VALUES ",
            );
            let mut p = Placeholders::for_tx(tx);
            let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(11)).collect();
            sql.push_str(&rows_sql.join(","));
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for (id, tenant, traits, times, name, email, phone, seen) in chunk {
                    query = query
                        .bind(*id)
                        .bind(tenant.0)
                        .bind(traits)
                        .bind(times)
                        .bind(name)
                        .bind(email)
                        .bind(phone)
                        .bind(*seen)
                        .bind(*seen)
                        .bind(now)
                        .bind(now);
                }
                query.execute(&mut *c).await?.rows_affected()
            });
        }
        for (tenant, rows) in changed {
            for chunk in rows.chunks(CHUNK) {
                // VALUES columns are named column1, column2, … on both databases
                let mut sql = String::from(
                    "UPDATE customers SET traits = v.column2, trait_times = v.column3, \
                     name = v.column4, email = v.column5, phone = v.column6, updated_at = ",
                );
                let mut p = Placeholders::for_tx(tx);
                sql.push_str(&p.next());
                sql.push_str(" FROM (VALUES ");
                let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(6)).collect();
                sql.push_str(&rows_sql.join(","));
                sql.push_str(&format!(
                    ") AS v WHERE customers.tenant_id = {} AND customers.id = v.column1",
                    p.next()
                ));
                on_tx!(tx, |c| {
                    let mut query = sqlx::query(&sql).bind(now);
                    for (id, traits, times, name, email, phone) in chunk {
                        query = query
                            .bind(*id)
                            .bind(traits)
                            .bind(times)
                            .bind(name)
                            .bind(email)
                            .bind(phone);
                    }
                    query.bind(tenant.0).execute(&mut *c).await?.rows_affected()
                });
            }
        }
        Ok(())
    }

    /// Inserts the pending events and applies their counts and seen times.
    async fn write_events(&mut self, tx: &mut Tx, items: &[IngestItem]) -> Result<()> {
        let events = std::mem::take(&mut self.events);
        for chunk in events.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO events (tenant_id, source_id, customer_id, type, name, message_id, \
                 user_id, anonymous_id, properties, context, timestamp, received_at) VALUES ",
            );
            let mut p = Placeholders::for_tx(tx);
            let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(12)).collect();
            sql.push_str(&rows_sql.join(","));
            let rows: Vec<_> = chunk
                .iter()
                .map(|(index, customer)| {
                    let item = &items[*index];
                    let e = &item.event;
                    (
                        item,
                        self.survivor(*customer),
                        serde_json::to_string(&e.properties).unwrap_or_default(),
                        serde_json::to_string(&e.context).unwrap_or_default(),
                    )
                })
                .collect();
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for (item, customer, properties, context) in &rows {
                    let e = &item.event;
                    query = query
                        .bind(item.source.tenant.0)
                        .bind(item.source.source.0)
                        .bind(customer.0)
                        .bind(e.event_type.as_str())
                        .bind(&e.name)
                        .bind(&e.message_id)
                        .bind(&e.user_id)
                        .bind(&e.anonymous_id)
                        .bind(properties)
                        .bind(context)
                        .bind(e.timestamp)
                        .bind(e.received_at);
                }
                query.execute(&mut *c).await?.rows_affected()
            });
        }
        // per customer, event name and day: how many and the last time
        let mut days: HashMap<(i64, i64, &str, i64), (i64, i64)> = HashMap::new();
        for (index, customer) in &events {
            let item = &items[*index];
            let Some(name) = aggregate_name(&item.event) else {
                continue;
            };
            let at = item.event.timestamp;
            let day = days
                .entry((
                    item.source.tenant.0,
                    self.survivor(*customer).0,
                    name,
                    item.source.time_zone.day_of(at),
                ))
                .or_insert((0, at));
            day.0 += 1;
            day.1 = day.1.max(at);
        }
        let days: Vec<_> = days.into_iter().collect();
        for chunk in days.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO customer_event_days (tenant_id, customer_id, name, day, count, last_at) VALUES ",
            );
            let mut p = Placeholders::for_tx(tx);
            let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(6)).collect();
            sql.push_str(&rows_sql.join(","));
            sql.push_str(
                " ON CONFLICT (tenant_id, customer_id, name, day) DO UPDATE SET \
                 count = customer_event_days.count + excluded.count, \
                 last_at = CASE WHEN customer_event_days.last_at > excluded.last_at \
                 THEN customer_event_days.last_at ELSE excluded.last_at END",
            );
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for ((tenant, customer, name, day), (count, last)) in chunk {
                    query = query
                        .bind(*tenant)
                        .bind(*customer)
                        .bind(*name)
                        .bind(*day)
                        .bind(*count)
                        .bind(*last);
                }
                query.execute(&mut *c).await?.rows_affected()
            });
        }
        let mut by_tenant: HashMap<TenantId, HashMap<CustomerId, (i64, i64)>> = HashMap::new();
        for ((tenant, customer), (lo, hi)) in std::mem::take(&mut self.seen) {
            let range = by_tenant
                .entry(tenant)
                .or_default()
                .entry(self.survivor(customer))
                .or_insert((lo, hi));
            range.0 = range.0.min(lo);
            range.1 = range.1.max(hi);
        }
        for (tenant, ranges) in by_tenant {
            let ranges: Vec<_> = ranges.into_iter().collect();
            for chunk in ranges.chunks(CHUNK) {
                // VALUES columns are named column1, column2, … on both databases
                let mut sql = String::from(
                    "UPDATE customers SET \
                     first_seen_at = CASE WHEN first_seen_at > v.column2 THEN v.column2 ELSE first_seen_at END, \
                     last_seen_at = CASE WHEN last_seen_at < v.column3 THEN v.column3 ELSE last_seen_at END \
                     FROM (VALUES ",
                );
                let mut p = Placeholders::for_tx(tx);
                let rows_sql: Vec<String> = (0..chunk.len()).map(|_| p.row(3)).collect();
                sql.push_str(&rows_sql.join(","));
                sql.push_str(&format!(
                    ") AS v WHERE customers.tenant_id = {} AND customers.id = v.column1",
                    p.next()
                ));
                on_tx!(tx, |c| {
                    let mut query = sqlx::query(&sql);
                    for (customer, (lo, hi)) in chunk {
                        query = query.bind(customer.0).bind(*lo).bind(*hi);
                    }
                    query.bind(tenant.0).execute(&mut *c).await?.rows_affected()
                });
            }
        }
        Ok(())
    }
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

/// Looks up, in a few statements, who owns every identity the new items name.
async fn prefetch_owners(
    tx: &mut Tx,
    items: &[IngestItem],
    identities: &[Vec<Identity>],
) -> Result<HashMap<IdentityKey, CustomerId>> {
    // grouped by tenant and kind, so each look-up is one `value IN (…)` on the unique
    // index (tenant_id, kind, value)
    let mut wanted: HashMap<(i64, String), Vec<String>> = HashMap::new();
    let mut asked: HashSet<IdentityKey> = HashSet::new();
    for (item, named) in items.iter().zip(identities) {
        for identity in named {
            let key = (
                item.source.tenant.0,
                identity.kind.as_str().to_owned(),
                identity.value.clone(),
            );
            if asked.insert(key) {
                wanted
                    .entry((item.source.tenant.0, identity.kind.as_str().to_owned()))
                    .or_default()
                    .push(identity.value.clone());
            }
        }
    }
    let mut known = HashMap::new();
    for ((tenant, kind), values) in wanted {
        for chunk in values.chunks(CHUNK) {
            let mut p = Placeholders::for_tx(tx);
            let (tenant_p, kind_p) = (p.next(), p.next());
            let sql = format!(
                "SELECT value, customer_id FROM identities \
                 WHERE tenant_id = {tenant_p} AND kind = {kind_p} AND value IN {}",
                p.row(chunk.len())
            );
            let rows: Vec<(String, i64)> = on_tx!(tx, |c| {
                let mut query = sqlx::query_as(&sql).bind(tenant).bind(&kind);
                for value in chunk {
                    query = query.bind(value);
                }
                query.fetch_all(&mut *c).await?
            });
            for (value, customer) in rows {
                known.insert((tenant, kind.clone(), value), CustomerId(customer));
            }
        }
    }
    Ok(known)
}

/// The profiles that own these identities, from what the group knows.
fn owners(batch: &Batch, tenant: TenantId, identities: &[Identity]) -> Vec<(Identity, CustomerId)> {
    identities
        .iter()
        .filter_map(|identity| {
            let key = (
                tenant.0,
                identity.kind.as_str().to_owned(),
                identity.value.clone(),
            );
            batch
                .known
                .get(&key)
                .map(|c| (identity.clone(), batch.survivor(*c)))
        })
        .collect()
}

/// A tenant's identifying kinds, in rank order (`IdentitySettings`; by default
/// `user_id`).
async fn identifying_kinds(tx: &mut Tx, tenant: TenantId) -> Result<Vec<String>> {
    let stored: Option<String> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.0)
            .bind(IdentitySettings::KEY)
            .fetch_optional(&mut *c)
            .await?
    });
    let settings = match stored.map(|s| serde_json::from_str::<IdentitySettings>(&s)) {
        Some(Ok(settings)) => settings,
        Some(Err(e)) => {
            tracing::warn!(tenant = %tenant, error = %e, "identity settings unreadable; using user_id");
            IdentitySettings::default()
        }
        None => IdentitySettings::default(),
    };
    Ok(settings
        .identifying_kinds
        .into_iter()
        .map(|k| k.as_str().to_owned())
        .collect())
}

/// Whether two sets of identifying values name different people: a kind both hold
/// with different values.
fn different_people(a: &Keys, b: &Keys) -> bool {
    a.iter()
        .any(|(kind, value)| b.iter().any(|(k, v)| k == kind && v != value))
}

/// Finds (or makes) the one profile this event belongs to, merging profiles it proves
/// to be the same person, and links the event's identities to it.
///
/// The tenant's identifying kinds (`user_id` unless it says otherwise) keep people
/// apart: the best-ranked identifying value the event names that has an owner picks the
/// profile; a profile that holds a different value of a kind ranked above that (or of
/// any identifying kind, when no such value picked it) is someone else; two profiles
/// with different values of one kind never merge; and a profile never gets a second
/// value of an identifying kind.
async fn resolve_customer(
    tx: &mut Tx,
    source: SourceRef,
    event: &TrackedEvent,
    identities: &[Identity],
    batch: &mut Batch,
    items: &[IngestItem],
) -> Result<CustomerId> {
    let tenant = source.tenant;
    let kinds = batch.kinds_of(tenant);
    let found = owners(batch, tenant, identities);
    // the event's identifying values, with their kind's rank
    let named: Vec<(usize, &Identity)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(rank, kind)| {
            identities
                .iter()
                .find(|i| i.kind.as_str() == kind)
                .map(|i| (rank, i))
        })
        .collect();
    let by_key = named.iter().find_map(|(rank, identity)| {
        found
            .iter()
            .find(|(f, _)| f == *identity)
            .map(|(_, owner)| (*rank, *owner))
    });
    let mut candidates: Vec<CustomerId> = found.iter().map(|(_, c)| *c).collect();
    candidates.sort();
    candidates.dedup();

    let (mut target, chosen_rank, created) = match (by_key, candidates.first()) {
        (Some((rank, owner)), _) => (owner, rank, false),
        (None, Some(first)) => (*first, kinds.len(), false),
        (None, None) => (
            batch.new_customer(tx, tenant, event.timestamp).await?,
            kinds.len(),
            true,
        ),
    };
    let mut target_keys = if created {
        Vec::new()
    } else {
        batch.keys_of(tx, tenant, target).await?
    };
    // the event names, above the kind that chose the profile, a value the profile holds
    // differently: another person (say, another user signed in on a device we know)
    let above: Keys = named
        .iter()
        .filter(|(rank, _)| *rank < chosen_rank)
        .map(|(_, i)| (i.kind.as_str().to_owned(), i.value.clone()))
        .collect();
    if !created && different_people(&above, &target_keys) {
        target = batch.new_customer(tx, tenant, event.timestamp).await?;
        target_keys = Vec::new();
    }
    // the identifying values this event will give the profile: those nobody holds yet,
    // of kinds the profile has no value of
    let unowned: Keys = named
        .iter()
        .filter(|(_, i)| !found.iter().any(|(f, _)| f == *i))
        .map(|(_, i)| (i.kind.as_str().to_owned(), i.value.clone()))
        .collect();
    for other in candidates.into_iter().filter(|c| *c != target) {
        let other_keys = batch.keys_of(tx, tenant, other).await?;
        let mut claimed = target_keys.clone();
        for (kind, value) in &unowned {
            if !claimed.iter().any(|(k, _)| k == kind) {
                claimed.push((kind.clone(), value.clone()));
            }
        }
        if different_people(&claimed, &other_keys) {
            continue; // two people with their own values: never merged
        }
        // rows the merge moves must be written first
        batch.flush(tx, items).await?;
        if crate::merges::kept_apart(tx, tenant, other, target).await? {
            continue; // an admin undid their merge: they stay two people
        }
        crate::merges::merge_into(tx, tenant, other, target, &event.message_id).await?;
        batch.merged.insert(other, target);
        batch.forget(&[other, target]);
        for (kind, value) in other_keys {
            if !target_keys.iter().any(|(k, _)| *k == kind) {
                target_keys.push((kind, value));
            }
        }
    }
    batch.keys.insert(target, target_keys.clone());
    // identities already owned stay with their owner (the target, one merged into it,
    // or a person kept apart); only new ones are linked, and never a second value of an
    // identifying kind
    for identity in identities
        .iter()
        .filter(|i| !found.iter().any(|(f, _)| f == *i))
    {
        let kind = identity.kind.as_str();
        if kinds.iter().any(|k| k == kind) {
            if target_keys
                .iter()
                .any(|(k, v)| k == kind && *v != identity.value)
            {
                continue;
            }
            // a second value of this kind in the same event is not linked either
            target_keys.push((kind.to_owned(), identity.value.clone()));
        }
        batch.link(source, target, identity);
    }
    Ok(target)
}

/// Records one order of an `Order Completed` event; says whether the customer's
/// figures need recomputing. The event is stored whatever becomes of its order: an
/// order id that belongs to another customer leaves that order alone, and a unit that
/// does not exist is dropped from the order (kept in its properties). An order the rules
/// refuse (its currency was checked before the group began, so only a rare case is
/// left: the same order twice in one group at different rates) is left alone, logged.
async fn record_order(
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

impl crate::TenantScope<'_> {
    /// The customer an identity names; a new profile with only that identity when there
    /// is none (an order or an import for someone not seen before).
    pub async fn ensure_customer(&self, identity: &Identity) -> Result<CustomerId> {
        for _ in 0..3 {
            let owner: Option<i64> = crate::on_db!(self.store, |db| {
                sqlx::query_scalar(
                    "SELECT customer_id FROM identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
                )
                .bind(self.tenant.0)
                .bind(identity.kind.as_str())
                .bind(&identity.value)
                .fetch_optional(db)
                .await?
            });
            if let Some(owner) = owner {
                return Ok(self.get_customer(CustomerId(owner)).await?.id);
            }
            let mut tx = self.store.begin().await?;
            let customer = create_customer(&mut tx, self.tenant, now_ms()).await?;
            let linked = on_tx!(&mut tx, |c| {
                sqlx::query(
                    "INSERT INTO identities (tenant_id, customer_id, kind, value, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, kind, value) DO NOTHING",
                )
                .bind(self.tenant.0)
                .bind(customer.0)
                .bind(identity.kind.as_str())
                .bind(&identity.value)
                .bind(now_ms())
                .execute(&mut *c)
                .await?
                .rows_affected()
            });
            if linked == 1 {
                let column = match identity.kind.as_str() {
                    IdentityKind::EMAIL => Some("email"),
                    IdentityKind::PHONE => Some("phone"),
                    _ => None,
                };
                if let Some(column) = column {
                    let sql = format!(
                        "UPDATE customers SET {column} = $1 WHERE tenant_id = $2 AND id = $3"
                    );
                    on_tx!(&mut tx, |c| {
                        sqlx::query(&sql)
                            .bind(&identity.value)
                            .bind(self.tenant.0)
                            .bind(customer.0)
                            .execute(&mut *c)
                            .await?
                            .rows_affected()
                    });
                }
                crate::audiences::note_changed(&mut tx, self.tenant, &[customer]).await?;
                tx.commit().await?;
                return Ok(customer);
            }
            // linked to someone else meanwhile: drop the new profile and look again
        }
        Err(StoreError::Conflict(
            "the identity keeps changing owner; try again".into(),
        ))
    }
}

async fn create_customer(tx: &mut Tx, tenant: TenantId, seen_at: i64) -> Result<CustomerId> {
    let now = now_ms();
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO customers (tenant_id, traits, trait_times, first_seen_at, last_seen_at, \
             created_at, updated_at) VALUES ($1, '{}', '{}', $2, $2, $3, $3) RETURNING id",
        )
        .bind(tenant.0)
        .bind(seen_at)
        .bind(now)
        .fetch_one(&mut *c)
        .await?
    });
    Ok(CustomerId(id))
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProfileRow {
    pub(crate) traits: String,
    pub(crate) trait_times: String,
    pub(crate) first_seen_at: i64,
    pub(crate) last_seen_at: i64,
}

pub(crate) fn parse_map(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

pub(crate) async fn load_profile(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<ProfileRow> {
    let row: Option<ProfileRow> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT traits, trait_times, first_seen_at, last_seen_at FROM customers \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_optional(&mut *c)
        .await?
    });
    row.ok_or(StoreError::NotFound("customer"))
}

pub(crate) async fn save_profile(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    traits: &Map<String, Value>,
    times: &Map<String, Value>,
    first_seen: i64,
    last_seen: i64,
) -> Result<()> {
    let identities: Vec<(String, String)> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT kind, value FROM identities WHERE tenant_id = $1 AND customer_id = $2 \
             AND kind IN ('email', 'phone') ORDER BY id",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_all(&mut *c)
        .await?
    });
    let pick = |kind: &str| {
        identities
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, v)| v.clone())
    };
    let email = pick("email").or_else(|| {
        traits
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let phone = pick("phone");
    let name = display_name(traits);
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE customers SET traits = $1, trait_times = $2, first_seen_at = $3, \
             last_seen_at = $4, name = $5, email = $6, phone = $7, updated_at = $8 \
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(Value::Object(traits.clone()).to_string())
        .bind(Value::Object(times.clone()).to_string())
        .bind(first_seen)
        .bind(last_seen)
        .bind(&name)
        .bind(&email)
        .bind(&phone)
        .bind(now_ms())
        .bind(tenant.0)
        .bind(customer.0)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(())
}
