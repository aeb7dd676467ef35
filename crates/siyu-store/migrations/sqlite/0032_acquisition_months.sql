-- Acquisition reports over long ranges (src/acquisition/rollup.rs, reports.rs): the
-- same figures as channel_code_days kept per code and month (months since 1970-01,
-- by the tenant's local day) and per tenant and day (all codes together, the unknown
-- code included), written in the same transaction as the day rows. A year's report of
-- a thousand codes then sums 12,000 month rows and the two partial months' days, not
-- 365,000 day rows, and its daily trend reads 365 rows.

CREATE TABLE channel_code_months (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    code_id INTEGER NOT NULL,
    month INTEGER NOT NULL,
    scans INTEGER NOT NULL DEFAULT 0,
    crawler_fetches INTEGER NOT NULL DEFAULT 0,
    adds INTEGER NOT NULL DEFAULT 0,
    deleted_by_customer INTEGER NOT NULL DEFAULT 0,
    deleted_by_member INTEGER NOT NULL DEFAULT 0,
    customers INTEGER NOT NULL DEFAULT 0,
    first_orders INTEGER NOT NULL DEFAULT 0,
    gmv INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month, code_id)
);

CREATE TABLE channel_tenant_days (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    day INTEGER NOT NULL,
    scans INTEGER NOT NULL DEFAULT 0,
    crawler_fetches INTEGER NOT NULL DEFAULT 0,
    adds INTEGER NOT NULL DEFAULT 0,
    deleted_by_customer INTEGER NOT NULL DEFAULT 0,
    deleted_by_member INTEGER NOT NULL DEFAULT 0,
    customers INTEGER NOT NULL DEFAULT 0,
    first_orders INTEGER NOT NULL DEFAULT 0,
    gmv INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

INSERT INTO channel_code_months (tenant_id, code_id, month, scans, crawler_fetches, adds,
    deleted_by_customer, deleted_by_member, customers, first_orders, gmv)
SELECT tenant_id, code_id,
    (CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) - 1970) * 12
        + CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) - 1,
    SUM(scans), SUM(crawler_fetches), SUM(adds), SUM(deleted_by_customer),
    SUM(deleted_by_member), SUM(customers), SUM(first_orders), SUM(gmv)
FROM channel_code_days GROUP BY 1, 2, 3;

INSERT INTO channel_tenant_days (tenant_id, day, scans, crawler_fetches, adds,
    deleted_by_customer, deleted_by_member, customers, first_orders, gmv)
SELECT tenant_id, day, SUM(scans), SUM(crawler_fetches), SUM(adds), SUM(deleted_by_customer),
    SUM(deleted_by_member), SUM(customers), SUM(first_orders), SUM(gmv)
FROM channel_code_days GROUP BY tenant_id, day;
