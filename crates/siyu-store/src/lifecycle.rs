//! Lifecycle stages as recorded: each customer's stage and the stage-change events.

use std::collections::HashMap;

use siyu_domain::audience::StageChange;
use siyu_domain::ids::CustomerId;
use siyu_domain::page::{Page, PageRequest};

use crate::db::id_list;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, TenantScope};

impl TenantScope<'_> {
    /// Records each customer's lifecycle stage now (`checked`: the customers looked at,
    /// all when `None`). A customer seen for the first time is recorded without an event;
    /// one whose stage moved gets a change event, once even when several servers record
    /// the same move (only the update that finds the old stage writes it). Answers how
    /// many moved.
    pub async fn sync_stages(
        &self,
        stages: &[(i64, &str)],
        checked: Option<&[i64]>,
    ) -> Result<u64> {
        let tenant = self.tenant;
        let now = now_ms();
        let mut recorded: HashMap<i64, String> = HashMap::new();
        match checked {
            Some([]) => return Ok(0),
            Some(ids) => {
                for chunk in ids.chunks(500) {
                    let rows: Vec<(i64, String)> = on_db!(self.store, |db| {
                        sqlx::query_as(&format!(
                            "SELECT customer_id, stage FROM customer_stages WHERE tenant_id = $1 AND customer_id IN ({})",
                            id_list(chunk)
                        ))
                        .bind(tenant.0)
                        .fetch_all(db)
                        .await?
                    });
                    recorded.extend(rows);
                }
            }
            None => {
                let rows: Vec<(i64, String)> = on_db!(self.store, |db| {
                    sqlx::query_as(
                        "SELECT customer_id, stage FROM customer_stages WHERE tenant_id = $1",
                    )
                    .bind(tenant.0)
                    .fetch_all(db)
                    .await?
                });
                recorded.extend(rows);
            }
        }
        let mut first: Vec<(i64, &str)> = Vec::new();
        let mut moves: HashMap<(String, &str), Vec<i64>> = HashMap::new();
        for (id, stage) in stages {
            match recorded.get(id) {
                None => first.push((*id, stage)),
                Some(old) if old != stage => {
                    moves.entry((old.clone(), stage)).or_default().push(*id)
                }
                Some(_) => {}
            }
        }
        if first.is_empty() && moves.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        for chunk in first.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(id, stage)| format!("({}, {id}, '{stage}', {now})", tenant.0))
                .collect();
            let sql = format!(
                "INSERT INTO customer_stages (tenant_id, customer_id, stage, since) VALUES {} \
                 ON CONFLICT (tenant_id, customer_id) DO NOTHING",
                values.join(",")
            );
            on_tx!(&mut tx, |c| sqlx::query(&sql)
                .execute(&mut *c)
                .await?
                .rows_affected());
        }
        let mut moved = 0;
        for ((from, to), ids) in &moves {
            for chunk in ids.chunks(500) {
                let sql = format!(
                    "UPDATE customer_stages SET stage = $1, since = $2 WHERE tenant_id = $3 AND stage = $4 \
                     AND customer_id IN ({}) RETURNING customer_id",
                    id_list(chunk)
                );
                let changed: Vec<i64> = on_tx!(&mut tx, |c| {
                    sqlx::query_scalar(&sql)
                        .bind(*to)
                        .bind(now)
                        .bind(tenant.0)
                        .bind(from)
                        .fetch_all(&mut *c)
                        .await?
                });
                moved += changed.len() as u64;
                for chunk in changed.chunks(500) {
                    let values: Vec<String> = chunk
                        .iter()
                        .map(|id| format!("({}, {id}, $1, $2, {now})", tenant.0))
                        .collect();
                    let sql = format!(
                        "INSERT INTO stage_events (tenant_id, customer_id, from_stage, to_stage, at) VALUES {}",
                        values.join(",")
                    );
                    on_tx!(&mut tx, |c| {
                        sqlx::query(&sql)
                            .bind(from)
                            .bind(*to)
                            .execute(&mut *c)
                            .await?
                            .rows_affected()
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Lifecycle stage changes, oldest first, after the change id `after`.
    pub async fn stage_changes(&self, page: PageRequest) -> Result<Page<StageChange>> {
        #[derive(sqlx::FromRow)]
        struct StageChangeRow {
            id: i64,
            customer_id: i64,
            from_stage: String,
            to_stage: String,
            at: i64,
        }
        let rows: Vec<StageChangeRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, customer_id, from_stage, to_stage, at FROM stage_events WHERE tenant_id = $1 \
                 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(self.tenant.0)
            .bind(page.after.unwrap_or(0))
            .bind(page.fetch_limit())
            .fetch_all(db)
            .await?
        });
        let changes = rows
            .into_iter()
            .map(|r| StageChange {
                id: r.id,
                customer_id: CustomerId(r.customer_id),
                from: r.from_stage,
                to: r.to_stage,
                at: r.at,
            })
            .collect();
        Ok(Page::from_rows(changes, page, |c: &StageChange| c.id))
    }
}
