//! What the audience layer knows of one customer, as plain data ([`CustomerFacts`]),
//! and the meaning of every test of the language on it ([`trait_matches`],
//! [`window_start`], …). The in-memory index stores the same facts in columns and must
//! agree with [`plain::matches`](crate::plain::matches), which evaluates a condition on
//! these facts directly, one customer at a time.

use serde_json::Value;

use siyu_domain::time::TimeZone;

use crate::condition::{Cmp, TimeTest, TraitOp};

pub const DAY_MS: i64 = 86_400_000;

/// The day number (days since 1970-01-01, UTC) of a time in milliseconds.
pub fn day_of(ms: i64) -> i32 {
    ms.div_euclid(DAY_MS) as i32
}

/// The first day of a window of the last `days` days ending `today` (today counts).
pub fn window_start(today: i32, days: u32) -> i32 {
    today - days as i32 + 1
}

/// Whether a day passes a relative time test.
pub fn time_matches(test: TimeTest, day: i32, today: i32) -> bool {
    match test {
        TimeTest::Within(days) => day >= window_start(today, days),
        TimeTest::Before(days) => day < window_start(today, days),
    }
}

/// One customer, as the audience layer sees them. Times are in the tenant's local time
/// (milliseconds since 1970-01-01 00:00 in its zone), so that [`day_of`] gives the day a
/// person there would name; event days are local days too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFacts {
    pub id: i64,
    pub traits: serde_json::Map<String, Value>,
    /// Tag ids.
    pub tags: Vec<i64>,
    /// The ids of the sources their events came from, in the order first seen: the
    /// first is where the customer was acquired.
    pub sources: Vec<i64>,
    /// The channel codes (their `state`) the customer came through, in the order first seen.
    pub channel_codes: Vec<String>,
    pub owner: Option<i64>,
    /// Event counts per name and day.
    pub events: Vec<EventDay>,
    /// Orders that count (paid, completed, partly refunded), net of refunds.
    pub orders: Vec<OrderFact>,
    /// Consent channels with an opt-out in force (`all` included).
    pub opted_out: Vec<String>,
    /// When the customer was first seen (ms).
    pub first_seen_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDay {
    pub name: String,
    pub day: i32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    /// When it was ordered (ms).
    pub at: i64,
    /// Net amount in fen.
    pub amount: i64,
    pub unit: Option<i64>,
    pub channel: String,
}

/// A trait value read as a number, when it is one (or text that reads as one).
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// A trait value read as text.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A trait value read as a day of the tenant (`zone`): an instant (an RFC 3339 time
/// with its offset, or milliseconds since the epoch) falls on the local day it is in
/// that zone, so `…T17:00:00Z`, `…T01:00:00+08:00` and the same instant in milliseconds
/// are one day on a Shanghai tenant; a date (`YYYY-MM-DD`) or a local time written
/// without an offset (`2026-11-01 10:00`) is that date as the tenant names it.
pub fn as_day(v: &Value, zone: TimeZone) -> Option<i32> {
    match v {
        Value::Number(n) => n.as_i64().map(|ms| zone.day_of(ms) as i32),
        Value::String(s) => {
            let s = s.trim();
            if has_offset(s)
                && let Some(ms) = siyu_domain::tracking::parse_time(s)
            {
                return Some(zone.day_of(ms) as i32);
            }
            let date = s.get(..10)?;
            // what follows a date is a time of day, or nothing
            if s.len() > 10 && !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
                return None;
            }
            let mut parts = date.split('-');
            let y: i32 = parts.next()?.parse().ok()?;
            let m: u32 = parts.next()?.parse().ok()?;
            let d: u32 = parts.next()?.parse().ok()?;
            if parts.next().is_some() {
                return None;
            }
            date_day(y, m, d)
        }
        _ => None,
    }
}

/// Whether a written time carries its offset from UTC (`Z`, `+08:00`, `-0500`) after
/// the time of day.
fn has_offset(s: &str) -> bool {
    let Some(time) = s.get(11..) else {
        return false;
    };
    time.ends_with(['Z', 'z']) || time.contains(['+', '-'])
}

/// The day number (days since 1970-01-01) of a date, or `None` for one that does not
/// exist.
pub fn date_day(y: i32, m: u32, d: u32) -> Option<i32> {
    siyu_domain::time::days_from_civil(i64::from(y), m, d).map(|day| day as i32)
}

/// The day number of a date the code itself made (the first of a month, a test's
/// fixture): it must exist.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    date_day(y, m, d).expect("a date that exists")
}

/// The (year, month, day) of a day number.
pub fn civil_from_days(day: i32) -> (i32, u32, u32) {
    let (y, m, d) = siyu_domain::time::civil_from_days(i64::from(day));
    (y as i32, m, d)
}

/// The `YYYY-MM-DD` date of a day number.
pub fn format_day(day: i32) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn values_equal(trait_value: &Value, wanted: &Value) -> bool {
    match (as_number(trait_value), as_number(wanted)) {
        (Some(a), Some(b)) => a == b,
        _ => as_text(trait_value) == as_text(wanted),
    }
}

/// Whether a present (non-null) trait value passes a test. A customer without the
/// trait passes no test of it: `trait.city != "北京"` does not hold for one with no city.
pub fn trait_matches(value: &Value, test: &TraitOp, today: i32, zone: TimeZone) -> bool {
    if value.is_null() {
        return false;
    }
    match test {
        TraitOp::Exists => true,
        TraitOp::Compare { op, value: wanted } => match op {
            Cmp::Eq => values_equal(value, wanted),
            Cmp::Ne => !values_equal(value, wanted),
            _ => match (as_number(value), as_number(wanted)) {
                (Some(a), Some(b)) => op.holds(a, b),
                (None, None) => op.holds(as_text(value), as_text(wanted)),
                _ => false,
            },
        },
        TraitOp::In(values) => values.iter().any(|w| values_equal(value, w)),
        TraitOp::Contains(needle) => as_text(value)
            .to_lowercase()
            .contains(&needle.to_lowercase()),
        TraitOp::Time(t) => as_day(value, zone).is_some_and(|day| time_matches(*t, day, today)),
    }
}

/// The random bucket (0–99) of a customer: fixed per customer, evenly spread.
pub fn bucket_of(customer: i64) -> u32 {
    // splitmix64's finaliser
    let mut z = (customer as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % crate::condition::BUCKETS as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_are_counted_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 24), day_of(1_795_478_400_000));
        assert_eq!(
            as_day(&json!("2026-11-24T08:00:00+08:00"), TimeZone::UTC),
            Some(days_from_civil(2026, 11, 24))
        );
        assert_eq!(as_day(&json!("yesterday"), TimeZone::UTC), None);
        assert_eq!(as_day(&json!("2026-02-30"), TimeZone::UTC), None);
        assert_eq!(
            as_day(&json!("2024-02-29"), TimeZone::UTC),
            date_day(2024, 2, 29)
        );
        for day in [-1000, 0, 59, 60, 20_000, 20_781] {
            assert_eq!(as_day(&json!(format_day(day)), TimeZone::UTC), Some(day));
        }
    }

    #[test]
    fn one_instant_is_one_day_of_the_tenant_however_it_is_written() {
        let shanghai = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
        let day = days_from_civil(2026, 11, 2);
        // 2026-11-01T17:00Z is 01:00 on 2 November in Shanghai
        let ms = 1_793_552_400_000;
        assert_eq!(
            siyu_domain::time::format_rfc3339(ms),
            "2026-11-01T17:00:00.000Z"
        );
        for written in [
            json!("2026-11-01T17:00:00Z"),
            json!("2026-11-02T01:00:00+08:00"),
            json!("2026-11-01T12:00:00-05:00"),
            json!(ms),
            json!("2026-11-02"),
            json!("2026-11-02 01:00"),
            json!("2026-11-02T01:00:00"),
        ] {
            assert_eq!(as_day(&written, shanghai), Some(day), "{written}");
        }
        // the same instant is still 1 November in UTC
        assert_eq!(
            as_day(&json!("2026-11-01T17:00:00Z"), TimeZone::UTC),
            Some(day - 1)
        );
        assert_eq!(as_day(&json!("2026-11-02x"), shanghai), None);
        // within the last 1 day on 2 November, Shanghai time, whichever way it was sent
        let within = TraitOp::Time(TimeTest::Within(1));
        assert!(trait_matches(
            &json!("2026-11-01T17:00:00Z"),
            &within,
            day,
            shanghai
        ));
        assert!(trait_matches(&json!(ms), &within, day, shanghai));
    }

    #[test]
    fn windows_count_today_and_before_is_their_complement() {
        let today = 100;
        assert!(time_matches(TimeTest::Within(1), 100, today));
        assert!(!time_matches(TimeTest::Within(1), 99, today));
        assert!(time_matches(TimeTest::Within(30), 71, today));
        assert!(!time_matches(TimeTest::Within(30), 70, today));
        for day in 60..=100 {
            assert_ne!(
                time_matches(TimeTest::Within(30), day, today),
                time_matches(TimeTest::Before(30), day, today)
            );
        }
    }

    #[test]
    fn traits_compare_as_numbers_when_both_sides_are_numbers() {
        let ge = |v: Value| TraitOp::Compare {
            op: Cmp::Ge,
            value: v,
        };
        assert!(trait_matches(&json!("30"), &ge(json!(9)), 0, TimeZone::UTC));
        assert!(trait_matches(
            &json!("30"),
            &ge(json!("9")),
            0,
            TimeZone::UTC
        ));
        assert!(trait_matches(
            &json!("b"),
            &ge(json!("a")),
            0,
            TimeZone::UTC
        ));
        assert!(!trait_matches(&json!("b"), &ge(json!(1)), 0, TimeZone::UTC));
        let eq = TraitOp::Compare {
            op: Cmp::Eq,
            value: json!(true),
        };
        assert!(trait_matches(&json!(true), &eq, 0, TimeZone::UTC));
        assert!(trait_matches(&json!("true"), &eq, 0, TimeZone::UTC));
        let ne = TraitOp::Compare {
            op: Cmp::Ne,
            value: json!("北京"),
        };
        assert!(trait_matches(&json!("上海"), &ne, 0, TimeZone::UTC));
        assert!(!trait_matches(&Value::Null, &ne, 0, TimeZone::UTC));
        assert!(trait_matches(
            &json!("Li Lei"),
            &TraitOp::Contains("li".into()),
            0,
            TimeZone::UTC
        ));
    }

    #[test]
    fn buckets_spread_evenly() {
        let mut counts = [0u32; 100];
        for id in 1..=100_000 {
            counts[bucket_of(id) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
