-- What the read side needs: batches listed newest first, and a receiver's payouts.
-- Indexes only, so it commutes with any other migration; IF NOT EXISTS lets a database that
-- had it under an earlier name apply it again.

-- GET /batches pages by (created_at, batch_id), newest first.
CREATE INDEX IF NOT EXISTS batches_created_idx ON batches (created_at, batch_id);

-- GET /payouts?user_id= pages by payout_id (UUIDv7, so in creation order).
CREATE INDEX IF NOT EXISTS payouts_user_idx ON payouts (user_id, payout_id);
