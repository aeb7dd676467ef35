-- WeCom's relation changes (src/connectors/wecom_relation_changes.rs): adds and
-- deletions taken from callbacks, each kept here (its event as JSON) in the
-- transaction that answers WeCom, and applied to customers in bulk, oldest first, by
-- the connector's `wecom.relation_changes` job, which deletes them as it applies them.
CREATE TABLE wecom_relation_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX wecom_relation_changes_connector ON wecom_relation_changes (connector_id, id);

-- a relation's adds through codes, latest first: what an ended relation is counted
-- against (one lookup per deletion, never a scan of the tenant's adds)
CREATE INDEX channel_code_adds_relation ON channel_code_adds (tenant_id, external_userid, userid, added_at);

-- who ended a relation ('customer', 'member', 'transfer'); none when it was found gone
-- on reading the contact, with no event saying who: a deletion told afterwards still
-- ends it, as itself (its event and its count for the code)
ALTER TABLE wecom_follows ADD COLUMN ended_by TEXT;
