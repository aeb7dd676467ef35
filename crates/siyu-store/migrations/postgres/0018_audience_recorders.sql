-- what the audience recorders have recorded (segment entries and exits, tag-rule
-- actions, lifecycle stages, counts over time), per tenant: the worker node holding
-- the lease records, from its own index, the changes after recorded_through; a full
-- pass when the tenant's day, settings or RFM cut points moved since the last one.
-- See siyu-store/src/recording.rs.
CREATE TABLE audience_recorders (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    recorded_through BIGINT NOT NULL DEFAULT 0,
    full_pass_day BIGINT,
    settings_version BIGINT,
    cut_points TEXT,
    counted_at BIGINT,
    holder TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
-- a tenant's changes after the recorded one
CREATE INDEX customer_changes_by_tenant ON customer_changes (tenant_id, seq);
