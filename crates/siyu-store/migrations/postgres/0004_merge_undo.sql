-- What each merge moved, so an admin can undo it, and pairs of profiles an admin has
-- kept apart (never merged again automatically).

ALTER TABLE customer_merges ADD COLUMN merged_profile TEXT;
ALTER TABLE customer_merges ADD COLUMN survivor_profile TEXT;
ALTER TABLE customer_merges ADD COLUMN undone_at BIGINT;
ALTER TABLE customer_merges ADD COLUMN undone_by TEXT;

CREATE TABLE customer_merge_moves (
    merge_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    row_id BIGINT NOT NULL,
    PRIMARY KEY (merge_id, kind, row_id)
);

CREATE TABLE customer_kept_apart (
    tenant_id BIGINT NOT NULL,
    customer_a BIGINT NOT NULL,
    customer_b BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_a, customer_b)
);
