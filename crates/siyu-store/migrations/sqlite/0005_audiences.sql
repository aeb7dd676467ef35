-- Audiences: tag groups and tags on customers (with the history of who tagged whom,
-- when and why), saved segments, per-tenant settings, and the log of changed customers
-- that every server's in-memory audience index follows.

CREATE TABLE tag_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    -- a group of one unit (a brand's own tags); the whole tenant's when NULL
    unit_id INTEGER,
    name TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id)
);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    group_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    colour TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    -- segments name tags: a name is unique in the tenant
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, group_id) REFERENCES tag_groups (tenant_id, id)
);

CREATE TABLE customer_tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    tag_id INTEGER NOT NULL,
    -- manual, rule, import, channel_code, api
    origin TEXT NOT NULL,
    reason TEXT,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    UNIQUE (tenant_id, customer_id, tag_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, tag_id) REFERENCES tags (tenant_id, id)
);
CREATE INDEX customer_tags_by_tag ON customer_tags (tenant_id, tag_id);

CREATE TABLE customer_tag_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    tag_id INTEGER NOT NULL,
    -- added or removed
    action TEXT NOT NULL,
    origin TEXT NOT NULL,
    reason TEXT,
    actor_label TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX customer_tag_changes_by_customer ON customer_tag_changes (tenant_id, customer_id, id);

CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    description TEXT,
    -- dynamic (membership follows the definition) or static (a frozen list)
    kind TEXT NOT NULL,
    -- the definition as JSON (its text form is printed from it); dynamic segments only
    definition TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- the members of static segments
CREATE TABLE segment_members (
    tenant_id INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, customer_id),
    FOREIGN KEY (tenant_id, segment_id) REFERENCES segments (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

-- a segment's size over time
CREATE TABLE segment_counts (
    tenant_id INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, at)
);

CREATE TABLE tenant_settings (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- every change to a customer that audiences read (traits, tags, owner, events, orders,
-- consent, merges, erasure), in the order committed; pruned after a day
CREATE TABLE customer_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX customer_changes_by_time ON customer_changes (at);

-- segment conditions with event property filters read the events of one name in a
-- bounded window
CREATE INDEX events_by_name ON events (tenant_id, name, timestamp);
