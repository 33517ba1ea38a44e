-- Payments still pending, oldest first: what the expiry looks for.
CREATE INDEX payments_pending_by_age ON payments (created_at) WHERE status = 'pending';
