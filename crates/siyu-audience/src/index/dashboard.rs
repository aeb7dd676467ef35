//! The operations dashboard's figures (数据看板), read off the index: customers added and
//! lost per day by acquisition channel, the AARRR funnel of a period's new customers,
//! retention cohorts, repurchase of private-domain customers against the others, and
//! the private domain's share of GMV.
//!
//! They come from the index rather than SQL because the index already holds every
//! customer's sources, event days and orders in columns, current within seconds, so the
//! dashboard of a million customers answers in tens of milliseconds and agrees with the
//! segments and scores beside it. Days are the tenant's local days, as everywhere in the index.
//!
//! The definitions, which the console's help text repeats:
//! - A customer is **acquired** on the day first seen, through the first source they
//!   came from (`none` for customers imported or created without one).
//! - A customer is **lost** on the day they lapse: `lapsed_after_days` after their last
//!   activity (event or order), if that day has come and they have not returned since.
//! - A **private-domain customer** came from a private-domain source (WeCom, mini
//!   program, official account, app, website) or is looked after by a staff member.
//! - **GMV** is orders net of refunds; an order's channel says whether it was sold in the
//!   private domain.

use std::collections::{BTreeMap, HashMap, HashSet};

use roaring::RoaringBitmap;

use super::AudienceIndex;
use crate::facts::{civil_from_days, days_from_civil};

/// What the dashboard is asked for.
#[derive(Debug, Clone)]
pub struct DashboardQuery<'a> {
    /// First and last day (inclusive).
    pub from: i32,
    pub to: i32,
    /// Only these customers (a unit filter or the caller's data scope); all when `None`.
    pub customers: Option<&'a RoaringBitmap>,
    /// Only orders of these units; all when `None`.
    pub units: Option<&'a [i64]>,
    /// The acquisition channel (the source's name) of each source id.
    pub source_channels: &'a HashMap<i64, String>,
    /// The ids of private-domain sources.
    pub private_sources: &'a HashSet<i64>,
    /// Order channels that are private domain (`wecom`, `mini_shop`, …).
    pub private_order_channels: &'a [String],
    pub period: Period,
    /// Only cohorts acquired through this channel in the retention table.
    pub retention_channel: Option<&'a str>,
}

/// The length of a retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Week,
    Month,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dashboard {
    pub growth: Vec<GrowthDay>,
    pub funnel: Funnel,
    pub retention: Vec<Cohort>,
    /// Private-domain customers, then the others.
    pub repurchase: Repurchase,
    pub sales: Sales,
}

/// Customers added and lost on one day through one acquisition channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrowthDay {
    pub day: i32,
    pub channel: String,
    pub added: u64,
    pub lost: u64,
}

/// How far the customers acquired in the period got (each counts every step reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Funnel {
    pub acquired: u64,
    pub activated: u64,
    pub retained: u64,
    pub revenue: u64,
    pub referral: u64,
    /// Of them, lapsed now.
    pub lapsed: u64,
}

/// Customers acquired in one period, and how many were active in each period after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cohort {
    /// The first day of the acquisition period.
    pub start: i32,
    pub customers: u64,
    /// `active[k]`: customers active (an event or an order) in the k-th period from the
    /// acquisition period (k = 0 is that period), up to the current period.
    pub active: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Repurchase {
    pub private_domain: BuyerFigures,
    pub others: BuyerFigures,
}

/// Buyers in the period and how often they bought.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct BuyerFigures {
    /// All of them in the filter, whenever acquired.
    pub customers: u64,
    /// Customers with at least one order in the period.
    pub buyers: u64,
    /// Buyers with two or more.
    pub repeat_buyers: u64,
    pub orders: u64,
    pub gmv: i64,
    /// repeat_buyers / buyers.
    pub repurchase_rate: f64,
    /// orders / buyers.
    pub frequency: f64,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Sales {
    /// Net order total in fen.
    pub gmv: i64,
    pub orders: u64,
    /// Sold through private-domain channels.
    pub private_gmv: i64,
    pub private_orders: u64,
    pub private_share: f64,
    /// gmv / orders, in fen.
    pub average_order_value: i64,
    /// GMV per order channel.
    pub by_channel: BTreeMap<String, i64>,
}

impl AudienceIndex {
    /// Every figure of the dashboard for one query.
    pub fn dashboard(&self, q: &DashboardQuery<'_>) -> Dashboard {
        let today = self.today;
        let lapse = self.settings.lifecycle.lapsed_after_days as i32;
        let retained_after = self.settings.lifecycle.retained_after_days as i32;
        let current_period = period_of(q.period, today);
        let private_channels: Vec<bool> = self
            .channels
            .iter()
            .map(|c| q.private_order_channels.iter().any(|p| p == c))
            .collect();

        let mut growth: BTreeMap<(i32, String), (u64, u64)> = BTreeMap::new();
        let mut funnel = Funnel::default();
        let mut cohorts: BTreeMap<i32, (u64, Vec<u64>)> = BTreeMap::new();
        let mut repurchase = Repurchase::default();
        let mut sales = Sales::default();
        let mut by_channel: HashMap<u16, i64> = HashMap::new();
        // the periods one customer was active in (reused from customer to customer)
        let mut seen: Vec<bool> = Vec::new();

        let all;
        let customers = match q.customers {
            Some(set) => set,
            None => {
                all = self.live.clone();
                &all
            }
        };
        for c in (customers & &self.live).iter() {
            let sources = self.sources_of.get(&c).map(Vec::as_slice).unwrap_or(&[]);
            let channel = sources
                .first()
                .and_then(|s| q.source_channels.get(s))
                .map(String::as_str)
                .unwrap_or("none");
            let activity = &self.activity[c as usize];
            let first_seen = self.first_seen[c as usize];

            if (q.from..=q.to).contains(&first_seen) {
                growth
                    .entry((first_seen, channel.to_owned()))
                    .or_default()
                    .0 += 1;
                funnel.acquired += 1;
                if activity.last_event_day.is_some() {
                    funnel.activated += 1;
                }
                if let (Some(first), Some(last)) =
                    (activity.first_event_day, activity.last_event_day)
                    && last - first >= retained_after
                {
                    funnel.retained += 1;
                }
                if activity.orders > 0 {
                    funnel.revenue += 1;
                }
                if activity.last_referral_day.is_some() {
                    funnel.referral += 1;
                }
                if activity
                    .last_event_day
                    .max(activity.last_order_day)
                    .is_some_and(|last| today - last >= lapse)
                {
                    funnel.lapsed += 1;
                }
                if q.retention_channel.is_none_or(|r| r == channel) {
                    let start = period_of(q.period, first_seen);
                    let width = (current_period - start + 1).max(1) as usize;
                    let cohort = cohorts.entry(start).or_insert_with(|| (0, vec![0; width]));
                    cohort.0 += 1;
                    seen.clear();
                    seen.resize(width, false);
                    self.active_periods(c, q.period, start, current_period, &mut seen);
                    for (k, active) in seen.iter().enumerate() {
                        if *active {
                            cohort.1[k] += 1;
                        }
                    }
                }
            }
            if let Some(last) = activity.last_event_day.max(activity.last_order_day) {
                let lost_on = last + lapse;
                if (q.from..=q.to).contains(&lost_on) && lost_on <= today {
                    growth.entry((lost_on, channel.to_owned())).or_default().1 += 1;
                }
            }

            let is_private = self.owner_of.contains_key(&c)
                || sources.iter().any(|s| q.private_sources.contains(s));
            let figures = if is_private {
                &mut repurchase.private_domain
            } else {
                &mut repurchase.others
            };
            figures.customers += 1;
            let mut bought = 0u64;
            for o in self.orders.get(c) {
                if o.day < q.from || o.day > q.to {
                    continue;
                }
                if q.units.is_some_and(|units| !units.contains(&o.unit)) {
                    continue;
                }
                bought += 1;
                figures.gmv += o.amount;
                sales.gmv += o.amount;
                sales.orders += 1;
                *by_channel.entry(o.channel).or_default() += o.amount;
                if private_channels
                    .get(o.channel as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    sales.private_gmv += o.amount;
                    sales.private_orders += 1;
                }
            }
            if bought > 0 {
                figures.buyers += 1;
                figures.orders += bought;
                if bought >= 2 {
                    figures.repeat_buyers += 1;
                }
            }
        }

        for figures in [&mut repurchase.private_domain, &mut repurchase.others] {
            figures.repurchase_rate = ratio(figures.repeat_buyers, figures.buyers);
            figures.frequency = ratio(figures.orders, figures.buyers);
        }
        sales.private_share = if sales.gmv > 0 {
            sales.private_gmv as f64 / sales.gmv as f64
        } else {
            0.0
        };
        sales.average_order_value = if sales.orders > 0 {
            (sales.gmv as f64 / sales.orders as f64).round() as i64
        } else {
            0
        };
        sales.by_channel = by_channel
            .into_iter()
            .map(|(code, gmv)| (self.channels[code as usize].clone(), gmv))
            .collect();

        Dashboard {
            growth: growth
                .into_iter()
                .map(|((day, channel), (added, lost))| GrowthDay {
                    day,
                    channel,
                    added,
                    lost,
                })
                .collect(),
            funnel,
            retention: cohorts
                .into_iter()
                .map(|(start, (customers, active))| Cohort {
                    start: period_start(q.period, start),
                    customers,
                    active,
                })
                .collect(),
            repurchase,
            sales,
        }
    }

    /// Marks in `seen` the periods (counted from `start`, up to `current`) in which
    /// customer `c` had an event or an order.
    fn active_periods(&self, c: u32, period: Period, start: i32, current: i32, seen: &mut [bool]) {
        let mut note = |day: i32| {
            let p = period_of(period, day);
            if p >= start && p <= current {
                seen[(p - start) as usize] = true;
            }
        };
        for rows in self.events.values() {
            for row in rows.get(c).iter().filter(|r| r.count > 0) {
                note(row.day);
            }
        }
        for o in self.orders.get(c) {
            note(o.day);
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// A period's number: weeks (Monday to Sunday) or calendar months since 1970.
pub fn period_of(period: Period, day: i32) -> i32 {
    match period {
        // 1970-01-01 was a Thursday; +3 makes weeks start on Monday
        Period::Week => (day + 3).div_euclid(7),
        Period::Month => {
            let (y, m, _) = civil_from_days(day);
            y * 12 + (m as i32 - 1)
        }
    }
}

/// The first day of a period's number.
pub fn period_start(period: Period, number: i32) -> i32 {
    match period {
        Period::Week => number * 7 - 3,
        Period::Month => {
            days_from_civil(number.div_euclid(12), number.rem_euclid(12) as u32 + 1, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{CustomerFacts, DAY_MS, EventDay, OrderFact};
    use crate::index::{IndexBuilder, ScoreSettings};

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2026, 11, 29), 20_786);
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        for day in -1000..30_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn periods_start_on_monday_and_the_first_of_the_month() {
        let monday = days_from_civil(2026, 11, 23);
        let sunday = days_from_civil(2026, 11, 29);
        assert_eq!(
            period_of(Period::Week, monday),
            period_of(Period::Week, sunday)
        );
        assert_eq!(
            period_of(Period::Week, sunday) + 1,
            period_of(Period::Week, sunday + 1)
        );
        assert_eq!(
            period_start(Period::Week, period_of(Period::Week, sunday)),
            monday
        );
        let nov = period_of(Period::Month, sunday);
        assert_eq!(
            period_start(Period::Month, nov),
            days_from_civil(2026, 11, 1)
        );
        assert_eq!(
            period_start(Period::Month, nov + 2),
            days_from_civil(2027, 1, 1)
        );
    }

    fn event(name: &str, day: i32) -> EventDay {
        EventDay {
            name: name.into(),
            day,
            count: 1,
        }
    }

    fn order(day: i32, yuan: i64, channel: &str) -> OrderFact {
        OrderFact {
            at: day as i64 * DAY_MS + 3_600_000,
            amount: yuan * 100,
            unit: Some(7),
            channel: channel.into(),
        }
    }

    /// Four customers worked out by hand; see each line.
    #[test]
    fn the_figures_of_a_hand_checked_tenant() {
        let today = days_from_civil(2026, 11, 29);
        let d = |m: u32, day: u32| days_from_civil(2026, m, day);
        let customers = vec![
            // 1: acquired 11-02 through the mini program (source 10); events on 11-02 and
            // 11-20 (retained: 18 days apart); two mini-shop orders in November
            CustomerFacts {
                id: 1,
                sources: vec![10, 20],
                first_seen_at: d(11, 2) as i64 * DAY_MS,
                events: vec![
                    event("Page Viewed", d(11, 2)),
                    event("Page Viewed", d(11, 20)),
                ],
                orders: vec![
                    order(d(11, 3), 100, "mini_shop"),
                    order(d(11, 20), 300, "mini_shop"),
                ],
                ..Default::default()
            },
            // 2: acquired 11-02 through the server source (20, not private); one Tmall
            // order on 11-05; nothing since: lapses 90 days later, after today
            CustomerFacts {
                id: 2,
                sources: vec![20],
                first_seen_at: d(11, 2) as i64 * DAY_MS,
                events: vec![event("Order Completed", d(11, 5))],
                orders: vec![order(d(11, 5), 200, "tmall")],
                ..Default::default()
            },
            // 3: acquired in June with no source; last active 08-10, so lost on 11-08
            CustomerFacts {
                id: 3,
                first_seen_at: d(6, 1) as i64 * DAY_MS,
                events: vec![event("Page Viewed", d(8, 10))],
                ..Default::default()
            },
            // 4: acquired 11-10 through source 20 but looked after by staff 5 (private);
            // shared content on 11-10 (referral); never bought
            CustomerFacts {
                id: 4,
                sources: vec![20],
                owner: Some(5),
                first_seen_at: d(11, 10) as i64 * DAY_MS,
                events: vec![event("Content Shared", d(11, 10))],
                ..Default::default()
            },
        ];
        let mut builder = IndexBuilder::new(ScoreSettings::default(), today);
        for c in &customers {
            builder.add(c);
        }
        let index = builder.finish();
        let source_channels = HashMap::from([(10, "mini_program".into()), (20, "server".into())]);
        let private_sources = HashSet::from([10]);
        let private_order_channels = vec!["mini_shop".to_string(), "wecom".to_string()];
        let q = DashboardQuery {
            from: d(11, 1),
            to: d(11, 29),
            customers: None,
            units: None,
            source_channels: &source_channels,
            private_sources: &private_sources,
            private_order_channels: &private_order_channels,
            period: Period::Week,
            retention_channel: None,
        };
        let dash = index.dashboard(&q);

        let g = |day, channel: &str, added, lost| GrowthDay {
            day,
            channel: channel.into(),
            added,
            lost,
        };
        assert_eq!(
            dash.growth,
            vec![
                g(d(11, 2), "mini_program", 1, 0),
                g(d(11, 2), "server", 1, 0),
                g(d(11, 8), "none", 0, 1),
                g(d(11, 10), "server", 1, 0),
            ]
        );
        assert_eq!(
            dash.funnel,
            Funnel {
                acquired: 3,
                activated: 3,
                retained: 1,
                revenue: 2,
                referral: 1,
                lapsed: 0
            }
        );
        // weeks: 11-02 is a Monday; customers 1 and 2 in that week's cohort, 4 in 11-09's
        let w = |day| period_start(Period::Week, period_of(Period::Week, day));
        assert_eq!(dash.retention.len(), 2);
        assert_eq!(dash.retention[0].start, d(11, 2));
        assert_eq!(dash.retention[0].start, w(d(11, 2)));
        assert_eq!(dash.retention[0].customers, 2);
        // week 0: both; week 2 (11-16..22): customer 1 (11-20); weeks 1 and 3: nobody
        assert_eq!(dash.retention[0].active, vec![2, 0, 1, 0]);
        assert_eq!(dash.retention[1].start, d(11, 9));
        assert_eq!(dash.retention[1].active, vec![1, 0, 0]);

        let p = dash.repurchase.private_domain;
        assert_eq!(
            (p.customers, p.buyers, p.repeat_buyers, p.orders, p.gmv),
            (2, 1, 1, 2, 40_000)
        );
        assert_eq!((p.repurchase_rate, p.frequency), (1.0, 2.0));
        let o = dash.repurchase.others;
        assert_eq!(
            (o.customers, o.buyers, o.repeat_buyers, o.orders, o.gmv),
            (2, 1, 0, 1, 20_000)
        );
        assert_eq!((o.repurchase_rate, o.frequency), (0.0, 1.0));

        assert_eq!(dash.sales.gmv, 60_000);
        assert_eq!(dash.sales.orders, 3);
        assert_eq!(dash.sales.private_gmv, 40_000);
        assert!((dash.sales.private_share - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(dash.sales.average_order_value, 20_000);
        assert_eq!(
            dash.sales.by_channel,
            BTreeMap::from([("mini_shop".into(), 40_000), ("tmall".into(), 20_000)])
        );

        // filtered to the mini-program cohorts, and to customers 2 and 3 only
        let only = RoaringBitmap::from_iter([index.dense[&2], index.dense[&3]]);
        let narrowed = index.dashboard(&DashboardQuery {
            customers: Some(&only),
            retention_channel: Some("mini_program"),
            ..q.clone()
        });
        assert_eq!(narrowed.funnel.acquired, 1);
        assert!(narrowed.retention.is_empty(), "customer 1 is filtered out");
        assert_eq!(narrowed.sales.gmv, 20_000);
        let months = index.dashboard(&DashboardQuery {
            period: Period::Month,
            ..q
        });
        assert_eq!(months.retention.len(), 1);
        assert_eq!(months.retention[0].start, d(11, 1));
        assert_eq!(months.retention[0].active, vec![3]);
    }
}
