-- Acquisition (src/acquisition/): the brand's accounts on public platforms, and the
-- channel codes (渠道活码) that lead people from them into the private domain.

CREATE TABLE channel_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    domain_class TEXT NOT NULL CHECK (domain_class IN ('public', 'hybrid', 'private')),
    handle TEXT NOT NULL DEFAULT '',
    unit_id INTEGER,
    owner_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, platform, name),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_staff_id) REFERENCES staff (tenant_id, id)
);

-- a code is known by its state, unique among the tenant's live codes; a deleted code
-- keeps its row (deleted_at) so what it brought stays attributed to it. The contact
-- way's columns say what WeCom last took (config_id is the only handle WeCom gives)
CREATE TABLE channel_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    account_id INTEGER,
    connector_id INTEGER REFERENCES connectors (id) ON DELETE SET NULL,
    unit_id INTEGER,
    welcome TEXT,
    skip_verify BOOLEAN NOT NULL,
    routing TEXT NOT NULL,
    created_by_staff_id INTEGER,
    config_id TEXT,
    qr_code_url TEXT,
    current_staff_id INTEGER,
    current_route TEXT,
    way_synced_at INTEGER,
    way_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES channel_accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id)
);
CREATE UNIQUE INDEX channel_codes_live_state ON channel_codes (tenant_id, state)
    WHERE deleted_at IS NULL;

-- the members a code routes adds to, in order
CREATE TABLE channel_code_members (
    code_id INTEGER NOT NULL REFERENCES channel_codes (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    staff_id INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('primary', 'backup', 'after_hours')),
    weight INTEGER NOT NULL,
    daily_capacity INTEGER,
    PRIMARY KEY (code_id, staff_id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id)
);
CREATE INDEX channel_code_members_staff ON channel_code_members (tenant_id, staff_id);

-- the tags a code puts on whoever comes through it
CREATE TABLE channel_code_tags (
    code_id INTEGER NOT NULL REFERENCES channel_codes (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (code_id, tag_id)
);

-- every add through a code: who came (the contact, their profile), to which member,
-- why that member (primary, backup, after_hours, overflow), when; one per relation.
-- Routing counts a member's adds today here; reports count a code's adds
CREATE TABLE channel_code_adds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    code_id INTEGER NOT NULL REFERENCES channel_codes (id),
    external_userid TEXT NOT NULL,
    userid TEXT NOT NULL,
    staff_id INTEGER,
    customer_id INTEGER NOT NULL,
    route TEXT,
    added_at INTEGER NOT NULL,
    UNIQUE (code_id, external_userid, userid)
);
CREATE INDEX channel_code_adds_code_time ON channel_code_adds (code_id, added_at);
CREATE INDEX channel_code_adds_tenant_time ON channel_code_adds (tenant_id, added_at);
