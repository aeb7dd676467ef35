//! Answering a condition: each part is evaluated against a set of candidates and
//! narrows it, the parts of an `and` cheapest first (bitmap look-ups before column
//! scans, see `cost`) so that the expensive parts touch few customers. It reads the
//! storage layouts and the scores as they stand and changes nothing; the meaning of
//! each test is the one `facts` gives, so that the index agrees with `plain`.

use roaring::RoaringBitmap;

use super::AudienceIndex;
use crate::catalog::{MAX_SEGMENT_DEPTH, SavedSegment};
use crate::condition::{Condition, OrderMeasure, RfmDimension, Which};
use crate::facts::{bucket_of, time_matches, trait_matches, window_start};
use crate::plain::{EvalError, EvalInput};

impl AudienceIndex {
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
