-- Customer transfers between WeCom members (客户继承): one row per customer relation
-- asked to move from the handover member to the takeover member, in office (在职继承)
-- or after the handover left (离职继承). WeCom only starts a transfer (the takeover
-- happens 24 h later, unless the customer refuses or the takeover is at its limit), so
-- the row is followed to its end by jobs: status asking (recorded, WeCom not asked
-- yet), waiting (WeCom's 2), succeeded (1), refused (3, or WeCom's 40128: twice in 90
-- days), takeover_limit (4), failed (WeCom's errcode, reason in words). In-office rows
-- WeCom started count towards its limit of two per customer per 90 days, which siyu
-- checks before asking.
CREATE TABLE wecom_transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL CHECK (kind IN ('in_office', 'resigned')),
    external_userid TEXT NOT NULL,
    customer_id INTEGER,
    handover_userid TEXT NOT NULL,
    handover_staff_id INTEGER,
    takeover_userid TEXT NOT NULL,
    takeover_staff_id INTEGER,
    status TEXT NOT NULL CHECK (status IN
        ('asking', 'waiting', 'succeeded', 'refused', 'takeover_limit', 'failed')),
    errcode INTEGER,
    reason TEXT,
    takeover_at INTEGER,
    asked_at INTEGER NOT NULL,
    finished_at INTEGER,
    job_id INTEGER,
    asked_by_staff_id INTEGER
);
-- a customer has at most one transfer under way per corp (WeCom's 40129)
CREATE UNIQUE INDEX wecom_transfers_pending ON wecom_transfers (connector_id, external_userid)
    WHERE status IN ('asking', 'waiting');
CREATE INDEX wecom_transfers_customer ON wecom_transfers (connector_id, external_userid, asked_at);
CREATE INDEX wecom_transfers_job ON wecom_transfers (job_id);
CREATE INDEX wecom_transfers_list ON wecom_transfers (connector_id, id);
