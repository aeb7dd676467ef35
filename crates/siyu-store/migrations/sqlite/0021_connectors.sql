-- Channel connectors (src/connectors/): a tenant's accounts on channels siyu reaches
-- customers and staff through, WeCom first. config holds what may be shown (corp id,
-- agent id, API base URL, the default welcome); secrets (the app secret, the callback
-- token and EncodingAESKey) are sealed with the server's secret key, the tenant and the
-- connector bound in, and never leave the store in the clear. Health is what the last
-- calls said: unhealthy after a configuration error (a revoked secret), until a call
-- succeeds again.
CREATE TABLE connectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL CHECK (kind IN ('wecom')),
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    sealed_secrets BLOB NOT NULL,
    healthy BOOLEAN NOT NULL DEFAULT TRUE,
    last_success_at INTEGER,
    last_error_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- the access token of a connector's secret, shared by every node (WeCom gives the same
-- token until it expires, and gettoken is rate limited like any call), sealed
CREATE TABLE connector_tokens (
    connector_id INTEGER PRIMARY KEY REFERENCES connectors (id) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL
);

-- calls made per connector, API and window (span 'minute' or 'hour', window_start in
-- ms), so that every node together stays under the channel's published limits; and
-- an API paused after the channel said "too often" (45009), with how many times in a
-- row, so the back-off grows and the console can show it
CREATE TABLE connector_call_windows (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    api TEXT NOT NULL,
    span TEXT NOT NULL CHECK (span IN ('minute', 'hour')),
    window_start INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (connector_id, api, span, window_start)
);
CREATE TABLE connector_api_pauses (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    api TEXT NOT NULL,
    until INTEGER NOT NULL,
    strikes INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (connector_id, api)
);

-- callbacks taken, by a key of what they say, so one the channel repeats (WeCom sends
-- an event again when not answered in 5 s, up to 3 times) is processed once; pruned
CREATE TABLE connector_callbacks (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    dedupe_key TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    job_id INTEGER,
    PRIMARY KEY (connector_id, dedupe_key)
);
CREATE INDEX connector_callbacks_received ON connector_callbacks (received_at);

-- a sync's checkpoint, written in the transaction of each page it stores, so a sync
-- cut off halfway goes on from its last page (what: 'staff' or 'customers')
CREATE TABLE connector_syncs (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    what TEXT NOT NULL,
    job_id INTEGER,
    checkpoint TEXT NOT NULL DEFAULT '{}',
    started_at INTEGER,
    finished_at INTEGER,
    items INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connector_id, what)
);

-- every send made through a connector, per recipient, with its status
CREATE TABLE connector_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    connector_id INTEGER REFERENCES connectors (id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    customer_id INTEGER,
    staff_id INTEGER,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed', 'refused', 'dropped')),
    detail TEXT,
    job_id INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX connector_sends_customer ON connector_sends (tenant_id, customer_id, created_at);
CREATE INDEX connector_sends_staff ON connector_sends (connector_id, staff_id, created_at);

-- WeCom departments, each mapped once by an admin onto a unit (unmapped ones fall
-- under the root)
CREATE TABLE wecom_departments (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    department_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    parent_id INTEGER NOT NULL,
    unit_id INTEGER,
    PRIMARY KEY (connector_id, department_id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id)
);

-- WeCom members, matched to siyu staff by userid
CREATE TABLE wecom_members (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    userid TEXT NOT NULL,
    staff_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    main_department INTEGER,
    status INTEGER NOT NULL,
    left_at INTEGER,
    synced_at INTEGER NOT NULL,
    PRIMARY KEY (connector_id, userid),
    UNIQUE (connector_id, staff_id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);

-- a customer's follow relations: which members have them as an external contact, with
-- what remark, corp tags (WeCom tag ids) and how they were added. Personal tags are
-- read lazily (personal_tags_at says when). deleted_at is set when the relation ended.
CREATE TABLE wecom_follows (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    external_userid TEXT NOT NULL,
    userid TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    remark TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    add_way INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '',
    oper_userid TEXT NOT NULL DEFAULT '',
    added_at INTEGER NOT NULL,
    tag_ids TEXT NOT NULL DEFAULT '[]',
    personal_tags TEXT,
    personal_tags_at INTEGER,
    synced_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (connector_id, external_userid, userid)
);
CREATE INDEX wecom_follows_customer ON wecom_follows (tenant_id, customer_id);
CREATE INDEX wecom_follows_member ON wecom_follows (connector_id, userid);

-- staff may now exist without an email or a password: WeCom members synced before an
-- admin invites them. The email's NOT NULL goes, so the table is rebuilt as in 0011.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE sessions_kept AS SELECT * FROM sessions;
CREATE TABLE saved_views_kept AS SELECT * FROM saved_views;
CREATE TABLE staff_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    unit_id INTEGER NOT NULL,
    role_id INTEGER NOT NULL,
    email TEXT,
    name TEXT NOT NULL,
    password_hash TEXT,
    data_scope TEXT NOT NULL CHECK (data_scope IN ('own', 'unit_subtree', 'tenant')),
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, email),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id)
);
INSERT INTO staff_rebuilt (id, tenant_id, unit_id, role_id, email, name, password_hash,
    data_scope, status, created_at, updated_at, last_login_at)
SELECT id, tenant_id, unit_id, role_id, email, name, password_hash,
    data_scope, status, created_at, updated_at, last_login_at FROM staff;
DELETE FROM sqlite_sequence WHERE name = 'staff_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'staff_rebuilt', seq FROM sqlite_sequence WHERE name = 'staff';
DROP TABLE staff;
ALTER TABLE staff_rebuilt RENAME TO staff;
CREATE INDEX staff_unit ON staff (tenant_id, unit_id);
CREATE INDEX staff_role ON staff (tenant_id, role_id);
CREATE INDEX staff_email ON staff (email);
INSERT INTO sessions SELECT * FROM sessions_kept;
INSERT INTO saved_views SELECT * FROM saved_views_kept;
DROP TABLE sessions_kept;
DROP TABLE saved_views_kept;
