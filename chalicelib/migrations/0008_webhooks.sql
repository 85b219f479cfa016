-- Webhooks: endpoints a client registers, the events the service owes them, and every delivery attempt.
--
-- Events live in their own table rather than in `outbox` (0004): an event is kept after it is handed on
-- (GET .../deliveries and POST /events/{id}/redeliver name it by its public id), one event becomes one
-- delivery per subscribed endpoint, and batch events need a unique (type, batch_id). The outbox stays what
-- it is today, leased multi-step work with a progress cursor, and its index stays small for the sweeper.

CREATE TABLE webhook_endpoints (
    endpoint_id          uuid PRIMARY KEY,
    url                  text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events               text[] NOT NULL CHECK (cardinality(events) >= 1),
    description          text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    enabled              boolean NOT NULL DEFAULT true,
    -- whsec_<base64>: kept in the clear because the service must compute HMACs with it; never logged.
    secret               text NOT NULL,
    -- after a rotation the old secret signs beside the new one until previous_expires_at
    previous_secret      text,
    previous_expires_at  timestamptz,
    -- set when a delivery is dead-lettered after its last attempt; cleared by the next success
    failing_since        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
    event_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type        text NOT NULL CHECK (type IN ('batch.accepted', 'payout.completed', 'payout.failed', 'batch.completed')),
    batch_id    text NOT NULL,
    payout_id   uuid,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- the payout row as the change left it (without its Pix key); the relay renders `data` from it
    snapshot    jsonb,
    -- the body's "data", as the API shows it with Pix keys masked; NULL until the relay renders it
    data        jsonb,
    -- when the relay turned the event into deliveries; NULL: still owed
    relayed_at  timestamptz
);

-- One batch.accepted and one batch.completed per batch, whoever writes them and however often.
CREATE UNIQUE INDEX webhook_events_once_per_batch ON webhook_events (type, batch_id)
    WHERE type IN ('batch.accepted', 'batch.completed');
-- The relay's view: events not handed on yet, oldest first.
CREATE INDEX webhook_events_unrelayed_idx ON webhook_events (created_at) WHERE relayed_at IS NULL;

CREATE TABLE webhook_deliveries (
    delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES webhook_events (event_id),
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead_lettered')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- when the relay put it on the queue; NULL: due for the queue at next_attempt_at
    enqueued_at     timestamptz,
    -- a delivery function holds it while it POSTs
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The relay's view: deliveries still owed, by when they fall due.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id);

CREATE TABLE webhook_attempts (
    attempt_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   bigint NOT NULL REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    endpoint_id   uuid NOT NULL,
    event_id      uuid NOT NULL,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    error         text,
    duration_ms   integer NOT NULL,
    -- when the next attempt is due; NULL after a success or the last attempt
    next_retry_at timestamptz
);

CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempt_id);

-- The batch-completion check below asks "is any payout of this batch still open?" once per payout that
-- turns terminal: an index probe, not a scan of a 10,000-payout batch.
CREATE INDEX payouts_open_by_batch_idx ON payouts (batch_id) WHERE status IN ('Pending', 'Processing');

-- payout.completed / payout.failed: written by the same transaction as the status change, whatever code
-- path makes it (settlement, the sweeper's give-up, an operator's SQL). Nothing is written while no
-- enabled endpoint listens for the type, so a stack without webhooks pays one index probe per change.
CREATE FUNCTION webhook_payout_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_type text := CASE NEW.status WHEN 'Completed' THEN 'payout.completed' ELSE 'payout.failed' END;
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND event_type = ANY (events)) THEN
        INSERT INTO webhook_events (type, batch_id, payout_id, snapshot)
        VALUES (event_type, NEW.batch_id, NEW.payout_id, to_jsonb(NEW) - 'pix_key');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payouts_webhook_event AFTER UPDATE OF status ON payouts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('Completed', 'Failed'))
    EXECUTE FUNCTION webhook_payout_event();

-- batch.completed: when a batch's last open payout turns terminal. Checked at commit (a deferred
-- constraint trigger), under a per-batch transaction lock: of two transactions finishing a batch's last
-- two payouts at once, the second to commit waits for the first and then sees its change, so exactly
-- one of them finds nothing open. The unique index makes a second insert a no-op anyway. The lock is
-- taken at commit only, and only by transactions that finish a payout of a batch without the event.
CREATE FUNCTION webhook_batch_completed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND 'batch.completed' = ANY (events))
       OR EXISTS (SELECT 1 FROM webhook_events WHERE type = 'batch.completed' AND batch_id = NEW.batch_id) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(1464355667, hashtext(NEW.batch_id));
    -- READ COMMITTED: this statement's snapshot is taken after the lock, so it sees the earlier committer.
    IF NOT EXISTS (SELECT 1 FROM payouts WHERE batch_id = NEW.batch_id AND status IN ('Pending', 'Processing')) THEN
        INSERT INTO webhook_events (type, batch_id) VALUES ('batch.completed', NEW.batch_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER payouts_webhook_batch_completed AFTER UPDATE OF status ON payouts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('Completed', 'Failed'))
    EXECUTE FUNCTION webhook_batch_completed();
