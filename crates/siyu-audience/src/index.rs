//! The audience index: one tenant's customers in memory, laid out so that a condition
//! over a million of them is answered in milliseconds.
//!
//! Each customer gets a dense number (0, 1, 2, … in the order they were added). Sets of
//! customers are compressed bitmaps (`roaring`) over those numbers: who has each tag,
//! who each staff member owns, who opted out of each channel, who bought in each unit,
//! who is in each lifecycle stage and RFM class. Everything else is a column indexed by
//! the dense number: each trait as codes into a dictionary of its distinct values (kept
//! sparse while few customers have it: a rare trait costs memory in proportion to them,
//! see `TraitColumn`), and per-day event counts (one column per event name) and orders as compressed rows.
//!
//! A condition is evaluated against a set of candidates, narrowing as it goes: the
//! parts of an `and` run cheapest first (bitmap look-ups before column scans), each on
//! what the previous ones left, so the expensive parts touch few customers. The
//! database stays the source of truth: the index is built from it and each change to a
//! customer replaces that customer's entry ([`AudienceIndex::upsert`]).

use std::collections::HashMap;

use roaring::RoaringBitmap;
use serde_json::Value;

use crate::catalog::{MAX_SEGMENT_DEPTH, SavedSegment};
use crate::condition::{Condition, LifecycleStage, OrderMeasure, RfmClass, RfmDimension, Which};
use crate::facts::{CustomerFacts, bucket_of, day_of, time_matches, trait_matches, window_start};
use crate::lifecycle::{Activity, LifecycleSettings};
use crate::plain::{EvalError, EvalInput};
use crate::rfm::{self, CutPoints, RfmScore, RfmSettings, RfmValues};

/// Rows per customer: compressed rows built once ([`Rows::build`]), with the customers
/// changed since kept beside them until the next [`Rows::compact`].
#[derive(Debug, Default)]
struct Rows<T> {
    /// `starts[c]..starts[c + 1]` are customer `c`'s rows, for `c < starts.len() - 1`.
    starts: Vec<u32>,
    rows: Vec<T>,
    changed: HashMap<u32, Vec<T>>,
    /// Customers with at least one row.
    members: RoaringBitmap,
}

impl<T: Clone> Rows<T> {
    fn get(&self, c: u32) -> &[T] {
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

    fn set(&mut self, c: u32, rows: Vec<T>) {
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
struct RowsBuilder<T> {
    rows: Rows<T>,
}

impl<T: Clone> RowsBuilder<T> {
    fn new() -> Self {
        Self {
            rows: Rows {
                starts: vec![0],
                rows: Vec::new(),
                changed: HashMap::new(),
                members: RoaringBitmap::new(),
            },
        }
    }

    fn push(&mut self, c: u32, rows: impl IntoIterator<Item = T>) {
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

    fn finish(mut self, customers: u32) -> Rows<T> {
        let r = &mut self.rows;
        while r.starts.len() < customers as usize + 1 {
            r.starts.push(r.rows.len() as u32);
        }
        self.rows
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayCount {
    day: i32,
    count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OrderRow {
    day: i32,
    amount: i64,
    unit: i64,
    channel: u16,
}

/// One trait: a code per customer who has it, into a dictionary of its values.
///
/// Stored sparsely while few customers have it, so that a rare trait (and a tenant has
/// many: one campaign's answers, one store's loyalty number) costs memory in proportion
/// to the customers who have it, not to the tenant's size; dense once common, where a
/// code per customer is both smaller and faster to test.
#[derive(Debug, Default)]
struct TraitColumn {
    codes: Codes,
    /// `values[code - 1]`
    values: Vec<Value>,
    by_text: HashMap<String, u32>,
}

#[derive(Debug)]
enum Codes {
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
    fn fit(&mut self, customers: usize) {
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

    fn memory_bytes(&self) -> usize {
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
    fn set(&mut self, c: u32, value: Option<&Value>, customers: usize) {
        let code = value.map_or(0, |v| self.code_of(v));
        if code == 0 && self.codes.get(c) == 0 {
            return;
        }
        self.codes.set(c, code);
        self.codes.fit(customers);
    }

    /// The customers among `candidates` whose value passes `wanted` (by code).
    fn matching(&self, candidates: &RoaringBitmap, wanted: &[bool]) -> RoaringBitmap {
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

/// Tenant-wide settings of the scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreSettings {
    pub rfm: RfmSettings,
    pub lifecycle: LifecycleSettings,
}

/// Customers per RFM class, with their figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassFigures {
    pub customers: u64,
    /// Net order total in the window, in fen.
    pub gmv: i64,
    pub orders: u64,
}

pub struct AudienceIndex {
    ids: Vec<i64>,
    dense: HashMap<i64, u32>,
    live: RoaringBitmap,
    tags: HashMap<i64, RoaringBitmap>,
    tags_of: HashMap<u32, Vec<i64>>,
    sources: HashMap<i64, RoaringBitmap>,
    sources_of: HashMap<u32, Vec<i64>>,
    channel_codes: HashMap<String, RoaringBitmap>,
    channel_codes_of: HashMap<u32, Vec<String>>,
    owners: HashMap<i64, RoaringBitmap>,
    owned: RoaringBitmap,
    owner_of: HashMap<u32, i64>,
    opted_out: HashMap<String, RoaringBitmap>,
    traits: HashMap<String, TraitColumn>,
    events: HashMap<String, Rows<DayCount>>,
    orders: Rows<OrderRow>,
    channels: Vec<String>,
    unit_buyers: HashMap<i64, RoaringBitmap>,
    activity: Vec<Activity>,
    /// The day each customer was first seen (their acquisition cohort).
    first_seen: Vec<i32>,
    stages: HashMap<LifecycleStage, RoaringBitmap>,
    rfm: Vec<Option<RfmScore>>,
    classes: HashMap<RfmClass, RoaringBitmap>,
    cuts: CutPoints,
    settings: ScoreSettings,
    /// The day the scores were computed for.
    today: i32,
}

/// Builds an index from customers streamed in any order of id.
pub struct IndexBuilder {
    index: AudienceIndex,
    events: HashMap<String, RowsBuilder<DayCount>>,
    orders: RowsBuilder<OrderRow>,
}

impl IndexBuilder {
    pub fn new(settings: ScoreSettings, today: i32) -> Self {
        Self {
            index: AudienceIndex::empty(settings, today),
            events: HashMap::new(),
            orders: RowsBuilder::new(),
        }
    }

    pub fn add(&mut self, facts: &CustomerFacts) {
        let ix = &mut self.index;
        if ix.dense.contains_key(&facts.id) {
            return;
        }
        let c = ix.ids.len() as u32;
        ix.ids.push(facts.id);
        ix.dense.insert(facts.id, c);
        ix.live.insert(c);
        ix.set_sets(c, facts);
        for (key, value) in &facts.traits {
            ix.traits
                .entry(key.clone())
                .or_default()
                .set(c, Some(value), c as usize + 1);
        }
        let mut by_name: HashMap<&str, Vec<DayCount>> = HashMap::new();
        for e in &facts.events {
            by_name.entry(&e.name).or_default().push(DayCount {
                day: e.day,
                count: e.count,
            });
        }
        for (name, mut rows) in by_name {
            rows.sort_by_key(|r| r.day);
            self.events
                .entry(name.to_owned())
                .or_insert_with(RowsBuilder::new)
                .push(c, rows);
        }
        let orders = ix.order_rows(facts);
        for o in &orders {
            ix.unit_buyers.entry(o.unit).or_default().insert(c);
        }
        self.orders.push(c, orders);
        ix.activity
            .push(Activity::of(facts, &ix.settings.lifecycle));
        ix.first_seen.push(day_of(facts.first_seen_at));
        ix.rfm.push(None);
    }

    pub fn finish(self) -> AudienceIndex {
        let mut ix = self.index;
        let n = ix.ids.len() as u32;
        ix.events = self
            .events
            .into_iter()
            .map(|(name, b)| (name, b.finish(n)))
            .collect();
        ix.orders = self.orders.finish(n);
        // each column laid out for the final count (decided as customers came)
        for column in ix.traits.values_mut() {
            column.codes.fit(n as usize);
        }
        ix.unit_buyers.remove(&0);
        ix.recompute(ix.today);
        ix
    }
}

impl AudienceIndex {
    fn empty(settings: ScoreSettings, today: i32) -> Self {
        Self {
            ids: Vec::new(),
            dense: HashMap::new(),
            live: RoaringBitmap::new(),
            tags: HashMap::new(),
            tags_of: HashMap::new(),
            sources: HashMap::new(),
            sources_of: HashMap::new(),
            channel_codes: HashMap::new(),
            channel_codes_of: HashMap::new(),
            owners: HashMap::new(),
            owned: RoaringBitmap::new(),
            owner_of: HashMap::new(),
            opted_out: HashMap::new(),
            traits: HashMap::new(),
            events: HashMap::new(),
            orders: RowsBuilder::new().finish(0),
            channels: Vec::new(),
            unit_buyers: HashMap::new(),
            activity: Vec::new(),
            first_seen: Vec::new(),
            stages: HashMap::new(),
            rfm: Vec::new(),
            classes: HashMap::new(),
            cuts: rfm::quintiles(&[]),
            settings,
            today,
        }
    }

    /// How many live customers the index holds.
    pub fn len(&self) -> u64 {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn settings(&self) -> &ScoreSettings {
        &self.settings
    }

    pub fn cut_points(&self) -> CutPoints {
        self.cuts
    }

    fn channel_code(&mut self, channel: &str) -> u16 {
        match self.channels.iter().position(|c| c == channel) {
            Some(i) => i as u16,
            None => {
                self.channels.push(channel.to_owned());
                (self.channels.len() - 1) as u16
            }
        }
    }

    fn order_rows(&mut self, facts: &CustomerFacts) -> Vec<OrderRow> {
        let mut rows: Vec<OrderRow> = facts
            .orders
            .iter()
            .map(|o| OrderRow {
                day: day_of(o.at),
                amount: o.amount,
                unit: o.unit.unwrap_or(0),
                channel: self.channel_code(&o.channel),
            })
            .collect();
        rows.sort_by_key(|r| r.day);
        rows
    }

    fn set_sets(&mut self, c: u32, facts: &CustomerFacts) {
        for tag in &facts.tags {
            self.tags.entry(*tag).or_default().insert(c);
        }
        if !facts.tags.is_empty() {
            self.tags_of.insert(c, facts.tags.clone());
        }
        for source in &facts.sources {
            self.sources.entry(*source).or_default().insert(c);
        }
        if !facts.sources.is_empty() {
            self.sources_of.insert(c, facts.sources.clone());
        }
        for code in &facts.channel_codes {
            self.channel_codes
                .entry(code.clone())
                .or_default()
                .insert(c);
        }
        if !facts.channel_codes.is_empty() {
            self.channel_codes_of.insert(c, facts.channel_codes.clone());
        }
        if let Some(owner) = facts.owner {
            self.owners.entry(owner).or_default().insert(c);
            self.owned.insert(c);
            self.owner_of.insert(c, owner);
        }
        for channel in &facts.opted_out {
            self.opted_out.entry(channel.clone()).or_default().insert(c);
        }
    }

    fn clear_sets(&mut self, c: u32) {
        if let Some(tags) = self.tags_of.remove(&c) {
            for tag in tags {
                if let Some(bm) = self.tags.get_mut(&tag) {
                    bm.remove(c);
                }
            }
        }
        if let Some(sources) = self.sources_of.remove(&c) {
            for source in sources {
                if let Some(bm) = self.sources.get_mut(&source) {
                    bm.remove(c);
                }
            }
        }
        if let Some(codes) = self.channel_codes_of.remove(&c) {
            for code in codes {
                if let Some(bm) = self.channel_codes.get_mut(&code) {
                    bm.remove(c);
                }
            }
        }
        if let Some(owner) = self.owner_of.remove(&c) {
            if let Some(bm) = self.owners.get_mut(&owner) {
                bm.remove(c);
            }
            self.owned.remove(c);
        }
        for bm in self.opted_out.values_mut() {
            bm.remove(c);
        }
        for o in self.orders.get(c).to_vec() {
            if let Some(bm) = self.unit_buyers.get_mut(&o.unit) {
                bm.remove(c);
            }
        }
    }

    /// Replaces what the index knows of a customer (adding them if new).
    pub fn upsert(&mut self, facts: &CustomerFacts) {
        let c = match self.dense.get(&facts.id) {
            Some(&c) => c,
            None => {
                let c = self.ids.len() as u32;
                self.ids.push(facts.id);
                self.dense.insert(facts.id, c);
                self.activity.push(Activity::default());
                self.first_seen.push(day_of(facts.first_seen_at));
                self.rfm.push(None);
                c
            }
        };
        self.live.insert(c);
        self.clear_sets(c);
        self.set_sets(c, facts);
        let customers = self.ids.len();
        for (key, column) in self.traits.iter_mut() {
            column.set(c, facts.traits.get(key), customers);
        }
        for (key, value) in &facts.traits {
            if !self.traits.contains_key(key) {
                self.traits
                    .entry(key.clone())
                    .or_default()
                    .set(c, Some(value), customers);
            }
        }
        let mut by_name: HashMap<&str, Vec<DayCount>> = HashMap::new();
        for e in &facts.events {
            by_name.entry(&e.name).or_default().push(DayCount {
                day: e.day,
                count: e.count,
            });
        }
        for (name, rows) in self.events.iter_mut() {
            if !by_name.contains_key(name.as_str()) && !rows.get(c).is_empty() {
                rows.set(c, Vec::new());
            }
        }
        for (name, mut rows) in by_name {
            rows.sort_by_key(|r| r.day);
            self.events
                .entry(name.to_owned())
                .or_insert_with(|| RowsBuilder::new().finish(0))
                .set(c, rows);
        }
        let orders = self.order_rows(facts);
        for o in &orders {
            if o.unit != 0 {
                self.unit_buyers.entry(o.unit).or_default().insert(c);
            }
        }
        self.orders.set(c, orders);
        self.activity[c as usize] = Activity::of(facts, &self.settings.lifecycle);
        self.first_seen[c as usize] = day_of(facts.first_seen_at);
        self.score_one(c);
    }

    /// Forgets a customer (merged into another, or erased).
    pub fn remove(&mut self, id: i64) {
        if let Some(&c) = self.dense.get(&id) {
            self.upsert(&CustomerFacts {
                id,
                ..Default::default()
            });
            self.live.remove(c);
            for bm in self.stages.values_mut() {
                bm.remove(c);
            }
            for bm in self.classes.values_mut() {
                bm.remove(c);
            }
            self.rfm[c as usize] = None;
        }
    }

    fn rfm_values(&self, c: u32, unit: Option<&[i64]>) -> Option<RfmValues> {
        let start = window_start(self.today, self.settings.rfm.window_days);
        let (mut last, mut frequency, mut monetary) = (i32::MIN, 0u32, 0i64);
        for o in self.orders.get(c) {
            if o.day >= start && unit.is_none_or(|units| units.contains(&o.unit)) {
                last = last.max(o.day);
                frequency += 1;
                monetary += o.amount;
            }
        }
        (frequency > 0).then(|| RfmValues {
            recency_days: (self.today - last).max(0) as u32,
            frequency,
            monetary,
        })
    }

    fn score_one(&mut self, c: u32) {
        for bm in self.stages.values_mut() {
            bm.remove(c);
        }
        for bm in self.classes.values_mut() {
            bm.remove(c);
        }
        let stage = self.activity[c as usize].stage(self.today, &self.settings.lifecycle);
        self.stages.entry(stage).or_default().insert(c);
        let score = self
            .rfm_values(c, None)
            .map(|v| rfm::score(v, &self.cuts, self.settings.rfm.high_from));
        self.rfm[c as usize] = score;
        if let Some(s) = score {
            self.classes.entry(s.class).or_default().insert(c);
        }
    }

    /// Recomputes every customer's RFM score (with fresh cut points) and lifecycle stage
    /// as of `today`.
    pub fn recompute(&mut self, today: i32) {
        self.recompute_rfm(today);
        self.recompute_stages(today);
    }

    /// Recomputes every customer's RFM score, with fresh cut points, as of `today`.
    pub fn recompute_rfm(&mut self, today: i32) {
        self.today = today;
        let n = self.ids.len();
        let mut values = Vec::with_capacity(n);
        for c in 0..n as u32 {
            values.push(if self.live.contains(c) {
                self.rfm_values(c, None)
            } else {
                None
            });
        }
        let (cuts, scores) = rfm::score_all(&values, &self.settings.rfm);
        self.cuts = cuts;
        let mut classes: HashMap<RfmClass, Vec<u32>> = HashMap::new();
        for (c, score) in scores.iter().enumerate() {
            if let Some(s) = score {
                classes.entry(s.class).or_default().push(c as u32);
            }
        }
        self.rfm = scores;
        self.classes = classes
            .into_iter()
            .map(|(k, v)| (k, RoaringBitmap::from_sorted_iter(v).expect("ascending")))
            .collect();
    }

    /// Recomputes every customer's lifecycle stage as of `today`.
    pub fn recompute_stages(&mut self, today: i32) {
        self.today = today;
        let mut stages: HashMap<LifecycleStage, Vec<u32>> = HashMap::new();
        for c in &self.live {
            let stage = self.activity[c as usize].stage(today, &self.settings.lifecycle);
            stages.entry(stage).or_default().push(c);
        }
        self.stages = stages
            .into_iter()
            .map(|(k, v)| (k, RoaringBitmap::from_sorted_iter(v).expect("ascending")))
            .collect();
    }

    /// Changes the score settings and recomputes.
    pub fn set_settings(&mut self, settings: ScoreSettings) {
        let relife = settings.lifecycle != self.settings.lifecycle;
        self.settings = settings;
        if relife {
            // activity depends on which events count as referrals; it is rebuilt from
            // the event rows
            for c in 0..self.ids.len() as u32 {
                let facts = self.facts_of(c);
                self.activity[c as usize] = Activity::of(&facts, &self.settings.lifecycle);
            }
        }
        self.recompute(self.today);
    }

    /// Reassembles the facts of customer `c` (events and orders only), for recomputing.
    fn facts_of(&self, c: u32) -> CustomerFacts {
        let mut facts = CustomerFacts {
            id: self.ids[c as usize],
            ..Default::default()
        };
        for (name, rows) in &self.events {
            for r in rows.get(c) {
                facts.events.push(crate::facts::EventDay {
                    name: name.clone(),
                    day: r.day,
                    count: r.count,
                });
            }
        }
        for o in self.orders.get(c) {
            facts.orders.push(crate::facts::OrderFact {
                at: o.day as i64 * crate::facts::DAY_MS,
                amount: o.amount,
                unit: (o.unit != 0).then_some(o.unit),
                channel: self.channels[o.channel as usize].clone(),
            });
        }
        facts
    }

    /// A customer's RFM score and lifecycle stage as the index holds them.
    pub fn scores_of(&self, id: i64) -> Option<(Option<RfmScore>, LifecycleStage)> {
        let &c = self.dense.get(&id)?;
        if !self.live.contains(c) {
            return None;
        }
        let stage = self
            .stages
            .iter()
            .find(|(_, bm)| bm.contains(c))
            .map_or(LifecycleStage::Acquired, |(s, _)| *s);
        Some((self.rfm[c as usize], stage))
    }

    /// Customers, GMV and orders per RFM class, over the whole pool or one unit and the
    /// units beneath it (scored against that unit's own quintiles).
    ///
    /// With `among`, only those customers are counted (a caller's data scope); their
    /// classes stay those of the whole pool or unit.
    ///
    /// Returns the cut points the classes were scored against: the tenant's, or the
    /// unit's own.
    pub fn rfm_report(
        &self,
        unit: Option<&[i64]>,
        among: Option<&RoaringBitmap>,
    ) -> (CutPoints, HashMap<RfmClass, ClassFigures>) {
        let mut report: HashMap<RfmClass, ClassFigures> = HashMap::new();
        let mut add = |c: u32, score: Option<RfmScore>, v: Option<RfmValues>| {
            if among.is_some_and(|among| !among.contains(c)) {
                return;
            }
            if let (Some(s), Some(v)) = (score, v) {
                let e = report.entry(s.class).or_default();
                e.customers += 1;
                e.gmv += v.monetary;
                e.orders += v.frequency as u64;
            }
        };
        let cuts = match unit {
            None => {
                for c in &self.live {
                    add(c, self.rfm[c as usize], self.rfm_values(c, None));
                }
                self.cuts
            }
            Some(units) => {
                let members: Vec<u32> = self.orders.members.iter().collect();
                let values: Vec<Option<RfmValues>> = members
                    .iter()
                    .map(|&c| self.rfm_values(c, Some(units)))
                    .collect();
                let (cuts, scores) = rfm::score_all(&values, &self.settings.rfm);
                for ((c, s), v) in members.iter().zip(scores).zip(values) {
                    add(*c, s, v);
                }
                cuts
            }
        };
        (cuts, report)
    }

    /// Customer ids of a set of dense numbers, at most `limit`, in dense order.
    pub fn ids(&self, set: &RoaringBitmap, limit: usize) -> Vec<i64> {
        set.iter()
            .take(limit)
            .map(|c| self.ids[c as usize])
            .collect()
    }

    /// Each buyer's net order total (fen) within the last `days` (all time when `None`)
    /// in these units (all when `None`), biggest first.
    fn spend_ranking(
        &self,
        units: Option<&[i64]>,
        days: Option<u32>,
        among: Option<&RoaringBitmap>,
    ) -> Vec<(u32, i64, u32)> {
        let start = days.map_or(i32::MIN, |d| window_start(self.today, d));
        let mut ranking: Vec<(u32, i64, u32)> = Vec::new();
        for c in &self.orders.members {
            if !self.live.contains(c) || among.is_some_and(|among| !among.contains(c)) {
                continue;
            }
            let (mut gmv, mut n) = (0i64, 0u32);
            for o in self.orders.get(c) {
                if o.day >= start && units.is_none_or(|u| u.contains(&o.unit)) {
                    gmv += o.amount;
                    n += 1;
                }
            }
            if n > 0 {
                ranking.push((c, gmv, n));
            }
        }
        ranking.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranking
    }

    /// The Pareto view of a pool (or one unit's buyers, or only the customers `among`):
    /// how few customers bring 80% of the money.
    pub fn pareto(
        &self,
        units: Option<&[i64]>,
        days: Option<u32>,
        among: Option<&RoaringBitmap>,
    ) -> Pareto {
        let ranking = self.spend_ranking(units, days, among);
        pareto_of(&ranking)
    }

    /// A customer's value tier in the whole pool (see [`ValueTier`]).
    pub fn value_tier(&self, id: i64, days: Option<u32>) -> ValueTier {
        let Some(&c) = self.dense.get(&id) else {
            return ValueTier::Prospect;
        };
        let ranking = self.spend_ranking(None, days, None);
        tier_in(&ranking, c)
    }

    /// A customer's role in each unit they bought in (and the units above it): new (one
    /// order there), repeat (more), or key (among the few who bring the unit 80% of its
    /// money). `units` maps each unit to itself and the units beneath it.
    pub fn unit_roles(
        &self,
        id: i64,
        units: &HashMap<i64, Vec<i64>>,
        days: Option<u32>,
    ) -> Vec<UnitRole> {
        let Some(&c) = self.dense.get(&id) else {
            return Vec::new();
        };
        let bought: Vec<i64> = self.orders.get(c).iter().map(|o| o.unit).collect();
        let mut roles = Vec::new();
        let mut ids: Vec<&i64> = units.keys().collect();
        ids.sort();
        for unit in ids {
            let beneath = &units[unit];
            if !bought.iter().any(|u| beneath.contains(u)) {
                continue;
            }
            let ranking = self.spend_ranking(Some(beneath), days, None);
            let Some(&(_, gmv, orders)) = ranking.iter().find(|r| r.0 == c) else {
                continue;
            };
            let role = match tier_in(&ranking, c) {
                ValueTier::Key => CustomerRole::Key,
                _ if orders >= 2 => CustomerRole::Repeat,
                _ => CustomerRole::New,
            };
            roles.push(UnitRole {
                unit: *unit,
                role,
                orders,
                gmv,
            });
        }
        roles
    }

    /// Live customers per acquisition cohort (the day bucket `cohort_of` gives for the
    /// day they were first seen) and lifecycle stage.
    pub fn stage_cohorts(
        &self,
        cohort_of: impl Fn(i32) -> i32,
        among: Option<&RoaringBitmap>,
    ) -> std::collections::BTreeMap<i32, HashMap<LifecycleStage, u64>> {
        let mut out: std::collections::BTreeMap<i32, HashMap<LifecycleStage, u64>> =
            std::collections::BTreeMap::new();
        for (stage, members) in &self.stages {
            for c in members {
                if among.is_some_and(|among| !among.contains(c)) {
                    continue;
                }
                *out.entry(cohort_of(self.first_seen[c as usize]))
                    .or_default()
                    .entry(*stage)
                    .or_default() += 1;
            }
        }
        out
    }

    /// The lifecycle stage of each of these customers, as the index holds it.
    pub fn stages_of(&self, ids: &[i64]) -> Vec<(i64, LifecycleStage)> {
        ids.iter()
            .filter_map(|id| self.scores_of(*id).map(|(_, stage)| (*id, stage)))
            .collect()
    }

    /// Every live customer's lifecycle stage.
    pub fn all_stages(&self) -> Vec<(i64, LifecycleStage)> {
        let mut out = Vec::with_capacity(self.live.len() as usize);
        for (stage, members) in &self.stages {
            for c in members {
                out.push((self.ids[c as usize], *stage));
            }
        }
        out
    }

    /// Customer ids of a set after the id `after` (a page), in id order, at most `limit`.
    pub fn ids_after(&self, set: &RoaringBitmap, after: i64, limit: usize) -> Vec<i64> {
        // dense order mostly follows ids, but not always (a merge undone brings back an
        // old id; PostgreSQL may commit ids out of order): sort
        let mut ids: Vec<i64> = set
            .iter()
            .map(|c| self.ids[c as usize])
            .filter(|id| *id > after)
            .collect();
        ids.sort_unstable();
        ids.truncate(limit);
        ids
    }

    /// The customers these staff members own.
    /// Customers who bought in any of these units.
    pub fn buyers_of_units(&self, units: &[i64]) -> RoaringBitmap {
        let mut set = RoaringBitmap::new();
        for unit in units {
            if let Some(buyers) = self.unit_buyers.get(unit) {
                set |= buyers;
            }
        }
        set
    }

    pub fn owned_by(&self, staff: impl IntoIterator<Item = i64>) -> RoaringBitmap {
        let mut set = RoaringBitmap::new();
        for s in staff {
            if let Some(bm) = self.owners.get(&s) {
                set |= bm;
            }
        }
        set
    }

    /// How many customers of `among` (a caller's data scope) have the tag.
    pub fn tag_count_among(&self, tag: i64, among: &RoaringBitmap) -> u64 {
        self.tags
            .get(&tag)
            .map_or(0, |members| members.intersection_len(among))
    }

    /// Whether the customer `id` is in a set.
    pub fn contains(&self, set: &RoaringBitmap, id: i64) -> bool {
        self.dense.get(&id).is_some_and(|c| set.contains(*c))
    }

    /// The dense numbers of customer ids the index knows.
    pub fn set_of(&self, ids: impl IntoIterator<Item = i64>) -> RoaringBitmap {
        let mut bm: RoaringBitmap = ids
            .into_iter()
            .filter_map(|id| self.dense.get(&id).copied())
            .collect();
        bm &= &self.live;
        bm
    }

    /// The customers among `candidates` who match a condition.
    pub fn evaluate_among(
        &self,
        condition: &Condition,
        input: &EvalInput<'_>,
        candidates: &RoaringBitmap,
    ) -> Result<RoaringBitmap, EvalError> {
        let candidates = candidates & &self.live;
        self.eval(condition, &candidates, input, 0)
    }

    /// The customers who match a condition.
    pub fn evaluate(
        &self,
        condition: &Condition,
        input: &EvalInput<'_>,
    ) -> Result<RoaringBitmap, EvalError> {
        self.eval(condition, &self.live, input, 0)
    }

    fn eval(
        &self,
        condition: &Condition,
        candidates: &RoaringBitmap,
        input: &EvalInput<'_>,
        depth: usize,
    ) -> Result<RoaringBitmap, EvalError> {
        let today = input.today;
        Ok(match condition {
            Condition::And(parts) => {
                let mut order: Vec<&Condition> = parts.iter().collect();
                order.sort_by_key(|c| cost(c));
                let mut left = candidates.clone();
                for part in order {
                    if left.is_empty() {
                        break;
                    }
                    left = self.eval(part, &left, input, depth)?;
                }
                left
            }
            Condition::Or(parts) => {
                let mut order: Vec<&Condition> = parts.iter().collect();
                order.sort_by_key(|c| cost(c));
                let mut matched = RoaringBitmap::new();
                let mut left = candidates.clone();
                for part in order {
                    if left.is_empty() {
                        break;
                    }
                    let hit = self.eval(part, &left, input, depth)?;
                    left -= &hit;
                    matched |= hit;
                }
                matched
            }
            Condition::Not(inner) => candidates - self.eval(inner, candidates, input, depth)?,
            Condition::Tag(name) => {
                let id = input
                    .catalog
                    .tags
                    .get(name)
                    .ok_or_else(|| EvalError::UnknownTag(name.clone()))?;
                self.tags
                    .get(id)
                    .map_or_else(RoaringBitmap::new, |bm| bm & candidates)
            }
            Condition::Trait(t) => {
                let Some(column) = self.traits.get(&t.key) else {
                    return Ok(RoaringBitmap::new());
                };
                let wanted: Vec<bool> = std::iter::once(false)
                    .chain(
                        column
                            .values
                            .iter()
                            .map(|v| trait_matches(v, &t.test, today, input.zone)),
                    )
                    .collect();
                column.matching(candidates, &wanted)
            }
            Condition::Performed(p) if p.filters.is_empty() => {
                let rows = self.events.get(&p.event);
                let start = p.within_days.map_or(i32::MIN, |d| window_start(today, d));
                let count_of = |c: u32| -> u32 {
                    rows.map_or(0, |r| {
                        let days = r.get(c);
                        let from = days.partition_point(|d| d.day < start);
                        days[from..].iter().map(|d| d.count).sum()
                    })
                };
                self.by_value(
                    candidates,
                    rows.map(|r| &r.members),
                    p.op.holds(0, p.count),
                    |c| p.op.holds(count_of(c), p.count),
                )
            }
            Condition::Performed(p) => {
                let key = condition.to_string();
                let counts = input
                    .filtered
                    .get(&key)
                    .ok_or(EvalError::MissingFilteredCounts(key))?;
                let mut matched = RoaringBitmap::new();
                let mut has = RoaringBitmap::new();
                for (id, &count) in counts {
                    if let Some(&c) = self.dense.get(id) {
                        has.insert(c);
                        if p.op.holds(count, p.count) {
                            matched.insert(c);
                        }
                    }
                }
                matched &= candidates;
                if p.op.holds(0, p.count) {
                    matched |= candidates - has;
                }
                matched
            }
            Condition::EventTime(e) => {
                let Some(rows) = self.events.get(&e.event) else {
                    return Ok(RoaringBitmap::new());
                };
                let members = candidates & &rows.members;
                self.filter(&members, |c| {
                    let mut days = rows.get(c).iter().filter(|d| d.count > 0).map(|d| d.day);
                    let day = match e.which {
                        Which::First => days.next(),
                        Which::Last => days.next_back(),
                    };
                    day.is_some_and(|day| time_matches(e.test, day, today))
                })
            }
            Condition::Orders(o) => {
                let start = o.within_days.map_or(i32::MIN, |d| window_start(today, d));
                let units = o.unit.map(|u| input.catalog.units_beneath(u));
                let channel = match &o.channel {
                    Some(ch) => match self.channels.iter().position(|c| c == ch) {
                        Some(i) => Some(i as u16),
                        // nobody bought through this channel
                        None => Some(u16::MAX),
                    },
                    None => None,
                };
                let wanted = match o.measure {
                    OrderMeasure::Count => o.value,
                    _ => (o.value * 100.0).round(),
                };
                let figures = |c: u32| -> (u32, i64) {
                    let rows = self.orders.get(c);
                    let from = rows.partition_point(|r| r.day < start);
                    let mut n = 0u32;
                    let mut sum = 0i64;
                    for r in &rows[from..] {
                        if units.is_none_or(|u| u.contains(&r.unit))
                            && channel.is_none_or(|ch| ch == r.channel)
                        {
                            n += 1;
                            sum += r.amount;
                        }
                    }
                    (n, sum)
                };
                let zero_matches = match o.measure {
                    OrderMeasure::Avg => false,
                    _ => o.op.holds(0.0, wanted),
                };
                self.by_value(candidates, Some(&self.orders.members), zero_matches, |c| {
                    let (n, sum) = figures(c);
                    match o.measure {
                        OrderMeasure::Count => o.op.holds(n as f64, wanted),
                        OrderMeasure::Sum => o.op.holds(sum as f64, wanted),
                        OrderMeasure::Avg => n > 0 && o.op.holds(sum as f64 / n as f64, wanted),
                    }
                })
            }
            Condition::LastOrder(t) => {
                let members = candidates & &self.orders.members;
                self.filter(&members, |c| {
                    self.orders
                        .get(c)
                        .last()
                        .is_some_and(|o| time_matches(*t, o.day, today))
                })
            }
            Condition::RfmClass(classes) => {
                let mut bm = RoaringBitmap::new();
                for class in classes {
                    if let Some(c) = self.classes.get(class) {
                        bm |= c;
                    }
                }
                bm & candidates
            }
            Condition::RfmScore(s) => self.filter(candidates, |c| {
                self.rfm[c as usize].is_some_and(|r| {
                    let score = match s.dimension {
                        RfmDimension::R => r.r,
                        RfmDimension::F => r.f,
                        RfmDimension::M => r.m,
                    };
                    s.op.holds(score, s.value)
                })
            }),
            Condition::Lifecycle(stages) => {
                let mut bm = RoaringBitmap::new();
                for stage in stages {
                    if let Some(s) = self.stages.get(stage) {
                        bm |= s;
                    }
                }
                bm & candidates
            }
            Condition::Unit(unit) => {
                let mut bm = RoaringBitmap::new();
                for u in input.catalog.units_beneath(*unit) {
                    if let Some(b) = self.unit_buyers.get(u) {
                        bm |= b;
                    }
                }
                bm & candidates
            }
            Condition::Source(name) => {
                let id = input
                    .catalog
                    .sources
                    .get(name)
                    .ok_or_else(|| EvalError::UnknownSource(name.clone()))?;
                self.sources
                    .get(id)
                    .map_or_else(RoaringBitmap::new, |bm| bm & candidates)
            }
            // a code no customer came through yet matches nobody: codes are made by
            // growth staff and printed before anyone scans them
            Condition::ChannelCode(code) => self
                .channel_codes
                .get(code)
                .map_or_else(RoaringBitmap::new, |bm| bm & candidates),
            Condition::Owner(staff) => self
                .owners
                .get(staff)
                .map_or_else(RoaringBitmap::new, |bm| bm & candidates),
            Condition::HasOwner => &self.owned & candidates,
            Condition::Consent(channel) => {
                let mut out = candidates.clone();
                for ch in [channel.as_str(), "all"] {
                    if let Some(bm) = self.opted_out.get(ch) {
                        out -= bm;
                    }
                }
                out
            }
            Condition::Segment(id) => {
                if depth >= MAX_SEGMENT_DEPTH {
                    return Err(EvalError::TooDeep);
                }
                match input.catalog.segments.get(id) {
                    None => return Err(EvalError::UnknownSegment(*id)),
                    Some(SavedSegment::Static(ids)) => {
                        self.set_of(ids.iter().copied()) & candidates
                    }
                    Some(SavedSegment::Dynamic(inner)) => {
                        self.eval(inner, candidates, input, depth + 1)?
                    }
                }
            }
            Condition::Bucket(b) => self.filter(candidates, |c| {
                b.op.holds(bucket_of(self.ids[c as usize]), b.value)
            }),
        })
    }

    /// The candidates for which `test` holds.
    fn filter(&self, candidates: &RoaringBitmap, test: impl Fn(u32) -> bool) -> RoaringBitmap {
        RoaringBitmap::from_sorted_iter(candidates.iter().filter(|&c| test(c))).expect("ascending")
    }

    /// A test of a per-customer figure that is zero for customers without rows: those
    /// match all together when zero passes, and only `members` are looked at one by one.
    fn by_value(
        &self,
        candidates: &RoaringBitmap,
        members: Option<&RoaringBitmap>,
        zero_matches: bool,
        test: impl Fn(u32) -> bool,
    ) -> RoaringBitmap {
        let Some(members) = members else {
            return if zero_matches {
                candidates.clone()
            } else {
                RoaringBitmap::new()
            };
        };
        let with_rows = candidates & members;
        let mut out = self.filter(&with_rows, test);
        if zero_matches {
            out |= candidates - members;
        }
        out
    }

    /// Approximate heap memory used, in bytes.
    pub fn memory_bytes(&self) -> usize {
        fn bitmaps<K>(m: &HashMap<K, RoaringBitmap>) -> usize {
            m.values().map(|b| b.serialized_size()).sum()
        }
        let rows_size = |r: &Rows<DayCount>| {
            r.starts.capacity() * 4
                + r.rows.capacity() * std::mem::size_of::<DayCount>()
                + r.members.serialized_size()
                + r.changed
                    .values()
                    .map(|v| v.capacity() * 8 + 48)
                    .sum::<usize>()
        };
        self.ids.capacity() * 8
            + self.dense.capacity() * 16
            + self.live.serialized_size()
            + bitmaps(&self.tags)
            + self
                .tags_of
                .values()
                .map(|v| v.capacity() * 8 + 48)
                .sum::<usize>()
            + bitmaps(&self.owners)
            + bitmaps(&self.sources)
            + bitmaps(&self.channel_codes)
            + self
                .channel_codes_of
                .values()
                .map(|v| v.iter().map(|s| s.capacity() + 24).sum::<usize>() + 48)
                .sum::<usize>()
            + self.owner_of.capacity() * 16
            + bitmaps(&self.opted_out)
            + self
                .traits
                .values()
                .map(|t| {
                    t.codes.memory_bytes()
                        + t.values
                            .iter()
                            .map(|v| v.to_string().len() * 2 + 32)
                            .sum::<usize>()
                })
                .sum::<usize>()
            + self.events.values().map(rows_size).sum::<usize>()
            + self.orders.starts.capacity() * 4
            + self.orders.rows.capacity() * std::mem::size_of::<OrderRow>()
            + bitmaps(&self.unit_buyers)
            + self.activity.capacity() * std::mem::size_of::<Activity>()
            + self.first_seen.capacity() * 4
            + bitmaps(&self.stages)
            + self.rfm.capacity() * std::mem::size_of::<Option<RfmScore>>()
            + bitmaps(&self.classes)
    }
}

/// How costly a part of a condition is to evaluate: bitmap look-ups first, then column
/// scans, then nested conditions.
fn cost(condition: &Condition) -> u8 {
    match condition {
        Condition::Tag(_)
        | Condition::Owner(_)
        | Condition::HasOwner
        | Condition::Lifecycle(_)
        | Condition::RfmClass(_)
        | Condition::Unit(_)
        | Condition::Source(_)
        | Condition::ChannelCode(_)
        | Condition::Consent(_) => 0,
        Condition::Trait(_) | Condition::Bucket(_) | Condition::RfmScore(_) => 1,
        Condition::Performed(_)
        | Condition::EventTime(_)
        | Condition::LastOrder(_)
        | Condition::Segment(_) => 2,
        Condition::Orders(_) => 3,
        Condition::And(_) | Condition::Or(_) | Condition::Not(_) => 4,
    }
}

/// How few customers bring most of the money.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pareto {
    pub buyers: u64,
    /// Net order total, in fen.
    pub gmv: i64,
    /// The fewest buyers whose spend makes 80% of the total.
    pub key_customers: u64,
    /// `key_customers` as a share of buyers (0–1).
    pub key_share: f64,
    /// The share of the total (0–1) the top 20% of buyers bring.
    pub top_fifth_gmv_share: f64,
    /// The least a key customer spent, in fen.
    pub key_threshold: i64,
}

fn pareto_of(ranking: &[(u32, i64, u32)]) -> Pareto {
    let buyers = ranking.len() as u64;
    let gmv: i64 = ranking.iter().map(|r| r.1).sum();
    if buyers == 0 || gmv <= 0 {
        return Pareto {
            buyers,
            gmv,
            ..Default::default()
        };
    }
    let key = key_count(ranking, gmv);
    let fifth = (ranking.len() as f64 * 0.2).ceil() as usize;
    let top: i64 = ranking[..fifth].iter().map(|r| r.1).sum();
    Pareto {
        buyers,
        gmv,
        key_customers: key as u64,
        key_share: key as f64 / buyers as f64,
        top_fifth_gmv_share: top as f64 / gmv as f64,
        key_threshold: ranking[key - 1].1,
    }
}

/// How many of the biggest spenders it takes to reach 80% of `gmv`.
fn key_count(ranking: &[(u32, i64, u32)], gmv: i64) -> usize {
    let mut sum = 0i64;
    for (i, r) in ranking.iter().enumerate() {
        sum += r.1;
        // sum / gmv >= 0.8, in integers
        if sum * 5 >= gmv * 4 {
            return i + 1;
        }
    }
    ranking.len()
}

/// A customer's value tier: `key` among the fewest who bring 80% of the money,
/// `important` among those who bring the next 15%, `regular` for other buyers, and
/// `prospect` for those who have not bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueTier {
    Key,
    Important,
    Regular,
    Prospect,
}

fn tier_in(ranking: &[(u32, i64, u32)], c: u32) -> ValueTier {
    let Some(rank) = ranking.iter().position(|r| r.0 == c) else {
        return ValueTier::Prospect;
    };
    let gmv: i64 = ranking.iter().map(|r| r.1).sum();
    if gmv <= 0 {
        return ValueTier::Regular;
    }
    let key = key_count(ranking, gmv);
    let mut sum = 0i64;
    let mut important = ranking.len();
    for (i, r) in ranking.iter().enumerate() {
        sum += r.1;
        if sum * 20 >= gmv * 19 {
            important = i + 1;
            break;
        }
    }
    if rank < key {
        ValueTier::Key
    } else if rank < important {
        ValueTier::Important
    } else {
        ValueTier::Regular
    }
}

/// A customer's role in one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerRole {
    New,
    Repeat,
    Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UnitRole {
    pub unit: i64,
    pub role: CustomerRole,
    pub orders: u32,
    /// Net spend there, in fen.
    pub gmv: i64,
}

mod dashboard;
pub use dashboard::{
    BuyerFigures, Cohort, Dashboard, DashboardQuery, Funnel, GrowthDay, Period, Repurchase, Sales,
    period_of, period_start,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{DAY_MS, OrderFact};

    fn buyer(id: i64, spends: &[(i64, Option<i64>)]) -> CustomerFacts {
        CustomerFacts {
            id,
            orders: spends
                .iter()
                .map(|&(fen, unit)| OrderFact {
                    at: 20_000 * DAY_MS,
                    amount: fen,
                    unit,
                    channel: "wecom".into(),
                })
                .collect(),
            ..Default::default()
        }
    }

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

    /// Ten buyers: one spends 700, one 100, eight 25 each (total 1,000): the first two
    /// bring 80%, so two key customers (20% of buyers); the top fifth is those two.
    #[test]
    fn pareto_and_tiers_follow_the_hand_count() {
        let mut b = IndexBuilder::new(ScoreSettings::default(), 20_010);
        b.add(&buyer(1, &[(70_000, Some(2))]));
        b.add(&buyer(2, &[(6_000, Some(3)), (4_000, Some(3))]));
        for id in 3..=10 {
            b.add(&buyer(id, &[(2_500, Some(3))]));
        }
        b.add(&buyer(11, &[]));
        let ix = b.finish();
        let p = ix.pareto(None, None, None);
        assert_eq!((p.buyers, p.gmv, p.key_customers), (10, 100_000, 2));
        assert_eq!(p.key_share, 0.2);
        assert_eq!(p.top_fifth_gmv_share, 0.8);
        assert_eq!(p.key_threshold, 10_000);
        assert_eq!(ix.value_tier(1, None), ValueTier::Key);
        assert_eq!(ix.value_tier(2, None), ValueTier::Key);
        // the next 15% (to 95%) takes six of the 25s
        assert_eq!(ix.value_tier(3, None), ValueTier::Important);
        assert_eq!(ix.value_tier(8, None), ValueTier::Important);
        assert_eq!(ix.value_tier(9, None), ValueTier::Regular);
        assert_eq!(ix.value_tier(11, None), ValueTier::Prospect);
        // in unit 3 alone, customer 2 is key (10,000 of 30,000, plus three 25s reach 80%)
        let units = HashMap::from([(1, vec![1, 2, 3]), (3, vec![3])]);
        let roles = ix.unit_roles(2, &units, None);
        assert_eq!(
            roles
                .iter()
                .map(|r| (r.unit, r.role, r.orders))
                .collect::<Vec<_>>(),
            [(1, CustomerRole::Key, 2), (3, CustomerRole::Key, 2)]
        );
        let roles = ix.unit_roles(10, &units, None);
        assert_eq!(
            roles.iter().map(|r| (r.unit, r.role)).collect::<Vec<_>>(),
            [(1, CustomerRole::New), (3, CustomerRole::New)]
        );
    }
}
