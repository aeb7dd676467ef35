//! Times. siyu stores every time as milliseconds since the Unix epoch (portable across
//! both databases, cheap to compare) and shows them in the API as RFC 3339 UTC strings
//! (`2026-11-23T19:54:04.537Z`).

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Serializer;

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds (times beyond chrono's
/// range of ±262,000 years are written at its ends).
pub fn format_rfc3339(ms: i64) -> String {
    let time = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Days from 0001-01-01 (chrono's count) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i64 = 719_163;

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar
/// (chrono's); days beyond its range are its first or last day.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let ce = (days + UNIX_EPOCH_FROM_CE).clamp(
        i64::from(NaiveDate::MIN.num_days_from_ce()),
        i64::from(NaiveDate::MAX.num_days_from_ce()),
    ) as i32;
    let date = NaiveDate::from_num_days_from_ce_opt(ce).expect("clamped to chrono's range");
    (i64::from(date.year()), date.month(), date.day())
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar, or `None` for
/// one that does not exist (2026-02-30) or lies beyond chrono's range.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(i64::from(date.num_days_from_ce()) - UNIX_EPOCH_FROM_CE)
}

/// A tenant's time zone: an IANA zone (`Asia/Shanghai`, `Europe/Berlin`,
/// `America/Los_Angeles`) from the time-zone database `chrono-tz` carries. A tenant's
/// "day" (per-day event counts, `last 30d`, the dashboard's dates) starts at midnight
/// there, daylight saving included: a day in a zone that observes it is 23 or 25 hours
/// long twice a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(Tz::UTC);

    /// The zone of this IANA name, or a field error.
    pub fn parse(field: &str, name: &str) -> Result<Self, crate::DomainError> {
        name.trim().parse::<Tz>().map(TimeZone).map_err(|_| {
            crate::DomainError::invalid(
                field,
                "must be an IANA time zone, such as Asia/Shanghai or Europe/Berlin",
            )
        })
    }

    /// The zone a stored name stands for (UTC for one the time-zone database no longer
    /// knows).
    pub fn of_stored(name: &str) -> Self {
        Self::parse("time_zone", name).unwrap_or(Self::UTC)
    }

    /// The zone as `chrono-tz` has it (for computing wall-clock times in it).
    pub fn tz(self) -> Tz {
        self.0
    }

    /// Its IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// How far the zone's clocks are ahead of UTC at an instant, in milliseconds.
    pub fn offset_ms_at(self, ms: i64) -> i64 {
        match DateTime::<Utc>::from_timestamp_millis(ms) {
            Some(utc) => {
                let offset = self.0.offset_from_utc_datetime(&utc.naive_utc());
                i64::from(offset.fix().local_minus_utc()) * 1000
            }
            None => 0,
        }
    }

    /// The instant as the zone's wall clock reads it, in milliseconds since
    /// 1970-01-01 00:00 local (what the audience layer calls local time).
    pub fn local_ms(self, ms: i64) -> i64 {
        ms + self.offset_ms_at(ms)
    }

    /// The number of the local day (days since 1970-01-01) an instant falls on.
    pub fn day_of(self, ms: i64) -> i64 {
        self.local_ms(ms).div_euclid(DAY_MS)
    }

    /// The instant a local day begins (its first moment, should midnight be skipped by
    /// a daylight-saving change).
    pub fn start_of_day(self, day: i64) -> i64 {
        // the offset at local midnight read as UTC is at most a day off; the offset in
        // force just before the wall clock reaches that day decides
        let naive = day * DAY_MS;
        let guess = naive - self.offset_ms_at(naive);
        let start = naive - self.offset_ms_at(guess);
        if self.day_of(start) < day {
            // midnight was skipped: the day starts when its first hour does
            start + (DAY_MS - start.rem_euclid(DAY_MS)).min(3_600_000)
        } else {
            start
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// `#[serde(serialize_with = "crate::time::rfc3339")]` for an `i64` of epoch ms.
pub fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*ms))
}

/// The same for an `Option<i64>`; `None` stays null.
pub fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_day_starts_at_its_midnight() {
        let shanghai = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
        // 2026-11-10T16:30Z is 00:30 on 双11 in Shanghai, still the 10th in UTC
        let at = 1_794_328_200_000;
        assert_eq!(format_rfc3339(at), "2026-11-10T16:30:00.000Z");
        assert_eq!(TimeZone::UTC.day_of(at), 20_767);
        assert_eq!(shanghai.day_of(at), 20_768);
        assert_eq!(shanghai.day_of(at - 3_600_000), 20_767);
        assert!(TimeZone::parse("time_zone", "Mars/Olympus").is_err());
        assert_eq!(TimeZone::of_stored("Mars/Olympus"), TimeZone::UTC);
        assert_eq!(shanghai.name(), "Asia/Shanghai");
        assert_eq!(shanghai.start_of_day(20_768), at - 30 * 60_000);
    }

    #[test]
    fn days_follow_daylight_saving() {
        let berlin = TimeZone::parse("time_zone", "Europe/Berlin").unwrap();
        // 2026-03-29: clocks go from 02:00 to 03:00 (CET → CEST); the day is 23 hours
        let day = days_from_civil(2026, 3, 29).unwrap();
        let start = berlin.start_of_day(day);
        assert_eq!(format_rfc3339(start), "2026-03-28T23:00:00.000Z");
        let next = berlin.start_of_day(day + 1);
        assert_eq!(format_rfc3339(next), "2026-03-29T22:00:00.000Z");
        assert_eq!(next - start, 23 * 3_600_000);
        assert_eq!(berlin.day_of(next - 1), day);
        assert_eq!(berlin.day_of(next), day + 1);
        // 23:30 local on 1 July (CEST, +2) is still that day, though 21:30 UTC
        let july = days_from_civil(2026, 7, 1).unwrap();
        let late = berlin.start_of_day(july) + 23 * 3_600_000 + 30 * 60_000;
        assert_eq!(format_rfc3339(late), "2026-07-01T21:30:00.000Z");
        assert_eq!(berlin.day_of(late), july);
        // Los Angeles in winter, 8 hours behind
        let la = TimeZone::parse("time_zone", "America/Los_Angeles").unwrap();
        let jan = days_from_civil(2026, 1, 15).unwrap();
        assert_eq!(
            format_rfc3339(la.start_of_day(jan)),
            "2026-01-15T08:00:00.000Z"
        );
    }

    #[test]
    fn the_calendar_is_chronos() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2026, 2, 30), None);
        assert_eq!(
            civil_from_days(days_from_civil(2024, 2, 29).unwrap()),
            (2024, 2, 29)
        );
        for day in [-800_000, -1, 0, 59, 20_786, 2_000_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), Some(day));
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_795_463_644_537),
            "2026-11-23T19:54:04.537Z"
        );
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
