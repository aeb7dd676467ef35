-- Tracked links (src/acquisition/links.rs): the destinations a tenant registered (links
-- lead only under one), the links, and their figures per local day (days since
-- 1970-01-01 in the tenant's zone): clicks (personal ones among them), counted as their
-- `Link Clicked` events are applied, and crawler fetches, counted as they come.

CREATE TABLE link_destinations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    url_prefix TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, url_prefix)
);

CREATE TABLE tracked_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    destination TEXT NOT NULL,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_term TEXT,
    utm_content TEXT,
    account_id INTEGER,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES channel_accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by_staff_id) REFERENCES staff (tenant_id, id)
);

CREATE TABLE tracked_link_days (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    link_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    clicks INTEGER NOT NULL DEFAULT 0,
    personal_clicks INTEGER NOT NULL DEFAULT 0,
    crawler_fetches INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, link_id),
    FOREIGN KEY (tenant_id, link_id) REFERENCES tracked_links (tenant_id, id)
);
