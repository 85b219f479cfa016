"""Read model: the queries behind listing batches, filtering a batch, finding payouts, and report totals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..domain.payout import BatchItem, Payout
from ..domain.report import Amounts, BatchTotals, Summary
from .database import Database
from .payout_rows import PAYOUT_COLUMNS as _PAYOUT_COLUMNS
from .payout_rows import payout_from_row as _payout

# One batch's counts and amounts, from its items; a LATERAL subquery of the listing and the report.
_TOTALS = (
    "SELECT count(*) FILTER (WHERE bi.duplicate) AS duplicates,"
    " count(*) FILTER (WHERE NOT bi.duplicate AND p.status = 'Pending') AS pending,"
    " count(*) FILTER (WHERE NOT bi.duplicate AND p.status = 'Processing') AS processing,"
    " count(*) FILTER (WHERE NOT bi.duplicate AND p.status = 'Completed') AS completed,"
    " count(*) FILTER (WHERE NOT bi.duplicate AND p.status = 'Failed') AS failed,"
    " coalesce(sum(p.amount_cents) FILTER (WHERE NOT bi.duplicate), 0) AS cents_total,"
    " coalesce(sum(p.amount_cents) FILTER (WHERE NOT bi.duplicate AND p.status = 'Completed'), 0) AS cents_paid,"
    " coalesce(sum(p.amount_cents) FILTER (WHERE NOT bi.duplicate AND p.status = 'Failed'), 0) AS cents_failed,"
    " coalesce(sum(p.amount_cents) FILTER (WHERE NOT bi.duplicate AND p.status IN ('Pending', 'Processing')), 0)"
    " AS cents_pending"
    " FROM batch_items bi JOIN payouts p USING (payout_id) WHERE bi.batch_id = b.batch_id"
)
_TOTALS_COLUMNS = (
    "t.duplicates, t.pending, t.processing, t.completed, t.failed,"
    " t.cents_total, t.cents_paid, t.cents_failed, t.cents_pending"
)
# The SQL twin of domain.report.batch_status, so a status filter can run before LIMIT;
# tests/integration/test_read_side.py holds the two to the same answers.
_BATCH_STATUS = (
    "CASE WHEN t.pending + t.processing > 0 THEN"
    " CASE WHEN t.processing + t.completed + t.failed > 0 THEN 'Processing' ELSE 'Pending' END"
    " WHEN t.failed = 0 THEN 'Completed' WHEN t.completed = 0 THEN 'Failed' ELSE 'PartiallyCompleted' END"
)


def _totals(batch_id: str, created_at: datetime, item_count: int, row: Sequence[Any]) -> BatchTotals:
    dups, pending, processing, completed, failed, c_total, c_paid, c_failed, c_pending = row
    counts = {
        "duplicates": dups,
        "Pending": pending,
        "Processing": processing,
        "Completed": completed,
        "Failed": failed,
    }
    return BatchTotals(
        batch_id,
        created_at,
        item_count,
        Summary.from_counts(counts),
        Amounts(total=int(c_total), paid=int(c_paid), failed=int(c_failed), pending=int(c_pending)),
    )


class ReadModel:
    """Queries only: nothing here writes, so every call is one autocommitted statement."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def batches(
        self,
        *,
        created_after: datetime | None,
        created_before: datetime | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[BatchTotals]:
        """Batches newest first, (created_at, batch_id) below `after`, each with its totals."""
        after_at, after_id = after if after else (None, None)
        with self.db.statement() as cur:
            cur.execute(
                f"SELECT b.batch_id, b.created_at, b.item_count, {_TOTALS_COLUMNS}"
                f" FROM batches b CROSS JOIN LATERAL ({_TOTALS}) t"
                " WHERE (%(from)s::timestamptz IS NULL OR b.created_at >= %(from)s)"
                " AND (%(to)s::timestamptz IS NULL OR b.created_at < %(to)s)"
                " AND (%(after_at)s::timestamptz IS NULL OR (b.created_at, b.batch_id) < (%(after_at)s, %(after_id)s))"
                f" AND (%(status)s::text IS NULL OR {_BATCH_STATUS} = %(status)s)"
                " ORDER BY b.created_at DESC, b.batch_id DESC LIMIT %(limit)s",
                {
                    "from": created_after,
                    "to": created_before,
                    "after_at": after_at,
                    "after_id": after_id,
                    "status": status,
                    "limit": limit,
                },
            )
            return [_totals(r[0], r[1], r[2], r[3:]) for r in cur.fetchall()]

    def batch_totals(self, batch_id: str) -> BatchTotals | None:
        with self.db.statement() as cur:
            cur.execute(
                f"SELECT b.batch_id, b.created_at, b.item_count, {_TOTALS_COLUMNS}"
                f" FROM batches b CROSS JOIN LATERAL ({_TOTALS}) t WHERE b.batch_id = %s",
                (batch_id,),
            )
            row = cur.fetchone()
        return None if row is None else _totals(row[0], row[1], row[2], row[3:])

    def batch_items(
        self, batch_id: str, *, after_index: int = -1, limit: int | None = None, status: str | None = None
    ) -> list[BatchItem]:
        """A batch's items in request order; with a status, only the items whose payout has it."""
        with self.db.statement() as cur:
            cur.execute(
                f"SELECT bi.item_index, bi.duplicate, {_PAYOUT_COLUMNS}"
                " FROM batch_items bi JOIN payouts p USING (payout_id)"
                " WHERE bi.batch_id = %s AND bi.item_index > %s AND (%s::text IS NULL OR p.status = %s)"
                " ORDER BY bi.item_index LIMIT %s",
                (batch_id, after_index, status, status, limit),
            )
            return [BatchItem(index=r[0], duplicate=r[1], payout=_payout(r[2:])) for r in cur.fetchall()]

    def payouts(
        self, *, external_id: str | None = None, user_id: str | None = None, after_id: str | None, limit: int
    ) -> list[Payout]:
        """Payouts of one external_id (at most one) or of one receiver, in payout_id (creation) order."""
        column = "external_id" if external_id is not None else "user_id"
        with self.db.statement() as cur:
            cur.execute(
                f"SELECT {_PAYOUT_COLUMNS} FROM payouts p WHERE p.{column} = %s"
                " AND (%s::uuid IS NULL OR p.payout_id > %s::uuid) ORDER BY p.payout_id LIMIT %s",
                (external_id if external_id is not None else user_id, after_id, after_id, limit),
            )
            return [_payout(r) for r in cur.fetchall()]
