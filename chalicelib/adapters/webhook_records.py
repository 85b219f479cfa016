"""Webhook rows written and read inside other transactions: a batch's events at submit, one relay pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg2.extensions
import psycopg2.extras

from ..domain.report import BatchTotals
from ..domain.webhook_records import Endpoint, PendingEvent
from .views import _TOTALS, _TOTALS_COLUMNS, _totals


def endpoint_columns(alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return (
        f"{a}endpoint_id::text, {a}url, {a}events, {a}description, {a}enabled, {a}failing_since, {a}created_at,"
        f" {a}updated_at, {a}secret, {a}previous_secret, {a}previous_expires_at > now()"
    )


ENDPOINT_COLUMNS = endpoint_columns()


def endpoint_from_row(row: Sequence[Any]) -> Endpoint:
    return Endpoint(
        endpoint_id=row[0],
        url=row[1],
        events=tuple(row[2]),
        description=row[3],
        enabled=row[4],
        failing_since=row[5],
        created_at=row[6],
        updated_at=row[7],
        secret=row[8],
        previous_secret=row[9] if row[10] else None,
    )


def add_batch_accepted(cur: psycopg2.extensions.cursor, batch_id: str, accepted_data: Any, completed: bool) -> None:
    """batch.accepted (and batch.completed for a batch with nothing of its own to pay), inside the submit
    transaction, when an enabled endpoint listens. accepted_data(created_at) renders the batch summary."""
    cur.execute(
        "SELECT b.created_at, array(SELECT DISTINCT unnest(ep.events) FROM webhook_endpoints ep WHERE ep.enabled)"
        " FROM batches b WHERE b.batch_id = %s",
        (batch_id,),
    )
    row = cur.fetchone()
    if row is None:
        return
    listened = set(row[1] or [])
    types = ["batch.accepted"] + (["batch.completed"] if completed else [])
    rows = [(t, batch_id, psycopg2.extras.Json(accepted_data(row[0], t))) for t in types if t in listened]
    if rows:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO webhook_events (type, batch_id, data) VALUES %s ON CONFLICT DO NOTHING",
            rows,
            template="(%s, %s, %s::jsonb)",
        )


class RelayTransaction:
    """One relay pass: lock a page of unrelayed events, render them, turn them into deliveries."""

    def __init__(self, cur: psycopg2.extensions.cursor) -> None:
        self.cursor = cur

    def unrelayed(self, limit: int) -> list[PendingEvent]:
        self.cursor.execute(
            "SELECT e.event_id::text, e.type, e.batch_id, e.snapshot, e.data, p.pix_key"
            " FROM webhook_events e LEFT JOIN payouts p ON p.payout_id = e.payout_id"
            " WHERE e.relayed_at IS NULL ORDER BY e.created_at LIMIT %s FOR UPDATE OF e SKIP LOCKED",
            (limit,),
        )
        return [PendingEvent(r[0], r[1], r[2], r[3], r[4], r[5]) for r in self.cursor.fetchall()]

    def batch_totals(self, batch_id: str) -> BatchTotals | None:
        self.cursor.execute(
            f"SELECT b.batch_id, b.created_at, b.item_count, {_TOTALS_COLUMNS}"
            f" FROM batches b CROSS JOIN LATERAL ({_TOTALS}) t WHERE b.batch_id = %s",
            (batch_id,),
        )
        row = self.cursor.fetchone()
        return None if row is None else _totals(row[0], row[1], row[2], row[3:])

    def relay(self, rendered: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Store each event's data, mark it relayed, and owe one delivery per enabled endpoint that listens
        (and was registered before the event happened)."""
        if not rendered:
            return 0
        psycopg2.extras.execute_values(
            self.cursor,
            "UPDATE webhook_events e SET data = v.data, relayed_at = now()"
            " FROM (VALUES %s) AS v (event_id, data) WHERE e.event_id = v.event_id",
            [(eid, psycopg2.extras.Json(data)) for eid, data in rendered],
            template="(%s::uuid, %s::jsonb)",
        )
        self.cursor.execute(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id)"
            " SELECT e.event_id, ep.endpoint_id FROM webhook_events e"
            " JOIN webhook_endpoints ep ON ep.enabled AND e.type = ANY (ep.events) AND ep.created_at <= e.created_at"
            " WHERE e.event_id = ANY (%s::uuid[])",
            ([eid for eid, _ in rendered],),
        )
        return int(self.cursor.rowcount)
