"""The writes of one batch submission: the batch, its payouts and items, its outbox and webhook records."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from ..domain.batch_request import PayoutItem
from ..domain.errors import ExternalIdTaken, WriteConflict
from ..domain.idempotency import ExistingPayout, Fingerprint
from .database import Database, one
from .outbox import add_enqueue_tasks
from .pg_conflicts import is_retryable
from .webhook_records import add_batch_accepted


class BatchWriter:
    """The writes and reads of one batch submission, all inside the caller's transaction."""

    def __init__(self, cur: psycopg2.extensions.cursor) -> None:
        self._cur = cur

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

    def add_enqueue_tasks(self, batch_id: str, ranges: Sequence[tuple[int, int]], grace_seconds: int) -> list[int]:
        """The batch's outbox records, in this transaction (adapters/outbox.py)."""
        return add_enqueue_tasks(self._cur, batch_id, ranges, grace_seconds)

    def add_batch_accepted(self, batch_id: str, accepted_data: Any, completed: bool) -> None:
        """The batch's webhook events, in this transaction (adapters/webhook_records.py)."""
        add_batch_accepted(self._cur, batch_id, accepted_data, completed)


def is_external_id_race(exc: BaseException) -> bool:
    """True when a concurrent batch committed one of our external_ids first."""
    return isinstance(exc, psycopg2.errors.UniqueViolation) and "external_id" in (
        getattr(exc.diag, "constraint_name", "") or ""
    )


class BatchWrites:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def batch_writer(self) -> Iterator[BatchWriter]:
        """One transaction; a lost lock conflict or an external_id race comes out as the domain's error."""
        try:
            with self.db.transaction() as cur:
                yield BatchWriter(cur)
        except psycopg2.Error as exc:
            if is_retryable(exc):
                raise WriteConflict(str(exc), getattr(exc, "pgcode", None)) from exc
            if is_external_id_race(exc):
                raise ExternalIdTaken(str(exc)) from exc
            raise
