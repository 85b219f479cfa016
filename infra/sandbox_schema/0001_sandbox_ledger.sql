-- The sandbox Pix provider's own books, applied only where it runs (the embedded stack, the tests'
-- databases, deploys with PIX_PROVIDER=sandbox). Databases migrated before this chain existed have
-- these tables from chalicelib/migrations/0001_initial.sql already, hence IF NOT EXISTS throughout.

-- No uniqueness on the payout or the end-to-end id on purpose: a double payment must be visible here.
CREATE TABLE IF NOT EXISTS sandbox_pix_transfers (
    transfer_id   bigserial PRIMARY KEY,
    end_to_end_id char(32) NOT NULL,
    payout_id     uuid NOT NULL,
    amount_cents  bigint NOT NULL,
    pix_key_type  text NOT NULL,
    pix_key       text NOT NULL,
    executed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX IF NOT EXISTS sandbox_pix_transfers_e2e_idx ON sandbox_pix_transfers (end_to_end_id);

-- How many times the sandbox has been asked to send each end-to-end id, so
-- its scripted failures ("fail the first N attempts") are deterministic.
CREATE TABLE IF NOT EXISTS sandbox_pix_attempts (
    end_to_end_id char(32) PRIMARY KEY,
    attempts      integer NOT NULL
);
