-- Acquisition, QR codes and landing pages (src/acquisition/landing.rs): each code has a
-- landing page at /c/{landing_slug} (a random slug: the page is public, its address
-- must not be guessable from another's), the QR image WeCom gave its contact way
-- (fetched and kept: WeCom's URL is the only handle), the visits of its landing page
-- (scans: WeCom reports adds, not scans) and the brand's logo for siyu's own QR codes.

ALTER TABLE channel_codes ADD COLUMN landing_slug TEXT;
UPDATE channel_codes SET landing_slug = lower(hex(randomblob(8)));
CREATE UNIQUE INDEX channel_codes_by_landing ON channel_codes (landing_slug);
-- the code's QR leads to its landing page first, even when WeCom gave a QR of its own
ALTER TABLE channel_codes ADD COLUMN landing_first BOOLEAN NOT NULL DEFAULT FALSE;

-- WeCom's QR image of a code's contact way, and the text it encodes (read from the
-- image, so that siyu can draw it again as SVG or with the brand's logo)
CREATE TABLE channel_code_images (
    code_id INTEGER PRIMARY KEY REFERENCES channel_codes (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    source_url TEXT NOT NULL,
    content_type TEXT NOT NULL,
    image BLOB NOT NULL,
    encoded TEXT,
    fetched_at INTEGER NOT NULL
);

-- every visit of a code's landing page; a visitor is the anonymous id in its cookie,
-- and link-preview crawlers are kept apart (crawler) rather than counted as scans
CREATE TABLE channel_code_scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    code_id INTEGER NOT NULL REFERENCES channel_codes (id),
    visitor TEXT NOT NULL,
    crawler BOOLEAN NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX channel_code_scans_code_time ON channel_code_scans (code_id, at);

-- the brand's logo, drawn in the middle of siyu's QR codes when asked (PNG or JPEG)
CREATE TABLE brand_logos (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants (id),
    content_type TEXT NOT NULL,
    image BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
