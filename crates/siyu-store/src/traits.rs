//! The tenant's trait limits (`siyu_domain::traits`) as the store enforces them, and
//! group memberships (the groups `group` calls put a customer in).
//!
//! # The names a tenant uses
//! `trait_names` holds every name a tenant's profiles (scope `customer`) and group
//! memberships (scope `group`) have used, written by ingestion in the transaction that
//! first applies a name. The limits count it.
//!
//! # Two checks
//! - **In the answer** ([`Store::trait_refusals`]), before events are logged: an item
//!   bringing more names new to the tenant than the per-event limit, or more than the
//!   tenant has room for, is refused (`too_many_traits`). The tenant's names and limits
//!   are kept in memory for a few seconds ([`KnownTraits`], in `recent`), with the names
//!   this process has just accepted added, so that a burst of calls each under the
//!   limit is counted together; a call that the kept names would refuse is decided
//!   again on the names in the database (at most once a second per tenant, so refused
//!   calls cost no more than that).
//! - **Where traits are applied** ([`ApplyTraits`], used by ingestion in its
//!   transaction): the per-profile limit, which needs the profile, and again the
//!   per-event and per-tenant ones, exactly, against the database. A name with no room
//!   is dropped from that event (the rest of the event is applied), counted against
//!   the source (`sources.traits_dropped`) and logged. The answer's check is the one
//!   clients see; this one is what bounds what is kept, whatever several server
//!   processes or a stale view let through.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use siyu_domain::audit::Actor;
use siyu_domain::customer::{CustomerId, GroupMembership, merge_traits};
use siyu_domain::ids::TenantId;
use siyu_domain::traits::{Admitted, TraitLimits, TraitScope, admit};

use crate::db::parse_map;
use crate::db::{now_ms, on_db};
use crate::tracked::IngestItem;
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, Store, StoreError, TenantScope};

/// Rows per multi-row statement.
const CHUNK: usize = 200;

/// How soon after reading a tenant's names from the database a refusal may read them
/// again.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// A tenant's trait names and limits as this process last read them, plus the names it
/// has accepted since (not yet applied, perhaps).
pub(crate) struct KnownTraits {
    limits: TraitLimits,
    customer: HashSet<String>,
    group: HashSet<String>,
    read_at: Instant,
}

impl KnownTraits {
    fn names(&self, scope: TraitScope) -> &HashSet<String> {
        match scope {
            TraitScope::Customer => &self.customer,
            TraitScope::Group => &self.group,
        }
    }

    /// Why the event would be refused, if it would.
    fn refusal(&self, item: &IngestItem) -> Option<String> {
        for (scope, traits) in scoped_traits(item) {
            let known = self.names(scope);
            let new = traits.keys().filter(|k| !known.contains(*k)).count();
            if let Some(reason) = self.limits.refusal(scope, new, known.len()) {
                return Some(reason);
            }
        }
        None
    }

    /// Counts the event's new names as used.
    fn accept(&mut self, item: &IngestItem) {
        for (scope, traits) in scoped_traits(item) {
            let names = match scope {
                TraitScope::Customer => &mut self.customer,
                TraitScope::Group => &mut self.group,
            };
            for key in traits.keys() {
                if !names.contains(key) {
                    names.insert(key.clone());
                }
            }
        }
    }
}

/// The traits an event carries, by scope: the profile's, and a group call's group's.
fn scoped_traits(item: &IngestItem) -> impl Iterator<Item = (TraitScope, &Map<String, Value>)> {
    let event = &item.event;
    std::iter::once((TraitScope::Customer, &event.traits))
        .chain(event.group().map(|(_, t)| (TraitScope::Group, t)))
        .filter(|(_, t)| !t.is_empty())
}

/// A tenant's trait limits as stored (the defaults if unset or unreadable).
async fn limits_in(tx: &mut Tx, tenant: TenantId) -> Result<TraitLimits> {
    let stored: Option<String> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.0)
            .bind(TraitLimits::KEY)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(parse_limits(tenant, stored))
}

fn parse_limits(tenant: TenantId, stored: Option<String>) -> TraitLimits {
    match stored.map(|s| serde_json::from_str::<TraitLimits>(&s)) {
        Some(Ok(limits)) => limits,
        Some(Err(e)) => {
            tracing::warn!(tenant = %tenant, error = %e, "trait limits unreadable; using the defaults");
            TraitLimits::default()
        }
        None => TraitLimits::default(),
    }
}

impl TenantScope<'_> {
    /// The tenant's trait limits.
    pub async fn trait_limits(&self) -> Result<TraitLimits> {
        let stored: Option<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT value FROM tenant_settings WHERE tenant_id = $1 AND key = $2",
            )
            .bind(self.tenant.0)
            .bind(TraitLimits::KEY)
            .fetch_optional(db)
            .await?
        });
        Ok(parse_limits(self.tenant, stored))
    }

    /// Sets the tenant's trait limits (checked by the caller). They apply to events
    /// answered from then on; names and traits kept already stay. Audited.
    pub async fn set_trait_limits(&self, limits: &TraitLimits, actor: &Actor) -> Result<()> {
        let value = serde_json::to_value(limits)
            .map_err(|e| StoreError::Corrupt(format!("trait limits: {e}")))?;
        self.put_setting(TraitLimits::KEY, &value, actor).await?;
        self.store.recent.trait_names.forget(&self.tenant);
        Ok(())
    }

    /// How many trait names the tenant uses: (on profiles, on group memberships).
    pub async fn trait_name_counts(&self) -> Result<(u64, u64)> {
        let rows: Vec<(String, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT scope, COUNT(*) FROM trait_names WHERE tenant_id = $1 GROUP BY scope",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let count = |scope: TraitScope| {
            rows.iter()
                .find(|(s, _)| s == scope.as_str())
                .map_or(0, |(_, n)| *n as u64)
        };
        Ok((count(TraitScope::Customer), count(TraitScope::Group)))
    }

    /// The tenant's names and limits, read now.
    async fn known_traits(&self) -> Result<KnownTraits> {
        let mut tx = self.store.begin().await?;
        let limits = limits_in(&mut tx, self.tenant).await?;
        let rows: Vec<(String, String)> = on_tx!(&mut tx, |c| {
            sqlx::query_as("SELECT scope, name FROM trait_names WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .fetch_all(&mut *c)
                .await?
        });
        drop(tx);
        let mut known = KnownTraits {
            limits,
            customer: HashSet::new(),
            group: HashSet::new(),
            read_at: Instant::now(),
        };
        for (scope, name) in rows {
            match TraitScope::parse(&scope) {
                Some(TraitScope::Customer) => known.customer.insert(name),
                Some(TraitScope::Group) => known.group.insert(name),
                None => false,
            };
        }
        Ok(known)
    }
}

impl Store {
    /// Says, per item, why it is refused for its trait names (see the module
    /// documentation): more names new to the tenant than one event may bring, or more
    /// than the tenant has room for. Items taken count their new names as used, so the
    /// next ones (of this call or another) are judged with them.
    pub async fn trait_refusals(&self, items: &[IngestItem]) -> Result<Vec<Option<String>>> {
        let mut refused = vec![None; items.len()];
        let mut by_tenant: HashMap<TenantId, Vec<usize>> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            if scoped_traits(item).next().is_some() {
                by_tenant.entry(item.source.tenant).or_default().push(index);
            }
        }
        for (tenant, indexes) in by_tenant {
            let mut known = match self.recent.trait_names.get(&tenant) {
                Some(known) => known,
                None => self.read_known_traits(tenant).await?,
            };
            for index in indexes {
                let item = &items[index];
                let mut verdict = known.lock().expect("not poisoned").refusal(item);
                let stale = known.lock().expect("not poisoned").read_at.elapsed() >= RECHECK_AFTER;
                if verdict.is_some() && stale {
                    // the kept names would refuse it: the database may know more names
                    // (applied through another server) or newer limits
                    known = self.read_known_traits(tenant).await?;
                    verdict = known.lock().expect("not poisoned").refusal(item);
                }
                match verdict {
                    Some(reason) => refused[index] = Some(reason),
                    None => known.lock().expect("not poisoned").accept(item),
                }
            }
        }
        Ok(refused)
    }

    async fn read_known_traits(&self, tenant: TenantId) -> Result<Arc<Mutex<KnownTraits>>> {
        let known = Arc::new(Mutex::new(self.tenant(tenant).known_traits().await?));
        self.recent.trait_names.put(tenant, known.clone());
        Ok(known)
    }
}

/// What a group of events being applied knows of one tenant's trait names: its limits,
/// how many names it uses, which of the group's names it knows, and the new ones the
/// group has admitted (written at the flush).
pub(crate) struct TenantTraits {
    limits: TraitLimits,
    known: HashSet<(TraitScope, String)>,
    counts: HashMap<TraitScope, usize>,
    new: Vec<(TraitScope, String)>,
}

/// The trait names of a group of events being applied, per tenant.
#[derive(Default)]
pub(crate) struct ApplyTraits {
    tenants: HashMap<TenantId, TenantTraits>,
}

impl ApplyTraits {
    /// Reads, for every tenant of `items`, its limits, its name counts and which of the
    /// names the items carry it knows.
    pub(crate) async fn load(tx: &mut Tx, items: &[IngestItem]) -> Result<Self> {
        let mut names: HashMap<TenantId, HashSet<&str>> = HashMap::new();
        for item in items {
            for (_, traits) in scoped_traits(item) {
                names
                    .entry(item.source.tenant)
                    .or_default()
                    .extend(traits.keys().map(String::as_str));
            }
        }
        let mut out = Self::default();
        for (tenant, names) in names {
            let names: Vec<&str> = names.into_iter().collect();
            out.load_tenant(tx, tenant, &names).await?;
        }
        Ok(out)
    }

    /// Reads a tenant's limits, its name counts, and which of `names` it knows.
    pub(crate) async fn load_tenant(
        &mut self,
        tx: &mut Tx,
        tenant: TenantId,
        names: &[&str],
    ) -> Result<()> {
        let limits = limits_in(tx, tenant).await?;
        let rows: Vec<(String, i64)> = on_tx!(tx, |c| {
            sqlx::query_as(
                "SELECT scope, COUNT(*) FROM trait_names WHERE tenant_id = $1 GROUP BY scope",
            )
            .bind(tenant.0)
            .fetch_all(&mut *c)
            .await?
        });
        let counts = rows
            .into_iter()
            .filter_map(|(s, n)| TraitScope::parse(&s).map(|s| (s, n as usize)))
            .collect();
        let mut known = HashSet::new();
        for chunk in names.chunks(CHUNK) {
            let mut p = Placeholders::for_tx(tx);
            let tenant_p = p.next();
            let sql = format!(
                "SELECT scope, name FROM trait_names WHERE tenant_id = {tenant_p} AND name IN {}",
                p.row(chunk.len())
            );
            let rows: Vec<(String, String)> = on_tx!(tx, |c| {
                let mut query = sqlx::query_as(&sql).bind(tenant.0);
                for name in chunk {
                    query = query.bind(*name);
                }
                query.fetch_all(&mut *c).await?
            });
            known.extend(
                rows.into_iter()
                    .filter_map(|(s, n)| TraitScope::parse(&s).map(|s| (s, n))),
            );
        }
        self.tenants.insert(
            tenant,
            TenantTraits {
                limits,
                known,
                counts,
                new: Vec::new(),
            },
        );
        Ok(())
    }

    /// What may be applied of `incoming` to a profile or membership that holds
    /// `current` (see `siyu_domain::traits::admit`); its new names count as used.
    pub(crate) fn admit(
        &mut self,
        tenant: TenantId,
        scope: TraitScope,
        current: &Map<String, Value>,
        incoming: &Map<String, Value>,
    ) -> Admitted {
        if incoming.is_empty() {
            return Admitted::default();
        }
        let Some(t) = self.tenants.get_mut(&tenant) else {
            // every caller loads the tenants whose traits it applies; should one not,
            // its traits are kept rather than lost
            debug_assert!(false, "trait names of tenant {tenant} not loaded");
            return Admitted {
                traits: incoming.clone(),
                ..Admitted::default()
            };
        };
        let known = &t.known;
        let admitted = admit(
            t.limits,
            incoming,
            |n| current.contains_key(n),
            current.len(),
            |n| known.contains(&(scope, n.to_owned())),
            t.counts.get(&scope).copied().unwrap_or(0),
        );
        for name in &admitted.new_to_tenant {
            t.known.insert((scope, name.clone()));
            t.new.push((scope, name.clone()));
        }
        *t.counts.entry(scope).or_default() += admitted.new_to_tenant.len();
        admitted
    }

    /// Records the names admitted since the last flush.
    pub(crate) async fn flush(&mut self, tx: &mut Tx) -> Result<()> {
        let now = now_ms();
        for (tenant, t) in &mut self.tenants {
            let new = std::mem::take(&mut t.new);
            for chunk in new.chunks(CHUNK) {
                let mut p = Placeholders::for_tx(tx);
                let rows: Vec<String> = (0..chunk.len()).map(|_| p.row(4)).collect();
                let sql = format!(
                    "INSERT INTO trait_names (tenant_id, scope, name, first_seen_at) VALUES {} \
                     ON CONFLICT (tenant_id, scope, name) DO NOTHING",
                    rows.join(",")
                );
                on_tx!(tx, |c| {
                    let mut query = sqlx::query(&sql);
                    for (scope, name) in chunk {
                        query = query
                            .bind(tenant.0)
                            .bind(scope.as_str())
                            .bind(name)
                            .bind(now);
                    }
                    query.execute(&mut *c).await?.rows_affected()
                });
            }
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    group_id: String,
    traits: String,
    trait_times: String,
    joined_at: i64,
    last_seen_at: i64,
}

/// A membership with its row id.
#[derive(sqlx::FromRow)]
struct StoredMembership {
    id: i64,
    #[sqlx(flatten)]
    membership: MembershipRow,
}

/// A group call to apply: the group, the traits it sent, when.
pub(crate) struct GroupCall {
    pub source: crate::SourceRef,
    pub customer: CustomerId,
    pub group_id: String,
    pub traits: Map<String, Value>,
    pub at: i64,
}

/// Records group calls on their customers' memberships (one statement or two each:
/// group calls are few), admitting their traits within the limits. Returns how many
/// trait names were dropped per call.
pub(crate) async fn apply_group_calls(
    tx: &mut Tx,
    calls: &[GroupCall],
    names: &mut ApplyTraits,
) -> Result<Vec<usize>> {
    let mut dropped = Vec::with_capacity(calls.len());
    for call in calls {
        let tenant = call.source.tenant;
        let row: Option<MembershipRow> = on_tx!(tx, |c| {
            sqlx::query_as(
                "SELECT group_id, traits, trait_times, joined_at, last_seen_at FROM customer_groups \
                 WHERE tenant_id = $1 AND customer_id = $2 AND group_id = $3",
            )
            .bind(tenant.0)
            .bind(call.customer.0)
            .bind(&call.group_id)
            .fetch_optional(&mut *c)
            .await?
        });
        let (mut traits, mut times, joined, last) = match &row {
            Some(r) => (
                parse_map(&r.traits),
                parse_map(&r.trait_times),
                r.joined_at.min(call.at),
                r.last_seen_at.max(call.at),
            ),
            None => (Map::new(), Map::new(), call.at, call.at),
        };
        let admitted = names.admit(tenant, TraitScope::Group, &traits, &call.traits);
        dropped.push(admitted.dropped);
        merge_traits(&mut traits, &mut times, &admitted.traits, call.at);
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO customer_groups (tenant_id, customer_id, group_id, traits, trait_times, \
                 joined_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, customer_id, group_id) DO UPDATE SET traits = excluded.traits, \
                 trait_times = excluded.trait_times, joined_at = excluded.joined_at, \
                 last_seen_at = excluded.last_seen_at",
            )
            .bind(tenant.0)
            .bind(call.customer.0)
            .bind(&call.group_id)
            .bind(Value::Object(traits).to_string())
            .bind(Value::Object(times).to_string())
            .bind(joined)
            .bind(last)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
    }
    Ok(dropped)
}

/// Moves a merged profile's memberships to the survivor. A group both belong to stays
/// one membership of the survivor's, joined at the earlier time, with each trait's
/// newest value; the merged profile's row stays where it is (for an undo). The rows
/// that move are recorded as moves of kind `group`, which an undo moves back.
pub(crate) async fn merge_memberships(
    tx: &mut Tx,
    tenant: TenantId,
    merge_id: i64,
    merged: CustomerId,
    survivor: CustomerId,
) -> Result<()> {
    let theirs = memberships_in(tx, tenant, merged).await?;
    if theirs.is_empty() {
        return Ok(());
    }
    let ours: HashMap<String, (i64, MembershipRow)> = memberships_in(tx, tenant, survivor)
        .await?
        .into_iter()
        .map(|(id, r)| (r.group_id.clone(), (id, r)))
        .collect();
    for (id, row) in theirs {
        match ours.get(&row.group_id) {
            Some((our_id, our)) => {
                let mut traits = parse_map(&our.traits);
                let mut times = parse_map(&our.trait_times);
                let their_times = parse_map(&row.trait_times);
                for (key, value) in parse_map(&row.traits) {
                    let at = their_times
                        .get(&key)
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MIN);
                    let mut one = Map::new();
                    one.insert(key, value);
                    merge_traits(&mut traits, &mut times, &one, at);
                }
                on_tx!(tx, |c| {
                    sqlx::query(
                        "UPDATE customer_groups SET traits = $1, trait_times = $2, joined_at = $3, \
                         last_seen_at = $4 WHERE tenant_id = $5 AND id = $6",
                    )
                    .bind(Value::Object(traits).to_string())
                    .bind(Value::Object(times).to_string())
                    .bind(our.joined_at.min(row.joined_at))
                    .bind(our.last_seen_at.max(row.last_seen_at))
                    .bind(tenant.0)
                    .bind(our_id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
            }
            None => {
                on_tx!(tx, |c| {
                    sqlx::query(
                        "INSERT INTO customer_merge_moves (merge_id, kind, row_id) VALUES ($1, 'group', $2)",
                    )
                    .bind(merge_id)
                    .bind(id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
                on_tx!(tx, |c| {
                    sqlx::query(
                        "UPDATE customer_groups SET customer_id = $1 WHERE tenant_id = $2 AND id = $3",
                    )
                    .bind(survivor.0)
                    .bind(tenant.0)
                    .bind(id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected()
                });
            }
        }
    }
    Ok(())
}

/// A customer's memberships with their row ids.
async fn memberships_in(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<Vec<(i64, MembershipRow)>> {
    let rows: Vec<StoredMembership> = on_tx!(tx, |c| {
        sqlx::query_as(
                "SELECT id, group_id, traits, trait_times, joined_at, last_seen_at FROM customer_groups \
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(tenant.0)
            .bind(customer.0)
            .fetch_all(&mut *c)
            .await?
    });
    Ok(rows.into_iter().map(|m| (m.id, m.membership)).collect())
}

impl TenantScope<'_> {
    /// The groups a customer belongs to, most recently seen first.
    pub async fn customer_groups(&self, id: CustomerId) -> Result<Vec<GroupMembership>> {
        let rows: Vec<MembershipRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT group_id, traits, trait_times, joined_at, last_seen_at FROM customer_groups \
                 WHERE tenant_id = $1 AND customer_id = $2 ORDER BY last_seen_at DESC, group_id",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| GroupMembership {
                group_id: r.group_id,
                traits: parse_map(&r.traits),
                joined_at: r.joined_at,
                last_seen_at: r.last_seen_at,
            })
            .collect())
    }
}
