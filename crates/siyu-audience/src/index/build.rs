//! Filling the index and keeping it current: [`IndexBuilder`] lays out a whole tenant
//! streamed from the database at start, and [`AudienceIndex::upsert`] and
//! [`AudienceIndex::remove`] replace one customer's entry as their data changes. Both
//! turn facts into the storage layouts and the sets beside them (tags, owners, sources,
//! buyers per unit), then score the customer, so that what is asked of the index next
//! sees the change.

use std::collections::HashMap;

use super::AudienceIndex;
use super::scores::ScoreSettings;
use super::storage::{DayCount, OrderRow, RowsBuilder};
use crate::facts::{CustomerFacts, day_of};
use crate::lifecycle::Activity;

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
}
