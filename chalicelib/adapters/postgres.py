"""PostgreSQL: one lazy connection per Lambda container, and the payout repository on top of it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from ..domain.batch_request import PayoutItem
from ..domain.idempotency import ExistingPayout, Fingerprint
from ..domain.payout import BatchItem, Payout
from ..domain.payout_status import PayoutStatus
from .database import Database, one
from .pg_conflicts import retry_conflicts

_PAYOUT_COLUMNS = (
    "p.payout_id::text, p.external_id, p.batch_id, p.user_id, p.amount_cents, p.pix_key_type, p.pix_key,"
    " p.end_to_end_id, p.status, p.attempts, p.failure_code, p.failure_message, p.created_at, p.updated_at,"
    " p.provider_failures"
)
_PAYOUT_WIDTH = 15


# Settlement finds its rows by payout_id alone, locks them in id order (no deadlocks between
# batches), and only then tests their status. A status test on the scan itself lets the planner
# answer it from payouts_open_idx, filtering every open payout for the ten it wants: whenever the
# statistics were gathered while few payouts were open, each claim of a 10,000-payout batch read
# all 10,000 (measured: 3 ms instead of 0.1 ms per claim).
# FOR NO KEY UPDATE, not FOR UPDATE: settlement never changes a key column, and this lock does not
# conflict with the FOR KEY SHARE locks that the foreign-key checks of a duplicate batch's
# batch_items COPY take on the same payouts, in that batch's (any) order. With FOR UPDATE the two
# waited on each other and PostgreSQL killed one of them ("deadlock detected").
_ROW_LOCK = "FOR NO KEY UPDATE"
_LOCK_BY_ID = f"SELECT payout_id, status FROM payouts WHERE payout_id = ANY(%s::uuid[]) ORDER BY payout_id {_ROW_LOCK}"


def _payout(row: Sequence[Any]) -> Payout:
    return Payout(
        payout_id=row[0],
        external_id=row[1],
        batch_id=row[2],
        user_id=row[3],
        amount_cents=row[4],
        pix_key_type=row[5],
        pix_key=row[6],
        end_to_end_id=row[7],
        status=PayoutStatus(row[8]),
        attempts=row[9],
        failure_code=row[10],
        failure_message=row[11],
        created_at=row[12],
        updated_at=row[13],
        provider_failures=row[14],
    )


class BatchWriter:
    """The writes and reads of one batch submission, all inside the caller's transaction."""

    def __init__(self, cur: psycopg2.extensions.cursor) -> None:
        self._cur = cur
        self.cursor = cur  # for other tables written in the same transaction (adapters/outbox.py)

    def insert_batch(self, batch_id: str, request_hash: str, item_count: int) -> str | None:
        """Claim batch_id. Returns None if this call created it, else the stored request hash.

        A concurrent insert of the same batch_id blocks here until the other transaction ends,
        which is what serialises two identical requests racing each other.
        """
        self._cur.execute(
            "INSERT INTO batches (batch_id, request_hash, item_count) VALUES (%s, %s, %s)"
            " ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id",
            (batch_id, request_hash, item_count),
        )
        if self._cur.fetchone() is not None:
            return None
        self._cur.execute("SELECT request_hash FROM batches WHERE batch_id = %s", (batch_id,))
        row = one(self._cur)
        return str(row[0])

    def stored_items(self, batch_id: str) -> list[tuple[int, str, bool, str, Fingerprint]]:
        """(index, payout_id, duplicate, origin batch_id, fingerprint) of every item, in order."""
        self._cur.execute(
            "SELECT bi.item_index, p.payout_id::text, bi.duplicate, p.batch_id,"
            " p.external_id, p.user_id, p.amount_cents, p.pix_key_type, p.pix_key"
            " FROM batch_items bi JOIN payouts p USING (payout_id)"
            " WHERE bi.batch_id = %s ORDER BY bi.item_index",
            (batch_id,),
        )
        return [(r[0], r[1], r[2], r[3], (r[4], r[5], r[6], r[7], r[8])) for r in self._cur.fetchall()]

    def existing_payouts(self, external_ids: Sequence[str]) -> dict[str, ExistingPayout]:
        self._cur.execute(
            "SELECT payout_id::text, batch_id, external_id, user_id, amount_cents, pix_key_type, pix_key"
            " FROM payouts WHERE external_id = ANY(%s)",
            (list(external_ids),),
        )
        return {
            r[2]: ExistingPayout(payout_id=r[0], batch_id=r[1], fingerprint=(r[2], r[3], r[4], r[5], r[6]))
            for r in self._cur.fetchall()
        }

    def insert_payouts(
        self, batch_id: str, items: Sequence[PayoutItem], ids: dict[int, str], new_e2e_id: Callable[[], str]
    ) -> None:
        """COPY the new payouts (ids: item index -> payout_id) in one round trip."""
        buf = io.StringIO()
        out = csv.writer(buf)
        for item in items:
            payout_id = ids[item.index]
            out.writerow(
                (
                    payout_id,
                    item.external_id,
                    batch_id,
                    item.user_id,
                    item.amount_cents,
                    item.pix_key.type.value,
                    item.pix_key.value,
                    new_e2e_id(),
                )
            )
        buf.seek(0)
        self._cur.copy_expert(
            "COPY payouts (payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key,"
            " end_to_end_id) FROM STDIN WITH (FORMAT csv)",
            buf,
        )

    def insert_batch_items(self, batch_id: str, rows: Sequence[tuple[int, str, bool]]) -> None:
        buf = io.StringIO()
        out = csv.writer(buf)
        for index, payout_id, duplicate in rows:
            out.writerow((batch_id, index, payout_id, "t" if duplicate else "f"))
        buf.seek(0)
        self._cur.copy_expert(
            "COPY batch_items (batch_id, item_index, payout_id, duplicate) FROM STDIN WITH (FORMAT csv)", buf
        )


def exhausted_reason(failures: int, code: str | None, detail: str | None) -> str:
    reason = f"gave up after {failures} failed provider attempt(s)"
    last = f"{code or ''} {detail or ''}".strip()
    return f"{reason}; last error: {last}" if last else reason


def is_external_id_race(exc: BaseException) -> bool:
    """True when a concurrent batch committed one of our external_ids first."""
    return isinstance(exc, psycopg2.errors.UniqueViolation) and "external_id" in (
        getattr(exc.diag, "constraint_name", "") or ""
    )


class PayoutRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def batch_writer(self) -> Iterator[BatchWriter]:
        with self.db.transaction() as cur:
            yield BatchWriter(cur)

    def ping(self) -> None:
        with self.db.transaction() as cur:
            cur.execute("SELECT 1")

    # -- reads ---------------------------------------------------------------

    def batch_exists(self, batch_id: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM batches WHERE batch_id = %s", (batch_id,))
            return cur.fetchone() is not None

    def batch_counts(self, batch_id: str) -> dict[str, int] | None:
        """Status name -> count of the batch's own payouts, plus "duplicates"; None if no such batch."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT b.batch_id, CASE WHEN bi.duplicate THEN 'duplicates' ELSE p.status END, count(bi.payout_id)"
                " FROM batches b LEFT JOIN batch_items bi ON bi.batch_id = b.batch_id"
                " LEFT JOIN payouts p ON p.payout_id = bi.payout_id"
                " WHERE b.batch_id = %s GROUP BY 1, 2",
                (batch_id,),
            )
            rows = cur.fetchall()
        if not rows:
            return None
        return {name: count for _, name, count in rows if name is not None}

    def batch_items(self, batch_id: str, after_index: int = -1, limit: int | None = None) -> list[BatchItem]:
        with self.db.transaction() as cur:
            cur.execute(
                f"SELECT bi.item_index, bi.duplicate, {_PAYOUT_COLUMNS}"
                " FROM batch_items bi JOIN payouts p USING (payout_id)"
                " WHERE bi.batch_id = %s AND bi.item_index > %s ORDER BY bi.item_index LIMIT %s",
                (batch_id, after_index, limit),
            )
            return [BatchItem(index=r[0], duplicate=r[1], payout=_payout(r[2:])) for r in cur.fetchall()]

    def get_payout(self, payout_id: str) -> Payout | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_PAYOUT_COLUMNS} FROM payouts p WHERE p.payout_id = %s", (payout_id,))
            row = cur.fetchone()
        return None if row is None else _payout(row)

    def payout_events(self, payout_id: str) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT occurred_at, event, from_status, to_status, attempt, code, detail"
                " FROM payout_events WHERE payout_id = %s ORDER BY event_id",
                (payout_id,),
            )
            names = ("at", "event", "from_status", "to_status", "attempt", "code", "detail")
            return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]

    # -- settlement: every change is a status-guarded UPDATE plus its event ---

    def final_ids(self, payout_ids: Sequence[str]) -> set[str]:
        """Which of these payouts are Completed or Failed already."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT payout_id::text FROM payouts WHERE payout_id = ANY(%s::uuid[])"
                " AND status IN ('Completed', 'Failed')",
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
                f"WITH prev AS ({_LOCK_BY_ID}),"
                " upd AS (UPDATE payouts p SET status = 'Processing', attempts = p.attempts + 1, updated_at = now()"
                " FROM prev WHERE p.payout_id = prev.payout_id AND prev.status IN ('Pending', 'Processing')"
                f" RETURNING {_PAYOUT_COLUMNS}, prev.status AS previous),"
                " ev AS (INSERT INTO payout_events (payout_id, event, from_status, to_status, attempt)"
                " SELECT payout_id::uuid, 'attempt_started', previous, 'Processing', attempts FROM upd)"
                " SELECT * FROM upd",
                (list(payout_ids),),
            )
            return {row[0]: (_payout(row[:_PAYOUT_WIDTH]), PayoutStatus(row[_PAYOUT_WIDTH])) for row in cur.fetchall()}

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
                f"WITH prev AS ({_LOCK_BY_ID}),"
                " d AS (SELECT * FROM unnest(%s::uuid[], %s::int[], %s::text[]) AS d(payout_id, attempt, event)),"
                " upd AS (UPDATE payouts p SET status = 'Completed', updated_at = now()"
                " FROM prev JOIN d USING (payout_id) WHERE p.payout_id = prev.payout_id AND prev.status = 'Processing'"
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
                f"WITH prev AS ({_LOCK_BY_ID})"
                " UPDATE payouts p SET status = %s, failure_code = %s, failure_message = %s, updated_at = now()"
                " FROM prev WHERE p.payout_id = prev.payout_id AND prev.status = 'Processing'",
                ([payout_id], status.value, code, message),
            )
            if cur.rowcount != 1:
                return False
            self._event(
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
                f"WITH prev AS ({_LOCK_BY_ID})"
                " UPDATE payouts p SET provider_failures = p.provider_failures + 1, updated_at = now()"
                " FROM prev WHERE p.payout_id = prev.payout_id AND prev.status = 'Processing'"
                " RETURNING p.provider_failures",
                ([payout_id],),
            )
            row = cur.fetchone()
            if row is None:
                return 0, False
            failures = int(row[0])
            self._event(cur, payout_id, event, None, None, attempt, code, detail)
            if event != "attempt_failed" or failures < budget:
                return failures, False
            self._exhaust(cur, payout_id, PayoutStatus.PROCESSING, attempt, exhausted_reason(failures, code, detail))
            return failures, True

    def _exhaust(
        self, cur: psycopg2.extensions.cursor, payout_id: str, status: PayoutStatus, attempt: int, reason: str
    ) -> None:
        cur.execute(
            "UPDATE payouts SET status = 'Failed', failure_code = 'RETRIES_EXHAUSTED', failure_message = %s,"
            " updated_at = now() WHERE payout_id = %s",
            (reason, payout_id),
        )
        self._event(cur, payout_id, "failed", status.value, "Failed", attempt, "RETRIES_EXHAUSTED", reason)

    # -- recovery: sweeper, dead letters, redrive -------------------------------

    def count_open(self) -> int:
        """Open payouts that should have a message by now: those of batches whose fan-out is done."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT count(*) FROM payouts p WHERE p.status IN ('Pending', 'Processing') AND NOT EXISTS ("
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
                " SELECT payout_id FROM payouts WHERE status IN ('Pending', 'Processing')"
                " AND greatest(updated_at, requeued_at) < now() - make_interval(secs => %s)"
                f" ORDER BY updated_at LIMIT %s {_ROW_LOCK} SKIP LOCKED)"
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
                f" provider_failures FROM payouts WHERE payout_id = %s {_ROW_LOCK}",
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
                    "UPDATE payouts SET status = 'Completed', updated_at = now() WHERE payout_id = %s", (payout_id,)
                )
                self._event(
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
                self._exhaust(cur, payout_id, status, attempts, reason)
                return "failed", PayoutStatus.FAILED
            # Only the provider ends a payout Failed: receives spent on faults of our own are not its no.
            self._event(
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
                f" AND (%s::text IS NULL OR batch_id = %s) ORDER BY updated_at LIMIT %s {_ROW_LOCK})"
                " RETURNING payout_id::text, attempts",
                (batch_id, batch_id, limit),
            )
            rows = cur.fetchall()
            for payout_id, attempts in rows:
                self._event(cur, payout_id, "redriven", "Failed", "Pending", attempts, None, "redriven by an operator")
            return [r[0] for r in rows]

    @staticmethod
    def _event(
        cur: psycopg2.extensions.cursor,
        payout_id: str,
        event: str,
        from_status: str | None,
        to_status: str | None,
        attempt: int | None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        cur.execute(
            "INSERT INTO payout_events (payout_id, event, from_status, to_status, attempt, code, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (payout_id, event, from_status, to_status, attempt, code, detail),
        )
