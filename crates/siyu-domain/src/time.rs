//! Times. siyu stores every time as milliseconds since the Unix epoch (portable across
//! both databases, cheap to compare) and shows them in the API as RFC 3339 UTC strings
//! (`2026-11-23T19:54:04.537Z`).

use serde::Serializer;

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day), after Howard Hinnant's algorithm.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time zones a tenant may keep its days in: the zones of Asia-Pacific markets, none
/// of which observes daylight saving, so each is a fixed offset from UTC (minutes). A
/// tenant's "day" (per-day event counts, `last 30d`, the dashboard's dates) starts at
/// midnight in its zone. Zones with daylight saving need a time-zone database and are
/// not offered yet.
pub const TIME_ZONES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("Asia/Shanghai", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Manila", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Bangkok", 420),
    ("Asia/Ho_Chi_Minh", 420),
    ("Asia/Jakarta", 420),
    ("Asia/Kolkata", 330),
    ("Asia/Dubai", 240),
];

/// A time zone of [`TIME_ZONES`]: its name and offset from UTC in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone {
    pub name: &'static str,
    pub offset_ms: i64,
}

impl TimeZone {
    pub const UTC: TimeZone = TimeZone {
        name: "UTC",
        offset_ms: 0,
    };

    /// The zone of this name, or a field error listing the zones offered.
    pub fn parse(field: &str, name: &str) -> Result<Self, crate::DomainError> {
        TIME_ZONES
            .iter()
            .find(|(n, _)| *n == name.trim())
            .map(|(name, minutes)| TimeZone {
                name,
                offset_ms: i64::from(*minutes) * 60_000,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = TIME_ZONES.iter().map(|(n, _)| *n).collect();
                crate::DomainError::invalid(field, format!("must be one of {}", names.join(", ")))
            })
    }

    /// The zone a stored name stands for (UTC for one no longer offered).
    pub fn of_stored(name: &str) -> Self {
        Self::parse("time_zone", name).unwrap_or(Self::UTC)
    }

    /// The number of the local day (days since 1970-01-01) an instant falls on.
    pub fn day_of(self, ms: i64) -> i64 {
        (ms + self.offset_ms).div_euclid(86_400_000)
    }
}

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
        assert!(TimeZone::parse("time_zone", "Europe/Berlin").is_err());
        assert_eq!(TimeZone::of_stored("Mars/Olympus"), TimeZone::UTC);
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
