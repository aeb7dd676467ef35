-- large exports made by a job (see src/exports.rs): the file a job wrote, served to
-- whoever may read the job until the file is forgotten
CREATE TABLE exports (
    job_id BIGINT PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    file_id BIGINT NOT NULL REFERENCES files (id),
    rows BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
