//! Who a send's audience names when it names customers one by one: a list of customer
//! ids (each merged id led to its survivor, erased ones and ones out of reach left out),
//! and a file whose rows name customers by id or identity (the rules of reading and
//! matching it are `siyu_domain::engagement::audience_file`; this module finds whom
//! each name leads to).

use std::collections::{HashMap, HashSet};

use siyu_domain::engagement::audience_file::{AudienceFile, AudienceFromFile, RowName, resolve};
use siyu_domain::identity::Identity;
use siyu_domain::ids::CustomerId;

use crate::db::{id_list, on_db};
use crate::{Result, TenantScope};

impl TenantScope<'_> {
    /// The customers a list names, as planning takes them: each merged id led to its
    /// survivor, erased ones and ones out of reach left out. Answers the customers (in
    /// the list's order, repeats kept) and how many ids named none.
    pub async fn resolve_listed(&self, ids: &[CustomerId]) -> Result<(Vec<i64>, i64)> {
        let led = self.lead_within_reach(ids).await?;
        let mut customers = Vec::with_capacity(ids.len());
        let mut not_found = 0;
        for id in ids {
            match led.get(&id.0) {
                Some(survivor) => customers.push(*survivor),
                None => not_found += 1,
            }
        }
        Ok((customers, not_found))
    }

    /// What a file gives a send: each row's customer (its first name that leads to a
    /// live customer within reach), every customer once, and the rows that named no one.
    pub async fn audience_from_file(&self, file: &AudienceFile) -> Result<AudienceFromFile> {
        let names = || file.rows.iter().flat_map(|row| row.names.iter());
        let identities: Vec<&Identity> = names()
            .filter_map(|name| match name {
                RowName::Identity(identity) => Some(identity),
                RowName::Customer(_) => None,
            })
            .collect();
        let owners = self.identity_owners(&identities).await?;
        let owner = |identity: &Identity| {
            owners
                .get(&(identity.kind.as_str().to_owned(), identity.value.clone()))
                .copied()
        };
        let named: Vec<CustomerId> = names()
            .filter_map(|name| match name {
                RowName::Customer(id) => Some(*id),
                RowName::Identity(identity) => owner(identity),
            })
            .collect();
        let led = self.lead_within_reach(&named).await?;
        Ok(resolve(file, |name| {
            let id = match name {
                RowName::Customer(id) => *id,
                RowName::Identity(identity) => owner(identity)?,
            };
            led.get(&id.0).map(|survivor| CustomerId(*survivor))
        }))
    }

    /// Each of `ids` that leads to a live customer within reach, to that customer (a
    /// merged id to its survivor, over a few links at most).
    async fn lead_within_reach(&self, ids: &[CustomerId]) -> Result<HashMap<i64, i64>> {
        #[derive(sqlx::FromRow)]
        struct Listed {
            id: i64,
            merged_into_id: Option<i64>,
            erased_at: Option<i64>,
        }
        let mut survivor: HashMap<i64, Option<i64>> = HashMap::new();
        let mut asking: Vec<i64> = ids.iter().map(|c| c.0).collect();
        // a merge chain is followed a few links at most
        for _ in 0..8 {
            asking.retain(|id| !survivor.contains_key(id));
            asking.sort_unstable();
            asking.dedup();
            if asking.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for chunk in asking.chunks(1_000) {
                let sql = format!(
                    "SELECT id, merged_into_id, erased_at FROM customers \
                     WHERE tenant_id = $1 AND id IN ({})",
                    id_list(chunk)
                );
                let rows: Vec<Listed> = on_db!(self.store, |db| {
                    sqlx::query_as(&sql)
                        .bind(self.tenant.0)
                        .fetch_all(db)
                        .await?
                });
                for id in chunk {
                    survivor.insert(*id, None);
                }
                for r in rows {
                    match (r.merged_into_id, r.erased_at) {
                        (_, Some(_)) => {}
                        (Some(into), None) => {
                            next.push(into);
                            survivor.insert(r.id, Some(into));
                        }
                        (None, None) => {
                            survivor.insert(r.id, Some(r.id));
                        }
                    }
                }
            }
            asking = next;
        }
        let lead = |mut id: i64| {
            for _ in 0..9 {
                match survivor.get(&id) {
                    Some(Some(next)) if *next == id => return Some(id),
                    Some(Some(next)) => id = *next,
                    _ => return None,
                }
            }
            None
        };
        let led: HashMap<i64, i64> = ids.iter().filter_map(|c| Some((c.0, lead(c.0)?))).collect();
        let distinct: Vec<CustomerId> = {
            let mut all: Vec<i64> = led.values().copied().collect();
            all.sort_unstable();
            all.dedup();
            all.into_iter().map(CustomerId).collect()
        };
        let reached: HashSet<i64> = self
            .reachable(&distinct)
            .await?
            .into_iter()
            .map(|c| c.0)
            .collect();
        Ok(led
            .into_iter()
            .filter(|(_, survivor)| reached.contains(survivor))
            .collect())
    }
}
