-- A payment is recorded before order-service is asked to attach it, as an
-- intent (attached = false): so an order is never attached to a payment
-- payment-service does not know, whatever times out or crashes. Clients
-- see, settle and expire only attached payments; an intent becomes one
-- when order-service confirms the attachment, or is deleted once
-- order-service has released it (see payments.rs). Payments recorded
-- before this migration were all attached.
ALTER TABLE payments ADD COLUMN attached boolean NOT NULL DEFAULT true;

-- Intents still waiting for an answer, oldest first: what the expiry resolves.
CREATE INDEX payments_intents_by_age ON payments (created_at) WHERE NOT attached;

-- Only attached payments expire.
DROP INDEX payments_pending_by_age;
CREATE INDEX payments_pending_by_age ON payments (created_at) WHERE status = 'pending' AND attached;
