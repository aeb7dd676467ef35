//! Lifecycle stages (AARRR plus lapsed) from a customer's activity. The rules, checked
//! in this order, with defaults a tenant may change:
//!
//! 1. **lapsed** — neither an event nor an order for `lapsed_after_days` (90);
//! 2. **referral** — performed one of `referral_events` (`Content Shared`,
//!    `Friend Invited`) within `referral_window_days` (90);
//! 3. **revenue** — has an order that counts;
//! 4. **retained** — came back: events on days at least `retained_after_days` (7) apart;
//! 5. **activated** — performed any event;
//! 6. **acquired** — known to the brand, nothing more yet.

use serde::{Deserialize, Serialize};

use crate::condition::LifecycleStage;
use crate::facts::{CustomerFacts, day_of};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSettings {
    pub lapsed_after_days: u32,
    pub referral_events: Vec<String>,
    pub referral_window_days: u32,
    pub retained_after_days: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            lapsed_after_days: 90,
            referral_events: vec!["Content Shared".into(), "Friend Invited".into()],
            referral_window_days: 90,
            retained_after_days: 7,
        }
    }
}

/// What the stage rules read of a customer, kept per customer by the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub first_event_day: Option<i32>,
    pub last_event_day: Option<i32>,
    pub last_referral_day: Option<i32>,
    pub last_order_day: Option<i32>,
    pub orders: u32,
}

impl Activity {
    pub fn of(facts: &CustomerFacts, settings: &LifecycleSettings) -> Self {
        let mut a = Activity::default();
        for e in facts.events.iter().filter(|e| e.count > 0) {
            a.first_event_day = Some(a.first_event_day.map_or(e.day, |d| d.min(e.day)));
            a.last_event_day = Some(a.last_event_day.map_or(e.day, |d| d.max(e.day)));
            if settings.referral_events.contains(&e.name) {
                a.last_referral_day = Some(a.last_referral_day.map_or(e.day, |d| d.max(e.day)));
            }
        }
        for o in &facts.orders {
            let day = day_of(o.at);
            a.last_order_day = Some(a.last_order_day.map_or(day, |d| d.max(day)));
            a.orders += 1;
        }
        a
    }

    pub fn stage(&self, today: i32, settings: &LifecycleSettings) -> LifecycleStage {
        let last_active = self.last_event_day.max(self.last_order_day);
        let Some(last_active) = last_active else {
            return LifecycleStage::Acquired;
        };
        if today - last_active >= settings.lapsed_after_days as i32 {
            LifecycleStage::Lapsed
        } else if self
            .last_referral_day
            .is_some_and(|d| today - d < settings.referral_window_days as i32)
        {
            LifecycleStage::Referral
        } else if self.orders > 0 {
            LifecycleStage::Revenue
        } else if let (Some(first), Some(last)) = (self.first_event_day, self.last_event_day)
            && last - first >= settings.retained_after_days as i32
        {
            LifecycleStage::Retained
        } else if self.last_event_day.is_some() {
            LifecycleStage::Activated
        } else {
            LifecycleStage::Acquired
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{DAY_MS, EventDay, OrderFact};
    use LifecycleStage::*;

    fn facts(events: &[(&str, i32)], orders: &[i32]) -> CustomerFacts {
        CustomerFacts {
            events: events
                .iter()
                .map(|&(name, day)| EventDay {
                    name: name.into(),
                    day,
                    count: 1,
                })
                .collect(),
            orders: orders
                .iter()
                .map(|&day| OrderFact {
                    at: day as i64 * DAY_MS,
                    amount: 100,
                    unit: None,
                    channel: "wecom".into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn each_rule_gives_its_stage() {
        let s = LifecycleSettings::default();
        let stage = |f: CustomerFacts| Activity::of(&f, &s).stage(1000, &s);
        assert_eq!(stage(facts(&[], &[])), Acquired);
        assert_eq!(stage(facts(&[("App Opened", 999)], &[])), Activated);
        assert_eq!(
            stage(facts(&[("App Opened", 990), ("App Opened", 998)], &[])),
            Retained
        );
        assert_eq!(stage(facts(&[("App Opened", 999)], &[995])), Revenue);
        assert_eq!(stage(facts(&[("Content Shared", 950)], &[995])), Referral);
        assert_eq!(stage(facts(&[("Content Shared", 900)], &[910])), Lapsed);
        assert_eq!(stage(facts(&[("Content Shared", 915)], &[])), Referral);
    }
}
