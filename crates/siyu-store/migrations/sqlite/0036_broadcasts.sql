-- Mass sends (src/engagement/broadcasts.rs, broadcast_sends.rs). A send is planned once,
-- in one transaction, into its recipients (sorted, in batches of consecutive customers)
-- and its batches; a batch records its intent before the channel is called and the
-- channel's answer after, so a batch is never sent twice.

CREATE TABLE broadcasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    -- JSON: {"condition": …} or {"customers": […]}
    audience TEXT NOT NULL,
    text TEXT NOT NULL,
    frequency_cap TEXT NOT NULL,
    send_at INTEGER NOT NULL,
    -- set by planning
    recipients INTEGER,
    excluded TEXT NOT NULL DEFAULT '{}',
    batches INTEGER NOT NULL DEFAULT 0,
    -- moved by each batch's answer
    sent INTEGER NOT NULL DEFAULT 0,
    batches_sent INTEGER NOT NULL DEFAULT 0,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    planned_at INTEGER,
    finished_at INTEGER,
    UNIQUE (tenant_id, id)
);
CREATE INDEX broadcasts_tenant ON broadcasts (tenant_id, id);

CREATE TABLE broadcast_batches (
    tenant_id INTEGER NOT NULL,
    broadcast_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    recipients INTEGER NOT NULL,
    -- planned, sending (intent recorded: the channel may have it), sent, cancelled
    state TEXT NOT NULL,
    intent_at INTEGER,
    answered_at INTEGER,
    -- the channel's answer (JSON)
    answer TEXT,
    PRIMARY KEY (broadcast_id, batch),
    FOREIGN KEY (tenant_id, broadcast_id) REFERENCES broadcasts (tenant_id, id)
) WITHOUT ROWID;
-- the frequency cap reads the batches a channel answered in a window
CREATE INDEX broadcast_batches_answered ON broadcast_batches (tenant_id, answered_at)
    WHERE state = 'sent';

-- written in customer order, so it grows at its end
CREATE TABLE broadcast_recipients (
    tenant_id INTEGER NOT NULL,
    broadcast_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    PRIMARY KEY (broadcast_id, batch, customer_id)
) WITHOUT ROWID;

-- The sandbox channel's side: what it received. A delivery is keyed by the batch (the
-- key siyu gives the channel), so asking twice delivers once; its messages carry no
-- uniqueness, so a double would be seen and counted.
CREATE TABLE sandbox_deliveries (
    tenant_id INTEGER NOT NULL,
    broadcast_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    text TEXT NOT NULL,
    messages INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (broadcast_id, batch)
) WITHOUT ROWID;
CREATE TABLE sandbox_messages (
    tenant_id INTEGER NOT NULL,
    broadcast_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    customer_id INTEGER NOT NULL
);
CREATE INDEX sandbox_messages_broadcast ON sandbox_messages (broadcast_id, customer_id);
