//! What a code's QR and landing page need: the code a landing slug names (looked up
//! without a tenant: the page is public), the visits of landing pages (scans), WeCom's
//! QR image of a code's contact way, and the brand's logo.
//!
//! The images are small (WeCom's QR images are tens of kilobytes, a logo at most 1 MiB)
//! and read with the row that names them, so they are kept in the row on both databases
//! rather than as files.

use serde_json::json;
use siyu_domain::acquisition::report::AcquisitionFigures;
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::ids::{ChannelCodeId, TenantId};

use super::rollup::{Rollup, zone_in};
use crate::audit;
use crate::db::{now_ms, on_db};
use crate::tx::on_tx;
use crate::{Result, Store, TenantScope};

/// The code a landing page is for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LandingCode {
    pub tenant_id: i64,
    pub code_id: i64,
    /// Whether WeCom's QR of the code is kept (what the page shows).
    pub has_wecom_image: bool,
    /// Whether the code was deleted (its page says so and counts nothing).
    pub deleted: bool,
}

impl LandingCode {
    pub fn tenant(&self) -> TenantId {
        TenantId(self.tenant_id)
    }

    pub fn code(&self) -> ChannelCodeId {
        ChannelCodeId(self.code_id)
    }
}

/// An image kept for a code or the brand, with what it encodes if it is WeCom's QR.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeptImage {
    pub content_type: String,
    pub image: Vec<u8>,
    /// The text WeCom's QR encodes, as read from its image (none: it did not read).
    pub encoded: Option<String>,
}

/// WeCom's QR image of a code's contact way, as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomQrImage<'a> {
    /// The URL WeCom gave (fetched again only when WeCom gives another).
    pub source_url: &'a str,
    pub content_type: &'a str,
    pub image: &'a [u8],
    pub encoded: Option<&'a str>,
}

impl Store {
    /// The code of a landing slug, deleted or not.
    pub async fn landing_code(&self, slug: &str) -> Result<Option<LandingCode>> {
        Ok(on_db!(self, |db| {
            sqlx::query_as(
                "SELECT c.tenant_id, c.id AS code_id, \
                 EXISTS (SELECT 1 FROM channel_code_images i WHERE i.code_id = c.id) \
                 AS has_wecom_image, c.deleted_at IS NOT NULL AS deleted \
                 FROM channel_codes c WHERE c.landing_slug = $1",
            )
            .bind(slug)
            .fetch_optional(db)
            .await?
        }))
    }
}

impl TenantScope<'_> {
    /// Records a visit of a code's landing page: a scan, or a crawler's fetch kept
    /// apart; the day's figures of the code move with it.
    pub async fn record_code_scan(
        &self,
        code: ChannelCodeId,
        visitor: &str,
        crawler: bool,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO channel_code_scans (tenant_id, code_id, visitor, crawler, at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.tenant.0)
            .bind(code.0)
            .bind(visitor)
            .bind(crawler)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        let zone = zone_in(&mut tx, self.tenant).await?;
        let mut rollup = Rollup::default();
        rollup.code(
            code.0,
            zone.day_of(now),
            AcquisitionFigures {
                scans: i64::from(!crawler),
                crawler_fetches: i64::from(crawler),
                ..Default::default()
            },
        );
        rollup.write(&mut tx, self.tenant).await?;
        tx.commit().await?;
        Ok(())
    }

    /// WeCom's QR image of a code, if kept (whoever's the code is: callers check reach).
    pub async fn channel_code_image(&self, code: ChannelCodeId) -> Result<Option<KeptImage>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT content_type, image, encoded FROM channel_code_images \
                 WHERE tenant_id = $1 AND code_id = $2",
            )
            .bind(self.tenant.0)
            .bind(code.0)
            .fetch_optional(db)
            .await?
        }))
    }

    /// The URL WeCom's kept QR image of a code was fetched from.
    pub async fn channel_code_image_source(&self, code: ChannelCodeId) -> Result<Option<String>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_scalar(
                "SELECT source_url FROM channel_code_images WHERE tenant_id = $1 AND code_id = $2",
            )
            .bind(self.tenant.0)
            .bind(code.0)
            .fetch_optional(db)
            .await?
        }))
    }

    /// Keeps WeCom's QR image of a code, in place of any before.
    pub async fn keep_channel_code_image(
        &self,
        code: ChannelCodeId,
        image: &WecomQrImage<'_>,
    ) -> Result<()> {
        on_db!(self.store, |db| {
            sqlx::query(
                "INSERT INTO channel_code_images (code_id, tenant_id, source_url, content_type, \
                 image, encoded, fetched_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (code_id) DO UPDATE SET source_url = excluded.source_url, \
                 content_type = excluded.content_type, image = excluded.image, \
                 encoded = excluded.encoded, fetched_at = excluded.fetched_at",
            )
            .bind(code.0)
            .bind(self.tenant.0)
            .bind(image.source_url)
            .bind(image.content_type)
            .bind(image.image)
            .bind(image.encoded)
            .bind(now_ms())
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// The brand's logo, if set.
    pub async fn brand_logo(&self) -> Result<Option<KeptImage>> {
        Ok(on_db!(self.store, |db| {
            sqlx::query_as(
                "SELECT content_type, image, CAST(NULL AS TEXT) AS encoded FROM brand_logos WHERE tenant_id = $1",
            )
            .bind(self.tenant.0)
            .fetch_optional(db)
            .await?
        }))
    }

    /// Sets the brand's logo (checked by the caller: a PNG or JPEG siyu can draw).
    /// Audited.
    pub async fn set_brand_logo(
        &self,
        content_type: &str,
        image: &[u8],
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO brand_logos (tenant_id, content_type, image, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET \
                 content_type = excluded.content_type, image = excluded.image, \
                 updated_at = excluded.updated_at",
            )
            .bind(self.tenant.0)
            .bind(content_type)
            .bind(image)
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
        });
        audit::record(
            &mut tx,
            self.tenant,
            actor,
            AuditRecord::new(action::SETTINGS_CHANGED, "setting", 0).with_details(
                json!({"key": "brand_logo", "content_type": content_type, "bytes": image.len()}),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the brand's logo; answers whether there was one. Audited.
    pub async fn delete_brand_logo(&self, actor: &Actor) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let removed = on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM brand_logos WHERE tenant_id = $1")
                .bind(self.tenant.0)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        if removed > 0 {
            audit::record(
                &mut tx,
                self.tenant,
                actor,
                AuditRecord::new(action::SETTINGS_CHANGED, "setting", 0)
                    .with_details(json!({"key": "brand_logo", "removed": true})),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }
}
