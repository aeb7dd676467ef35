-- The time zone a tenant keeps its days in (per-day event counts, windows such as
-- `last 30d`, the dashboard's dates). Tenants made before it count in UTC.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
