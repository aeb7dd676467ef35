-- Who is in each dynamic segment, so that entering and leaving one is an event that
-- journeys can start from; and tag rules (自动打标签): tags added or removed when a
-- condition holds.

CREATE TABLE segment_memberships (
    tenant_id INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, customer_id)
);

CREATE TABLE segment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    -- entered or exited
    action TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX segment_events_by_segment ON segment_events (tenant_id, segment_id, id);
CREATE INDEX segment_events_by_customer ON segment_events (tenant_id, customer_id, id);

CREATE TABLE tag_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    -- the condition as JSON (the segment language)
    condition TEXT NOT NULL,
    -- tag ids, as JSON lists
    add_tags TEXT NOT NULL,
    remove_tags TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- each customer's lifecycle stage as last recorded, and the changes between stages
CREATE TABLE customer_stages (
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    stage TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE TABLE stage_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX stage_events_by_tenant ON stage_events (tenant_id, id);

-- the sources each customer's events came from (a segment can test them)
CREATE TABLE customer_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    UNIQUE (tenant_id, customer_id, source_id)
);
INSERT INTO customer_sources (tenant_id, customer_id, source_id, first_at)
SELECT tenant_id, customer_id, source_id, MIN(timestamp) FROM events
GROUP BY tenant_id, customer_id, source_id;
