//! RFM: recency (days since the last order), frequency (orders) and monetary value
//! (their net total) within a window, each scored 1–5 against four cut points, and the
//! eight classic classes from whether each score is high.
//!
//! Cut points are the quintiles of the tenant's (or unit's) buyers by default, or fixed
//! values an analyst sets. A higher frequency or monetary value scores higher; a
//! *lower* recency scores higher. A customer with no order in the window has no score.

use serde::{Deserialize, Serialize};

use crate::condition::RfmClass;
use crate::facts::{OrderFact, day_of, window_start};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmSettings {
    /// Orders of the last N days count.
    #[serde(default = "default_window")]
    pub window_days: u32,
    /// Fixed cut points; the buyers' quintiles when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<FixedCutPoints>,
    /// A score at least this high is "high" for the class.
    #[serde(default = "default_high_from")]
    pub high_from: u8,
}

fn default_window() -> u32 {
    365
}

fn default_high_from() -> u8 {
    3
}

impl Default for RfmSettings {
    fn default() -> Self {
        Self {
            window_days: default_window(),
            fixed: None,
            high_from: default_high_from(),
        }
    }
}

/// Four ascending cut points per dimension. Money is held in minor units (fen) and
/// written, in the API and in the stored setting, as a decimal of major units (`99.5`
/// is ¥99.50), like every amount of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedCutPoints {
    pub recency_days: [u32; 4],
    pub frequency: [u32; 4],
    #[serde(with = "major_units")]
    pub monetary: [i64; 4],
}

/// Four amounts as decimals of major units, held in minor units.
mod major_units {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;
    use siyu_domain::order::{money_to_major, parse_money};

    pub fn serialize<S: Serializer>(minor: &[i64; 4], s: S) -> Result<S::Ok, S::Error> {
        minor.map(money_to_major).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[i64; 4], D::Error> {
        let values = <[Value; 4]>::deserialize(d)?;
        let mut minor = [0; 4];
        for (n, value) in values.iter().enumerate() {
            if !value.is_number() {
                return Err(D::Error::custom(format!(
                    "monetary[{n}] must be a number of major units (99.5 for ¥99.50)"
                )));
            }
            minor[n] = parse_money(&format!("monetary[{n}]"), value)
                .map_err(|e| D::Error::custom(e.to_string()))?;
        }
        Ok(minor)
    }

    use serde::Serialize;
}

pub type CutPoints = FixedCutPoints;

/// A buyer's raw figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmValues {
    pub recency_days: u32,
    pub frequency: u32,
    pub monetary: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RfmScore {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub class: RfmClass,
}

/// A customer's figures from their orders, or none without an order in the window.
/// `filter` keeps only some orders (one unit's, for a per-unit RFM).
pub fn values_of(
    orders: &[OrderFact],
    today: i32,
    window_days: u32,
    filter: impl Fn(&OrderFact) -> bool,
) -> Option<RfmValues> {
    let start = window_start(today, window_days);
    let (mut last, mut frequency, mut monetary) = (i32::MIN, 0u32, 0i64);
    for order in orders {
        let day = day_of(order.at);
        if day >= start && filter(order) {
            last = last.max(day);
            frequency += 1;
            monetary += order.amount;
        }
    }
    (frequency > 0).then(|| RfmValues {
        recency_days: (today - last).max(0) as u32,
        frequency,
        monetary,
    })
}

/// The quintile cut points of a set of buyers' figures.
pub fn quintiles(values: &[RfmValues]) -> CutPoints {
    fn cut<T: Copy + Ord + Default>(mut all: Vec<T>) -> [T; 4] {
        let mut points = [T::default(); 4];
        if all.is_empty() {
            return points;
        }
        let n = all.len();
        for (i, point) in points.iter_mut().enumerate() {
            let at = (n * (i + 1) / 5).min(n - 1);
            *point = *all.select_nth_unstable(at).1;
        }
        points.sort();
        points
    }
    CutPoints {
        recency_days: cut(values.iter().map(|v| v.recency_days).collect()),
        frequency: cut(values.iter().map(|v| v.frequency).collect()),
        monetary: cut(values.iter().map(|v| v.monetary).collect()),
    }
}

fn higher_is_better<T: PartialOrd>(value: T, cuts: &[T; 4]) -> u8 {
    1 + cuts.iter().filter(|c| value > **c).count() as u8
}

fn lower_is_better<T: PartialOrd>(value: T, cuts: &[T; 4]) -> u8 {
    1 + cuts.iter().filter(|c| value < **c).count() as u8
}

/// Scores a buyer against cut points.
pub fn score(values: RfmValues, cuts: &CutPoints, high_from: u8) -> RfmScore {
    let r = lower_is_better(values.recency_days, &cuts.recency_days);
    let f = higher_is_better(values.frequency, &cuts.frequency);
    let m = higher_is_better(values.monetary, &cuts.monetary);
    RfmScore {
        r,
        f,
        m,
        class: class_of(r >= high_from, f >= high_from, m >= high_from),
    }
}

/// The classic class of high/low recency, frequency and monetary scores.
pub fn class_of(r: bool, f: bool, m: bool) -> RfmClass {
    use RfmClass::*;
    match (r, f, m) {
        (true, true, true) => ImportantValue,
        (true, false, true) => ImportantDevelopment,
        (false, true, true) => ImportantRetention,
        (false, false, true) => ImportantWinBack,
        (true, true, false) => GeneralValue,
        (true, false, false) => GeneralDevelopment,
        (false, true, false) => GeneralRetention,
        (false, false, false) => GeneralWinBack,
    }
}

/// Scores a whole pool: each customer's figures, the cut points (quintiles of these
/// figures unless fixed), and each buyer's score.
pub fn score_all(
    values: &[Option<RfmValues>],
    settings: &RfmSettings,
) -> (CutPoints, Vec<Option<RfmScore>>) {
    let cuts = match settings.fixed {
        Some(fixed) => fixed,
        None => quintiles(&values.iter().flatten().copied().collect::<Vec<_>>()),
    };
    let scores = values
        .iter()
        .map(|v| v.map(|v| score(v, &cuts, settings.high_from)))
        .collect();
    (cuts, scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RfmClass::*;

    fn order(day: i32, fen: i64) -> OrderFact {
        OrderFact {
            at: day as i64 * crate::facts::DAY_MS + 3_600_000,
            amount: fen,
            unit: None,
            channel: "wecom".into(),
        }
    }

    #[test]
    fn fixed_money_cut_points_are_major_units() {
        let settings: RfmSettings = serde_json::from_value(serde_json::json!({
            "fixed": {"recency_days": [7, 30, 90, 180], "frequency": [1, 2, 3, 5],
                      "monetary": [99.5, 500, 1000, 5000]}
        }))
        .unwrap();
        let fixed = settings.fixed.unwrap();
        assert_eq!(fixed.monetary, [9_950, 50_000, 100_000, 500_000]);
        // a ¥30 buyer scores the lowest M against thresholds from ¥99.50
        let low = score(
            RfmValues {
                recency_days: 1,
                frequency: 1,
                monetary: 3_000,
            },
            &fixed,
            3,
        );
        assert_eq!(low.m, 1);
        assert_eq!(
            serde_json::to_value(&settings).unwrap()["fixed"]["monetary"],
            serde_json::json!([99.5, 500.0, 1000.0, 5000.0])
        );
        for bad in [
            serde_json::json!([1.234, 2, 3, 4]),
            serde_json::json!([-1, 2, 3, 4]),
            serde_json::json!(["1", 2, 3, 4]),
        ] {
            let refused = serde_json::from_value::<FixedCutPoints>(serde_json::json!({
                "recency_days": [7, 30, 90, 180], "frequency": [1, 2, 3, 5], "monetary": bad
            }));
            assert!(refused.is_err(), "{bad}");
        }
    }

    #[test]
    fn figures_come_from_the_orders_in_the_window() {
        let orders = [order(1000, 5000), order(990, 2500), order(500, 99_999)];
        let v = values_of(&orders, 1010, 365, |_| true).unwrap();
        assert_eq!(
            v,
            RfmValues {
                recency_days: 10,
                frequency: 2,
                monetary: 7500
            }
        );
        assert_eq!(values_of(&orders[2..], 1010, 365, |_| true), None);
    }

    /// A hand-checked fixture: ten buyers, fixed cut points, each score and class worked
    /// out on paper from the rules in the module documentation.
    #[test]
    fn fixed_cut_points_give_the_hand_checked_classes() {
        let cuts = FixedCutPoints {
            recency_days: [30, 60, 120, 240],
            frequency: [1, 2, 4, 8],
            monetary: [10_000, 50_000, 100_000, 500_000],
        };
        let settings = RfmSettings {
            window_days: 365,
            fixed: Some(cuts),
            high_from: 3,
        };
        let buyers = [
            // (recency, frequency, monetary) → (r, f, m, class)
            ((5, 10, 600_000), (5, 5, 5, ImportantValue)),
            ((5, 1, 600_000), (5, 1, 5, ImportantDevelopment)),
            ((300, 9, 200_000), (1, 5, 4, ImportantRetention)),
            ((300, 1, 100_001), (1, 1, 4, ImportantWinBack)),
            ((45, 3, 10_000), (4, 3, 1, GeneralValue)),
            ((59, 2, 50_000), (4, 2, 2, GeneralDevelopment)),
            ((120, 5, 20_000), (2, 4, 2, GeneralRetention)),
            ((240, 2, 9_000), (1, 2, 1, GeneralWinBack)),
            ((60, 4, 100_000), (3, 3, 3, ImportantValue)),
            ((119, 2, 50_001), (3, 2, 3, ImportantDevelopment)),
        ];
        let values: Vec<_> = buyers
            .iter()
            .map(|&((r, f, m), _)| {
                Some(RfmValues {
                    recency_days: r,
                    frequency: f,
                    monetary: m,
                })
            })
            .collect();
        let (_, scores) = score_all(&values, &settings);
        for (score, (_, (r, f, m, class))) in scores.iter().zip(buyers) {
            assert_eq!(*score, Some(RfmScore { r, f, m, class }));
        }
    }

    #[test]
    fn quintiles_split_buyers_into_fifths() {
        let values: Vec<_> = (0..100)
            .map(|i| {
                Some(RfmValues {
                    recency_days: i,
                    frequency: i + 1,
                    monetary: (i as i64 + 1) * 100,
                })
            })
            .collect();
        let (cuts, scores) = score_all(&values, &RfmSettings::default());
        assert_eq!(cuts.recency_days, [20, 40, 60, 80]);
        let mut per_r = [0; 6];
        let mut per_m = [0; 6];
        for s in scores.iter().flatten() {
            per_r[s.r as usize] += 1;
            per_m[s.m as usize] += 1;
        }
        assert_eq!(&per_r[1..], &[20, 20, 20, 20, 20]);
        assert_eq!(&per_m[1..], &[21, 20, 20, 20, 19]);
        // the most recent buyer scores 5 on recency; the one longest ago but most
        // frequent and biggest is one to keep (重要保持)
        assert_eq!(scores[0].unwrap().r, 5);
        assert_eq!(scores[99].unwrap().class, ImportantRetention);
    }
}
