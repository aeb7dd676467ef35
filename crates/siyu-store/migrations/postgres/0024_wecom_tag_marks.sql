-- mirrored corp tags put on or taken off customers in siyu, waiting to be marked on
-- their WeCom follow relations (mark_tag); written in the tagging's transaction, deleted
-- once WeCom has it. While a row waits, what WeCom says of that tag on that customer
-- does not undo it (the change made in siyu is newer than WeCom's view)
CREATE TABLE wecom_tag_marks (
    id BIGSERIAL PRIMARY KEY,
    connector_id BIGINT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    customer_id BIGINT NOT NULL,
    wecom_tag_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    queued_at BIGINT NOT NULL
);
CREATE INDEX wecom_tag_marks_customer ON wecom_tag_marks (connector_id, customer_id);

-- when siyu last marked a tag on the relation: a read of WeCom begun before then is
-- stale (it may lack the mark) and is read again rather than stored
ALTER TABLE wecom_follows ADD COLUMN marked_at BIGINT;
