-- Payments payment-service gave up before they were attached: the order
-- refuses to attach them from then on. Kept on the order's own row, so an
-- attachment waiting for the row's lock while a release commits re-checks
-- the released ids on the row it then locks (a separate table would be read
-- from the attachment's earlier snapshot).
ALTER TABLE orders ADD COLUMN released_payments uuid[] NOT NULL DEFAULT '{}';
