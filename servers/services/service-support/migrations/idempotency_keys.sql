-- Idempotency-Key: a client's key, the request it came with, the attempt
-- processing it and, once answered, the answer, replayed to retries of the
-- same request. Rows older than the keys' lifetime are pruned.
CREATE TABLE idempotency_keys (
    key          text        PRIMARY KEY,
    request      jsonb       NOT NULL,
    -- Only this attempt may record the answer; a retry that takes over an
    -- abandoned key replaces it.
    attempt      uuid        NOT NULL,
    -- Until then the unanswered attempt is presumed alive.
    locked_until timestamptz,
    status       smallint,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((status IS NULL) = (response IS NULL))
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
