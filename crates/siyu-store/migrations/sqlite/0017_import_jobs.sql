-- files kept for work that runs later or on another node (src/files.rs): an import's
-- upload now, exports and the content library later. On PostgreSQL the bytes are in the
-- row (content), where every node reads them; on SQLite they are in the data directory
-- beside the database (storage_key names the file there) and content is used only by
-- an in-memory database. sha256 is checked whenever the bytes are read.
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    storage_key TEXT,
    content BLOB,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
);
