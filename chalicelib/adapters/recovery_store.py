"""Recovery's statements: the sweeper's counts and claims, a dead letter's payout, the operator's redrive."""

from __future__ import annotations

from typing import Any

from ..domain.dead_letter import DeadLetterOutcome, DeadLetterView
from ..domain.payout_status import PayoutStatus, exhausted_reason
from .database import Database, one
from .payout_rows import AWAITING_SQL, ROW_LOCK, exhaust, insert_event
from .pg_conflicts import retry_conflicts

# The payout, whether it was touched within a lease, and its latest history entry.
_VIEW_SQL = (
    "SELECT p.status, p.attempts, p.provider_failures, p.end_to_end_id, p.updated_at,"
    " p.updated_at > now() - make_interval(secs => %s), e.event, e.attempt, e.code, e.detail"
    " FROM payouts p LEFT JOIN LATERAL (SELECT event, attempt, code, detail FROM payout_events"
    " WHERE payout_id = p.payout_id ORDER BY event_id DESC LIMIT 1) e ON true WHERE p.payout_id = %s"
)


def _view(row: tuple[Any, ...] | None) -> DeadLetterView | None:
    if row is None:
        return None
    return DeadLetterView(
        status=PayoutStatus(row[0]),
        attempts=int(row[1]),
        provider_failures=int(row[2]),
        end_to_end_id=str(row[3]),
        updated_at=row[4],
        recent=bool(row[5]),
        last_event=row[6],
        last_attempt=row[7],
        last_code=row[8],
        last_detail=row[9],
    )


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

    def dead_letter_view(self, payout_id: str, lease_seconds: int) -> DeadLetterView | None:
        """A dead letter's payout and its latest history entry, read without a lock: the rule decides
        on it in services/recovery.py, asking the provider meanwhile."""
        with self.db.statement() as cur:
            cur.execute(_VIEW_SQL, (lease_seconds, payout_id))
            return _view(cur.fetchone())

    @retry_conflicts
    def close_dead_letter(
        self, payout_id: str, seen: DeadLetterView, outcome: DeadLetterOutcome, lease_seconds: int
    ) -> bool:
        """Record the rule's outcome, under the row lock, only if the payout is still as `seen`.

        False when something moved since it was read (an attempt started or ended, a word changed
        its status): nothing is written, and the rule decides again later. The lock blocks any new
        attempt until the outcome is committed.
        """
        with self.db.transaction() as cur:
            cur.execute(_VIEW_SQL + f" {ROW_LOCK} OF p", (lease_seconds, payout_id))
            now = _view(cur.fetchone())
            if now is None or not now.same_payout_state(seen):
                return False
            status, attempts = now.status, now.attempts
            if outcome is DeadLetterOutcome.RECOVERED:
                cur.execute(
                    "UPDATE payouts SET status = 'Completed', provider_step = NULL, updated_at = now()"
                    " WHERE payout_id = %s",
                    (payout_id,),
                )
                detail = "transfer found at the provider when its message was dead-lettered"
                insert_event(cur, payout_id, "recovered", status.value, "Completed", attempts, None, detail)
            elif outcome is DeadLetterOutcome.FAILED:
                exhaust(cur, payout_id, status, attempts, exhausted_reason(now.provider_failures, *now.last_error()))
            else:
                detail = (
                    f"dead-lettered after {now.provider_failures} failed provider attempt(s);"
                    " sent back to the payouts queue"
                )
                insert_event(cur, payout_id, "returned", None, None, attempts, None, detail)
            return True

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
