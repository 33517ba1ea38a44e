-- The customer (an access token's sub) whose order each payment pays; NULL
-- for payments made with authentication disabled or before it existed,
-- which only payments:settle and admin see.
ALTER TABLE payments ADD COLUMN owner text;
