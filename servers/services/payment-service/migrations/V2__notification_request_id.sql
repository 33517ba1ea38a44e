-- The x-request-id of the request that settled the payment, sent with every
-- delivery attempt so one flow can be followed across both services' logs.
ALTER TABLE order_notifications ADD COLUMN request_id text;
