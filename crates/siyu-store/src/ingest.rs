//! Storing tracked events: deduplication, identity resolution, traits and the events
//! themselves, for many requests in one transaction (group commit: the caller gathers
//! concurrent batches and hands them over together, so the cost of a durable commit is
//! shared).
//!
//! Identity resolution: the identities an event names (user id, anonymous id, email,
//! phone, external ids) are looked up; none found makes a new profile; one found is the
//! profile; several found are one person, so the profiles merge into one — except that
//! a profile holds at most one `user_id`, so two profiles with different user ids stay
//! apart and the event goes to the one its user id names. A merge moves identities and
//! events to the survivor, keeps each trait's newest value, points the merged profile at
//! the survivor, and is recorded in `customer_merges`.

use std::collections::HashMap;

use serde_json::{Map, Value};
use siyu_domain::customer::{CustomerId, display_name, merge_traits};
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::ids::TenantId;
use siyu_domain::tracking::TrackedEvent;
use sqlx::{Postgres, Sqlite};

use crate::sources::SourceRef;
use crate::{Pool, Result, Store, StoreError, now_ms};

/// One event to store, with the source it came from.
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub source: SourceRef,
    pub event: TrackedEvent,
}

/// What became of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored(CustomerId),
    /// Its messageId was seen from this source within the deduplication window.
    Duplicate,
}

/// An open transaction on either database.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Runs the same code on the transaction's connection, whichever database it is.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

impl Store {
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Stores events in one transaction and says, for each, whether it was stored (and
    /// on which profile) or was a duplicate. Nothing is stored if this fails.
    pub async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>> {
        let mut tx = self.begin().await?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut per_source: HashMap<SourceRef, (i64, i64)> = HashMap::new();
        for item in items {
            let event = &item.event;
            if !claim_message_id(&mut tx, item.source, &event.message_id, event.received_at).await?
            {
                outcomes.push(IngestOutcome::Duplicate);
                continue;
            }
            let customer = resolve_customer(&mut tx, item.source, event).await?;
            update_profile(&mut tx, item.source.tenant, customer, event).await?;
            insert_event(&mut tx, item.source, customer, event).await?;
            let counter = per_source.entry(item.source).or_insert((0, i64::MIN));
            counter.0 += 1;
            counter.1 = counter.1.max(event.received_at);
            outcomes.push(IngestOutcome::Stored(customer));
        }
        for (source, (received, last)) in per_source {
            on_tx!(&mut tx, |c| {
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
        match tx {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
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

/// Records a message id; false if this source sent it before (within the window).
async fn claim_message_id(
    tx: &mut Tx,
    source: SourceRef,
    message_id: &str,
    at: i64,
) -> Result<bool> {
    let done = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO message_ids (source_id, message_id, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source_id, message_id) DO NOTHING",
        )
        .bind(source.source.0)
        .bind(message_id)
        .bind(at)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// The profiles that own these identities.
async fn owners(
    tx: &mut Tx,
    tenant: TenantId,
    identities: &[Identity],
) -> Result<Vec<(Identity, CustomerId)>> {
    let mut out = Vec::new();
    for identity in identities {
        let owner: Option<i64> = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "SELECT customer_id FROM identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
            )
            .bind(tenant.0)
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .fetch_optional(&mut *c)
            .await?
        });
        if let Some(owner) = owner {
            out.push((identity.clone(), CustomerId(owner)));
        }
    }
    Ok(out)
}

async fn user_id_of(tx: &mut Tx, tenant: TenantId, customer: CustomerId) -> Result<Option<String>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT value FROM identities WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'user_id'",
        )
        .bind(tenant.0)
        .bind(customer.0)
        .fetch_optional(&mut *c)
        .await?
    }))
}

/// Finds (or makes) the one profile this event belongs to, merging profiles it proves
/// to be the same person, and links the event's identities to it.
async fn resolve_customer(
    tx: &mut Tx,
    source: SourceRef,
    event: &TrackedEvent,
) -> Result<CustomerId> {
    let tenant = source.tenant;
    let identities = event.identities();
    let found = owners(tx, tenant, &identities).await?;
    let user_owner = found
        .iter()
        .find(|(i, _)| i.kind.as_str() == IdentityKind::USER_ID)
        .map(|(_, c)| *c);
    let mut candidates: Vec<CustomerId> = found.iter().map(|(_, c)| *c).collect();
    candidates.sort();
    candidates.dedup();

    let mut created = false;
    let mut target = match (user_owner, candidates.first()) {
        (Some(owner), _) => owner,
        (None, Some(first)) => *first,
        (None, None) => {
            created = true;
            create_customer(tx, tenant, event.timestamp).await?
        }
    };
    // the user id this profile is (or is about to be) known by; looked up only when it
    // can matter (a user id on the event, or profiles to merge), to keep the common
    // event of a known person cheap
    let mut target_user = match user_owner {
        Some(_) => event.user_id.clone(),
        None if created => None,
        None if event.user_id.is_some() || candidates.len() > 1 => {
            user_id_of(tx, tenant, target).await?
        }
        None => None,
    };
    if let Some(user) = &event.user_id
        && target_user.as_deref().is_some_and(|u| u != user)
    {
        // another user signed in on a device we know: a person of their own
        target = create_customer(tx, tenant, event.timestamp).await?;
        target_user = None;
    }
    if target_user.is_none() {
        target_user = event.user_id.clone();
    }
    for other in candidates.into_iter().filter(|c| *c != target) {
        let other_user = user_id_of(tx, tenant, other).await?;
        if let (Some(a), Some(b)) = (&target_user, &other_user)
            && a != b
        {
            continue; // two people with their own user ids: never merged
        }
        merge_into(tx, tenant, other, target, &event.message_id).await?;
        if target_user.is_none() {
            target_user = other_user;
        }
    }
    // identities already owned stay with their owner (the target, one merged into it,
    // or a person kept apart); only new ones are linked
    for identity in identities.iter().filter(|i| !found.iter().any(|(f, _)| f == *i)) {
        if identity.kind.as_str() == IdentityKind::USER_ID
            && target_user.as_deref().is_some_and(|u| u != identity.value)
        {
            continue;
        }
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO identities (tenant_id, customer_id, kind, value, source_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, kind, value) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(target.0)
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .bind(source.source.0)
            .bind(now_ms())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
    }
    Ok(target)
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
struct ProfileRow {
    traits: String,
    trait_times: String,
    first_seen_at: i64,
    last_seen_at: i64,
}

fn parse_map(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

async fn load_profile(tx: &mut Tx, tenant: TenantId, customer: CustomerId) -> Result<ProfileRow> {
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

async fn save_profile(
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

/// Applies the event's traits and seen times to the profile.
async fn update_profile(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    event: &TrackedEvent,
) -> Result<()> {
    if event.traits.is_empty() {
        // most events carry no traits: only the seen times move
        on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE customers SET \
                 first_seen_at = CASE WHEN first_seen_at > $1 THEN $1 ELSE first_seen_at END, \
                 last_seen_at = CASE WHEN last_seen_at < $1 THEN $1 ELSE last_seen_at END \
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(event.timestamp)
            .bind(tenant.0)
            .bind(customer.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        return Ok(());
    }
    let row = load_profile(tx, tenant, customer).await?;
    let mut traits = parse_map(&row.traits);
    let mut times = parse_map(&row.trait_times);
    merge_traits(&mut traits, &mut times, &event.traits, event.timestamp);
    save_profile(
        tx,
        tenant,
        customer,
        &traits,
        &times,
        row.first_seen_at.min(event.timestamp),
        row.last_seen_at.max(event.timestamp),
    )
    .await
}

/// Merges `merged` into `survivor`.
async fn merge_into(
    tx: &mut Tx,
    tenant: TenantId,
    merged: CustomerId,
    survivor: CustomerId,
    message_id: &str,
) -> Result<()> {
    let from = load_profile(tx, tenant, merged).await?;
    let into = load_profile(tx, tenant, survivor).await?;
    let mut traits = parse_map(&into.traits);
    let mut times = parse_map(&into.trait_times);
    let from_traits = parse_map(&from.traits);
    let from_times = parse_map(&from.trait_times);
    for (key, value) in &from_traits {
        let at = from_times
            .get(key)
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN);
        let mut one = Map::new();
        one.insert(key.clone(), value.clone());
        merge_traits(&mut traits, &mut times, &one, at);
    }
    let now = now_ms();
    for sql in [
        "UPDATE identities SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE events SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        "UPDATE customers SET merged_into_id = $1 WHERE tenant_id = $2 AND (id = $3 OR merged_into_id = $3)",
    ] {
        on_tx!(tx, |c| {
            sqlx::query(sql)
                .bind(survivor.0)
                .bind(tenant.0)
                .bind(merged.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
    }
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO customer_merges (tenant_id, survivor_id, merged_id, message_id, reason, at) \
             VALUES ($1, $2, $3, $4, 'shared identity', $5)",
        )
        .bind(tenant.0)
        .bind(survivor.0)
        .bind(merged.0)
        .bind(message_id)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    save_profile(
        tx,
        tenant,
        survivor,
        &traits,
        &times,
        into.first_seen_at.min(from.first_seen_at),
        into.last_seen_at.max(from.last_seen_at),
    )
    .await
}

async fn insert_event(
    tx: &mut Tx,
    source: SourceRef,
    customer: CustomerId,
    event: &TrackedEvent,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO events (tenant_id, source_id, customer_id, type, name, message_id, user_id, \
             anonymous_id, properties, context, timestamp, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(source.tenant.0)
        .bind(source.source.0)
        .bind(customer.0)
        .bind(event.event_type.as_str())
        .bind(&event.name)
        .bind(&event.message_id)
        .bind(&event.user_id)
        .bind(&event.anonymous_id)
        .bind(Value::Object(event.properties.clone()).to_string())
        .bind(Value::Object(event.context.clone()).to_string())
        .bind(event.timestamp)
        .bind(event.received_at)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(())
}
