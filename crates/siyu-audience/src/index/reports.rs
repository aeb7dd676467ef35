//! Reports read off the index, for a whole pool, one unit and the units beneath it, or
//! only the customers of a caller's data scope: customers, GMV and orders per RFM class,
//! the Pareto view (how few customers bring 80% of the money), a customer's value tier
//! and role in each unit, live customers per acquisition cohort and lifecycle stage, and
//! tag counts. They only read the storage and the scores; the dashboard's figures are
//! in `dashboard`.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::AudienceIndex;
use crate::condition::{LifecycleStage, RfmClass};
use crate::facts::window_start;
use crate::rfm::{self, CutPoints, RfmScore, RfmValues};

/// Customers per RFM class, with their figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassFigures {
    pub customers: u64,
    /// Net order total in the window, in fen.
    pub gmv: i64,
    pub orders: u64,
}

impl AudienceIndex {
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

    /// How many customers of `among` (a caller's data scope) have the tag.
    pub fn tag_count_among(&self, tag: i64, among: &RoaringBitmap) -> u64 {
        self.tags
            .get(&tag)
            .map_or(0, |members| members.intersection_len(among))
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

#[cfg(test)]
mod tests {
    use super::super::{IndexBuilder, ScoreSettings};
    use super::*;
    use crate::facts::{CustomerFacts, DAY_MS, OrderFact};

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
