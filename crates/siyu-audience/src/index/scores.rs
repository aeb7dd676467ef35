//! The scores the index keeps for every customer: an RFM score (against the tenant's
//! cut points) and a lifecycle stage, each also kept as a set of customers per class
//! and stage so that conditions on them are bitmap look-ups. One customer is rescored
//! as their entry changes; everyone is, with fresh cut points, as the day moves on or
//! the tenant's settings change. Here too are the reads of those scores.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::AudienceIndex;
use crate::condition::{LifecycleStage, RfmClass};
use crate::facts::{CustomerFacts, window_start};
use crate::lifecycle::{Activity, LifecycleSettings};
use crate::rfm::{self, CutPoints, RfmScore, RfmSettings, RfmValues};

/// Tenant-wide settings of the scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreSettings {
    pub rfm: RfmSettings,
    pub lifecycle: LifecycleSettings,
}

impl AudienceIndex {
    pub fn settings(&self) -> &ScoreSettings {
        &self.settings
    }

    pub fn cut_points(&self) -> CutPoints {
        self.cuts
    }

    pub(super) fn rfm_values(&self, c: u32, unit: Option<&[i64]>) -> Option<RfmValues> {
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

    pub(super) fn score_one(&mut self, c: u32) {
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
}
