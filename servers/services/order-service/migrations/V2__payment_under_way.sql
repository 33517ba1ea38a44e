-- A payment under way is attached to its pending order (payment-service asks
-- before it records the payment), so payment_id is set while the order is
-- pending too; a settled order still always names the payment that settled it.
-- orders_check1 is the name PostgreSQL gave V1's unnamed
-- CHECK ((status = 'pending') = (payment_id IS NULL)).
ALTER TABLE orders DROP CONSTRAINT orders_check1;
ALTER TABLE orders ADD CONSTRAINT orders_settled_by_a_payment
    CHECK (status = 'pending' OR payment_id IS NOT NULL);
