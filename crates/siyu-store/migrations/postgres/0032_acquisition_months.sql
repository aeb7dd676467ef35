-- Acquisition reports over long ranges (src/acquisition/rollup.rs, reports.rs): the
-- same figures as channel_code_days kept per code and month (months since 1970-01,
-- by the tenant's local day) and per tenant and day (all codes together, the unknown
-- code included), written in the same transaction as the day rows. A year's report of
-- a thousand codes then sums 12,000 month rows and the two partial months' days, not
-- 365,000 day rows, and its daily trend reads 365 rows.

CREATE TABLE channel_code_months (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    code_id BIGINT NOT NULL,
    month BIGINT NOT NULL,
    scans BIGINT NOT NULL DEFAULT 0,
    crawler_fetches BIGINT NOT NULL DEFAULT 0,
    adds BIGINT NOT NULL DEFAULT 0,
    deleted_by_customer BIGINT NOT NULL DEFAULT 0,
    deleted_by_member BIGINT NOT NULL DEFAULT 0,
    customers BIGINT NOT NULL DEFAULT 0,
    first_orders BIGINT NOT NULL DEFAULT 0,
    gmv BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month, code_id)
);

CREATE TABLE channel_tenant_days (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    day BIGINT NOT NULL,
    scans BIGINT NOT NULL DEFAULT 0,
    crawler_fetches BIGINT NOT NULL DEFAULT 0,
    adds BIGINT NOT NULL DEFAULT 0,
    deleted_by_customer BIGINT NOT NULL DEFAULT 0,
    deleted_by_member BIGINT NOT NULL DEFAULT 0,
    customers BIGINT NOT NULL DEFAULT 0,
    first_orders BIGINT NOT NULL DEFAULT 0,
    gmv BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

INSERT INTO channel_code_months (tenant_id, code_id, month, scans, crawler_fetches, adds,
    deleted_by_customer, deleted_by_member, customers, first_orders, gmv)
SELECT tenant_id, code_id,
    CAST((EXTRACT(YEAR FROM DATE '1970-01-01' + CAST(day AS INTEGER)) - 1970) * 12
        + EXTRACT(MONTH FROM DATE '1970-01-01' + CAST(day AS INTEGER)) - 1 AS BIGINT),
    CAST(SUM(scans) AS BIGINT), CAST(SUM(crawler_fetches) AS BIGINT), CAST(SUM(adds) AS BIGINT),
    CAST(SUM(deleted_by_customer) AS BIGINT), CAST(SUM(deleted_by_member) AS BIGINT),
    CAST(SUM(customers) AS BIGINT), CAST(SUM(first_orders) AS BIGINT), CAST(SUM(gmv) AS BIGINT)
FROM channel_code_days GROUP BY 1, 2, 3;

INSERT INTO channel_tenant_days (tenant_id, day, scans, crawler_fetches, adds,
    deleted_by_customer, deleted_by_member, customers, first_orders, gmv)
SELECT tenant_id, day, CAST(SUM(scans) AS BIGINT), CAST(SUM(crawler_fetches) AS BIGINT), CAST(SUM(adds) AS BIGINT),
    CAST(SUM(deleted_by_customer) AS BIGINT), CAST(SUM(deleted_by_member) AS BIGINT),
    CAST(SUM(customers) AS BIGINT), CAST(SUM(first_orders) AS BIGINT), CAST(SUM(gmv) AS BIGINT)
FROM channel_code_days GROUP BY tenant_id, day;
