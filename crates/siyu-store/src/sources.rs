//! Sources and their write keys. A write key is the credential the tracking API takes
//! (it ships inside apps and web pages); it is stored only as its SHA-256, shown once,
//! and can be rotated.

use serde_json::json;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::{Source, SourceId, SourceKind, WRITE_KEY_PREFIX};
use siyu_domain::ids::TenantId;
use siyu_domain::page::{Page, PageRequest};
use siyu_domain::token;

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, Store, StoreError, TenantScope};

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: i64,
    name: String,
    kind: String,
    write_key_prefix: String,
    received: i64,
    rejected: i64,
    traits_dropped: i64,
    last_event_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<SourceRow> for Source {
    type Error = StoreError;
    fn try_from(r: SourceRow) -> Result<Self> {
        Ok(Source {
            id: SourceId(r.id),
            kind: SourceKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("source kind {:?}", r.kind)))?,
            name: r.name,
            write_key_prefix: r.write_key_prefix,
            received: r.received,
            rejected: r.rejected,
            traits_dropped: r.traits_dropped,
            last_event_at: r.last_event_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const SOURCE_COLUMNS: &str = "id, name, kind, write_key_prefix, received, rejected, traits_dropped, \
     last_event_at, created_at, updated_at";

/// The source a write key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceRef {
    pub tenant: TenantId,
    pub source: SourceId,
    pub kind: SourceKind,
    /// The tenant's time zone, which its per-day event counts follow.
    pub time_zone: siyu_domain::time::TimeZone,
}

/// Counts refused events against a source: `$1` events, tenant `$2`, source `$3`.
pub(crate) const COUNT_REJECTED: &str =
    "UPDATE sources SET rejected = rejected + $1 WHERE tenant_id = $2 AND id = $3";

/// A source joined with its tenant: `s.tenant_id, s.id AS source_id, s.kind, t.time_zone`.
#[derive(sqlx::FromRow)]
pub(crate) struct SourceRefRow {
    pub(crate) tenant_id: i64,
    pub(crate) source_id: i64,
    kind: String,
    time_zone: String,
}

impl SourceRef {
    pub(crate) fn from_row(row: SourceRefRow) -> Self {
        SourceRef {
            tenant: TenantId(row.tenant_id),
            source: SourceId(row.source_id),
            kind: SourceKind::parse(&row.kind).unwrap_or(SourceKind::Other),
            time_zone: siyu_domain::time::TimeZone::of_stored(&row.time_zone),
        }
    }
}

fn new_write_key() -> String {
    token::generate(WRITE_KEY_PREFIX)
}

impl Store {
    /// The source of a write key, if the key is current.
    pub async fn resolve_write_key(&self, key: &str) -> Result<Option<SourceRef>> {
        let hash = token::hash(key.trim());
        if let Some(source) = self.recent.write_keys.get(&hash) {
            return Ok(Some(source));
        }
        let row: Option<SourceRefRow> = on_db!(self, |db| {
            sqlx::query_as(
                "SELECT s.tenant_id, s.id AS source_id, s.kind, t.time_zone FROM sources s \
                 JOIN tenants t ON t.id = s.tenant_id WHERE s.write_key_hash = $1",
            )
            .bind(&hash)
            .fetch_optional(db)
            .await?
        });
        let source = row.map(SourceRef::from_row);
        if let Some(source) = source {
            self.recent.write_keys.put(hash, source);
        }
        Ok(source)
    }

    /// Counts refused items against a source.
    pub async fn count_rejected(&self, source: SourceRef, rejected: i64) -> Result<()> {
        on_db!(self, |db| {
            sqlx::query(COUNT_REJECTED)
                .bind(rejected)
                .bind(source.tenant.0)
                .bind(source.source.0)
                .execute(db)
                .await?;
        });
        Ok(())
    }
}

impl TenantScope<'_> {
    /// Creates a source; returns it and its write key, shown this once.
    pub async fn create_source(
        &self,
        name: &str,
        kind: SourceKind,
        actor: &Actor,
    ) -> Result<(Source, String)> {
        let key = new_write_key();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO sources (tenant_id, name, kind, write_key_hash, write_key_prefix, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(name)
            .bind(kind.as_str())
            .bind(token::hash(&key))
            .bind(token::display_prefix_of(&key, WRITE_KEY_PREFIX))
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a source with this name exists", ""))?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SOURCE_CREATED, "source", id)
                .with_details(json!({"name": name, "kind": kind.as_str()})),
        )
        .await?;
        tx.commit().await?;
        Ok((self.get_source(SourceId(id)).await?, key))
    }

    pub async fn get_source(&self, id: SourceId) -> Result<Source> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE tenant_id = $1 AND id = $2");
        let row: Option<SourceRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("source"))?.try_into()
    }

    pub async fn find_source_by_name(&self, name: &str) -> Result<Option<Source>> {
        let sql =
            format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE tenant_id = $1 AND name = $2");
        let row: Option<SourceRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(name.trim())
                .fetch_optional(db)
                .await?
        });
        row.map(Source::try_from).transpose()
    }

    /// Every source's id, name and kind, for reports that group customers by where they
    /// came from.
    pub async fn source_kinds(&self) -> Result<Vec<(i64, String, SourceKind)>> {
        #[derive(sqlx::FromRow)]
        struct SourceKindRow {
            id: i64,
            name: String,
            kind: String,
        }
        let rows: Vec<SourceKindRow> = on_db!(self.store, |db| {
            sqlx::query_as("SELECT id, name, kind FROM sources WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant.0)
                .fetch_all(db)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| {
                let kind = SourceKind::parse(&r.kind).unwrap_or(SourceKind::Other);
                (r.id, r.name, kind)
            })
            .collect())
    }

    pub async fn list_sources(&self, page: PageRequest) -> Result<Page<Source>> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows: Vec<SourceRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(page.after_id())
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let sources = rows
            .into_iter()
            .map(Source::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(sources, page, |s| s.id.0))
    }

    pub async fn rename_source(&self, id: SourceId, name: &str, actor: &Actor) -> Result<Source> {
        let old = self.get_source(id).await?.name;
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE sources SET name = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(name)
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await
            .map_err(|e| StoreError::from_constraint(e, "a source with this name exists", ""))?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SOURCE_UPDATED, "source", id)
                .with_details(json!({"name": name})),
        )
        .await?;
        tx.commit().await?;
        if old != name {
            // segments and tag rules name sources: they follow the new name
            self.rewrite_definitions(|c| crate::definitions::rename_source(c, &old, name))
                .await?;
        }
        self.get_source(id).await
    }

    /// Replaces a source's write key; the old key stops working at once.
    pub async fn rotate_write_key(&self, id: SourceId, actor: &Actor) -> Result<(Source, String)> {
        self.get_source(id).await?;
        let key = new_write_key();
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE sources SET write_key_hash = $1, write_key_prefix = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(token::hash(&key))
            .bind(token::display_prefix_of(&key, WRITE_KEY_PREFIX))
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
            AuditRecord::new(action::SOURCE_WRITE_KEY_ROTATED, "source", id),
        )
        .await?;
        tx.commit().await?;
        // the old key stops working in this process now (in others within seconds)
        self.store.recent.write_keys.clear();
        Ok((self.get_source(id).await?, key))
    }
}

impl TenantScope<'_> {
    /// The tenant's server source of this name (siyu's own: `CSV import`, `WeCom`), made
    /// the first time it is needed; two made at once end as one.
    pub(crate) async fn server_source(&self, name: &str, actor: &Actor) -> Result<SourceRef> {
        for _ in 0..2 {
            let found: Option<i64> = on_db!(self.store, |db| {
                sqlx::query_scalar("SELECT id FROM sources WHERE tenant_id = $1 AND name = $2")
                    .bind(self.tenant.0)
                    .bind(name)
                    .fetch_optional(db)
                    .await?
            });
            if let Some(id) = found {
                return Ok(SourceRef {
                    tenant: self.tenant,
                    source: SourceId(id),
                    kind: SourceKind::Server,
                    time_zone: self.time_zone().await?,
                });
            }
            match self.create_source(name, SourceKind::Server, actor).await {
                Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "cannot make the {name} source"
        )))
    }
}
