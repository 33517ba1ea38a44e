-- The caller (an access token's sub) who created each order; NULL for
-- orders made with authentication disabled or before it existed, which only
-- admin (or the open interface) sees.
ALTER TABLE orders ADD COLUMN owner text;
-- Its index, orders_by_owner_and_creation, is built after the migrations,
-- CONCURRENTLY: here it would stop every write to orders while it builds
-- (order-service's lib.rs, INDEXES).

-- Signed internal calls accepted, by webhook-id: the same signed request
-- again is a replay and is refused. Kept a little longer than a signature
-- stays fresh (5 minutes), then pruned.
CREATE TABLE signed_calls_seen (
    webhook_id text        PRIMARY KEY,
    seen_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX signed_calls_seen_by_age ON signed_calls_seen (seen_at);
