-- The content library (src/engagement/content.rs): items of every kind, their body as
-- JSON (the fields their kind takes), tags as a JSON array of names. Deleted items are
-- kept (deleted_at) for the sends that used them.
CREATE TABLE content_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    source TEXT NOT NULL,
    tags TEXT NOT NULL,
    unit_id INTEGER,
    body TEXT NOT NULL,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id)
);
CREATE INDEX content_items_live ON content_items (tenant_id, deleted_at, id);

-- Files uploaded for the library: only these may be named by items and read back
-- through the library (an import's file is not content).
CREATE TABLE content_files (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, file_id)
);

-- A stored file as WeCom media of a connector: media/upload (`media`, lasts 3 days)
-- or media/uploadimg (`image_url`, lasting). Re-uploaded when it has run out.
CREATE TABLE content_media (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    connector_id INTEGER NOT NULL,
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    media_id TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connector_id, file_id, purpose)
);
