//! What a condition may refer to in a tenant — its tags, units and saved segments — and
//! the checks a definition must pass before it is evaluated or saved: every name it uses
//! exists, every scan it asks for is bounded, and saved segments do not refer to
//! themselves in a circle.

use std::collections::{HashMap, HashSet};

use siyu_domain::consent::ConsentChannel;
use siyu_domain::order::SalesChannel;

use crate::condition::{BUCKETS, Condition, MAX_FILTERED_WINDOW_DAYS, OrderMeasure};

/// A saved segment as a condition refers to it.
#[derive(Debug, Clone, PartialEq)]
pub enum SavedSegment {
    /// Membership follows its condition.
    Dynamic(Condition),
    /// A frozen list of customer ids.
    Static(Vec<i64>),
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Tag name → tag id.
    pub tags: HashMap<String, i64>,
    /// Unit id → the unit and every unit beneath it.
    pub units: HashMap<i64, Vec<i64>>,
    /// Source name → source id.
    pub sources: HashMap<String, i64>,
    pub segments: HashMap<i64, SavedSegment>,
}

/// Why a definition cannot be used, and which part of it: the text a person wrote that
/// is wrong (`tag("VIP")`), so the caller can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DefinitionError {
    /// The offending part, printed in the text form.
    pub part: String,
    pub message: String,
}

/// How deep saved segments may refer to other saved segments.
pub const MAX_SEGMENT_DEPTH: usize = 8;

impl Catalog {
    /// The units a unit condition covers: the unit and every unit beneath it.
    pub fn units_beneath(&self, unit: i64) -> &[i64] {
        self.units.get(&unit).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Checks a definition against this tenant.
    pub fn check(&self, condition: &Condition) -> Result<(), DefinitionError> {
        self.check_at(condition, &mut Vec::new())
    }

    fn check_at(&self, condition: &Condition, path: &mut Vec<i64>) -> Result<(), DefinitionError> {
        let fail = |message: String| {
            Err(DefinitionError {
                part: condition.to_string(),
                message,
            })
        };
        match condition {
            Condition::And(parts) | Condition::Or(parts) => {
                if parts.is_empty() {
                    return fail("\"and\" and \"or\" need at least one condition".into());
                }
                for part in parts {
                    self.check_at(part, path)?;
                }
            }
            Condition::Not(inner) => self.check_at(inner, path)?,
            Condition::Tag(name) if !self.tags.contains_key(name) => {
                return fail(format!("there is no tag named \"{name}\""));
            }
            Condition::Trait(t) if t.key.is_empty() => {
                return fail("a trait needs a name".into());
            }
            Condition::Performed(p) => {
                if p.event.is_empty() {
                    return fail("an event needs a name".into());
                }
                if !p.filters.is_empty()
                    && p.within_days.is_none_or(|d| d > MAX_FILTERED_WINDOW_DAYS)
                {
                    return fail(format!(
                        "an event condition with \"where\" reads stored events, so it needs a window of at most {MAX_FILTERED_WINDOW_DAYS} days (last 90d)"
                    ));
                }
                self.check_window(condition, p.within_days)?;
            }
            Condition::EventTime(e) if e.event.is_empty() => {
                return fail("an event needs a name".into());
            }
            Condition::Orders(o) => {
                self.check_window(condition, o.within_days)?;
                if let Some(unit) = o.unit
                    && !self.units.contains_key(&unit)
                {
                    return fail(format!("there is no unit {unit}"));
                }
                if let Some(channel) = &o.channel
                    && SalesChannel::parse("channel", channel).is_err()
                {
                    return fail(format!("\"{channel}\" is not a sales channel"));
                }
                if o.measure == OrderMeasure::Count && o.value.fract() != 0.0 {
                    return fail("a number of orders must be whole".into());
                }
                if !o.value.is_finite() || o.value.abs() > 1e13 {
                    return fail("the value is out of range".into());
                }
            }
            Condition::RfmClass(classes) if classes.is_empty() => {
                return fail("name at least one class".into());
            }
            Condition::Lifecycle(stages) if stages.is_empty() => {
                return fail("name at least one stage".into());
            }
            Condition::RfmScore(s) if !(1..=5).contains(&s.value) => {
                return fail("an RFM score is from 1 to 5".into());
            }
            Condition::Source(name) if !self.sources.contains_key(name) => {
                return fail(format!("there is no source named \"{name}\""));
            }
            Condition::ChannelCode(code)
                if code.trim().is_empty() || code.chars().count() > 128 =>
            {
                return fail("a channel code is 1 to 128 characters".into());
            }
            Condition::ChannelCode(code) if code.trim_matches(' ') != code => {
                return fail("a channel code has no spaces at its ends".into());
            }
            Condition::Unit(unit) if !self.units.contains_key(unit) => {
                return fail(format!("there is no unit {unit}"));
            }
            Condition::Consent(channel)
                if ConsentChannel::parse("channel", channel).is_err() || channel == "all" =>
            {
                return fail(format!(
                    "\"{channel}\" is not a channel customers consent to; use one of wecom, sms, email, phone, official_account, mini_program, app_push"
                ));
            }
            Condition::Segment(id) => {
                if path.contains(id) {
                    return fail(format!("segment {id} refers to itself"));
                }
                if path.len() >= MAX_SEGMENT_DEPTH {
                    return fail(format!(
                        "segments may refer to other segments at most {MAX_SEGMENT_DEPTH} deep"
                    ));
                }
                match self.segments.get(id) {
                    None => return fail(format!("there is no segment {id}")),
                    Some(SavedSegment::Dynamic(inner)) => {
                        path.push(*id);
                        self.check_at(inner, path)?;
                        path.pop();
                    }
                    Some(SavedSegment::Static(_)) => {}
                }
            }
            Condition::Bucket(b) if b.value > BUCKETS => {
                return fail(format!("a bucket is from 0 to {}", BUCKETS - 1));
            }
            _ => {}
        }
        Ok(())
    }

    fn check_window(
        &self,
        condition: &Condition,
        days: Option<u32>,
    ) -> Result<(), DefinitionError> {
        match days {
            Some(d) if d == 0 || d > crate::condition::MAX_WINDOW_DAYS => Err(DefinitionError {
                part: condition.to_string(),
                message: format!(
                    "a window must be 1 to {} days",
                    crate::condition::MAX_WINDOW_DAYS
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The event conditions with property filters a condition uses, directly or through
    /// saved segments: their counts are read from stored events before evaluating.
    pub fn filtered_events(&self, condition: &Condition) -> Vec<Condition> {
        let mut found = Vec::new();
        let mut stack = vec![condition.clone()];
        let mut seen = HashSet::new();
        while let Some(next) = stack.pop() {
            next.walk(&mut |c| match c {
                Condition::Performed(p) if !p.filters.is_empty() && !found.contains(c) => {
                    found.push(c.clone());
                }
                Condition::Segment(id) => {
                    if seen.insert(*id)
                        && let Some(SavedSegment::Dynamic(inner)) = self.segments.get(id)
                    {
                        stack.push(inner.clone());
                    }
                }
                _ => {}
            });
        }
        found
    }

    /// The saved segments that use a tag, directly or through another segment.
    pub fn segments_using_tag(&self, tag: &str) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .segments
            .iter()
            .filter(|(_, s)| matches!(s, SavedSegment::Dynamic(c) if c.tags().contains(&tag)))
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// Whether saving `condition` as segment `id` would make a circle of references.
    pub fn would_loop(&self, id: i64, condition: &Condition) -> bool {
        let mut seen = HashSet::new();
        let mut stack = condition.segments();
        while let Some(next) = stack.pop() {
            if next == id {
                return true;
            }
            if seen.insert(next)
                && let Some(SavedSegment::Dynamic(c)) = self.segments.get(&next)
            {
                stack.extend(c.segments());
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.tags.insert("VIP".into(), 1);
        c.units.insert(3, vec![3, 4]);
        c.segments
            .insert(10, SavedSegment::Dynamic(parse(r#"tag("VIP")"#).unwrap()));
        c.segments.insert(
            11,
            SavedSegment::Dynamic(parse("segment(10) or unit = 3").unwrap()),
        );
        c
    }

    fn problem(text: &str) -> DefinitionError {
        catalog().check(&parse(text).unwrap()).expect_err(text)
    }

    #[test]
    fn known_names_pass() {
        for text in [
            r#"tag("VIP") and unit = 3 and segment(11)"#,
            r#"orders.sum(last 90d, unit = 3, channel = "tmall") > 10"#,
            r#"performed("Product Viewed", last 30d, where category = "美妆")"#,
            r#"consent("sms")"#,
        ] {
            catalog().check(&parse(text).unwrap()).unwrap();
        }
    }

    #[test]
    fn unknown_names_and_unbounded_scans_are_named() {
        let e = problem(r#"tag("VIP") and tag("高净值")"#);
        assert_eq!(e.part, r#"tag("高净值")"#);
        assert!(e.message.contains("no tag named"));
        assert!(problem("unit = 9").message.contains("no unit 9"));
        assert!(problem("segment(99)").message.contains("no segment 99"));
        assert!(
            problem(r#"orders.count(channel = "ebay") > 1"#)
                .message
                .contains("sales channel")
        );
        assert!(
            problem(r#"consent("fax")"#)
                .message
                .contains("not a channel")
        );
        assert!(
            problem(r#"performed("X", where a = 1)"#)
                .message
                .contains("at most 365 days")
        );
        assert!(
            problem(r#"performed("X", last 400d, where a = 1)"#)
                .message
                .contains("365")
        );
    }

    #[test]
    fn circles_of_segments_are_found() {
        let c = catalog();
        assert!(c.would_loop(10, &parse("segment(11)").unwrap()));
        assert!(!c.would_loop(12, &parse("segment(11)").unwrap()));
        assert_eq!(c.segments_using_tag("VIP"), vec![10]);
    }
}
