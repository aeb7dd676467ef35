-- Group codes (群活码, src/acquisition/group_codes.rs): a WeCom join way over an ordered
-- pool of the corp's customer group chats (a JSON array of chat_ids), kept by siyu on
-- the first five with room; its join way as WeCom last took it. Joins are read from
-- the mirrored chat members' state (wecom_chat_members), so no table of their own.

CREATE TABLE group_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    account_id INTEGER,
    chat_ids TEXT NOT NULL,
    auto_create_room BOOLEAN NOT NULL,
    room_base_name TEXT NOT NULL,
    room_base_id INTEGER NOT NULL,
    way_config_id TEXT,
    way_chat_ids TEXT,
    way_qr_code_url TEXT,
    way_error TEXT,
    way_synced_at INTEGER,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES channel_accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by_staff_id) REFERENCES staff (tenant_id, id)
);
CREATE UNIQUE INDEX group_codes_state ON group_codes (tenant_id, state) WHERE deleted_at IS NULL;
CREATE INDEX wecom_chat_members_state ON wecom_chat_members (connector_id, state) WHERE state <> '';
