-- WeCom's relation changes now wait in the intake file (PATH.ingest, see
-- src/connectors/relation_intake.rs), so that taking callbacks never waits for the
-- writer of this file. This file records, per connector, the last change applied, in the
-- transaction that applies it. Changes an earlier version left waiting in
-- wecom_relation_changes here are moved into the intake file at start, and the table
-- stays empty (upgrade with the server stopped, so that no older server applies what
-- is being moved).
CREATE TABLE wecom_relation_applied (
    connector_id INTEGER PRIMARY KEY REFERENCES connectors (id) ON DELETE CASCADE,
    through INTEGER NOT NULL
);
