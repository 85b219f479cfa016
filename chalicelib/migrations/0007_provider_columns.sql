-- The provider's side of a payout: which provider, our send id there (Efí's idEnvio), the end-to-end
-- id it assigned, its last word, and the step inside Processing (domain/payout_status.py).
-- No constraint ties the step to the status: a Processing row without one (written before this
-- migration) reads as not_sent, and the step of a payout outside Processing means nothing.
ALTER TABLE payouts
    ADD COLUMN IF NOT EXISTS provider text,
    ADD COLUMN IF NOT EXISTS provider_send_id text,
    ADD COLUMN IF NOT EXISTS provider_end_to_end_id text,
    ADD COLUMN IF NOT EXISTS provider_status text,
    ADD COLUMN IF NOT EXISTS provider_step text
        CHECK (provider_step IN ('not_sent', 'uncertain', 'awaiting_confirmation')),
    -- when the poller last asked the provider about this payout
    ADD COLUMN IF NOT EXISTS provider_polled_at timestamptz;

-- The poller's view: payouts the provider accepted and has not confirmed, oldest first.
CREATE INDEX IF NOT EXISTS payouts_awaiting_idx ON payouts (updated_at)
    WHERE status = 'Processing' AND provider_step = 'awaiting_confirmation';

-- Where a history entry came from: send, ask, callback, poll (NULL: the service's own act).
ALTER TABLE payout_events
    ADD COLUMN IF NOT EXISTS source text,
    ADD COLUMN IF NOT EXISTS provider_status text;
