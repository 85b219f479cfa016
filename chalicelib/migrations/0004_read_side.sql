-- What the read side needs: batches listed newest first, and a receiver's payouts.

-- GET /batches pages by (created_at, batch_id), newest first.
CREATE INDEX batches_created_idx ON batches (created_at, batch_id);

-- GET /payouts?user_id= pages by payout_id (UUIDv7, so in creation order).
CREATE INDEX payouts_user_idx ON payouts (user_id, payout_id);
