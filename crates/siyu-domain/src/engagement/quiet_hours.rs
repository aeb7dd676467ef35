//! Quiet hours (免打扰时段): where siyu itself picks the moment a message reaches a
//! person — the sandbox channel now, e-mail and SMS later — and when it reminds members
//! of their mass-send tasks, it waits out the tenant's quiet hours, read in the tenant's
//! time zone. A WeCom mass send is not held: each member picks the moment they confirm.
//!
//! Off until a tenant sets them, so that nothing is held by surprise.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::DomainError;
use crate::time::TimeZone;

/// The tenant setting they are kept under.
pub const SETTING_KEY: &str = "quiet_hours";

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A tenant's quiet hours: from `start` to `end`, local time (past midnight when `end`
/// is earlier than `start`: 21:00 to 09:00 is the night).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub enabled: bool,
    /// `HH:MM`, 24-hour.
    #[schema(example = "21:00")]
    pub start: String,
    /// `HH:MM`, 24-hour.
    #[schema(example = "09:00")]
    pub end: String,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            enabled: false,
            start: "21:00".into(),
            end: "09:00".into(),
        }
    }
}

/// Minutes past midnight of `HH:MM`.
fn minutes(field: &str, text: &str) -> Result<i64, DomainError> {
    let bad = || DomainError::invalid(field, "must be a time as HH:MM (00:00 to 23:59)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl QuietHours {
    /// Checks the times (422 naming the field).
    pub fn check(self) -> Result<Self, DomainError> {
        let (start, end) = (minutes("start", &self.start)?, minutes("end", &self.end)?);
        if start == end {
            return Err(DomainError::invalid(
                "end",
                "must differ from start (quiet hours of no length, or of the whole day)",
            ));
        }
        Ok(Self {
            enabled: self.enabled,
            start: self.start.trim().to_owned(),
            end: self.end.trim().to_owned(),
        })
    }

    /// When the quiet hours that `at` falls in end; none when `at` is outside them or
    /// they are off.
    pub fn resume_at(&self, zone: TimeZone, at: i64) -> Option<i64> {
        if !self.enabled {
            return None;
        }
        let (start, end) = (
            minutes("start", &self.start).ok()?,
            minutes("end", &self.end).ok()?,
        );
        let now = zone.local_ms(at).rem_euclid(DAY_MS) / MINUTE_MS;
        let quiet = if start < end {
            now >= start && now < end
        } else {
            now >= start || now < end
        };
        if !quiet {
            return None;
        }
        let today = zone.day_of(at);
        let day = if now < end { today } else { today + 1 };
        Some(zone.start_of_day(day) + end * MINUTE_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(start: &str, end: &str) -> QuietHours {
        QuietHours {
            enabled: true,
            start: start.into(),
            end: end.into(),
        }
        .check()
        .unwrap()
    }

    /// 2026-12-07 at hh:mm in Shanghai (UTC+8), in ms.
    fn shanghai(h: i64, m: i64) -> i64 {
        let midnight_utc = crate::time::days_from_civil(2026, 12, 7).unwrap() * DAY_MS;
        midnight_utc - 8 * 3_600_000 + (h * 60 + m) * MINUTE_MS
    }

    #[test]
    fn a_night_is_waited_out_until_its_morning_in_the_tenants_zone() {
        let zone = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
        let night = hours("21:00", "09:00");
        assert_eq!(
            night.resume_at(zone, shanghai(22, 30)),
            Some(shanghai(24 + 9, 0))
        );
        assert_eq!(night.resume_at(zone, shanghai(3, 0)), Some(shanghai(9, 0)));
        assert_eq!(
            night.resume_at(zone, shanghai(21, 0)),
            Some(shanghai(24 + 9, 0))
        );
        assert_eq!(night.resume_at(zone, shanghai(9, 0)), None);
        assert_eq!(night.resume_at(zone, shanghai(14, 0)), None);
        // the same instant in UTC is another hour
        assert_eq!(night.resume_at(TimeZone::UTC, shanghai(22, 30)), None);
    }

    #[test]
    fn hours_within_a_day_and_hours_off() {
        let zone = TimeZone::parse("time_zone", "Asia/Shanghai").unwrap();
        let lunch = hours("12:00", "13:30");
        assert_eq!(
            lunch.resume_at(zone, shanghai(12, 15)),
            Some(shanghai(13, 30))
        );
        assert_eq!(lunch.resume_at(zone, shanghai(13, 30)), None);
        assert_eq!(lunch.resume_at(zone, shanghai(11, 59)), None);
        let off = QuietHours {
            enabled: false,
            ..lunch
        };
        assert_eq!(off.resume_at(zone, shanghai(12, 15)), None);
    }

    #[test]
    fn times_that_are_no_times_are_refused() {
        for (start, end, field) in [
            ("25:00", "09:00", "start"),
            ("21:00", "9:00", "end"),
            ("21:60", "09:00", "start"),
            ("noon", "09:00", "start"),
            ("21:00", "21:00", "end"),
        ] {
            let refused = QuietHours {
                enabled: true,
                start: start.into(),
                end: end.into(),
            }
            .check()
            .unwrap_err();
            match refused {
                DomainError::Invalid(f) => assert_eq!(f.field, field, "{start}–{end}"),
                other => panic!("{other}"),
            }
        }
    }
}
