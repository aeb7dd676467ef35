-- large exports made by a job (see src/exports.rs): the file a job wrote, served to
-- whoever may read the job until the file is forgotten
CREATE TABLE exports (
    job_id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    file_id INTEGER NOT NULL REFERENCES files (id),
    rows INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
