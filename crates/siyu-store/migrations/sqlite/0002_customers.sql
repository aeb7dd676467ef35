-- The customer pool: sources and their write keys, customer profiles, identities,
-- events, message-id deduplication and the record of profile merges.

CREATE TABLE sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    write_key_hash TEXT NOT NULL UNIQUE,
    write_key_prefix TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    last_event_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    -- set when this profile was merged into another; the survivor holds its data
    merged_into_id INTEGER,
    owner_staff_id INTEGER,
    -- copies of the name, email and phone for search and lists
    name TEXT,
    email TEXT,
    phone TEXT,
    traits TEXT NOT NULL,
    trait_times TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX customers_live ON customers (tenant_id, merged_into_id, id);

CREATE TABLE identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    source_id INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, value),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX identities_customer ON identities (tenant_id, customer_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    properties TEXT NOT NULL,
    context TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, source_id) REFERENCES sources (tenant_id, id)
);
CREATE INDEX events_customer ON events (tenant_id, customer_id, id);

-- Message ids seen per source within the deduplication window; older rows are pruned.
CREATE TABLE message_ids (
    source_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source_id, message_id)
) WITHOUT ROWID;
CREATE INDEX message_ids_received ON message_ids (received_at);

CREATE TABLE customer_merges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    survivor_id INTEGER NOT NULL,
    merged_id INTEGER NOT NULL,
    message_id TEXT,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX customer_merges_survivor ON customer_merges (tenant_id, survivor_id);
