"""Settlement's statements: every change is a status-guarded UPDATE plus its event."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.payout import Payout
from ..domain.payout_status import PayoutStatus, exhausted_reason
from .database import Database
from .payout_rows import (
    ATTEMPT_GUARD,
    AWAITING_SQL,
    CONFIRMED_GUARD,
    LOCK_BY_ID,
    PAYOUT_COLUMNS,
    PAYOUT_WIDTH,
    exhaust,
    insert_event,
    payout_from_row,
)
from .pg_conflicts import retry_conflicts


class SettlementStatements:
    def __init__(self, db: Database) -> None:
        self.db = db

    def final_ids(self, payout_ids: Sequence[str]) -> set[str]:
        """Which of these payouts are Completed or Failed already."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT payout_id::text FROM payouts WHERE payout_id = ANY(%s::uuid[])"
                " AND status IN ('Completed', 'Failed')",
                (list(payout_ids),),
            )
            return {r[0] for r in cur.fetchall()}

    def settled_ids(self, payout_ids: Sequence[str]) -> set[str]:
        """Which of these payouts need no message: final, or awaiting the provider's confirmation."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT payout_id::text FROM payouts WHERE payout_id = ANY(%s::uuid[])"
                f" AND (status IN ('Completed', 'Failed') OR {AWAITING_SQL})",
                (list(payout_ids),),
            )
            return {r[0] for r in cur.fetchall()}

    @retry_conflicts
    def start_attempts(self, payout_ids: Sequence[str]) -> dict[str, tuple[Payout, PayoutStatus]]:
        """Move every open payout of the list to Processing, count the attempt, log it: one statement.

        Payouts missing from the result are terminal (or unknown): nothing to do for them.
        """
        with self.db.statement() as cur:
            cur.execute(
                f"WITH prev AS ({LOCK_BY_ID}),"
                " upd AS (UPDATE payouts p SET status = 'Processing', attempts = p.attempts + 1, updated_at = now(),"
                " provider_step = coalesce(prev.provider_step, 'not_sent')"
                f" FROM prev WHERE p.payout_id = prev.payout_id AND {ATTEMPT_GUARD}"
                f" RETURNING {PAYOUT_COLUMNS}, prev.status AS previous),"
                " ev AS (INSERT INTO payout_events (payout_id, event, from_status, to_status, attempt)"
                " SELECT payout_id::uuid, 'attempt_started', previous, 'Processing', attempts FROM upd)"
                " SELECT * FROM upd",
                (list(payout_ids),),
            )
            return {
                row[0]: (payout_from_row(row[:PAYOUT_WIDTH]), PayoutStatus(row[PAYOUT_WIDTH])) for row in cur.fetchall()
            }

    @retry_conflicts
    def complete_many(self, done: Sequence[tuple[str, int, str]]) -> set[str]:
        """Processing -> Completed for (payout_id, attempt, event) rows, events included: one statement.

        Returns the ids that moved; any other had left Processing already.
        """
        if not done:
            return set()
        ids, attempts, events = (list(col) for col in zip(*done, strict=True))
        with self.db.statement() as cur:
            cur.execute(
                f"WITH prev AS ({LOCK_BY_ID}),"
                " d AS (SELECT * FROM unnest(%s::uuid[], %s::int[], %s::text[]) AS d(payout_id, attempt, event)),"
                " upd AS (UPDATE payouts p SET status = 'Completed', provider_step = NULL, updated_at = now()"
                f" FROM prev JOIN d USING (payout_id) WHERE p.payout_id = prev.payout_id AND {CONFIRMED_GUARD}"
                " RETURNING p.payout_id, d.attempt, d.event)"
                " INSERT INTO payout_events (payout_id, event, from_status, to_status, attempt)"
                " SELECT payout_id, event, 'Processing', 'Completed', attempt FROM upd RETURNING payout_id::text",
                (ids, ids, attempts, events),
            )
            return {r[0] for r in cur.fetchall()}

    @retry_conflicts
    def finish(
        self,
        payout_id: str,
        status: PayoutStatus,
        attempt: int,
        code: str | None = None,
        message: str | None = None,
        event: str | None = None,
    ) -> bool:
        """Processing -> Completed/Failed. False if the payout was not Processing (someone else finished it)."""
        with self.db.transaction() as cur:
            cur.execute(
                f"WITH prev AS ({LOCK_BY_ID})"
                " UPDATE payouts p SET status = %s, failure_code = %s, failure_message = %s, provider_step = NULL,"
                " updated_at = now() FROM prev WHERE p.payout_id = prev.payout_id AND prev.status = 'Processing'",
                ([payout_id], status.value, code, message),
            )
            if cur.rowcount != 1:
                return False
            insert_event(
                cur, payout_id, event or status.value.lower(), "Processing", status.value, attempt, code, message
            )
            return True

    @retry_conflicts
    def record_provider_failure(
        self, payout_id: str, event: str, attempt: int, code: str | None, detail: str, budget: int
    ) -> tuple[int, bool]:
        """Count a send the provider did not pay (event attempt_failed or outcome_unknown) against the
        payout's budget. A transient error that spends the budget fails the payout RETRIES_EXHAUSTED
        in the same transaction; an unknown outcome never does (the next claim asks the provider).

        Returns (provider failures so far, failed now); (0, False) if the payout left Processing.
        """
        with self.db.transaction() as cur:
            cur.execute(
                f"WITH prev AS ({LOCK_BY_ID})"
                " UPDATE payouts p SET provider_failures = p.provider_failures + 1, updated_at = now()"
                " FROM prev WHERE p.payout_id = prev.payout_id AND prev.status = 'Processing'"
                " RETURNING p.provider_failures",
                ([payout_id],),
            )
            row = cur.fetchone()
            if row is None:
                return 0, False
            failures = int(row[0])
            insert_event(cur, payout_id, event, None, None, attempt, code, detail)
            if event != "attempt_failed" or failures < budget:
                return failures, False
            exhaust(cur, payout_id, PayoutStatus.PROCESSING, attempt, exhausted_reason(failures, code, detail))
            return failures, True
