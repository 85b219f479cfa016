"""Recovery's statements: the sweeper's counts and claims, a dead letter's payout, the operator's redrive."""

from __future__ import annotations

from collections.abc import Callable

from ..domain.payout_status import PayoutStatus, exhausted_reason
from .database import Database, one
from .payout_rows import AWAITING_SQL, ROW_LOCK, exhaust, insert_event
from .pg_conflicts import retry_conflicts


class RecoveryStatements:
    def __init__(self, db: Database) -> None:
        self.db = db

    def count_open(self) -> int:
        """Open payouts that should have a message by now: those of batches whose fan-out is done."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT count(*) FROM payouts p WHERE p.status IN ('Pending', 'Processing')"
                " AND NOT (p.status = 'Processing' AND p.provider_step IS NOT DISTINCT FROM 'awaiting_confirmation')"
                " AND NOT EXISTS ("
                " SELECT 1 FROM outbox o WHERE o.done_at IS NULL AND o.kind = 'enqueue_payouts'"
                " AND o.aggregate_id = p.batch_id)"
            )
            return int(one(cur)[0])

    @retry_conflicts
    def claim_stale_payouts(self, stale_seconds: int, limit: int) -> list[str]:
        """Open payouts untouched for stale_seconds (and not re-sent since), oldest first; marks them re-sent now."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE payouts SET requeued_at = now() WHERE payout_id IN ("
                f" SELECT payout_id FROM payouts WHERE status IN ('Pending', 'Processing') AND NOT {AWAITING_SQL}"
                " AND greatest(updated_at, requeued_at) < now() - make_interval(secs => %s)"
                f" ORDER BY updated_at LIMIT %s {ROW_LOCK} SKIP LOCKED)"
                " RETURNING payout_id::text",
                (stale_seconds, limit),
            )
            return [r[0] for r in cur.fetchall()]

    @retry_conflicts
    def give_up(
        self, payout_id: str, lease_seconds: int, budget: int, paid_at_provider: Callable[[str], bool]
    ) -> tuple[str, PayoutStatus | None]:
        """A dead letter's payout. Returns (outcome, status):

        "recovered" (Completed: the provider has the transfer), "failed" (Failed RETRIES_EXHAUSTED:
        `budget` sends were not paid), "returned" (neither: its message ran out of receives on faults
        of our own, so it goes back to the payouts queue), "in_flight" (an attempt may still run:
        try later), "already_final" or "unknown_payout".
        """
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT status, attempts, end_to_end_id, updated_at > now() - make_interval(secs => %s),"
                f" provider_failures FROM payouts WHERE payout_id = %s {ROW_LOCK}",
                (lease_seconds, payout_id),
            )
            row = cur.fetchone()
            if row is None:
                return "unknown_payout", None
            status, attempts, e2e, recent, failures = PayoutStatus(row[0]), row[1], row[2], row[3], row[4]
            if status in (PayoutStatus.COMPLETED, PayoutStatus.FAILED):
                return "already_final", status
            cur.execute(
                "SELECT event, attempt, code, detail FROM payout_events WHERE payout_id = %s"
                " ORDER BY event_id DESC LIMIT 1",
                (payout_id,),
            )
            last = cur.fetchone()
            # The row lock above blocks any new attempt from starting; the last one is over if it
            # recorded its failure, or if it started longer ago than a settle function can run.
            attempt_over = last is not None and last[0] in ("attempt_failed", "outcome_unknown") and last[1] == attempts
            if status is PayoutStatus.PROCESSING and recent and not attempt_over:
                return "in_flight", status
            if paid_at_provider(e2e):
                cur.execute(
                    "UPDATE payouts SET status = 'Completed', provider_step = NULL, updated_at = now()"
                    " WHERE payout_id = %s",
                    (payout_id,),
                )
                insert_event(
                    cur,
                    payout_id,
                    "recovered",
                    status.value,
                    "Completed",
                    attempts,
                    None,
                    "transfer found at the provider when its message was dead-lettered",
                )
                return "recovered", PayoutStatus.COMPLETED
            if failures >= budget:
                failed = last if last is not None and last[0] in ("attempt_failed", "outcome_unknown") else None
                reason = exhausted_reason(failures, failed[2] if failed else None, failed[3] if failed else None)
                exhaust(cur, payout_id, status, attempts, reason)
                return "failed", PayoutStatus.FAILED
            # Only the provider ends a payout Failed: receives spent on faults of our own are not its no.
            insert_event(
                cur,
                payout_id,
                "returned",
                None,
                None,
                attempts,
                None,
                f"dead-lettered after {failures} failed provider attempt(s); sent back to the payouts queue",
            )
            return "returned", status

    @retry_conflicts
    def reopen_exhausted(self, batch_id: str | None = None, limit: int = 10_000) -> list[str]:
        """Failed RETRIES_EXHAUSTED -> Pending, for an operator's redrive. Provider rejections stay Failed."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE payouts SET status = 'Pending', failure_code = NULL, failure_message = NULL,"
                " provider_failures = 0, updated_at = now() WHERE payout_id IN ("
                " SELECT payout_id FROM payouts WHERE status = 'Failed' AND failure_code = 'RETRIES_EXHAUSTED'"
                f" AND (%s::text IS NULL OR batch_id = %s) ORDER BY updated_at LIMIT %s {ROW_LOCK})"
                " RETURNING payout_id::text, attempts",
                (batch_id, batch_id, limit),
            )
            rows = cur.fetchall()
            for payout_id, attempts in rows:
                insert_event(cur, payout_id, "redriven", "Failed", "Pending", attempts, None, "redriven by an operator")
            return [r[0] for r in rows]
