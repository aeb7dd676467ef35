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
