//! The content library: items (`content_items`, their body as JSON), the files uploaded
//! for them (`content_files`: only those may be named by items or read back through the
//! library, so an import's file never is), and the WeCom media made from those files
//! (`content_media`, see `siyu_runtime::broadcasts::media`).
//!
//! The library is the tenant's: everyone with `content.read` reads all of it. Staff whose
//! reach is some owners change only the items that staff they reach made, as with mass
//! sends.

use serde_json::json;
use siyu_domain::DomainError;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::engagement::content::{
    ContentBody, ContentCategory, ContentItem, ContentKind, ContentSource, ContentSpec,
};
use siyu_domain::ids::{ConnectorId, ContentItemId, FileId, StaffId, UnitId};
use siyu_domain::page::{Page, PageRequest};

use crate::audit;
use crate::db::{now_ms, on_db};
use crate::files::{FileInfo, insert_file_in};
use crate::tx::on_tx;
use crate::{Result, StoreError, TenantScope};

const ITEM_COLUMNS: &str = "id, kind, title, category, source, tags, unit_id, body, \
     created_by_staff_id, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    kind: String,
    title: String,
    category: String,
    source: String,
    tags: String,
    unit_id: Option<i64>,
    body: String,
    created_by_staff_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ItemRow> for ContentItem {
    type Error = StoreError;
    fn try_from(r: ItemRow) -> Result<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("{what} of content item {}", r.id));
        Ok(ContentItem {
            id: ContentItemId(r.id),
            kind: ContentKind::parse("kind", &r.kind).map_err(|_| corrupt("kind"))?,
            title: r.title.clone(),
            category: ContentCategory::parse("category", &r.category)
                .map_err(|_| corrupt("category"))?,
            source: ContentSource::parse("source", &r.source).map_err(|_| corrupt("source"))?,
            tags: serde_json::from_str(&r.tags).map_err(|_| corrupt("tags"))?,
            unit_id: r.unit_id.map(UnitId),
            body: serde_json::from_str(&r.body).map_err(|_| corrupt("body"))?,
            created_by: r.created_by_staff_id.map(StaffId),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Which items a list shows (all given must hold).
#[derive(Debug, Clone, Default)]
pub struct ContentFilter {
    pub kind: Option<ContentKind>,
    pub category: Option<ContentCategory>,
    pub source: Option<ContentSource>,
    /// Items carrying this tag.
    pub tag: Option<String>,
    pub unit_id: Option<UnitId>,
    /// Words in the title.
    pub q: Option<String>,
}

/// A LIKE pattern matching `text` anywhere, its wildcards escaped (with `ESCAPE '\'`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    // the database folds case on both sides (`LOWER`), each as it does
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// WeCom media made from a stored file, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    pub media_id: String,
    pub uploaded_at: i64,
}

impl TenantScope<'_> {
    /// Stores a file uploaded for the library.
    pub async fn put_content_file(
        &self,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        uploaded_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<FileInfo> {
        let (staged, bytes) = self.store.stage_file(bytes).await?;
        let mut tx = self.store.begin().await?;
        let info = insert_file_in(&mut tx, self.tenant, name, content_type, staged, &bytes).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO content_files (tenant_id, file_id, created_by_staff_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(self.tenant.0)
            .bind(info.id.0)
            .bind(uploaded_by.map(|s| s.0))
            .bind(info.created_at)
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONTENT_FILE_UPLOADED, "file", info.id.0).with_details(
                json!({"name": info.name, "content_type": info.content_type, "size": info.size}),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// A file uploaded for the library (not found for any other file).
    pub async fn content_file_info(&self, id: FileId) -> Result<FileInfo> {
        let known: Option<i64> = on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT file_id FROM content_files WHERE tenant_id = $1 AND file_id = $2",
            )
            .bind(self.tenant.0)
            .bind(id.0)
            .fetch_optional(db)
            .await?
        });
        known.ok_or(StoreError::NotFound("file"))?;
        self.file_info(id).await
    }

    /// A file uploaded for the library, with its bytes.
    pub async fn content_file(&self, id: FileId) -> Result<(FileInfo, Vec<u8>)> {
        self.content_file_info(id).await?;
        self.get_file(id).await
    }

    /// Whether what an item names exists: its unit, and each file uploaded for the
    /// library and of a type and size its kind takes (422 naming the field otherwise).
    async fn check_content_spec(&self, spec: &ContentSpec) -> Result<()> {
        if let Some(unit) = spec.unit_id {
            self.get_unit(unit).await.map_err(|e| match e {
                StoreError::NotFound(_) => {
                    StoreError::Domain(DomainError::invalid("unit_id", "no such unit"))
                }
                e => e,
            })?;
        }
        for (field, file, rule) in spec.body.files(spec.kind) {
            let info = self.content_file_info(file).await.map_err(|e| match e {
                StoreError::NotFound(_) => StoreError::Domain(DomainError::invalid(
                    field,
                    "no such file: upload it first (POST /api/v1/content/files)",
                )),
                e => e,
            })?;
            rule.check(field, &info.content_type, info.size)?;
        }
        Ok(())
    }

    /// Whether the scope may change an item: made by staff it reaches (or it reaches the
    /// whole tenant).
    fn check_may_change(&self, item: &ContentItem) -> Result<()> {
        if self.reach().is_tenant_wide() || item.created_by.is_some_and(|s| self.reaches(Some(s))) {
            Ok(())
        } else {
            Err(StoreError::OutOfReach(
                "only staff who reach whoever made a content item may change it".into(),
            ))
        }
    }

    pub async fn create_content_item(
        &self,
        spec: &ContentSpec,
        created_by: Option<StaffId>,
        actor: &Actor,
    ) -> Result<ContentItem> {
        self.check_content_spec(spec).await?;
        let now = now_ms();
        let (tags, body) = texts_of(spec)?;
        let mut tx = self.store.begin().await?;
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO content_items (tenant_id, kind, title, category, source, tags, \
                 unit_id, body, created_by_staff_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
            )
            .bind(self.tenant.0)
            .bind(spec.kind.as_str())
            .bind(&spec.title)
            .bind(spec.category.as_str())
            .bind(spec.source.as_str())
            .bind(&tags)
            .bind(spec.unit_id.map(|u| u.0))
            .bind(&body)
            .bind(created_by.map(|s| s.0))
            .bind(now)
            .fetch_one(&mut *c)
            .await?
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONTENT_ITEM_CREATED, "content_item", id)
                .with_details(json!({"kind": spec.kind.as_str(), "title": spec.title})),
        )
        .await?;
        tx.commit().await?;
        self.get_content_item(ContentItemId(id)).await
    }

    /// A live item.
    pub async fn get_content_item(&self, id: ContentItemId) -> Result<ContentItem> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM content_items \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        let row: Option<ItemRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(id.0)
                .fetch_optional(db)
                .await?
        });
        row.ok_or(StoreError::NotFound("content item"))?.try_into()
    }

    /// The live items the filter keeps, newest first.
    pub async fn list_content_items(
        &self,
        filter: &ContentFilter,
        page: PageRequest,
    ) -> Result<Page<ContentItem>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM content_items WHERE tenant_id = $1 \
             AND deleted_at IS NULL AND id < $2 \
             AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR category = $4) \
             AND ($5 IS NULL OR source = $5) AND ($6 IS NULL OR unit_id = $6) \
             AND ($7 IS NULL OR LOWER(tags) LIKE LOWER($7) ESCAPE '\\') \
             AND ($8 IS NULL OR LOWER(title) LIKE LOWER($8) ESCAPE '\\') \
             ORDER BY id DESC LIMIT $9"
        );
        // a tag is matched as its JSON string (quotes included) in the array
        let tag = filter
            .tag
            .as_deref()
            .map(|t| contains_pattern(&serde_json::Value::from(t.trim()).to_string()));
        let q = filter.q.as_deref().map(|q| contains_pattern(q.trim()));
        let before = match page.after_id() {
            0 => i64::MAX,
            after => after,
        };
        let rows: Vec<ItemRow> = on_db!(self.store, |db| {
            sqlx::query_as(&sql)
                .bind(self.tenant.0)
                .bind(before)
                .bind(filter.kind.map(|k| k.as_str()))
                .bind(filter.category.map(|c| c.as_str()))
                .bind(filter.source.map(|s| s.as_str()))
                .bind(filter.unit_id.map(|u| u.0))
                .bind(&tag)
                .bind(&q)
                .bind(page.fetch_limit())
                .fetch_all(db)
                .await?
        });
        let items = rows
            .into_iter()
            .map(ContentItem::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |i| i.id.0))
    }

    /// Changes an item the scope may change, as it was read (`item`): a change made
    /// since is not overwritten (409).
    pub async fn update_content_item(
        &self,
        item: &ContentItem,
        spec: &ContentSpec,
        actor: &Actor,
    ) -> Result<ContentItem> {
        let id = item.id;
        self.check_may_change(item)?;
        self.check_content_spec(spec).await?;
        let (tags, body) = texts_of(spec)?;
        let mut tx = self.store.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE content_items SET title = $1, category = $2, source = $3, tags = $4, \
                 unit_id = $5, body = $6, updated_at = $7 \
                 WHERE tenant_id = $8 AND id = $9 AND deleted_at IS NULL AND updated_at = $10",
            )
            .bind(&spec.title)
            .bind(spec.category.as_str())
            .bind(spec.source.as_str())
            .bind(&tags)
            .bind(spec.unit_id.map(|u| u.0))
            .bind(&body)
            .bind(now_ms().max(item.updated_at + 1))
            .bind(self.tenant.0)
            .bind(id.0)
            .bind(item.updated_at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            // as read: a change made meanwhile is not overwritten
            return Err(StoreError::Conflict(
                "this item was changed or deleted meanwhile: read it again".into(),
            ));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONTENT_ITEM_UPDATED, "content_item", id.0)
                .with_details(json!({"title": spec.title})),
        )
        .await?;
        tx.commit().await?;
        self.get_content_item(id).await
    }

    /// Deletes an item the scope may change: gone from the library, kept (with its
    /// files) for the sends that used it.
    pub async fn delete_content_item(&self, id: ContentItemId, actor: &Actor) -> Result<()> {
        let item = self.get_content_item(id).await?;
        self.check_may_change(&item)?;
        let mut tx = self.store.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE content_items SET deleted_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL",
            )
            .bind(now_ms())
            .bind(self.tenant.0)
            .bind(id.0)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound("content item"));
        }
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::CONTENT_ITEM_DELETED, "content_item", id.0)
                .with_details(json!({"title": item.title})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The WeCom media recorded for a file of a connector (`purpose`: `media` or
    /// `image_url`).
    pub async fn content_media(
        &self,
        connector: ConnectorId,
        file: FileId,
        purpose: &str,
    ) -> Result<Option<StoredMedia>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            media_id: String,
            uploaded_at: i64,
        }
        let row: Option<Row> = on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT media_id, uploaded_at FROM content_media WHERE tenant_id = $1 \
                 AND connector_id = $2 AND file_id = $3 AND purpose = $4",
            )
            .bind(self.tenant.0)
            .bind(connector.0)
            .bind(file.0)
            .bind(purpose)
            .fetch_optional(db)
            .await?
        });
        Ok(row.map(|r| StoredMedia {
            media_id: r.media_id,
            uploaded_at: r.uploaded_at,
        }))
    }

    /// Records WeCom media made from a file, replacing what was recorded.
    pub async fn record_content_media(
        &self,
        connector: ConnectorId,
        file: FileId,
        purpose: &str,
        media: &StoredMedia,
    ) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO content_media (tenant_id, connector_id, file_id, purpose, media_id, \
                 uploaded_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, connector_id, file_id, purpose) \
                 DO UPDATE SET media_id = excluded.media_id, uploaded_at = excluded.uploaded_at",
            )
            .bind(self.tenant.0)
            .bind(connector.0)
            .bind(file.0)
            .bind(purpose)
            .bind(&media.media_id)
            .bind(media.uploaded_at)
            .execute(db)
            .await?;
        });
        Ok(())
    }
}

/// An item's tags and body as stored.
fn texts_of(spec: &ContentSpec) -> Result<(String, String)> {
    let tags = serde_json::to_string(&spec.tags)
        .map_err(|e| StoreError::Corrupt(format!("content tags: {e}")))?;
    let body = serde_json::to_string::<ContentBody>(&spec.body)
        .map_err(|e| StoreError::Corrupt(format!("content body: {e}")))?;
    Ok((tags, body))
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
        assert_eq!(contains_pattern("VIP"), "%VIP%");
    }
}
