//! Answers that every tracking call needs and that change rarely, kept in memory for a
//! few seconds: which source a write key belongs to, a tenant's exchange rates, and
//! the trait names a tenant uses (whose freshness `traits` explains).
//!
//! # Why
//! At a thousand tracking calls a second each of these was a database read of its own,
//! with its hand-offs to the database's threads: measured, a few per cent of the CPU
//! that answering has on two cores. Neither changes often.
//!
//! # How fresh
//! A change made through this store (a rotated write key, new exchange rates) forgets
//! the entry at once, so this process never answers from a stale one. Another server
//! process on the same database sees the change within [`FRESH_FOR`]: until then a
//! rotated key still works there, and an order in a currency whose rate was just taken
//! away is taken in, to be refused when it is applied (counted against its source).
//! A rate just added is seen at once everywhere: an order the kept rates would refuse
//! is always checked against the database. Only answers that exist are kept: a write
//! key that resolves to nothing is asked for again each time, so a new source's key
//! works at once everywhere.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use siyu_domain::currency::CurrencySettings;
use siyu_domain::ids::TenantId;

use crate::SourceRef;
use crate::traits::KnownTraits;

/// How long an answer is used before it is read again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(5);

/// Entries kept at most; when full, all are forgotten (they are read again as needed).
const MAX_ENTRIES: usize = 10_000;

/// What a store keeps in memory (each [`crate::Store`] opened has its own).
#[derive(Default)]
pub(crate) struct Recent {
    /// Write keys (by their hash, as stored) and the source each belongs to.
    pub write_keys: Kept<String, SourceRef>,
    /// Each tenant's currency and exchange rates.
    pub currencies: Kept<TenantId, CurrencySettings>,
    /// Each tenant's trait names and limits, with the names this process accepted
    /// since (see `traits`).
    pub trait_names: Kept<TenantId, Arc<Mutex<KnownTraits>>>,
}

/// Answers by key, each used for [`FRESH_FOR`] after it was read.
pub(crate) struct Kept<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    fresh_for: Duration,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            fresh_for: FRESH_FOR,
        }
    }
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    /// The answer kept for `key`, if it is still fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("not poisoned");
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.fresh_for)
            .map(|(value, _)| value.clone())
    }

    /// Keeps an answer just read.
    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets the answer for `key` (it changed).
    pub fn forget(&self, key: &K) {
        self.entries.lock().expect("not poisoned").remove(key);
    }

    /// Forgets every answer.
    pub fn clear(&self) {
        self.entries.lock().expect("not poisoned").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_until_it_is_stale_or_forgotten() {
        let kept: Kept<&str, i32> = Kept {
            entries: Mutex::new(HashMap::new()),
            fresh_for: Duration::from_millis(50),
        };
        assert_eq!(kept.get(&"a"), None);
        kept.put("a", 1);
        kept.put("b", 2);
        assert_eq!((kept.get(&"a"), kept.get(&"b")), (Some(1), Some(2)));
        kept.forget(&"a");
        assert_eq!((kept.get(&"a"), kept.get(&"b")), (None, Some(2)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(kept.get(&"b"), None, "stale");
        kept.put("c", 3);
        kept.clear();
        assert_eq!(kept.get(&"c"), None);
    }

    #[test]
    fn a_full_cache_starts_again() {
        let kept: Kept<usize, usize> = Kept::default();
        for i in 0..MAX_ENTRIES {
            kept.put(i, i);
        }
        assert_eq!(kept.get(&0), Some(0));
        kept.put(MAX_ENTRIES, 1);
        assert_eq!(kept.get(&0), None);
        assert_eq!(kept.get(&MAX_ENTRIES), Some(1));
        assert_eq!(kept.entries.lock().unwrap().len(), 1);
    }
}
