//! How the index lays out what it knows, apart from any question asked of it: rows per
//! customer (per-day event counts, orders) compressed into one vector with the changed
//! customers kept beside it until the next compaction, and each trait as codes into a
//! dictionary of its values, sparse while few customers have it and dense once most do.
//! These are the layouts whose memory and speed the index stands on; building,
//! evaluation and the reports use them and nothing here knows of those.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use serde_json::Value;

/// Rows per customer: compressed rows built once (by [`RowsBuilder`]), with the customers
/// changed since kept beside them until the next [`Rows::compact`].
#[derive(Debug, Default)]
pub(super) struct Rows<T> {
    /// `starts[c]..starts[c + 1]` are customer `c`'s rows, for `c < starts.len() - 1`.
    pub(super) starts: Vec<u32>,
    pub(super) rows: Vec<T>,
    pub(super) changed: HashMap<u32, Vec<T>>,
    /// Customers with at least one row.
    pub(super) members: RoaringBitmap,
}

impl<T: Clone> Rows<T> {
    pub(super) fn get(&self, c: u32) -> &[T] {
        if !self.changed.is_empty()
            && let Some(rows) = self.changed.get(&c)
        {
            return rows;
        }
        let c = c as usize;
        if c + 1 < self.starts.len() {
            &self.rows[self.starts[c] as usize..self.starts[c + 1] as usize]
        } else {
            &[]
        }
    }

    pub(super) fn set(&mut self, c: u32, rows: Vec<T>) {
        if rows.is_empty() {
            self.members.remove(c);
        } else {
            self.members.insert(c);
        }
        if rows.is_empty() && self.get(c).is_empty() {
            self.changed.remove(&c);
            return;
        }
        self.changed.insert(c, rows);
        if self.changed.len() > 4096 + self.starts.len() / 8 {
            self.compact();
        }
    }

    /// Folds the changed customers into the compressed rows.
    fn compact(&mut self) {
        let customers = (self.starts.len().max(1) - 1).max(
            self.changed
                .keys()
                .map(|&c| c as usize + 1)
                .max()
                .unwrap_or(0),
        );
        let mut starts = Vec::with_capacity(customers + 1);
        let mut rows = Vec::with_capacity(self.rows.len());
        for c in 0..customers as u32 {
            starts.push(rows.len() as u32);
            rows.extend_from_slice(self.get(c));
        }
        starts.push(rows.len() as u32);
        self.starts = starts;
        self.rows = rows;
        self.changed.clear();
    }
}

/// Builds [`Rows`] from customers in ascending order.
pub(super) struct RowsBuilder<T> {
    rows: Rows<T>,
}

impl<T: Clone> RowsBuilder<T> {
    pub(super) fn new() -> Self {
        Self {
            rows: Rows {
                starts: vec![0],
                rows: Vec::new(),
                changed: HashMap::new(),
                members: RoaringBitmap::new(),
            },
        }
    }

    pub(super) fn push(&mut self, c: u32, rows: impl IntoIterator<Item = T>) {
        let r = &mut self.rows;
        while r.starts.len() < c as usize + 1 {
            r.starts.push(r.rows.len() as u32);
        }
        let before = r.rows.len();
        r.rows.extend(rows);
        if r.rows.len() > before {
            r.members.insert(c);
        }
        // customer c's rows end here
        r.starts.push(r.rows.len() as u32);
    }

    pub(super) fn finish(mut self, customers: u32) -> Rows<T> {
        let r = &mut self.rows;
        while r.starts.len() < customers as usize + 1 {
            r.starts.push(r.rows.len() as u32);
        }
        self.rows
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DayCount {
    pub(super) day: i32,
    pub(super) count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OrderRow {
    pub(super) day: i32,
    pub(super) amount: i64,
    pub(super) unit: i64,
    pub(super) channel: u16,
}

/// One trait: a code per customer who has it, into a dictionary of its values.
///
/// Stored sparsely while few customers have it, so that a rare trait (and a tenant has
/// many: one campaign's answers, one store's loyalty number) costs memory in proportion
/// to the customers who have it, not to the tenant's size; dense once common, where a
/// code per customer is both smaller and faster to test.
#[derive(Debug, Default)]
pub(super) struct TraitColumn {
    pub(super) codes: Codes,
    /// `values[code - 1]`
    pub(super) values: Vec<Value>,
    by_text: HashMap<String, u32>,
}

#[derive(Debug)]
pub(super) enum Codes {
    /// (customer, code) pairs, ascending by customer; codes are never 0.
    Sparse(Vec<(u32, u32)>),
    /// A code per customer (0 when absent; customers past the end have none), and how
    /// many are not 0.
    Dense { codes: Vec<u32>, present: usize },
}

impl Default for Codes {
    fn default() -> Self {
        Codes::Sparse(Vec::new())
    }
}

impl Codes {
    /// Whether `present` of `customers` having the trait is better kept dense: a pair
    /// costs 8 bytes, a dense slot 4, so dense from half of the customers. Back to
    /// sparse only below an eighth, so that a column near the line does not flip back
    /// and forth.
    fn dense_for(present: usize, customers: usize, dense_now: bool) -> bool {
        if dense_now {
            present * 8 >= customers
        } else {
            present * 2 > customers
        }
    }

    fn get(&self, c: u32) -> u32 {
        match self {
            Codes::Sparse(pairs) => pairs
                .binary_search_by_key(&c, |p| p.0)
                .map_or(0, |i| pairs[i].1),
            Codes::Dense { codes, .. } => codes.get(c as usize).copied().unwrap_or(0),
        }
    }

    fn present(&self) -> usize {
        match self {
            Codes::Sparse(pairs) => pairs.len(),
            Codes::Dense { present, .. } => *present,
        }
    }

    fn set(&mut self, c: u32, code: u32) {
        match self {
            Codes::Sparse(pairs) => match pairs.binary_search_by_key(&c, |p| p.0) {
                Ok(i) if code == 0 => {
                    pairs.remove(i);
                }
                Ok(i) => pairs[i].1 = code,
                Err(_) if code == 0 => {}
                Err(i) => pairs.insert(i, (c, code)),
            },
            Codes::Dense { codes, present } => {
                let c = c as usize;
                if c >= codes.len() {
                    if code == 0 {
                        return;
                    }
                    codes.resize(c + 1, 0);
                }
                match (codes[c], code) {
                    (0, 0) => {}
                    (0, _) => *present += 1,
                    (_, 0) => *present -= 1,
                    _ => {}
                }
                codes[c] = code;
            }
        }
    }

    /// Switches to the better layout for `customers` customers, if it is not the one.
    pub(super) fn fit(&mut self, customers: usize) {
        let dense_now = matches!(self, Codes::Dense { .. });
        let present = self.present();
        if Self::dense_for(present, customers, dense_now) == dense_now {
            return;
        }
        *self = match std::mem::take(self) {
            Codes::Sparse(pairs) => {
                let mut codes = vec![0; customers];
                for (c, code) in pairs {
                    codes[c as usize] = code;
                }
                Codes::Dense { codes, present }
            }
            Codes::Dense { codes, .. } => {
                let mut pairs = Vec::with_capacity(present);
                pairs.extend(
                    codes
                        .iter()
                        .enumerate()
                        .filter(|(_, code)| **code != 0)
                        .map(|(c, code)| (c as u32, *code)),
                );
                Codes::Sparse(pairs)
            }
        };
    }

    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            Codes::Sparse(pairs) => pairs.capacity() * 8,
            Codes::Dense { codes, .. } => codes.capacity() * 4,
        }
    }
}

impl TraitColumn {
    fn code_of(&mut self, value: &Value) -> u32 {
        if value.is_null() {
            return 0;
        }
        let key = value.to_string();
        if let Some(&code) = self.by_text.get(&key) {
            return code;
        }
        self.values.push(value.clone());
        let code = self.values.len() as u32;
        self.by_text.insert(key, code);
        code
    }

    /// Sets customer `c`'s value (of `customers` in the index).
    pub(super) fn set(&mut self, c: u32, value: Option<&Value>, customers: usize) {
        let code = value.map_or(0, |v| self.code_of(v));
        if code == 0 && self.codes.get(c) == 0 {
            return;
        }
        self.codes.set(c, code);
        self.codes.fit(customers);
    }

    /// The customers among `candidates` whose value passes `wanted` (by code).
    pub(super) fn matching(&self, candidates: &RoaringBitmap, wanted: &[bool]) -> RoaringBitmap {
        match &self.codes {
            Codes::Dense { codes, .. } => {
                RoaringBitmap::from_sorted_iter(candidates.iter().filter(|&c| {
                    codes
                        .get(c as usize)
                        .is_some_and(|&code| wanted[code as usize])
                }))
                .expect("ascending")
            }
            // few candidates: look each up; else walk the pairs once
            Codes::Sparse(pairs) if candidates.len() * 16 < pairs.len() as u64 => {
                RoaringBitmap::from_sorted_iter(
                    candidates
                        .iter()
                        .filter(|&c| wanted[self.codes.get(c) as usize]),
                )
                .expect("ascending")
            }
            Codes::Sparse(pairs) => {
                RoaringBitmap::from_sorted_iter(
                    pairs
                        .iter()
                        .filter(|(_, code)| wanted[*code as usize])
                        .map(|(c, _)| *c),
                )
                .expect("ascending")
                    & candidates
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AudienceIndex, IndexBuilder, ScoreSettings};
    use super::*;
    use crate::facts::CustomerFacts;

    fn with_traits(id: i64, traits: &[(&str, Value)]) -> CustomerFacts {
        CustomerFacts {
            id,
            traits: traits
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    fn is_dense(ix: &AudienceIndex, key: &str) -> bool {
        matches!(ix.traits[key].codes, Codes::Dense { .. })
    }

    /// A trait few customers have costs memory by them, not by the tenant's size; one
    /// most have is kept dense, and a column moves between the two as customers change.
    #[test]
    fn trait_columns_are_sparse_while_rare_and_dense_when_common() {
        let n = 10_000;
        let mut b = IndexBuilder::new(ScoreSettings::default(), 20_010);
        for id in 0..n {
            let mut traits = vec![("city", serde_json::json!(["上海", "北京"][id as usize % 2]))];
            if id % 1000 == 0 {
                traits.push(("rare", serde_json::json!(id)));
            }
            b.add(&with_traits(id, &traits));
        }
        let mut ix = b.finish();
        assert!(is_dense(&ix, "city"));
        assert!(!is_dense(&ix, "rare"));
        // a thousand new names on ten customers each: about 1,000 × 10 pairs, where
        // dense columns would take 1,000 × 10,000 codes (40 MB)
        let before = ix.memory_bytes();
        for id in 0..10 {
            let many: Vec<(String, Value)> = (0..1000)
                .map(|k| (format!("k{k}"), serde_json::json!(k)))
                .collect();
            let mut facts = with_traits(id, &[("city", serde_json::json!("上海"))]);
            facts.traits.extend(many);
            ix.upsert(&facts);
        }
        let grown = ix.memory_bytes() - before;
        assert!(grown < 1000 * 200, "grew {grown} bytes");
        assert!(!is_dense(&ix, "k0"));
        // most customers take the rare trait: dense; most leave it again: sparse
        for id in 0..n / 2 + 1 {
            ix.upsert(&with_traits(
                id,
                &[
                    ("city", serde_json::json!("上海")),
                    ("rare", serde_json::json!(1)),
                ],
            ));
        }
        assert!(is_dense(&ix, "rare"));
        // 0 to 5,000, and 6,000, 7,000, 8,000 and 9,000 from before
        assert_eq!(ix.traits["rare"].codes.present(), 5_005);
        for id in 0..n / 2 {
            ix.upsert(&with_traits(id, &[("city", serde_json::json!("上海"))]));
        }
        assert!(!is_dense(&ix, "rare"));
        let rare = &ix.traits["rare"];
        assert_eq!(rare.values[rare.codes.get(5_000) as usize - 1], 1);
        assert_eq!(rare.values[rare.codes.get(9_000) as usize - 1], 9_000);
        assert_eq!(rare.codes.get(3), 0);
    }
}
