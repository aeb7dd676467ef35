//! An item of the content library's figures over the mass sends that carried it (the
//! rules and the wire shape are `siyu_domain::engagement::performance`). Read when
//! asked, from the sends themselves: a send keeps what it carried as it was
//! (`attachments`), its recipients their status, orders their customer and time, and
//! the short links of its link cards their clicks per day, so nothing is kept twice. A scope narrower than the tenant counts only the sends its
//! staff made, as it sees only those.

use siyu_domain::engagement::performance::ContentPerformance;
use siyu_domain::ids::ContentItemId;
use siyu_domain::order::OrderStatus;

use super::broadcast_columns::attachments_of;
use crate::db::{id_list, on_db};
use crate::tx::Placeholders;
use crate::{Result, TenantScope};

const DAY_MS: i64 = 86_400_000;

#[derive(sqlx::FromRow)]
struct Carrier {
    id: i64,
    channel: String,
    recipients: Option<i64>,
    sent: i64,
    attachments: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Ordered {
    orders: i64,
    customers: i64,
    gmv: Option<i64>,
}

impl TenantScope<'_> {
    /// How an item did in the planned sends that carried it: recipients, sent,
    /// delivered, and orders within `window_days` after each recipient's message.
    pub async fn content_performance(
        &self,
        item: ContentItemId,
        window_days: u32,
    ) -> Result<ContentPerformance> {
        self.get_content_item(item).await?;
        let sql = format!(
            "SELECT id, channel, recipients, sent, attachments FROM broadcasts \
             WHERE tenant_id = $1 AND attachments IS NOT NULL AND recipients IS NOT NULL{}",
            self.maker_clause()
        );
        let carriers: Vec<Carrier> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        let mut figures = ContentPerformance {
            window_days,
            ..ContentPerformance::default()
        };
        let mut sends = Vec::new();
        let mut wecom = Vec::new();
        // the short links the item's cards led through on those sends, as they carry them
        let mut tracked: Vec<String> = Vec::new();
        for carrier in carriers {
            let attachments = attachments_of(carrier.attachments.as_deref())?;
            let Some(carried) = attachments.iter().find(|a| a.content_id == item) else {
                continue;
            };
            figures.sends += 1;
            if let Some(link) = &carried.tracked_link {
                figures.tracked_sends += 1;
                tracked.push(link.slug.clone());
            }
            figures.recipients += carrier.recipients.unwrap_or(0);
            figures.sent += carrier.sent;
            if carrier.channel == "wecom" {
                wecom.push(carrier.id);
            } else {
                // the sandbox delivers what it takes
                figures.delivered += carrier.sent;
            }
            sends.push(carrier.id);
        }
        if sends.is_empty() {
            return Ok(figures);
        }
        if !wecom.is_empty() {
            let sql = format!(
                "SELECT COUNT(*) FROM broadcast_recipients WHERE tenant_id = $1 \
                 AND broadcast_id IN ({}) AND status = 'sent'",
                id_list(&wecom)
            );
            let delivered: i64 = on_db!(self.store, |db| {
                sqlx::query_scalar(&sql)
                    .bind(self.tenant.0)
                    .fetch_one(db)
                    .await?
            });
            figures.delivered += delivered;
        }
        // each order once, however many of the item's messages came before it. A
        // recipient's message counts from when they received it: on WeCom when the
        // member sent it (the result's time; not delivered, not counted), on the
        // sandbox at its batch's answer. A recipient merged since is followed to the
        // survivor, whose orders theirs became (merges keep one link). Orders of
        // customers out of the caller's reach are not theirs to sum.
        let sql = format!(
            "SELECT COUNT(*) AS orders, COUNT(DISTINCT customer_id) AS customers, \
             CAST(SUM(net_tenant_amount) AS BIGINT) AS gmv FROM orders \
             WHERE tenant_id = $1 AND id IN (\
               SELECT o.id FROM broadcast_recipients r \
               JOIN broadcast_batches b ON b.broadcast_id = r.broadcast_id AND b.batch = r.batch \
               JOIN customers c ON c.tenant_id = r.tenant_id AND c.id = r.customer_id \
               JOIN orders o ON o.tenant_id = r.tenant_id \
                 AND o.customer_id = COALESCE(c.merged_into_id, c.id) \
               WHERE r.tenant_id = $1 AND r.broadcast_id IN ({}) AND b.state = 'sent' \
               AND (r.status IS NULL OR r.status = 'sent') \
               AND o.ordered_at >= COALESCE(r.status_at, b.answered_at) \
               AND o.ordered_at < COALESCE(r.status_at, b.answered_at) + $2 \
               AND o.status IN {}){}",
            id_list(&sends),
            OrderStatus::COUNTING_SQL,
            self.within_reach("customer_id")
        );
        let ordered: Ordered = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(i64::from(window_days) * DAY_MS)
                .fetch_one(db)
                .await?
        });
        if !tracked.is_empty() {
            figures.clicks = self.send_link_clicks(&tracked).await?;
        }
        figures.orders = ordered.orders;
        figures.ordering_customers = ordered.customers;
        figures.gmv = ordered.gmv.unwrap_or(0);
        Ok(figures)
    }

    /// Clicks on these short links (of the tenant's).
    async fn send_link_clicks(&self, slugs: &[String]) -> Result<i64> {
        let mut clicks = 0;
        for chunk in slugs.chunks(500) {
            let mut p = Placeholders::for_backend(self.store.backend());
            let tenant_p = p.next();
            let list: Vec<String> = chunk.iter().map(|_| p.next()).collect();
            let sql = format!(
                "SELECT CAST(COALESCE(SUM(d.clicks), 0) AS BIGINT) FROM tracked_link_days d \
                 JOIN tracked_links l ON l.tenant_id = d.tenant_id AND l.id = d.link_id \
                 WHERE d.tenant_id = {tenant_p} AND l.slug IN ({})",
                list.join(", ")
            );
            let sum: i64 = on_db!(self.store, |db| {
                let mut query = sqlx::query_scalar(&sql).bind(self.tenant.0);
                for slug in chunk {
                    query = query.bind(slug);
                }
                query.fetch_one(db).await?
            });
            clicks += sum;
        }
        Ok(clicks)
    }
}
