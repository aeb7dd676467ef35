//! Recurring schedules: a cron expression (five fields: minute, hour, day of month,
//! month, day of week, with lists, ranges, steps and names) read in a tenant's time
//! zone, so that "every day at 09:00" is nine in the morning where the brand is, also
//! across daylight-saving changes. Parsing and evaluation are `croner`'s (a maintained,
//! standards-following cron crate); what is siyu's is the refusal of what a user would
//! not mean (seconds, years) and the instants in milliseconds every stored time uses.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;

use crate::DomainError;
use crate::time::TimeZone;

/// A checked cron expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    /// Reads a five-field cron expression; anything else is a field error naming
    /// `field`.
    pub fn parse(field: &str, text: &str) -> Result<Schedule, DomainError> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = text.split(' ').filter(|f| !f.is_empty()).count();
        if fields != 5 {
            return Err(DomainError::invalid(
                field,
                "a cron expression has five fields: minute hour day-of-month month \
                 day-of-week (such as \"0 9 * * 1-5\")",
            ));
        }
        let cron = Cron::from_str(&text)
            .map_err(|e| DomainError::invalid(field, format!("not a cron expression: {e}")))?;
        Ok(Schedule { text, cron })
    }

    /// The expression as given (spaces normalised).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first run strictly after `after_ms`, the expression read on the zone's wall
    /// clock; `None` when it never runs again (such as 30 February).
    pub fn next_after(&self, after_ms: i64, zone: TimeZone) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?.with_timezone(&zone.tz());
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|next| next.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::parse("zone", name).unwrap()
    }

    #[test]
    fn nine_in_the_morning_is_nine_where_the_tenant_is() {
        let daily = Schedule::parse("schedule", "0 9 * * *").unwrap();
        // 08:00 in Shanghai: the same day's nine o'clock, 01:00 UTC
        assert_eq!(
            daily.next_after(ms("2026-12-05T00:00:00Z"), zone("Asia/Shanghai")),
            Some(ms("2026-12-05T01:00:00Z"))
        );
        // strictly after: at nine exactly, the next day's
        assert_eq!(
            daily.next_after(ms("2026-12-05T01:00:00Z"), zone("Asia/Shanghai")),
            Some(ms("2026-12-06T01:00:00Z"))
        );
        assert_eq!(
            daily.next_after(ms("2026-12-05T00:00:00Z"), TimeZone::UTC),
            Some(ms("2026-12-05T09:00:00Z"))
        );
    }

    #[test]
    fn weekdays_and_steps_follow_the_local_calendar() {
        let weekdays = Schedule::parse("schedule", " 30  18 * *  MON-FRI ").unwrap();
        assert_eq!(weekdays.as_str(), "30 18 * * MON-FRI");
        // Friday 2026-12-04 19:00 in Shanghai: the next is Monday 18:30
        assert_eq!(
            weekdays.next_after(ms("2026-12-04T11:00:00Z"), zone("Asia/Shanghai")),
            Some(ms("2026-12-07T10:30:00Z"))
        );
        let quarter = Schedule::parse("schedule", "*/15 * * * *").unwrap();
        assert_eq!(
            quarter.next_after(ms("2026-12-05T00:07:00Z"), TimeZone::UTC),
            Some(ms("2026-12-05T00:15:00Z"))
        );
    }

    #[test]
    fn a_daily_run_happens_once_a_day_across_daylight_saving_changes() {
        let new_york = zone("America/New_York");
        let daily = Schedule::parse("schedule", "0 9 * * *").unwrap();
        // spring forward (8 March 2026) and fall back (1 November 2026): still 09:00
        // local, so 13:00 or 14:00 UTC
        assert_eq!(
            daily.next_after(ms("2026-03-08T00:00:00Z"), new_york),
            Some(ms("2026-03-08T13:00:00Z"))
        );
        assert_eq!(
            daily.next_after(ms("2026-11-01T00:00:00Z"), new_york),
            Some(ms("2026-11-01T14:00:00Z"))
        );
        // a run every day of the year, never two on one day, none skipped
        let mut at = ms("2026-01-01T00:00:00Z");
        let mut days = std::collections::BTreeSet::new();
        for _ in 0..365 {
            at = daily.next_after(at, new_york).unwrap();
            assert!(days.insert(new_york.day_of(at)), "two runs on one day");
        }
        assert_eq!(days.len(), 365);
        assert_eq!(
            days.last().unwrap() - days.first().unwrap(),
            364,
            "consecutive days"
        );
    }

    #[test]
    fn what_is_not_a_five_field_expression_is_refused_naming_the_field() {
        for bad in [
            "",
            "* * * *",
            "0 0 9 * * *",
            "61 * * * *",
            "0 25 * * *",
            "a b c d e",
        ] {
            match Schedule::parse("schedule", bad) {
                Err(DomainError::Invalid(e)) => assert_eq!(e.field, "schedule", "{bad:?}"),
                other => panic!("{bad:?} read as {other:?}"),
            }
        }
    }

    #[test]
    fn a_date_that_never_comes_has_no_next_run() {
        let never = Schedule::parse("schedule", "0 0 30 2 *").unwrap();
        assert_eq!(
            never.next_after(ms("2026-01-01T00:00:00Z"), TimeZone::UTC),
            None
        );
    }
}
