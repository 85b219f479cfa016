"""Reads of one batch or payout for the write side's use cases: existence, counts, items, a payout's history."""

from __future__ import annotations

from typing import Any

from ..domain.payout import BatchItem, Payout
from .database import Database
from .payout_rows import PAYOUT_COLUMNS, payout_from_row


class PayoutReads:
    def __init__(self, db: Database) -> None:
        self.db = db

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
                f"SELECT bi.item_index, bi.duplicate, {PAYOUT_COLUMNS}"
                " FROM batch_items bi JOIN payouts p USING (payout_id)"
                " WHERE bi.batch_id = %s AND bi.item_index > %s ORDER BY bi.item_index LIMIT %s",
                (batch_id, after_index, limit),
            )
            return [BatchItem(index=r[0], duplicate=r[1], payout=payout_from_row(r[2:])) for r in cur.fetchall()]

    def get_payout(self, payout_id: str) -> Payout | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {PAYOUT_COLUMNS} FROM payouts p WHERE p.payout_id = %s", (payout_id,))
            row = cur.fetchone()
        return None if row is None else payout_from_row(row)

    def payout_events(self, payout_id: str) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT occurred_at, event, from_status, to_status, attempt, code, detail, source, provider_status"
                " FROM payout_events WHERE payout_id = %s ORDER BY event_id",
                (payout_id,),
            )
            names = (
                "at",
                "event",
                "from_status",
                "to_status",
                "attempt",
                "code",
                "detail",
                "source",
                "provider_status",
            )
            return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
