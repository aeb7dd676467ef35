//! The plain evaluation of a condition: one customer's facts at a time, written to be
//! obviously right rather than fast. The index must agree with it on every definition;
//! a randomized test compares them.

use std::collections::HashMap;

use crate::catalog::{Catalog, SavedSegment};
use crate::condition::LifecycleStage;
use crate::condition::{Condition, OrderMeasure, Which};
use crate::facts::{
    CustomerFacts, OrderFact, bucket_of, day_of, time_matches, trait_matches, window_start,
};
use crate::rfm::RfmScore;

/// Counts of events with property filters, which come from stored events rather than
/// the per-day counts: per filtered condition (by its text), per customer with at least
/// one matching event, how many.
pub type FilteredCounts = HashMap<String, HashMap<i64, u32>>;

/// What an evaluation needs besides the customers.
pub struct EvalInput<'a> {
    /// The tenant's day (in its time zone) that windows end on.
    pub today: i32,
    /// The tenant's time zone: a trait holding an instant is tested on the local day
    /// it falls on.
    pub zone: siyu_domain::time::TimeZone,
    pub catalog: &'a Catalog,
    pub filtered: &'a FilteredCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("there is no tag named \"{0}\"")]
    UnknownTag(String),
    #[error("there is no source named \"{0}\"")]
    UnknownSource(String),
    #[error("there is no segment {0}")]
    UnknownSegment(i64),
    #[error("segments refer to each other too deeply")]
    TooDeep,
    #[error("the counts of `{0}` were not read from the stored events")]
    MissingFilteredCounts(String),
}

/// A customer's scores, computed from the whole pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Derived {
    pub rfm: Option<RfmScore>,
    pub stage: LifecycleStage,
}

/// Whether a customer matches a condition.
pub fn matches(
    condition: &Condition,
    facts: &CustomerFacts,
    derived: &Derived,
    input: &EvalInput<'_>,
) -> Result<bool, EvalError> {
    matches_at(condition, facts, derived, input, 0)
}

fn matches_at(
    condition: &Condition,
    facts: &CustomerFacts,
    derived: &Derived,
    input: &EvalInput<'_>,
    depth: usize,
) -> Result<bool, EvalError> {
    let today = input.today;
    let recurse = |c: &Condition| matches_at(c, facts, derived, input, depth);
    Ok(match condition {
        Condition::And(parts) => {
            for part in parts {
                if !recurse(part)? {
                    return Ok(false);
                }
            }
            true
        }
        Condition::Or(parts) => {
            for part in parts {
                if recurse(part)? {
                    return Ok(true);
                }
            }
            false
        }
        Condition::Not(inner) => !recurse(inner)?,
        Condition::Tag(name) => {
            let id = input
                .catalog
                .tags
                .get(name)
                .ok_or_else(|| EvalError::UnknownTag(name.clone()))?;
            facts.tags.contains(id)
        }
        Condition::Trait(t) => facts
            .traits
            .get(&t.key)
            .is_some_and(|v| trait_matches(v, &t.test, today, input.zone)),
        Condition::Performed(p) => {
            let count = if p.filters.is_empty() {
                let start = p.within_days.map_or(i32::MIN, |d| window_start(today, d));
                facts
                    .events
                    .iter()
                    .filter(|e| e.name == p.event && e.day >= start)
                    .map(|e| e.count)
                    .sum()
            } else {
                let key = condition.to_string();
                let counts = input
                    .filtered
                    .get(&key)
                    .ok_or(EvalError::MissingFilteredCounts(key))?;
                counts.get(&facts.id).copied().unwrap_or(0)
            };
            p.op.holds(count, p.count)
        }
        Condition::EventTime(e) => {
            let days = facts
                .events
                .iter()
                .filter(|d| d.name == e.event && d.count > 0)
                .map(|d| d.day);
            let day = match e.which {
                Which::First => days.min(),
                Which::Last => days.max(),
            };
            day.is_some_and(|day| time_matches(e.test, day, today))
        }
        Condition::Orders(o) => {
            let start = o.within_days.map_or(i32::MIN, |d| window_start(today, d));
            let beneath = o.unit.map(|u| input.catalog.units_beneath(u));
            let orders: Vec<&OrderFact> = facts
                .orders
                .iter()
                .filter(|x| day_of(x.at) >= start)
                .filter(|x| beneath.is_none_or(|units| x.unit.is_some_and(|u| units.contains(&u))))
                .filter(|x| o.channel.as_ref().is_none_or(|c| *c == x.channel))
                .collect();
            let sum: i64 = orders.iter().map(|x| x.amount).sum();
            match o.measure {
                OrderMeasure::Count => o.op.holds(orders.len() as f64, o.value),
                OrderMeasure::Sum => o.op.holds(sum as f64, (o.value * 100.0).round()),
                OrderMeasure::Avg => {
                    !orders.is_empty()
                        && o.op
                            .holds(sum as f64 / orders.len() as f64, (o.value * 100.0).round())
                }
            }
        }
        Condition::LastOrder(t) => facts
            .orders
            .iter()
            .map(|o| day_of(o.at))
            .max()
            .is_some_and(|day| time_matches(*t, day, today)),
        Condition::RfmClass(classes) => derived.rfm.is_some_and(|r| classes.contains(&r.class)),
        Condition::RfmScore(s) => derived.rfm.is_some_and(|r| {
            let score = match s.dimension {
                crate::condition::RfmDimension::R => r.r,
                crate::condition::RfmDimension::F => r.f,
                crate::condition::RfmDimension::M => r.m,
            };
            s.op.holds(score, s.value)
        }),
        Condition::Lifecycle(stages) => stages.contains(&derived.stage),
        Condition::Unit(unit) => {
            let units = input.catalog.units_beneath(*unit);
            facts
                .orders
                .iter()
                .any(|o| o.unit.is_some_and(|u| units.contains(&u)))
        }
        Condition::Source(name) => {
            let id = input
                .catalog
                .sources
                .get(name)
                .ok_or_else(|| EvalError::UnknownSource(name.clone()))?;
            facts.sources.contains(id)
        }
        Condition::ChannelCode(code) => facts.channel_codes.contains(code),
        Condition::Owner(staff) => facts.owner == Some(*staff),
        Condition::HasOwner => facts.owner.is_some(),
        Condition::Consent(channel) => !facts.opted_out.iter().any(|c| c == channel || c == "all"),
        Condition::Segment(id) => {
            if depth >= crate::catalog::MAX_SEGMENT_DEPTH {
                return Err(EvalError::TooDeep);
            }
            match input.catalog.segments.get(id) {
                None => return Err(EvalError::UnknownSegment(*id)),
                Some(SavedSegment::Static(ids)) => ids.contains(&facts.id),
                Some(SavedSegment::Dynamic(inner)) => {
                    matches_at(inner, facts, derived, input, depth + 1)?
                }
            }
        }
        Condition::Bucket(b) => b.op.holds(bucket_of(facts.id), b.value),
    })
}
