-- Batches, payouts and their event log. The sandbox provider's tables are not here: they have a
-- migration chain of their own, applied only where that provider runs (adapters/migrations.py).

CREATE TABLE batches (
    batch_id     text PRIMARY KEY CHECK (length(batch_id) BETWEEN 1 AND 64),
    request_hash text NOT NULL,
    item_count   integer NOT NULL CHECK (item_count > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- NULL until every new payout of the batch has been handed to the queue;
    -- the sweeper looks for batches left NULL (the dual write failed half-way).
    enqueued_at  timestamptz
);

CREATE TABLE payouts (
    payout_id       uuid PRIMARY KEY,
    -- one payout per external_id, ever, whatever batch it arrives in
    external_id     text NOT NULL UNIQUE CHECK (length(external_id) BETWEEN 1 AND 64),
    batch_id        text NOT NULL REFERENCES batches (batch_id),
    user_id         text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 64),
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    pix_key_type    text NOT NULL CHECK (pix_key_type IN ('CPF', 'CNPJ', 'PHONE', 'EMAIL', 'EVP')),
    pix_key         text NOT NULL CHECK (length(pix_key) BETWEEN 1 AND 77),
    end_to_end_id   char(32) NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'Pending'
                    CHECK (status IN ('Pending', 'Processing', 'Completed', 'Failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    failure_code    text,
    failure_message text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT failed_payouts_have_a_reason CHECK ((status = 'Failed') = (failure_code IS NOT NULL))
);

-- the sweeper's view: payouts that are not terminal yet, oldest first
CREATE INDEX payouts_open_idx ON payouts (updated_at) WHERE status IN ('Pending', 'Processing');

-- A batch's items in request order. An item is either the payout the batch
-- created, or a duplicate pointing at the payout an earlier batch created.
CREATE TABLE batch_items (
    batch_id   text NOT NULL REFERENCES batches (batch_id),
    item_index integer NOT NULL CHECK (item_index >= 0),
    payout_id  uuid NOT NULL REFERENCES payouts (payout_id),
    duplicate  boolean NOT NULL,
    PRIMARY KEY (batch_id, item_index),
    UNIQUE (batch_id, payout_id)
);

CREATE INDEX batch_items_payout_idx ON batch_items (payout_id);

-- Append-only history of every state change and settlement attempt.
CREATE TABLE payout_events (
    event_id    bigserial PRIMARY KEY,
    payout_id   uuid NOT NULL REFERENCES payouts (payout_id),
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    event       text NOT NULL,
    from_status text,
    to_status   text,
    attempt     integer,
    code        text,
    detail      text
);

CREATE INDEX payout_events_payout_idx ON payout_events (payout_id, event_id);
