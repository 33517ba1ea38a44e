CREATE TABLE payments (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id   uuid        NOT NULL,
    amount     bigint      NOT NULL CHECK (amount >= 1),
    provider   text        NOT NULL CHECK (length(provider) BETWEEN 1 AND 100),
    status     text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'failed')),
    paid_at    timestamptz CHECK ((status = 'success') = (paid_at IS NOT NULL)),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- At most one payment per order, enforced here rather than by a check
-- before the insert (measured: check-then-insert duplicated under races).
CREATE UNIQUE INDEX payments_one_per_order ON payments (order_id);

-- The transactional outbox: a payment's outcome for order-service, written
-- in the same transaction as the payment's change of status and delivered
-- afterwards by a dispatcher.
CREATE TABLE order_notifications (
    payment_id      uuid        PRIMARY KEY REFERENCES payments (id),
    -- Standard Webhooks message id: the same on every attempt, order-service's
    -- deduplication key.
    webhook_id      text        NOT NULL UNIQUE,
    order_id        uuid        NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('success', 'failed')),
    amount          bigint      NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'rejected', 'dead_letter')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A claim: the instance delivering it, until when. A claim that outlives
    -- its instance expires and another instance takes the record over.
    locked_by       text,
    locked_until    timestamptz,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- After this, failures are no longer retried: the record becomes a dead letter.
    give_up_at      timestamptz NOT NULL
);

CREATE INDEX order_notifications_due ON order_notifications (next_attempt_at) WHERE state = 'pending';
