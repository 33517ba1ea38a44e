CREATE TABLE orders (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    item_name    text        NOT NULL CHECK (length(item_name) BETWEEN 1 AND 200),
    quantity     bigint      NOT NULL CHECK (quantity >= 1),
    price        bigint      NOT NULL CHECK (price >= 1),
    total_amount bigint      NOT NULL CHECK (total_amount = price * quantity),
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'failed')),
    -- Set when the order settles; a repeated callback for the same payment
    -- and outcome is recognised by it.
    payment_id   uuid        CHECK ((status = 'pending') = (payment_id IS NULL)),
    -- clock_timestamp(), not now(): rows created in one transaction still
    -- get distinct times, which keeps the listing order intuitive.
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Keyset pagination walks (created_at, id), with or without a status filter.
CREATE INDEX orders_by_creation ON orders (created_at, id);
CREATE INDEX orders_by_status_and_creation ON orders (status, created_at, id);
