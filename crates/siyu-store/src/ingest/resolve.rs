//! Identity resolution: who owns the identities an event names, and the one profile the
//! event belongs to (merging profiles it proves to be one person).

use std::collections::{HashMap, HashSet};

use siyu_domain::customer::CustomerId;
use siyu_domain::identity::{Identity, IdentitySettings};
use siyu_domain::ids::TenantId;
use siyu_domain::tracking::TrackedEvent;

use super::batch::{Batch, CHUNK, IdentityKey, Keys};
use crate::Result;
use crate::sources::SourceRef;
use crate::tx::{Placeholders, Tx, on_tx};

use crate::tracked::IngestItem;

/// Looks up, in a few statements, who owns every identity the new items name.
pub(super) async fn prefetch_owners(
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
pub(super) fn owners(
    batch: &Batch,
    tenant: TenantId,
    identities: &[Identity],
) -> Vec<(Identity, CustomerId)> {
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
pub(super) async fn identifying_kinds(tx: &mut Tx, tenant: TenantId) -> Result<Vec<String>> {
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
pub(super) fn different_people(a: &Keys, b: &Keys) -> bool {
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
pub(super) async fn resolve_customer(
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
    if let Some(known) = event.customer
        && let Some(target) = live_customer(tx, tenant, batch.survivor(known)).await?
    {
        // siyu knows whose event this is (a personal link's click): the identities it
        // carries join that profile where nobody holds them, and merge nothing (a link
        // forwarded to a friend must not make the friend's device the customer's)
        let target = batch.survivor(target);
        for identity in identities
            .iter()
            .filter(|i| !found.iter().any(|(f, _)| f == *i))
            .filter(|i| !kinds.iter().any(|k| k == i.kind.as_str()))
        {
            batch.link(source, target, identity);
        }
        return Ok(target);
    }
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

/// The profile a known customer id leads to now (the one it was merged into), unless it
/// was erased or never existed.
async fn live_customer(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<Option<CustomerId>> {
    #[derive(sqlx::FromRow)]
    struct Live {
        id: i64,
        merged_into_id: Option<i64>,
        erased_at: Option<i64>,
    }
    let mut at = customer;
    // merges keep pointers one step from the survivor; a few steps bound a broken chain
    for _ in 0..4 {
        let row: Option<Live> = on_tx!(tx, |c| {
            sqlx::query_as(
                "SELECT id, merged_into_id, erased_at FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(at.0)
            .fetch_optional(&mut *c)
            .await?
        });
        match row {
            None => return Ok(None),
            Some(Live {
                erased_at: Some(_), ..
            }) => return Ok(None),
            Some(Live {
                merged_into_id: Some(next),
                ..
            }) => at = CustomerId(next),
            Some(Live { id, .. }) => return Ok(Some(CustomerId(id))),
        }
    }
    Ok(None)
}
