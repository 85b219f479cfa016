"""The payouts reconciliation compares with the provider's sends: by id, and Completed in a window."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from ..domain.reconciliation import PayoutRecord
from .database import Database

_COLUMNS = "payout_id::text, status, amount_cents, pix_key"
# One statement per this many ids: a day's sends can be tens of thousands.
_IDS_PER_QUERY = 5000


class ReconcileQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    def by_ids(self, payout_ids: Collection[str]) -> list[PayoutRecord]:
        """The payouts with these ids, whatever their status; unknown ids are left out."""
        ids = sorted(payout_ids)
        records: list[PayoutRecord] = []
        for start in range(0, len(ids), _IDS_PER_QUERY):
            records += self._select("payout_id = ANY(%s::uuid[])", (ids[start : start + _IDS_PER_QUERY],))
        return records

    def completed_between(self, since: datetime, until: datetime) -> list[PayoutRecord]:
        """Payouts that became Completed in [since, until)."""
        # Nothing updates a payout once it is Completed (a final status), so updated_at is the moment
        # it completed. A daily job: a scan is cheaper than an index every completion would pay for.
        return self._select("status = 'Completed' AND updated_at >= %s AND updated_at < %s", (since, until))

    def _select(self, where: str, params: tuple[Any, ...]) -> list[PayoutRecord]:
        with self._db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM payouts WHERE {where} ORDER BY payout_id", params)
            return [PayoutRecord(r[0], r[1], r[2], r[3]) for r in cur.fetchall()]
