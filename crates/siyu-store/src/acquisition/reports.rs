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
        // the whole tenant: no list of codes to keep to
        let only = if tenant_wide {
            String::new()
        } else {
            let ids: Vec<i64> = self.reachable_codes().await?.iter().map(|c| c.id).collect();
            if ids.is_empty() {
                return Ok((HashMap::new(), HashMap::new()));
            }
            format!(" AND code_id IN ({})", id_list(&ids))
        };
        let by_code = format!(
            "SELECT code_id AS key, {FIGURES} FROM channel_code_days WHERE tenant_id = $1 \
             AND day >= $2 AND day <= $3{only} GROUP BY code_id"
        );
        let by_day = format!(
            "SELECT day AS key, {FIGURES} FROM channel_code_days WHERE tenant_id = $1 \
             AND day >= $2 AND day <= $3{only} GROUP BY day"
        );
        let sums = self.sums(&by_code, range).await?;
        let daily = self.sums(&by_day, range).await?;
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
        let sums = self.sums(&by_member, range).await?;
        let daily = self.sums(&by_day, range).await?;
        Ok((sums, daily))
    }

    async fn sums(
        &self,
        sql: &str,
        range: ReportRange,
    ) -> Result<HashMap<i64, AcquisitionFigures>> {
        let rows: Vec<SumRow> = on_db!(self.store, |db| {
            sqlx::query_as(sql)
                .bind(self.tenant.0)
                .bind(range.first_day)
                .bind(range.last_day)
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
