//! Acquisition reports read from the day-by-day figures (`rollup`): per code, channel
//! account, platform, unit or member over a range of local days, and the daily trend.
//! Two grouped sums over at most (codes × days) small rows, then the grouping in Rust
//! (accounts, platforms and the unit tree are the tenant's reference data, small).
//!
//! Within the caller's reach: the codes they may see (made by or routing to staff they
//! reach; a code deleted keeps its creator) and, by member, the staff they reach; the
//! unknown code (adds whose state no live code had) is the whole tenant's, so only a
//! caller who reaches the whole tenant sees it.

use std::collections::{BTreeMap, HashMap};

use siyu_domain::acquisition::report::{
    AcquisitionFigures, AcquisitionReport, ORDER_WINDOW_DAYS, ReportBy, ReportDay, ReportRange,
    ReportRow, UNKNOWN_CODE, date_of_day,
};

use crate::db::{id_list, on_db};
use crate::{Result, TenantScope};

const FIGURES: &str = "CAST(SUM(scans) AS BIGINT) AS scans, CAST(SUM(crawler_fetches) AS BIGINT) AS crawler_fetches, \
     CAST(SUM(adds) AS BIGINT) AS adds, CAST(SUM(deleted_by_customer) AS BIGINT) AS deleted_by_customer, \
     CAST(SUM(deleted_by_member) AS BIGINT) AS deleted_by_member, CAST(SUM(customers) AS BIGINT) AS customers, \
     CAST(SUM(first_orders) AS BIGINT) AS first_orders, CAST(SUM(gmv) AS BIGINT) AS gmv";
#[derive(sqlx::FromRow)]
struct SumRow {
    key: i64,
    scans: Option<i64>,
    crawler_fetches: Option<i64>,
    adds: Option<i64>,
    deleted_by_customer: Option<i64>,
    deleted_by_member: Option<i64>,
    customers: Option<i64>,
    first_orders: Option<i64>,
    gmv: Option<i64>,
}

impl SumRow {
    fn figures(&self) -> AcquisitionFigures {
        AcquisitionFigures {
            scans: self.scans.unwrap_or(0),
            crawler_fetches: self.crawler_fetches.unwrap_or(0),
            adds: self.adds.unwrap_or(0),
            deleted_by_customer: self.deleted_by_customer.unwrap_or(0),
            deleted_by_member: self.deleted_by_member.unwrap_or(0),
            net_adds: 0,
            customers: self.customers.unwrap_or(0),
            first_orders: self.first_orders.unwrap_or(0),
            gmv: self.gmv.unwrap_or(0),
        }
        .settled()
    }
}

#[derive(sqlx::FromRow)]
struct CodeInfo {
    id: i64,
    name: String,
    account_id: Option<i64>,
    unit_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Named {
    id: i64,
    name: String,
    /// A unit's parent, an account's platform (as text), a staff member's nothing.
    parent_id: Option<i64>,
    platform: Option<String>,
}

impl TenantScope<'_> {
    /// The acquisition report over `range`, grouped `by` (see the module's
    /// documentation).
    pub async fn acquisition_report(
        &self,
        range: ReportRange,
        by: ReportBy,
    ) -> Result<AcquisitionReport> {
        let tenant_wide = self.reach.is_tenant_wide();
        let (sums, daily) = if by == ReportBy::Member {
            self.member_sums(range).await?
        } else {
            self.code_sums(range, tenant_wide).await?
        };
        let total = sums
            .values()
            .fold(AcquisitionFigures::default(), |mut t, f| {
                t.add(f);
                t
            });
        let mut rows = match by {
            ReportBy::Member => self.member_rows(&sums).await?,
            _ => self.grouped_rows(&sums, by).await?,
        };
        rows.sort_by(|a, b| {
            b.figures
                .adds
                .cmp(&a.figures.adds)
                .then(b.figures.scans.cmp(&a.figures.scans))
                .then(a.name.cmp(&b.name))
        });
        let daily = (range.first_day..=range.last_day)
            .map(|day| ReportDay {
                date: date_of_day(day),
                figures: daily.get(&day).copied().unwrap_or_default(),
            })
            .collect();
        Ok(AcquisitionReport {
            from: date_of_day(range.first_day),
            to: date_of_day(range.last_day),
            by,
            order_window_days: ORDER_WINDOW_DAYS,
            rows,
            total,
            daily,
        })
    }

    /// The codes within reach (deleted ones included: their history stays).
    async fn reachable_codes(&self) -> Result<Vec<CodeInfo>> {
        let sql = format!(
            "SELECT c.id, c.name, c.account_id, c.unit_id FROM channel_codes c \
             WHERE c.tenant_id = $1{}",
            self.code_reach_clause()
        );
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        }))
    }

    /// Each reachable code's figures, and the reachable codes' figures by day.
    async fn code_sums(
        &self,
        range: ReportRange,
        tenant_wide: bool,
    ) -> Result<(
        HashMap<i64, AcquisitionFigures>,
        HashMap<i64, AcquisitionFigures>,
    )> {
        if tenant_wide {
            return self.tenant_code_sums(range).await;
        }
        let ids: Vec<i64> = self.reachable_codes().await?.iter().map(|c| c.id).collect();
        if ids.is_empty() {
            return Ok((HashMap::new(), HashMap::new()));
        }
        let only = format!(" AND code_id IN ({})", id_list(&ids));
        let by_code = format!(
            "SELECT code_id AS key, {FIGURES} FROM channel_code_days WHERE tenant_id = $1 \
             AND day >= $2 AND day <= $3{only} GROUP BY code_id"
        );
        let by_day = format!(
            "SELECT day AS key, {FIGURES} FROM channel_code_days WHERE tenant_id = $1 \
             AND day >= $2 AND day <= $3{only} GROUP BY day"
        );
        let sums = self.sums(&by_code, range.first_day, range.last_day).await?;
        let daily = self.sums(&by_day, range.first_day, range.last_day).await?;
        Ok((sums, daily))
    }

    /// Every code's figures and the tenant's by day: the range's whole months from the
    /// month rows and only the days at its ends from the day rows; the days from the
    /// tenant's day rows (a year of a thousand codes: 12,000 + at most 62,000 rows
    /// summed, and 365 read, instead of 365,000 summed twice).
    async fn tenant_code_sums(
        &self,
        range: ReportRange,
    ) -> Result<(
        HashMap<i64, AcquisitionFigures>,
        HashMap<i64, AcquisitionFigures>,
    )> {
        let split = range.split_by_month();
        let mut sums: HashMap<i64, AcquisitionFigures> = HashMap::new();
        let mut parts = Vec::new();
        if let Some((first, last)) = split.months {
            let by_month = format!(
                "SELECT code_id AS key, {FIGURES} FROM channel_code_months WHERE tenant_id = $1 \
                 AND month >= $2 AND month <= $3 GROUP BY code_id"
            );
            parts.push(self.sums(&by_month, first, last).await?);
        }
        let by_code = format!(
            "SELECT code_id AS key, {FIGURES} FROM channel_code_days WHERE tenant_id = $1 \
             AND day >= $2 AND day <= $3 GROUP BY code_id"
        );
        for (first, last) in split.days {
            parts.push(self.sums(&by_code, first, last).await?);
        }
        for part in parts {
            for (code, figures) in part {
                sums.entry(code).or_default().add(&figures);
            }
        }
        let by_day = format!(
            "SELECT day AS key, {FIGURES} FROM channel_tenant_days WHERE tenant_id = $1 \
             AND day >= $2 AND day <= $3 GROUP BY day"
        );
        let daily = self.sums(&by_day, range.first_day, range.last_day).await?;
        Ok((sums, daily))
    }

    /// Each reachable staff member's figures, and theirs by day.
    async fn member_sums(
        &self,
        range: ReportRange,
    ) -> Result<(
        HashMap<i64, AcquisitionFigures>,
        HashMap<i64, AcquisitionFigures>,
    )> {
        let only = match self.reach.owners() {
            None => String::new(),
            Some([]) => return Ok((HashMap::new(), HashMap::new())),
            Some(owners) => format!(
                " AND staff_id IN ({})",
                id_list(&owners.iter().map(|s| s.0).collect::<Vec<_>>())
            ),
        };
        let by_member = format!(
            "SELECT staff_id AS key, {FIGURES} FROM channel_member_days \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3{only} GROUP BY staff_id"
        );
        let by_day = format!(
            "SELECT day AS key, {FIGURES} FROM channel_member_days \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3{only} GROUP BY day"
        );
        let sums = self
            .sums(&by_member, range.first_day, range.last_day)
            .await?;
        let daily = self.sums(&by_day, range.first_day, range.last_day).await?;
        Ok((sums, daily))
    }

    /// Figures by key of a grouped sum over days or months from `first` to `last`.
    async fn sums(
        &self,
        sql: &str,
        first: i64,
        last: i64,
    ) -> Result<HashMap<i64, AcquisitionFigures>> {
        let rows: Vec<SumRow> = on_db!(self.store, |db| {
            sqlx::query_as(sql)
                .bind(self.tenant.0)
                .bind(first)
                .bind(last)
                .fetch_all(db)
                .await?
        });
        Ok(rows.iter().map(|r| (r.key, r.figures())).collect())
    }

    async fn member_rows(&self, sums: &HashMap<i64, AcquisitionFigures>) -> Result<Vec<ReportRow>> {
        let staff: Vec<Named> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, name, CAST(NULL AS BIGINT) AS parent_id, CAST(NULL AS TEXT) AS platform FROM staff \
                 WHERE tenant_id = $1",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let names: HashMap<i64, String> = staff.into_iter().map(|s| (s.id, s.name)).collect();
        Ok(sums
            .iter()
            .map(|(id, figures)| ReportRow {
                id: Some(*id),
                name: names.get(id).cloned().unwrap_or_default(),
                figures: *figures,
            })
            .collect())
    }

    /// Rows by code, account, platform or unit, from each code's figures.
    async fn grouped_rows(
        &self,
        sums: &HashMap<i64, AcquisitionFigures>,
        by: ReportBy,
    ) -> Result<Vec<ReportRow>> {
        let codes: HashMap<i64, CodeInfo> = self
            .reachable_codes()
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        // (group id, group name) of each code with figures
        let mut groups: BTreeMap<(Option<i64>, String), AcquisitionFigures> = BTreeMap::new();
        let mut add = |key: (Option<i64>, String), figures: &AcquisitionFigures| {
            groups.entry(key).or_default().add(figures);
        };
        match by {
            ReportBy::Code | ReportBy::Member => {
                for (id, figures) in sums {
                    let name = match codes.get(id) {
                        Some(code) => code.name.clone(),
                        None if *id == UNKNOWN_CODE => "unknown code".to_owned(),
                        None => continue,
                    };
                    add((Some(*id), name), figures);
                }
            }
            ReportBy::Account | ReportBy::Platform => {
                let accounts: HashMap<i64, Named> = self
                    .named(
                        "SELECT id, name, CAST(NULL AS BIGINT) AS parent_id, platform FROM channel_accounts \
                         WHERE tenant_id = $1",
                    )
                    .await?;
                for (id, figures) in sums {
                    let account = codes
                        .get(id)
                        .and_then(|c| c.account_id)
                        .and_then(|a| accounts.get(&a));
                    let key = match (by, account) {
                        (ReportBy::Account, Some(a)) => (Some(a.id), a.name.clone()),
                        (ReportBy::Account, None) => (None, "no account".to_owned()),
                        (_, Some(a)) => (None, a.platform.clone().unwrap_or_default()),
                        (_, None) => (None, "no platform".to_owned()),
                    };
                    add(key, figures);
                }
            }
            ReportBy::Unit => {
                let units: HashMap<i64, Named> = self
                    .named(
                        "SELECT id, name, parent_id, CAST(NULL AS TEXT) AS platform FROM units \
                         WHERE tenant_id = $1",
                    )
                    .await?;
                for (id, figures) in sums {
                    let Some(mut unit) = codes.get(id).and_then(|c| c.unit_id) else {
                        add((None, "no unit".to_owned()), figures);
                        continue;
                    };
                    // the code's unit and every unit above it (a store, its region, …)
                    let mut seen = 0;
                    while let Some(u) = units.get(&unit) {
                        add((Some(u.id), u.name.clone()), figures);
                        seen += 1;
                        match u.parent_id {
                            Some(parent) if seen < 64 => unit = parent,
                            _ => break,
                        }
                    }
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(|((id, name), figures)| ReportRow { id, name, figures })
            .collect())
    }

    async fn named(&self, sql: &str) -> Result<HashMap<i64, Named>> {
        let rows: Vec<Named> = on_db!(self.store, |db| {
            sqlx::query_as(sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use siyu_domain::acquisition::report::ReportQuery;
    use siyu_domain::audit::Actor;
    use siyu_domain::tenancy::NewTenant;

    use super::*;
    use crate::acquisition::Rollup;
    use crate::testing::TestDatabase;

    /// The month rows and the tenant's day rows say what the code-day rows say, for any
    /// range: random figures on random days over fifteen months, summed by brute force.
    #[tokio::test]
    async fn month_and_tenant_rows_agree_with_the_day_rows() {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let (tenant, _) = store
            .create_tenant(
                &NewTenant::new("rollup", "admin@rollup.example.com", "rollup-pass-7a9").unwrap(),
                &Actor::cli(),
            )
            .await
            .unwrap();
        let scope = store.tenant(tenant.id);
        let day = |date: &str| {
            ReportQuery {
                from: date.into(),
                to: date.into(),
                by: None,
            }
            .range()
            .unwrap()
            .first_day
        };
        let (first, last) = (day("2025-09-20"), day("2026-12-10"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(32);
        let mut written: Vec<(i64, i64, AcquisitionFigures)> = Vec::new();
        // several transactions, so that rows are added to as well as made
        for _ in 0..4 {
            let mut rollup = Rollup::default();
            for _ in 0..300 {
                let (code, d) = (rng.gen_range(0..6), rng.gen_range(first..=last));
                let figures = AcquisitionFigures {
                    scans: rng.gen_range(0..5),
                    adds: rng.gen_range(0..9),
                    deleted_by_customer: rng.gen_range(0..2),
                    customers: rng.gen_range(0..3),
                    gmv: rng.gen_range(1..5_000),
                    ..Default::default()
                };
                written.push((code, d, figures));
                rollup.code(code, d, figures);
            }
            let mut tx = store.begin().await.unwrap();
            rollup.write(&mut tx, tenant.id).await.unwrap();
            tx.commit().await.unwrap();
        }
        for (from, to) in [
            ("2025-09-20", "2026-12-10"),
            ("2025-10-01", "2026-09-30"),
            ("2025-11-15", "2026-02-03"),
            ("2026-03-04", "2026-03-28"),
            ("2026-01-31", "2026-03-01"),
        ] {
            let range = ReportRange {
                first_day: day(from),
                last_day: day(to),
            };
            let (sums, daily) = scope.tenant_code_sums(range).await.unwrap();
            let mut expected: HashMap<i64, AcquisitionFigures> = HashMap::new();
            let mut expected_daily: HashMap<i64, AcquisitionFigures> = HashMap::new();
            for (code, d, figures) in &written {
                if (range.first_day..=range.last_day).contains(d) {
                    expected.entry(*code).or_default().add(figures);
                    expected_daily.entry(*d).or_default().add(figures);
                }
            }
            assert_eq!(sums, expected, "{from}..{to}");
            assert_eq!(daily, expected_daily, "{from}..{to}");
        }
    }
}
