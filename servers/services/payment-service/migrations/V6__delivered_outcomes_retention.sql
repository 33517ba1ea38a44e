-- Delivered outcomes are removed once their retention ends (retention.rs);
-- the payment keeps when its outcome was delivered.
ALTER TABLE payments ADD COLUMN notified_at timestamptz;

-- What the retention looks for, oldest first.
CREATE INDEX order_notifications_delivered ON order_notifications (delivered_at)
    WHERE state = 'delivered';

-- What each scrape counts: the disagreements, never the whole outbox.
CREATE INDEX order_notifications_disagreements ON order_notifications (created_at)
    WHERE state IN ('rejected', 'dead_letter');
