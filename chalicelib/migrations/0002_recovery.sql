-- What the sweeper and the dead-letter handling need.

-- When the sweeper last re-sent a payout's message, so a stuck payout is re-sent
-- once per staleness window rather than on every sweep.
ALTER TABLE payouts ADD COLUMN requeued_at timestamptz;

-- Batches whose messages were never all sent (the dual write failed half-way).
CREATE INDEX batches_unenqueued_idx ON batches (created_at) WHERE enqueued_at IS NULL;
