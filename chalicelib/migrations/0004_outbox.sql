-- The transactional outbox: work a committed change still owes the outside world, written in
-- the same transaction as the change. Today one kind, 'enqueue_payouts' (a range of a batch's
-- items whose payouts need their SQS messages); webhook events can ride on the same table later,
-- one record per event, with their own kind and payload.

CREATE TABLE outbox (
    outbox_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]*$'),
    -- what the record is about (a batch_id today; a payout or an endpoint for other kinds)
    aggregate_id text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- not picked up by a relay or the sweeper before this (a grace period, or a retry's backoff)
    available_at timestamptz NOT NULL DEFAULT now(),
    -- how far a multi-step record got; for 'enqueue_payouts', the next item_index to send
    progress     integer NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    -- a worker holds the record until lease_until; a dead worker's lease simply runs out
    lease_owner  text,
    lease_until  timestamptz,
    last_error   text,
    done_at      timestamptz
);

-- The relay's and the sweeper's view: records not done yet, by kind, in the order they fall due.
CREATE INDEX outbox_undone_idx ON outbox (kind, available_at) WHERE done_at IS NULL;
CREATE INDEX outbox_aggregate_idx ON outbox (aggregate_id);

-- Batches accepted before this migration whose messages were never all sent: one record each,
-- covering every item, so the sweeper wakes their fan-out instead of looking at enqueued_at.
INSERT INTO outbox (kind, aggregate_id, payload, progress)
SELECT 'enqueue_payouts', batch_id, jsonb_build_object('batch_id', batch_id, 'start', 0, 'end', item_count), 0
FROM batches WHERE enqueued_at IS NULL;

DROP INDEX batches_unenqueued_idx;
ALTER TABLE batches DROP COLUMN enqueued_at;
