-- Orders and after-sales, per-customer purchase figures and event counts, notes,
-- consent, and imports.

-- purchase figures kept current as orders change (money in minor units)
ALTER TABLE customers ADD COLUMN order_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN order_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN first_order_at INTEGER;
ALTER TABLE customers ADD COLUMN last_order_at INTEGER;
-- set when the customer's personal data was erased on request
ALTER TABLE customers ADD COLUMN erased_at INTEGER;

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    -- the brand's own order id
    order_id TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    unit_id INTEGER,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    refunded_amount INTEGER NOT NULL DEFAULT 0,
    items TEXT NOT NULL,
    properties TEXT NOT NULL,
    ordered_at INTEGER NOT NULL,
    paid_at INTEGER,
    refunded_at INTEGER,
    origin TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, order_id),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id)
);
CREATE INDEX orders_customer ON orders (tenant_id, customer_id, ordered_at);

CREATE TABLE after_sales (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    order_ref INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    amount INTEGER NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, order_ref) REFERENCES orders (tenant_id, id)
);
CREATE INDEX after_sales_order ON after_sales (tenant_id, order_ref);

-- events per customer, name and day (UTC), for counts in rolling windows and the last
-- time of each event
CREATE TABLE customer_event_days (
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, name, day)
) WITHOUT ROWID;

CREATE TABLE customer_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    author_staff_id INTEGER,
    author_label TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX customer_notes_customer ON customer_notes (tenant_id, customer_id, id);

-- every consent change; the newest per customer and channel is in force
CREATE TABLE consent_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    note TEXT,
    at INTEGER NOT NULL,
    actor_label TEXT NOT NULL,
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX consent_changes_customer ON consent_changes (tenant_id, customer_id, channel, id);

CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    file_name TEXT NOT NULL,
    total_rows INTEGER NOT NULL DEFAULT 0,
    processed_rows INTEGER NOT NULL DEFAULT 0,
    stored_rows INTEGER NOT NULL DEFAULT 0,
    rejected_rows INTEGER NOT NULL DEFAULT 0,
    rejects TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
);
