-- the trait names each tenant has used, on profiles (scope 'customer') and on group
-- memberships (scope 'group'): what the tenant's trait limits count
-- (siyu_domain::traits). Written by ingestion as names first appear; never shrinks.
CREATE TABLE trait_names (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, name)
);
INSERT INTO trait_names (tenant_id, scope, name, first_seen_at)
SELECT c.tenant_id, 'customer', t.key, MIN(c.created_at)
FROM customers c, json_each(c.traits) t
GROUP BY c.tenant_id, t.key;

-- the groups (Segment `group` calls: a company, a household) a customer belongs to,
-- with the group's traits as last sent with them
CREATE TABLE customer_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    group_id TEXT NOT NULL,
    traits TEXT NOT NULL,
    trait_times TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (tenant_id, customer_id, group_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

-- new trait names an event brought that a profile or the tenant had no room for
ALTER TABLE sources ADD COLUMN traits_dropped INTEGER NOT NULL DEFAULT 0;
