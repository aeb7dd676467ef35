-- Quick replies (src/engagement/quick_replies.rs): the tenant's library (no owner) and
-- each member of staff's personal one (owner_staff_id), in groups. `terms` holds a
-- reply's words cut for search, each between spaces (siyu_domain's quick_reply). The
-- content item a reply carries is checked there (deleted items are kept, not removed).
CREATE TABLE quick_reply_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    owner_staff_id INTEGER,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX quick_reply_groups_name
    ON quick_reply_groups (tenant_id, COALESCE(owner_staff_id, 0), name);

CREATE TABLE quick_replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    owner_staff_id INTEGER,
    group_id INTEGER,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    content_id INTEGER,
    terms TEXT NOT NULL,
    use_count INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, owner_staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES quick_reply_groups (tenant_id, id)
);
CREATE INDEX quick_replies_library ON quick_replies (tenant_id, owner_staff_id, id);
CREATE INDEX quick_replies_group ON quick_replies (tenant_id, group_id);

-- Each use: who used which reply and when (use counts per member of staff).
CREATE TABLE quick_reply_uses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    reply_id INTEGER NOT NULL REFERENCES quick_replies (id) ON DELETE CASCADE,
    staff_id INTEGER,
    used_at INTEGER NOT NULL
);
CREATE INDEX quick_reply_uses_reply ON quick_reply_uses (tenant_id, reply_id, used_at);
