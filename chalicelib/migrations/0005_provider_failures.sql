-- The provider budget counts what the provider saw, not how often a worker claimed the payout.

-- Sends the provider answered with a transient error or left unknown, since the payout was last
-- opened (a redrive starts it again at 0). Only this decides RETRIES_EXHAUSTED: a claim that died
-- on a database, lock or queue fault never reached the provider and spends nothing.
ALTER TABLE payouts ADD COLUMN IF NOT EXISTS provider_failures integer NOT NULL DEFAULT 0 CHECK (provider_failures >= 0);
