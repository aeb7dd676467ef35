-- WeCom corp tag groups and tags mirrored by siyu tag groups and tags: a siyu tag group
-- with a row here is a "WeCom group", its tags follow WeCom's (by id, so a rename on
-- either side keeps the pairing)
CREATE TABLE wecom_tag_groups (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    wecom_group_id TEXT NOT NULL,
    tag_group_id INTEGER NOT NULL,
    PRIMARY KEY (connector_id, wecom_group_id),
    UNIQUE (connector_id, tag_group_id),
    FOREIGN KEY (tenant_id, tag_group_id) REFERENCES tag_groups (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE wecom_tags (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    wecom_tag_id TEXT NOT NULL,
    wecom_group_id TEXT NOT NULL,
    tag_id INTEGER NOT NULL,
    PRIMARY KEY (connector_id, wecom_tag_id),
    UNIQUE (connector_id, tag_id),
    FOREIGN KEY (tenant_id, tag_id) REFERENCES tags (tenant_id, id) ON DELETE CASCADE
);

-- each external contact of a corp with the profile it is linked to and a fingerprint of
-- what WeCom said of them: a sync sends an identify event only for a contact that is new
-- or changed, so a corp's daily sync adds nothing to profiles that did not change
CREATE TABLE wecom_contacts (
    connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    external_userid TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    synced_at INTEGER NOT NULL,
    PRIMARY KEY (connector_id, external_userid)
);
CREATE INDEX wecom_contacts_customer ON wecom_contacts (tenant_id, customer_id);
