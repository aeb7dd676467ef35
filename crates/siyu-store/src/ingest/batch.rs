//! What one group of events has learned and not yet written: profiles read once and
//! changed in memory, new people given ids before they are inserted, and the flushes that
//! write it all in a few multi-row statements.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};
use siyu_domain::currency::CurrencySettings;
use siyu_domain::customer::SourceId;
use siyu_domain::customer::{CustomerId, display_name, merge_traits};
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::ids::TenantId;
use siyu_domain::order::NewOrder;
use siyu_domain::tracking::TrackedEvent;
use siyu_domain::traits::TraitScope;

use super::currency::{StoredCurrencies, currency_refusals};
use super::{aggregate_name, record_order};
use crate::acquisition::{LinkClick, count_clicks_in};
use crate::db::{now_ms, parse_map};
use crate::sources::SourceRef;
use crate::traits::{ApplyTraits, GroupCall, apply_group_calls};
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError};

use crate::tracked::IngestItem;

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's limits on bound
/// parameters.
pub(super) const CHUNK: usize = 200;

pub(super) type IdentityKey = (i64, String, String);

/// A changed profile's row: id, traits, trait times, name, email, phone.
pub(super) type ProfileUpdate = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A profile as one group knows it: read once, changed in memory, written at the next
/// flush (inserted, if the group made it).
pub(super) struct Profile {
    pub(super) tenant: TenantId,
    pub(super) traits: Map<String, Value>,
    pub(super) times: Map<String, Value>,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    /// Made by this group and not inserted yet; its first sighting.
    pub(super) new: Option<i64>,
    pub(super) dirty: bool,
}

/// Ids handed to new profiles before they are inserted, so that a whole group's new
/// people are inserted with one statement (and their identities with another).
#[derive(Default)]
pub(super) struct IdPool {
    pub(super) ids: VecDeque<i64>,
    /// SQLite: the last id handed out (the transaction holds the write lock, so nobody
    /// else takes ids meanwhile).
    pub(super) sqlite_last: Option<i64>,
}

/// A profile's values of its tenant's identifying kinds: (kind, value).
pub(super) type Keys = Vec<(String, String)>;

/// What one group of events has learned and not yet written.
#[derive(Default)]
pub(super) struct Batch {
    /// Owners of identities: looked up for the whole group, then kept current.
    pub(super) known: HashMap<IdentityKey, CustomerId>,
    /// Each tenant's identifying kinds, in rank order.
    pub(super) identifying: HashMap<TenantId, Vec<String>>,
    /// The values of identifying kinds of each profile the group has met, all of them.
    pub(super) keys: HashMap<CustomerId, Keys>,
    /// Profiles whose traits the group reads or changes.
    pub(super) profiles: HashMap<CustomerId, Profile>,
    pub(super) pool: IdPool,
    /// Identities to link: tenant, profile, kind, value, source.
    pub(super) identities: Vec<(TenantId, CustomerId, String, String, SourceId)>,
    /// Orders of `Order Completed` events.
    pub(super) orders: Vec<(TenantId, CustomerId, NewOrder)>,
    /// Events to insert: the item and its profile.
    pub(super) events: Vec<(usize, CustomerId)>,
    /// Seen-time ranges to apply per profile.
    pub(super) seen: HashMap<(TenantId, CustomerId), (i64, i64)>,
    /// Profiles merged during this group, and where they went.
    pub(super) merged: HashMap<CustomerId, CustomerId>,
    /// The currency settings of tenants with orders in the group.
    pub(super) currencies: HashMap<TenantId, CurrencySettings>,
    /// The orders of the group recorded before it, by tenant and order id.
    pub(super) stored_orders: HashMap<TenantId, StoredCurrencies>,
    /// The trait names of the group's tenants, and the limits they are admitted under.
    pub(super) names: ApplyTraits,
    /// Group calls to record on memberships.
    pub(super) groups: Vec<GroupCall>,
    /// Trait names dropped for want of room, per source.
    pub(super) dropped: HashMap<SourceRef, i64>,
}

impl IdPool {
    /// Reserves ids for new profiles: PostgreSQL draws them from the table's sequence;
    /// SQLite counts on from the highest id ever given (`sqlite_sequence`), which the
    /// inserts then move past.
    pub(super) async fn reserve(&mut self, tx: &mut Tx) -> Result<()> {
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
pub(super) struct CachedProfileRow {
    pub(super) id: i64,
    pub(super) traits: String,
    pub(super) trait_times: String,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
}

/// An identity of an identifying kind, with its owner.
#[derive(sqlx::FromRow)]
struct KeyRow {
    customer_id: i64,
    kind: String,
    value: String,
}

impl Batch {
    /// Says, per item, why it is refused: an order in a currency with no exchange rate
    /// (the rest of an event's order is checked before it reaches the store).
    pub(super) async fn check_currencies(
        &mut self,
        tx: &mut Tx,
        items: &[IngestItem],
    ) -> Result<Vec<Option<String>>> {
        let (settings, stored, refused) = currency_refusals(tx, items).await?;
        self.currencies.extend(settings);
        self.stored_orders.extend(stored);
        Ok(refused)
    }

    pub(super) fn seen(&mut self, tenant: TenantId, customer: CustomerId, at: i64) {
        let range = self.seen.entry((tenant, customer)).or_insert((at, at));
        range.0 = range.0.min(at);
        range.1 = range.1.max(at);
    }

    pub(super) fn survivor(&self, mut customer: CustomerId) -> CustomerId {
        while let Some(next) = self.merged.get(&customer) {
            customer = *next;
        }
        customer
    }

    /// Reads, in a few statements, the identifying values of every profile the group's
    /// identities name, and the traits of those that events with traits name.
    pub(super) async fn prefetch_profiles(
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
                let rows: Vec<KeyRow> = on_tx!(tx, |c| {
                    let mut query = sqlx::query_as(&sql).bind(tenant.0);
                    for kind in &kinds {
                        query = query.bind(kind);
                    }
                    for customer in chunk {
                        query = query.bind(customer.0);
                    }
                    query.fetch_all(&mut *c).await?
                });
                for r in rows {
                    self.keys
                        .entry(CustomerId(r.customer_id))
                        .or_default()
                        .push((r.kind, r.value));
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

    pub(super) async fn load_profiles(
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
    pub(super) fn kinds_of(&self, tenant: TenantId) -> Vec<String> {
        self.identifying.get(&tenant).cloned().unwrap_or_default()
    }

    /// A profile's values of identifying kinds, from what the group knows or else the
    /// database.
    pub(super) async fn keys_of(
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
    pub(super) async fn new_customer(
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
    pub(super) fn link(&mut self, source: SourceRef, customer: CustomerId, identity: &Identity) {
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
    pub(super) async fn update_traits(
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
    pub(super) fn forget(&mut self, customers: &[CustomerId]) {
        for customer in customers {
            self.profiles.remove(customer);
            self.keys.remove(customer);
        }
    }

    /// Writes everything pending: new profiles, identities, changed traits, orders,
    /// events, event counts and seen times (before a merge moves rows, and at the end
    /// of the group).
    pub(super) async fn flush(&mut self, tx: &mut Tx, items: &[IngestItem]) -> Result<()> {
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
    pub(super) async fn write_profiles(&mut self, tx: &mut Tx) -> Result<()> {
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
    pub(super) async fn write_events(&mut self, tx: &mut Tx, items: &[IngestItem]) -> Result<()> {
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
        // a tracked link's click counts as its event is stored
        let clicks: Vec<LinkClick> = events
            .iter()
            .filter_map(|(index, _)| LinkClick::of(&items[*index]))
            .collect();
        count_clicks_in(tx, &clicks).await?;
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
