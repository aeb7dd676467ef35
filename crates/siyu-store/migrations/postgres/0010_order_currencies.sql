-- orders in several currencies: each order's rate to the tenant currency, in
-- millionths, fixed when it is recorded, and what it counts for in the tenant currency
-- (its amount less refunds, converted), which every figure sums. Orders recorded before
-- this were summed as they were, so they keep a rate of 1.
ALTER TABLE orders ADD COLUMN exchange_rate_micros BIGINT NOT NULL DEFAULT 1000000;
ALTER TABLE orders ADD COLUMN net_tenant_amount BIGINT NOT NULL DEFAULT 0;
UPDATE orders SET net_tenant_amount = amount - refunded_amount;
