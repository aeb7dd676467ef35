-- customer group chats (客户群) of a corp, kept current by sync and change_external_chat,
-- for group codes and group SOP later
CREATE TABLE wecom_group_chats (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    chat_id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner_userid TEXT NOT NULL,
    notice TEXT NOT NULL DEFAULT '',
    member_version TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    dismissed_at INTEGER,
    synced_at INTEGER NOT NULL,
    PRIMARY KEY (connector_id, chat_id)
);

-- who is in each chat: staff (member_type 1, a userid) or customers (2, an external
-- userid, linked to a profile when siyu has it); quit_at when they left
CREATE TABLE wecom_chat_members (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    chat_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type INTEGER NOT NULL,
    customer_id INTEGER,
    name TEXT NOT NULL DEFAULT '',
    join_time INTEGER NOT NULL,
    join_scene INTEGER NOT NULL DEFAULT 0,
    invitor TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    quit_at INTEGER,
    PRIMARY KEY (connector_id, chat_id, member_id)
);
CREATE INDEX wecom_chat_members_customer ON wecom_chat_members (tenant_id, customer_id);
