-- What each merge moved, so an admin can undo it, and pairs of profiles an admin has
-- kept apart (never merged again automatically).

ALTER TABLE customer_merges ADD COLUMN merged_profile TEXT;
ALTER TABLE customer_merges ADD COLUMN survivor_profile TEXT;
ALTER TABLE customer_merges ADD COLUMN undone_at INTEGER;
ALTER TABLE customer_merges ADD COLUMN undone_by TEXT;

CREATE TABLE customer_merge_moves (
    merge_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    PRIMARY KEY (merge_id, kind, row_id)
);

CREATE TABLE customer_kept_apart (
    tenant_id INTEGER NOT NULL,
    customer_a INTEGER NOT NULL,
    customer_b INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_a, customer_b)
);
