//! Tracked links: the destinations a tenant registered, its links, what `/l/{slug}`
//! looks up (without a tenant: the link is public), and the figures per day.
//!
//! Clicks are counted as their `Link Clicked` events are applied (`ingest` calls
//! [`count_clicks_in`] in the group's transaction), so a click is counted exactly when
//! its event is stored, once; crawler fetches make no event and are counted as they
//! come. A link deleted keeps its row (`deleted_at`) and its figures.
//!
//! Reach: links are within a principal's reach when staff they reach made them (a
//! narrower scope sees and changes those only); the destinations are the tenant's
//! reference data.

use std::collections::HashMap;

use serde_json::json;
use siyu_domain::acquisition::links::{
    LinkDestination, LinkFigures, LinkReport, LinkReportDay, LinkReportRow, TrackedLink,
    TrackedLinkSpec, Utm, clicked_link, link_path, new_link_slug, target_url, under_prefix,
};
use siyu_domain::acquisition::report::{ReportRange, date_of_day};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::SourceKind;
use siyu_domain::ids::{ChannelAccountId, LinkDestinationId, StaffId, TenantId, TrackedLinkId};
use siyu_domain::page::{Page, PageRequest};

use super::accounts::named;
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::sources::SourceRef;
use crate::tracked::IngestItem;
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, Store, StoreError, TenantScope};

const LINK_COLUMNS: &str = "id, slug, name, destination, utm_source, utm_medium, utm_campaign, \
     utm_term, utm_content, account_id, created_by_staff_id, created_at, updated_at, deleted_at";

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: i64,
    slug: String,
    name: String,
    destination: String,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
    account_id: Option<i64>,
    created_by_staff_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

impl LinkRow {
    fn utm(&self) -> Utm {
        Utm {
            utm_source: self.utm_source.clone(),
            utm_medium: self.utm_medium.clone(),
            utm_campaign: self.utm_campaign.clone(),
            utm_term: self.utm_term.clone(),
            utm_content: self.utm_content.clone(),
        }
    }

    fn link(self) -> TrackedLink {
        let utm = self.utm();
        TrackedLink {
            id: TrackedLinkId(self.id),
            path: link_path(&self.slug),
            target: target_url(&self.destination, &utm),
            slug: self.slug,
            name: self.name,
            destination: self.destination,
            utm,
            account_id: self.account_id.map(ChannelAccountId),
            created_by_staff_id: self.created_by_staff_id.map(StaffId),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// What `/l/{slug}` needs of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRoute {
    pub tenant: TenantId,
    pub link: TrackedLinkId,
    pub name: String,
    pub slug: String,
    pub utm: Utm,
    /// Where a click goes.
    pub target: String,
    pub deleted: bool,
}

#[derive(sqlx::FromRow)]
struct DestinationRow {
    id: i64,
    url_prefix: String,
    note: String,
    created_at: i64,
}

impl From<DestinationRow> for LinkDestination {
    fn from(r: DestinationRow) -> Self {
        LinkDestination {
            id: LinkDestinationId(r.id),
            url_prefix: r.url_prefix,
            note: r.note,
            created_at: r.created_at,
        }
    }
}

/// A click to count: the link, its tenant's local day, and whether it was personal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LinkClick {
    pub tenant: TenantId,
    pub link: TrackedLinkId,
    pub day: i64,
    pub personal: bool,
}

impl LinkClick {
    /// The click an item to store is, if any: a `Link Clicked` naming a link, from siyu's
    /// own links source or the brand's server (which may also tell of clicks).
    pub(crate) fn of(item: &IngestItem) -> Option<LinkClick> {
        if item.source.kind != SourceKind::Server {
            return None;
        }
        let (link, personal) = clicked_link(&item.event)?;
        Some(LinkClick {
            tenant: item.source.tenant,
            link,
            day: item.source.time_zone.day_of(item.event.timestamp),
            personal,
        })
    }
}

/// Counts clicks in the caller's transaction (the ingest group that stores their
/// events), one statement per tenant; clicks naming no link of the tenant are not
/// counted.
pub(crate) async fn count_clicks_in(tx: &mut Tx, clicks: &[LinkClick]) -> Result<()> {
    if clicks.is_empty() {
        return Ok(());
    }
    let mut by_day: HashMap<(TenantId, i64, i64), (i64, i64)> = HashMap::new();
    for click in clicks {
        let counts = by_day
            .entry((click.tenant, click.link.0, click.day))
            .or_default();
        counts.0 += 1;
        counts.1 += i64::from(click.personal);
    }
    let mut by_tenant: HashMap<TenantId, Vec<(i64, i64, i64, i64)>> = HashMap::new();
    for ((tenant, link, day), (clicks, personal)) in by_day {
        by_tenant
            .entry(tenant)
            .or_default()
            .push((link, day, clicks, personal));
    }
    for (tenant, rows) in by_tenant {
        for chunk in rows.chunks(500) {
            let mut p = Placeholders::for_tx(tx);
            let values: Vec<String> = chunk.iter().map(|_| p.row(4)).collect();
            let tenant_p = p.next();
            // VALUES columns are named column1, column2, … on both databases; `WHERE
            // true` lets SQLite read the ON CONFLICT after a SELECT
            let sql = format!(
                "INSERT INTO tracked_link_days (tenant_id, link_id, day, clicks, personal_clicks) \
                 SELECT l.tenant_id, l.id, v.column2, v.column3, v.column4 FROM (VALUES {}) AS v \
                 JOIN tracked_links l ON l.tenant_id = {tenant_p} AND l.id = v.column1 WHERE true \
                 ON CONFLICT (tenant_id, day, link_id) DO UPDATE SET \
                 clicks = tracked_link_days.clicks + excluded.clicks, \
                 personal_clicks = tracked_link_days.personal_clicks + excluded.personal_clicks",
                values.join(", ")
            );
            on_tx!(tx, |c| {
                let mut query = sqlx::query(&sql);
                for (link, day, clicks, personal) in chunk {
                    query = query.bind(*link).bind(*day).bind(*clicks).bind(*personal);
                }
                query.bind(tenant.0).execute(&mut *c).await?;
            });
        }
    }
    Ok(())
}

impl Store {
    /// The link of a slug, deleted or not.
    pub async fn link_by_slug(&self, slug: &str) -> Result<Option<LinkRoute>> {
        let sql = format!("SELECT tenant_id, {LINK_COLUMNS} FROM tracked_links WHERE slug = $1");
        #[derive(sqlx::FromRow)]
        struct SlugRow {
            tenant_id: i64,
            #[sqlx(flatten)]
            link: LinkRow,
        }
        let row: Option<SlugRow> = on_db!(self, |db| {
            sqlx::query_as(&sql).bind(slug).fetch_optional(db).await?
        });
        Ok(row.map(
            |SlugRow {
                 tenant_id,
                 link: row,
             }| {
                let utm = row.utm();
                LinkRoute {
                    tenant: TenantId(tenant_id),
                    link: TrackedLinkId(row.id),
                    target: target_url(&row.destination, &utm),
                    name: row.name,
                    slug: row.slug,
                    utm,
                    deleted: row.deleted_at.is_some(),
                }
            },
        ))
    }
}

/// The name of the tenant's source that link clicks come from.
pub const LINKS_SOURCE: &str = "Tracked links";

impl TenantScope<'_> {
    /// The tenant's source of link clicks, made the first time.
    pub async fn links_source(&self, actor: &Actor) -> Result<SourceRef> {
        self.server_source(LINKS_SOURCE, actor).await
    }

    /// The registered destinations, oldest first.
    pub async fn link_destinations(&self) -> Result<Vec<LinkDestination>> {
        let rows: Vec<DestinationRow> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT id, url_prefix, note, created_at FROM link_destinations \
                 WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        Ok(rows.into_iter().map(LinkDestination::from).collect())
    }

    /// The registered prefixes.
    pub async fn link_prefixes(&self) -> Result<Vec<String>> {
        Ok(self
            .link_destinations()
            .await?
            .into_iter()
            .map(|d| d.url_prefix)
            .collect())
    }

    /// Registers a destination (checked by the caller). Audited.
    pub async fn add_link_destination(
        &self,
        url_prefix: &str,
        note: &str,
        actor: &Actor,
    ) -> Result<LinkDestination> {
        let mut tx = self.store.begin().await?;
        let row: DestinationRow = on_tx!(&mut tx, |c| {
            sqlx::query_as(
                "INSERT INTO link_destinations (tenant_id, url_prefix, note, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id, url_prefix, note, created_at",
            )
            .bind(self.tenant.0)
            .bind(url_prefix)
            .bind(note)
            .bind(now_ms())
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "this destination is registered", ""))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::LINK_DESTINATION_ADDED, "link_destination", row.id)
                .with_details(json!({"url_prefix": url_prefix})),
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Removes a destination, unless a live link leads under it and under no other
    /// (409: links must not stop working unseen). Audited.
    pub async fn remove_link_destination(
        &self,
        id: LinkDestinationId,
        actor: &Actor,
    ) -> Result<()> {
        let destinations = self.link_destinations().await?;
        let removed = destinations
            .iter()
            .find(|d| d.id == id)
            .ok_or(StoreError::NotFound("link destination"))?;
        let others: Vec<String> = destinations
            .iter()
            .filter(|d| d.id != id)
            .map(|d| d.url_prefix.clone())
            .collect();
        // a send's links are not counted: they were made under a destination registered
        // then, and lead on for the messages already out
        let live: Vec<String> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT destination FROM tracked_links WHERE tenant_id = $1 AND deleted_at IS NULL \
                 AND broadcast_id IS NULL",
            )
            .bind(self.tenant.0)
            .fetch_all(db)
            .await?
        });
        let stranded = live
            .iter()
            .filter(|url| {
                under_prefix(&removed.url_prefix, url)
                    && !others.iter().any(|p| under_prefix(p, url))
            })
            .count();
        if stranded > 0 {
            return Err(StoreError::Conflict(format!(
                "{stranded} live links lead only under this destination: delete or change them first"
            )));
        }
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM link_destinations WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.0)
                .bind(id.0)
                .execute(&mut *c)
                .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::LINK_DESTINATION_REMOVED, "link_destination", id.0)
                .with_details(json!({"url_prefix": removed.url_prefix})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the link's account exists.
    async fn check_link_spec(&self, spec: &TrackedLinkSpec) -> Result<()> {
        if let Some(account) = spec.account_id {
            self.get_channel_account(account)
                .await
                .map_err(|e| named(e, "account_id", "no such channel account"))?;
        }
        Ok(())
    }

    /// Creates a link (its destination checked by the caller against the registered
    /// ones); `made_by` is the staff member who made it (its reach). Audited.
    pub async fn create_tracked_link(
        &self,
        spec: &TrackedLinkSpec,
        made_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<TrackedLink> {
        self.check_link_spec(spec).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        // a slug is 47.6 random bits: a clash is all but impossible, and tried again
        let mut id = None;
        for _ in 0..3 {
            let slug = new_link_slug();
            let inserted: Option<i64> = on_tx!(&mut tx, |c| {
                sqlx::query_scalar(
                    "INSERT INTO tracked_links (tenant_id, slug, name, destination, utm_source, \
                     utm_medium, utm_campaign, utm_term, utm_content, account_id, \
                     created_by_staff_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
                     ON CONFLICT (slug) DO NOTHING RETURNING id",
                )
                .bind(self.tenant.0)
                .bind(&slug)
                .bind(&spec.name)
                .bind(&spec.destination)
                .bind(&spec.utm.utm_source)
                .bind(&spec.utm.utm_medium)
                .bind(&spec.utm.utm_campaign)
                .bind(&spec.utm.utm_term)
                .bind(&spec.utm.utm_content)
                .bind(spec.account_id.map(|a| a.0))
                .bind(made_by.map(|s| s.0))
                .bind(now)
                .fetch_optional(&mut *c)
                .await?
            });
            if inserted.is_some() {
                id = inserted;
                break;
            }
        }
        let id = id.ok_or_else(|| StoreError::Conflict("no free slug; try again".into()))?;
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TRACKED_LINK_CREATED, "tracked_link", id)
                .with_details(json!({"name": spec.name, "destination": spec.destination})),
        )
        .await?;
        tx.commit().await?;
        self.get_tracked_link(TrackedLinkId(id)).await
    }

    /// A live link within reach (not one made for a send's link card: those are the
    /// send's, changed only with it).
    pub async fn get_tracked_link(&self, id: TrackedLinkId) -> Result<TrackedLink> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM tracked_links WHERE tenant_id = $1 AND id = $2 \
             AND deleted_at IS NULL AND broadcast_id IS NULL{}",
            self.owner_clause("created_by_staff_id")
        );
        let row: Option<LinkRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        Ok(row.ok_or(StoreError::NotFound("tracked link"))?.link())
    }

    /// The live links within reach, by id (not those made for sends' link cards: they
    /// are the sends').
    pub async fn list_tracked_links(&self, page: PageRequest) -> Result<Page<TrackedLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM tracked_links WHERE tenant_id = $1 AND id > $2 \
             AND deleted_at IS NULL AND broadcast_id IS NULL{} ORDER BY id LIMIT $3",
            self.owner_clause("created_by_staff_id")
        );
        let rows: Vec<LinkRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let links = rows.into_iter().map(LinkRow::link).collect();
        Ok(Page::from_rows(links, page, |l: &TrackedLink| l.id.0))
    }

    /// Changes a live link within reach. Audited.
    pub async fn update_tracked_link(
        &self,
        id: TrackedLinkId,
        spec: &TrackedLinkSpec,
        actor: &Actor,
    ) -> Result<TrackedLink> {
        self.get_tracked_link(id).await?;
        self.check_link_spec(spec).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE tracked_links SET name = $1, destination = $2, utm_source = $3, \
                 utm_medium = $4, utm_campaign = $5, utm_term = $6, utm_content = $7, \
                 account_id = $8, updated_at = $9 WHERE tenant_id = $10 AND id = $11",
            )
            .bind(&spec.name)
            .bind(&spec.destination)
            .bind(&spec.utm.utm_source)
            .bind(&spec.utm.utm_medium)
            .bind(&spec.utm.utm_campaign)
            .bind(&spec.utm.utm_term)
            .bind(&spec.utm.utm_content)
            .bind(spec.account_id.map(|a| a.0))
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TRACKED_LINK_UPDATED, "tracked_link", id.0)
                .with_details(json!({"name": spec.name, "destination": spec.destination})),
        )
        .await?;
        tx.commit().await?;
        self.get_tracked_link(id).await
    }

    /// Deletes a live link within reach: `/l/{slug}` answers 410 from then on; its
    /// figures stay. Audited.
    pub async fn delete_tracked_link(&self, id: TrackedLinkId, actor: &Actor) -> Result<()> {
        let before = self.get_tracked_link(id).await?;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE tracked_links SET deleted_at = $1 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::TRACKED_LINK_DELETED, "tracked_link", id.0)
                .with_details(json!({"name": before.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts a crawler's fetch of a link on a local day of the tenant.
    pub async fn count_link_crawler_fetch(&self, link: TrackedLinkId, day: i64) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO tracked_link_days (tenant_id, link_id, day, crawler_fetches) \
                 VALUES ($1, $2, $3, 1) ON CONFLICT (tenant_id, day, link_id) DO UPDATE SET \
                 crawler_fetches = tracked_link_days.crawler_fetches + 1",
            )
            .bind(self.tenant.0)
            .bind(link.0)
            .bind(day)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// What the links within reach (deleted ones too) brought over a range of days.
    pub async fn tracked_link_report(&self, range: ReportRange) -> Result<LinkReport> {
        #[derive(sqlx::FromRow)]
        struct DayRow {
            link_id: i64,
            day: i64,
            clicks: i64,
            personal_clicks: i64,
            crawler_fetches: i64,
        }
        #[derive(sqlx::FromRow)]
        struct LinkInfo {
            id: i64,
            name: String,
            slug: String,
            account_id: Option<i64>,
            deleted_at: Option<i64>,
        }
        let reach = self.owner_clause("l.created_by_staff_id");
        let days_sql = format!(
            "SELECT d.link_id, d.day, d.clicks, d.personal_clicks, d.crawler_fetches \
             FROM tracked_link_days d JOIN tracked_links l ON l.tenant_id = d.tenant_id \
             AND l.id = d.link_id WHERE d.tenant_id = $1 AND d.day >= $2 AND d.day <= $3{reach}"
        );
        let links_sql = format!(
            "SELECT l.id, l.name, l.slug, l.account_id, l.deleted_at FROM tracked_links l \
             WHERE l.tenant_id = $1{reach}"
        );
        let (days, links): (Vec<DayRow>, Vec<LinkInfo>) = on_db!(self.store, |db| {
            let days = sqlx::query_as(&days_sql)
                .bind(self.tenant.0)
                .bind(range.first_day)
                .bind(range.last_day)
                .fetch_all(db)
                .await?;
            let links = sqlx::query_as(&links_sql)
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?;
            (days, links)
        });
        let mut per_link: HashMap<i64, LinkFigures> = HashMap::new();
        let mut per_day: HashMap<i64, LinkFigures> = HashMap::new();
        let mut total = LinkFigures::default();
        for d in days {
            let figures = LinkFigures {
                clicks: d.clicks,
                personal_clicks: d.personal_clicks,
                crawler_fetches: d.crawler_fetches,
            };
            per_link.entry(d.link_id).or_default().add(&figures);
            per_day.entry(d.day).or_default().add(&figures);
            total.add(&figures);
        }
        let mut rows: Vec<LinkReportRow> = links
            .into_iter()
            .filter(|l| l.deleted_at.is_none() || per_link.contains_key(&l.id))
            .map(|l| LinkReportRow {
                link_id: TrackedLinkId(l.id),
                figures: per_link.get(&l.id).copied().unwrap_or_default(),
                name: l.name,
                slug: l.slug,
                account_id: l.account_id.map(ChannelAccountId),
                deleted: l.deleted_at.is_some(),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.figures
                .clicks
                .cmp(&a.figures.clicks)
                .then(a.name.cmp(&b.name))
        });
        Ok(LinkReport {
            from: date_of_day(range.first_day),
            to: date_of_day(range.last_day),
            rows,
            total,
            daily: (range.first_day..=range.last_day)
                .map(|day| LinkReportDay {
                    date: date_of_day(day),
                    figures: per_day.get(&day).copied().unwrap_or_default(),
                })
                .collect(),
        })
    }
}
