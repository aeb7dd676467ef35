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

-- an import is a durable job (src/imports.rs): its file, its mapping, its job, and how
-- many records of the file are settled (stored, unchanged or refused), written in the
-- transaction of each part. file_id is cleared when the file is deleted at the end.
ALTER TABLE imports ADD COLUMN file_id INTEGER;
ALTER TABLE imports ADD COLUMN job_id INTEGER;
ALTER TABLE imports ADD COLUMN mapping TEXT NOT NULL DEFAULT '{}';
ALTER TABLE imports ADD COLUMN items_read INTEGER NOT NULL DEFAULT 0;

-- imports of the versions before, which ran in their server's process: one still
-- running now was cut off by its process and will not go on
UPDATE imports SET status = 'interrupted' WHERE status = 'running';
