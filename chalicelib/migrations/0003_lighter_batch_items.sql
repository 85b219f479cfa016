-- Two indexes on batch_items that no query uses, paid for on every row of every COPY
-- (make bench: the batch_items COPY was the costliest step of the write transaction).
-- A batch cannot list one payout twice anyway: a request repeating an external_id is refused
-- with 422, and payouts.external_id is unique.
ALTER TABLE batch_items DROP CONSTRAINT batch_items_batch_id_payout_id_key;
DROP INDEX batch_items_payout_idx;
