//! Acquisition reports: what codes brought over a date range, per code, channel
//! account, platform, unit (a store and, summed up its subtree, a region or brand) or
//! member, and day by day.
//!
//! The figures of a range, from the day-by-day figures the store keeps:
//! - **scans**: visits of codes' landing pages by people (crawler fetches apart);
//! - **adds**: relations made through codes; **deleted by customer** / **by member**:
//!   relations codes brought that were ended in the range (a transfer is not a loss);
//!   **net adds**: adds less both deletions;
//! - **customers**: the customers a code brought first (first touch: the first code an
//!   add of theirs came through), on the day of that add; **first orders**: those of
//!   them who ordered within [`ORDER_WINDOW_DAYS`] after the add, and **GMV** what they
//!   ordered in that window (net of refunds, in the tenant's currency, as the
//!   customer's order total counts it), also on the day of the add (a cohort: what the
//!   people brought in the range went on to buy).
//!
//! Adds whose `state` no live code has are reported as the unknown code (id 0), never
//! dropped.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::DomainError;

/// How long after an add its customer's orders count as the code's.
pub const ORDER_WINDOW_DAYS: i64 = 30;
/// The longest range one report covers.
pub const REPORT_MAX_DAYS: i64 = 731;
/// The id under which adds of an unknown or deleted code's state are reported.
pub const UNKNOWN_CODE: i64 = 0;

/// What a report is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportBy {
    Code,
    Account,
    Platform,
    /// Units: each unit's figures sum its codes and those of the units below it.
    Unit,
    Member,
}

/// The figures of one group, one day or the whole range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct AcquisitionFigures {
    pub scans: i64,
    /// Link-preview crawlers' fetches of landing pages (not scans).
    pub crawler_fetches: i64,
    pub adds: i64,
    pub deleted_by_customer: i64,
    pub deleted_by_member: i64,
    /// Adds less deletions.
    pub net_adds: i64,
    /// Customers brought first by the code (first touch).
    pub customers: i64,
    /// Of those, how many ordered within the window after their add.
    pub first_orders: i64,
    /// What they ordered in that window, in major units of the tenant's currency.
    #[serde(serialize_with = "crate::order::serialize_major")]
    #[schema(value_type = f64)]
    pub gmv: i64,
}

impl AcquisitionFigures {
    /// Adds another group's or day's figures to these.
    pub fn add(&mut self, other: &AcquisitionFigures) {
        self.scans += other.scans;
        self.crawler_fetches += other.crawler_fetches;
        self.adds += other.adds;
        self.deleted_by_customer += other.deleted_by_customer;
        self.deleted_by_member += other.deleted_by_member;
        self.customers += other.customers;
        self.first_orders += other.first_orders;
        self.gmv += other.gmv;
        self.net_adds = self.adds - self.deleted_by_customer - self.deleted_by_member;
    }

    /// The same figures taken away (what undoes these).
    pub fn negated(self) -> Self {
        AcquisitionFigures {
            scans: -self.scans,
            crawler_fetches: -self.crawler_fetches,
            adds: -self.adds,
            deleted_by_customer: -self.deleted_by_customer,
            deleted_by_member: -self.deleted_by_member,
            net_adds: -self.net_adds,
            customers: -self.customers,
            first_orders: -self.first_orders,
            gmv: -self.gmv,
        }
    }

    /// The figures with `net_adds` worked out.
    pub fn settled(mut self) -> Self {
        self.net_adds = self.adds - self.deleted_by_customer - self.deleted_by_member;
        self
    }
}

/// One group of a report: what it is, and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReportRow {
    /// The code's, account's, unit's or staff member's id; none for a platform.
    pub id: Option<i64>,
    /// Its name (a platform's wire name; "unknown code" for code 0).
    pub name: String,
    #[serde(flatten)]
    pub figures: AcquisitionFigures,
}

/// One day of a report's trend.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReportDay {
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    #[serde(flatten)]
    pub figures: AcquisitionFigures,
}

/// An acquisition report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AcquisitionReport {
    pub from: String,
    pub to: String,
    pub by: ReportBy,
    /// Days after an add within which its customer's orders count.
    pub order_window_days: i64,
    /// The groups, most adds first.
    pub rows: Vec<ReportRow>,
    /// Every code within the caller's reach together.
    pub total: AcquisitionFigures,
    /// Day by day, every day of the range.
    pub daily: Vec<ReportDay>,
}

/// A report's range and grouping, as asked.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The first day, `YYYY-MM-DD` (the tenant's local date).
    pub from: String,
    /// The last day, included.
    pub to: String,
    /// `code` (the default), `account`, `platform`, `unit` or `member`.
    pub by: Option<ReportBy>,
}

/// A report's range as local day numbers (days since 1970-01-01), both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRange {
    pub first_day: i64,
    pub last_day: i64,
}

/// A range of local dates, as asked of reports that have no grouping (links, group
/// codes).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// The first day, `YYYY-MM-DD` (the tenant's local date).
    pub from: String,
    /// The last day, included (at most 731 days after `from`).
    pub to: String,
}

impl RangeQuery {
    /// The range, checked (see [`ReportQuery::range`]).
    pub fn range(&self) -> Result<ReportRange, DomainError> {
        checked_range(&self.from, &self.to)
    }
}

impl ReportQuery {
    /// The range, checked: real dates, in order, at most [`REPORT_MAX_DAYS`] days.
    pub fn range(&self) -> Result<ReportRange, DomainError> {
        checked_range(&self.from, &self.to)
    }
}

fn checked_range(from: &str, to: &str) -> Result<ReportRange, DomainError> {
    let first_day = day_number("from", from)?;
    let last_day = day_number("to", to)?;
    if last_day < first_day {
        return Err(DomainError::invalid("to", "is before from"));
    }
    if last_day - first_day + 1 > REPORT_MAX_DAYS {
        return Err(DomainError::invalid(
            "to",
            format!("a report covers at most {REPORT_MAX_DAYS} days"),
        ));
    }
    Ok(ReportRange {
        first_day,
        last_day,
    })
}

/// The day number of a `YYYY-MM-DD` date.
fn day_number(field: &str, date: &str) -> Result<i64, DomainError> {
    let parsed = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_err(|_| DomainError::invalid(field, "a date as YYYY-MM-DD"))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    Ok((parsed - epoch).num_days())
}

/// The `YYYY-MM-DD` date of a day number.
pub fn date_of_day(day: i64) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    (epoch + chrono::Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}

/// The month of a day number: months since 1970-01 (January 1970 is 0).
pub fn month_of_day(day: i64) -> i64 {
    use chrono::Datelike;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    let date = epoch + chrono::Duration::days(day);
    (i64::from(date.year()) - 1970) * 12 + i64::from(date.month0())
}

/// The day number of the first day of a month (months since 1970-01).
pub fn first_day_of_month(month: i64) -> i64 {
    let year = 1970 + month.div_euclid(12);
    let month0 = month.rem_euclid(12);
    let first = chrono::NaiveDate::from_ymd_opt(year as i32, month0 as u32 + 1, 1).expect("a date");
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    (first - epoch).num_days()
}

/// A range split for the month table: the whole months within it (first and last,
/// none when the range holds no whole month) and the days outside them (at most two
/// runs, at its ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthSplit {
    pub months: Option<(i64, i64)>,
    pub days: Vec<(i64, i64)>,
}

impl ReportRange {
    pub fn split_by_month(self) -> MonthSplit {
        let first_month = month_of_day(self.first_day);
        // the first whole month starts on or after the first day
        let first_whole = if first_day_of_month(first_month) == self.first_day {
            first_month
        } else {
            first_month + 1
        };
        // the last whole month ends on or before the last day
        let last_month = month_of_day(self.last_day);
        let last_whole = if first_day_of_month(last_month + 1) - 1 == self.last_day {
            last_month
        } else {
            last_month - 1
        };
        if first_whole > last_whole {
            return MonthSplit {
                months: None,
                days: vec![(self.first_day, self.last_day)],
            };
        }
        let mut days = Vec::new();
        let whole_from = first_day_of_month(first_whole);
        let whole_to = first_day_of_month(last_whole + 1) - 1;
        if self.first_day < whole_from {
            days.push((self.first_day, whole_from - 1));
        }
        if whole_to < self.last_day {
            days.push((whole_to + 1, self.last_day));
        }
        MonthSplit {
            months: Some((first_whole, last_whole)),
            days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: &str, to: &str) -> ReportQuery {
        ReportQuery {
            from: from.into(),
            to: to.into(),
            by: None,
        }
    }

    #[test]
    fn ranges_are_real_dates_in_order_and_not_too_long() {
        let range = query("2026-01-01", "2026-12-31").range().unwrap();
        assert_eq!(range.last_day - range.first_day, 364);
        assert_eq!(date_of_day(range.first_day), "2026-01-01");
        assert_eq!(date_of_day(range.last_day), "2026-12-31");
        assert!(query("2026-02-30", "2026-03-01").range().is_err());
        assert!(query("2026-03-02", "2026-03-01").range().is_err());
        assert!(query("2020-01-01", "2026-01-01").range().is_err());
        assert!(query("yesterday", "2026-01-01").range().is_err());
        assert_eq!(
            query("2026-03-01", "2026-03-01").range().unwrap().first_day,
            20513
        );
    }

    #[test]
    fn figures_add_up_and_net_adds_follow() {
        let mut total = AcquisitionFigures::default();
        let day = AcquisitionFigures {
            adds: 5,
            deleted_by_customer: 1,
            deleted_by_member: 1,
            gmv: 1999,
            ..Default::default()
        };
        total.add(&day);
        total.add(&day);
        assert_eq!(total.adds, 10);
        assert_eq!(total.net_adds, 6);
        assert_eq!(total.gmv, 3998);
        assert_eq!(day.settled().net_adds, 3);
        total.add(&day.negated());
        assert_eq!(total.adds, 5);
        assert_eq!(total.net_adds, 3);
        assert_eq!(total.gmv, 1999);
    }

    #[test]
    fn ranges_split_into_whole_months_and_the_days_at_their_ends() {
        let day = |d: &str| query(d, d).range().unwrap().first_day;
        assert_eq!(month_of_day(0), 0);
        assert_eq!(month_of_day(day("2025-11-08")), 670);
        assert_eq!(first_day_of_month(670), day("2025-11-01"));
        assert_eq!(first_day_of_month(11), day("1970-12-01"));
        let split = query("2025-11-08", "2026-12-06")
            .range()
            .unwrap()
            .split_by_month();
        assert_eq!(split.months, Some((671, 682)));
        assert_eq!(
            split.days,
            vec![
                (day("2025-11-08"), day("2025-11-30")),
                (day("2026-12-01"), day("2026-12-06"))
            ]
        );
        let whole = query("2026-01-01", "2026-02-28")
            .range()
            .unwrap()
            .split_by_month();
        assert_eq!(whole.months, Some((672, 673)));
        assert!(whole.days.is_empty());
        let inside = query("2026-03-02", "2026-03-30")
            .range()
            .unwrap()
            .split_by_month();
        assert_eq!(inside.months, None);
        assert_eq!(inside.days, vec![(day("2026-03-02"), day("2026-03-30"))]);
        let across = query("2026-03-31", "2026-04-01")
            .range()
            .unwrap()
            .split_by_month();
        assert_eq!(across.months, None);
        // every day of a range is counted once, in a month or a run of days
        for (from, to) in [("2024-02-10", "2025-03-01"), ("2025-12-31", "2026-01-31")] {
            let range = query(from, to).range().unwrap();
            let split = range.split_by_month();
            let mut covered: Vec<i64> = split.days.iter().flat_map(|(a, b)| *a..=*b).collect();
            if let Some((a, b)) = split.months {
                covered.extend(first_day_of_month(a)..first_day_of_month(b + 1));
            }
            covered.sort();
            assert_eq!(
                covered,
                (range.first_day..=range.last_day).collect::<Vec<_>>()
            );
        }
    }
}
