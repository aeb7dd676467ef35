//! What the audience index reads: each customer's facts (traits, tags, owner, events,
//! orders, consent) and event counts with property filters.

use std::collections::HashMap;

use serde_json::Value;
use siyu_audience::condition::Performed;
use siyu_audience::facts::{CustomerFacts, EventDay, OrderFact, trait_matches, window_start};
use siyu_domain::order::OrderStatus;

use crate::db::id_list;
use crate::db::on_db;
use crate::{Result, TenantScope};

/// A live customer, as far as the audience index reads the profile.
#[derive(sqlx::FromRow)]
struct FactsRow {
    id: i64,
    traits: String,
    owner_staff_id: Option<i64>,
    first_seen_at: i64,
}

#[derive(sqlx::FromRow)]
struct EventDayRow {
    customer_id: i64,
    name: String,
    day: i64,
    count: i64,
}

#[derive(sqlx::FromRow)]
struct OrderFactRow {
    customer_id: i64,
    ordered_at: i64,
    net_tenant_amount: i64,
    unit_id: Option<i64>,
    channel: String,
}

#[derive(sqlx::FromRow)]
struct ConsentFactRow {
    customer_id: i64,
    channel: String,
    status: String,
}

#[derive(sqlx::FromRow)]
struct EventPropertiesRow {
    id: i64,
    customer_id: i64,
    properties: String,
}

impl TenantScope<'_> {
    // --- what the audience index reads ---

    /// Live customers with ids above `after`, at most `limit`, in id order, with all the
    /// audience index reads of them.
    pub async fn audience_facts(&self, after: i64, limit: i64) -> Result<Vec<CustomerFacts>> {
        let rows: Vec<FactsRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, traits, owner_staff_id, first_seen_at FROM customers \
                 WHERE tenant_id = $1 AND merged_into_id IS NULL AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(self.tenant.0)
            .bind(after)
            .bind(limit)
            .fetch_all(db)
            .await?
        });
        let (Some(first), Some(last)) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id))
        else {
            return Ok(Vec::new());
        };
        let range = format!("customer_id >= {first} AND customer_id <= {last}");
        self.facts_of_rows(rows, &range).await
    }

    /// The facts of these customers; those merged away or unknown are left out.
    pub async fn audience_facts_of(&self, ids: &[i64]) -> Result<Vec<CustomerFacts>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = id_list(ids);
        let rows: Vec<FactsRow> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT id, traits, owner_staff_id, first_seen_at FROM customers \
                 WHERE tenant_id = $1 AND merged_into_id IS NULL AND id IN ({list}) ORDER BY id"
            ))
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let range = format!("customer_id IN ({list})");
        self.facts_of_rows(rows, &range).await
    }

    async fn facts_of_rows(&self, rows: Vec<FactsRow>, range: &str) -> Result<Vec<CustomerFacts>> {
        // the audience layer counts days from midnight in the tenant's zone: its times
        // are shifted into that zone (event days are stored in it already)
        let zone = self.time_zone().await?;
        let mut facts: Vec<CustomerFacts> = rows
            .into_iter()
            .map(|r| CustomerFacts {
                id: r.id,
                traits: serde_json::from_str(&r.traits).unwrap_or_default(),
                owner: r.owner_staff_id,
                first_seen_at: zone.local_ms(r.first_seen_at),
                ..Default::default()
            })
            .collect();
        let at: HashMap<i64, usize> = facts.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let tenant = self.tenant.0;
        let tags: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, tag_id FROM customer_tags WHERE tenant_id = $1 AND {range}"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, tag) in tags {
            if let Some(&i) = at.get(&c) {
                facts[i].tags.push(tag);
            }
        }
        let sources: Vec<(i64, i64)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, source_id FROM customer_sources WHERE tenant_id = $1 AND {range} \
                 ORDER BY customer_id, first_at, id"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, source) in sources {
            if let Some(&i) = at.get(&c) {
                facts[i].sources.push(source);
            }
        }
        let codes: Vec<(i64, String)> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, code FROM customer_channel_codes WHERE tenant_id = $1 AND {range} \
                 ORDER BY customer_id, first_at, id"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for (c, code) in codes {
            if let Some(&i) = at.get(&c) {
                facts[i].channel_codes.push(code);
            }
        }
        let days: Vec<EventDayRow> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, name, day, count FROM customer_event_days WHERE tenant_id = $1 AND {range}"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for d in days {
            if let Some(&i) = at.get(&d.customer_id) {
                facts[i].events.push(EventDay {
                    name: d.name,
                    day: d.day as i32,
                    count: d.count.clamp(0, u32::MAX as i64) as u32,
                });
            }
        }
        let orders: Vec<OrderFactRow> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, ordered_at, net_tenant_amount, unit_id, channel FROM orders \
                 WHERE tenant_id = $1 AND {range} AND status IN {}",
                OrderStatus::COUNTING_SQL
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        for o in orders {
            if let Some(&i) = at.get(&o.customer_id) {
                facts[i].orders.push(OrderFact {
                    at: zone.local_ms(o.ordered_at),
                    amount: o.net_tenant_amount,
                    unit: o.unit_id,
                    channel: o.channel,
                });
            }
        }
        let consents: Vec<ConsentFactRow> = on_db!(self.store, |db| {
            sqlx::query_as(&format!(
                "SELECT customer_id, channel, status FROM consent_changes WHERE tenant_id = $1 AND {range} ORDER BY id"
            ))
            .bind(tenant)
            .fetch_all(db)
            .await?
        });
        let mut newest: HashMap<(i64, String), String> = HashMap::new();
        for r in consents {
            newest.insert((r.customer_id, r.channel), r.status);
        }
        for ((c, channel), status) in newest {
            if status == "opt_out"
                && let Some(&i) = at.get(&c)
            {
                facts[i].opted_out.push(channel);
            }
        }
        Ok(facts)
    }

    /// For an event condition with property filters: per customer with at least one
    /// matching event in the window, how many. Reads the stored events of that name in
    /// the window (the language requires a window of at most a year for these).
    pub async fn filtered_event_counts(
        &self,
        p: &Performed,
        today: i32,
        customers: Option<&[i64]>,
    ) -> Result<HashMap<i64, u32>> {
        let only = match customers {
            Some([]) => return Ok(HashMap::new()),
            Some(ids) => format!(" AND customer_id IN ({})", id_list(ids)),
            None => String::new(),
        };
        let days = p
            .within_days
            .unwrap_or(siyu_audience::condition::MAX_FILTERED_WINDOW_DAYS);
        // the window's first local midnight, as a UTC time
        let since = self
            .time_zone()
            .await?
            .start_of_day(i64::from(window_start(today, days)));
        // views are counted under these names but stored as page and screen calls
        let (filter, value) = match p.event.as_str() {
            siyu_domain::tracking::PAGE_VIEWED => ("type = $2", "page"),
            siyu_domain::tracking::SCREEN_VIEWED => ("type = $2", "screen"),
            name => ("type = 'track' AND name = $2", name),
        };
        let sql = format!(
            "SELECT id, customer_id, properties FROM events \
             WHERE tenant_id = $1 AND {filter} AND timestamp >= $3 AND id > $4{only} ORDER BY id LIMIT 5000"
        );
        let mut counts: HashMap<i64, u32> = HashMap::new();
        let mut after = 0i64;
        loop {
            let rows: Vec<EventPropertiesRow> = on_db!(self.store, |db| {
                sqlx::query_as(&sql)
                    .bind(self.tenant.0)
                    .bind(value)
                    .bind(since)
                    .bind(after)
                    .fetch_all(db)
                    .await?
            });
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                let properties: serde_json::Map<String, Value> =
                    serde_json::from_str(&row.properties).unwrap_or_default();
                let all = p.filters.iter().all(|f| {
                    properties.get(&f.property).is_some_and(|v| {
                        trait_matches(
                            v,
                            &siyu_audience::condition::TraitOp::Compare {
                                op: f.op,
                                value: f.value.clone(),
                            },
                            today,
                            // property filters compare; they hold no day test
                            siyu_domain::time::TimeZone::UTC,
                        )
                    })
                });
                if all {
                    *counts.entry(row.customer_id).or_default() += 1;
                }
            }
        }
        Ok(counts)
    }
}
