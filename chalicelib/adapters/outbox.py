"""The outbox table's SQL: records written with a batch, leased by one worker, advanced, finished, re-woken."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg2.extensions
import psycopg2.extras

from ..domain.outbox import ENQUEUE_PAYOUTS, Claimed, NotClaimed
from .database import Database

__all__ = ["ENQUEUE_PAYOUTS", "Claimed", "NotClaimed", "Outbox", "add_enqueue_tasks"]


def add_enqueue_tasks(
    cur: psycopg2.extensions.cursor, batch_id: str, ranges: Sequence[tuple[int, int]], grace_seconds: int
) -> list[int]:
    """One 'enqueue_payouts' record per [start, end) range of the batch's item indexes, inside the
    caller's transaction; the sweeper leaves them alone for grace_seconds (a wake-up is on its way)."""
    if not ranges:
        return []
    rows = [
        (ENQUEUE_PAYOUTS, batch_id, psycopg2.extras.Json({"batch_id": batch_id, "start": s, "end": e}), s)
        for s, e in ranges
    ]
    ids = psycopg2.extras.execute_values(
        cur,
        "INSERT INTO outbox (kind, aggregate_id, payload, progress, available_at) VALUES %s RETURNING outbox_id",
        rows,
        template=f"(%s, %s, %s::jsonb, %s, now() + make_interval(secs => {int(grace_seconds)}))",
        fetch=True,
    )
    return sorted(r[0] for r in ids)


class Outbox:
    """Leases, progress and completion of outbox records, each one statement that commits by itself."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, outbox_id: int, owner: str, lease_seconds: float) -> Claimed | NotClaimed:
        """Lease the record unless it is done or another worker's lease is still running.

        Two workers claiming at once serialise on the row: the second sees the first's lease and gets
        NotClaimed("leased"). That lease, the progress cursor and the owner test in advance() are what
        make a record processed twice at once safe.
        """
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE outbox SET lease_owner = %s, lease_until = now() + make_interval(secs => %s),"
                " attempts = attempts + 1 WHERE outbox_id = %s AND done_at IS NULL"
                " AND (lease_until IS NULL OR lease_until < now()) RETURNING kind, payload, progress",
                (owner, lease_seconds, outbox_id),
            )
            row = cur.fetchone()
            if row is not None:
                return Claimed(outbox_id, row[0], row[1], row[2])
            cur.execute(
                "SELECT done_at IS NOT NULL, greatest(0, extract(epoch FROM lease_until - now()))"
                " FROM outbox WHERE outbox_id = %s",
                (outbox_id,),
            )
            found = cur.fetchone()
        if found is None:
            return NotClaimed("missing")
        if found[0]:
            return NotClaimed("done")
        return NotClaimed("leased", float(found[1] or 0))

    def advance(self, outbox_id: int, owner: str, progress: int, lease_seconds: float) -> bool:
        """Record progress and extend the lease; False when the lease was lost (another worker took over)."""
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE outbox SET progress = greatest(progress, %s), lease_until = now() + make_interval(secs => %s)"
                " WHERE outbox_id = %s AND lease_owner = %s AND done_at IS NULL",
                (progress, lease_seconds, outbox_id, owner),
            )
            return cur.rowcount == 1

    def finish(self, outbox_id: int, owner: str, progress: int) -> bool:
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE outbox SET progress = %s, done_at = now(), lease_owner = NULL, lease_until = NULL,"
                " last_error = NULL WHERE outbox_id = %s AND lease_owner = %s AND done_at IS NULL",
                (progress, outbox_id, owner),
            )
            return cur.rowcount == 1

    def release(self, outbox_id: int, owner: str, progress: int, error: str) -> None:
        """Record how far a failed attempt got and give its lease up; the record is due for the sweeper now."""
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE outbox SET progress = greatest(progress, %s), lease_owner = NULL, lease_until = NULL,"
                " last_error = %s, available_at = now() WHERE outbox_id = %s AND lease_owner = %s AND done_at IS NULL",
                (progress, error[:500], outbox_id, owner),
            )

    def batch_payouts(self, batch_id: str, start: int, end: int) -> list[tuple[int, str]]:
        """(item_index, payout_id) of the payouts the batch created at item indexes [start, end), in order."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT item_index, payout_id::text FROM batch_items WHERE batch_id = %s"
                " AND item_index >= %s AND item_index < %s AND NOT duplicate ORDER BY item_index",
                (batch_id, start, end),
            )
            return [(r[0], r[1]) for r in cur.fetchall()]

    def due(self, kind: str, grace_seconds: int, limit: int) -> list[int]:
        """Undone records of `kind` that are due and held by no live lease; each is not due again for
        grace_seconds, so one sweep wakes a record once."""
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE outbox SET available_at = now() + make_interval(secs => %s) WHERE outbox_id IN ("
                " SELECT outbox_id FROM outbox WHERE done_at IS NULL AND kind = %s AND available_at <= now()"
                " AND (lease_until IS NULL OR lease_until < now())"
                " ORDER BY available_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING outbox_id",
                (grace_seconds, kind, limit),
            )
            return sorted(r[0] for r in cur.fetchall())
