"""Webhooks in PostgreSQL: endpoints, events (written by triggers and the submit path), deliveries, attempts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2.extensions
import psycopg2.extras

from .database import Database, one
from .views import _TOTALS, _TOTALS_COLUMNS, BatchTotals, _totals


def _endpoint_columns(alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return (
        f"{a}endpoint_id::text, {a}url, {a}events, {a}description, {a}enabled, {a}failing_since, {a}created_at,"
        f" {a}updated_at, {a}secret, {a}previous_secret, {a}previous_expires_at > now()"
    )


_ENDPOINT_COLUMNS = _endpoint_columns()


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str
    previous_secret: str | None

    def signing_secrets(self) -> list[str]:
        """The current secret, then the previous one while its overlap lasts."""
        return [self.secret] + ([self.previous_secret] if self.previous_secret else [])

    def to_json(self) -> dict[str, object]:
        """As the API shows it: never a secret."""
        return {
            "id": self.endpoint_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "enabled": self.enabled,
            "failing": self.failing_since is not None,
            "failing_since": self.failing_since.isoformat() if self.failing_since else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _endpoint(row: Sequence[Any]) -> Endpoint:
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


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event the relay has not handed on yet, with what it needs to render its data."""

    event_id: str
    type: str
    batch_id: str
    snapshot: dict[str, Any] | None
    data: dict[str, Any] | None
    pix_key: str | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    delivery_id: int
    attempts: int  # including the one just claimed
    event_id: str
    event_type: str
    event_created_at: datetime
    data: dict[str, Any]
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


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


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- endpoints ---------------------------------------------------------------------------

    def create_endpoint(
        self, endpoint_id: str, url: str, events: Sequence[str], description: str, secret: str
    ) -> Endpoint:
        with self.db.statement() as cur:
            cur.execute(
                "INSERT INTO webhook_endpoints (endpoint_id, url, events, description, secret)"
                f" VALUES (%s, %s, %s, %s, %s) RETURNING {_ENDPOINT_COLUMNS}",
                (endpoint_id, url, list(events), description, secret),
            )
            return _endpoint(one(cur))

    def endpoints(self) -> list[Endpoint]:
        with self.db.statement() as cur:
            cur.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, endpoint_id")
            return [_endpoint(r) for r in cur.fetchall()]

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        with self.db.statement() as cur:
            cur.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = %s", (endpoint_id,))
            row = cur.fetchone()
        return None if row is None else _endpoint(row)

    def update_endpoint(self, endpoint_id: str, changes: dict[str, Any]) -> Endpoint | None:
        columns = {"url", "events", "description", "enabled"}
        sets = ", ".join(f"{name} = %({name})s" for name in changes if name in columns)
        with self.db.statement() as cur:
            cur.execute(
                f"UPDATE webhook_endpoints SET {sets}, updated_at = now() WHERE endpoint_id = %(id)s"
                f" RETURNING {_ENDPOINT_COLUMNS}",
                {**{k: (list(v) if k == "events" else v) for k, v in changes.items()}, "id": endpoint_id},
            )
            row = cur.fetchone()
        return None if row is None else _endpoint(row)

    def delete_endpoint(self, endpoint_id: str) -> bool:
        with self.db.statement() as cur:
            cur.execute("DELETE FROM webhook_endpoints WHERE endpoint_id = %s", (endpoint_id,))
            return int(cur.rowcount) == 1

    def rotate_secret(self, endpoint_id: str, secret: str, overlap_seconds: int) -> Endpoint | None:
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret,"
                " previous_expires_at = now() + make_interval(secs => %s), secret = %s, updated_at = now()"
                f" WHERE endpoint_id = %s RETURNING {_ENDPOINT_COLUMNS}",
                (overlap_seconds, secret, endpoint_id),
            )
            row = cur.fetchone()
        return None if row is None else _endpoint(row)

    # --- relay ---------------------------------------------------------------------------------

    @contextmanager
    def relay_transaction(self) -> Iterator[RelayTransaction]:
        with self.db.transaction() as cur:
            yield RelayTransaction(cur)

    def take_due(self, limit: int, requeue_seconds: int) -> list[tuple[int, str]]:
        """(delivery_id, endpoint_id) of deliveries due now and not on the queue (or on it so long their message
        must be lost), marked as queued; SKIP LOCKED lets two relays share the work."""
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE webhook_deliveries SET enqueued_at = now() WHERE delivery_id IN ("
                " SELECT d.delivery_id FROM webhook_deliveries d"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
                " AND (d.enqueued_at IS NULL OR d.enqueued_at < now() - make_interval(secs => %s))"
                " AND EXISTS (SELECT 1 FROM webhook_endpoints ep WHERE ep.endpoint_id = d.endpoint_id AND ep.enabled)"
                " ORDER BY d.next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING delivery_id, endpoint_id::text",
                (requeue_seconds, limit),
            )
            return sorted((r[0], r[1]) for r in cur.fetchall())

    def not_queued(self, delivery_ids: Sequence[int]) -> None:
        """The queue refused these: due again at once for the next pass."""
        if delivery_ids:
            with self.db.statement() as cur:
                cur.execute(
                    "UPDATE webhook_deliveries SET enqueued_at = NULL WHERE delivery_id = ANY (%s)",
                    (list(delivery_ids),),
                )

    # --- delivery ------------------------------------------------------------------------------

    def claim(self, delivery_ids: Sequence[int], lease_seconds: float) -> list[ClaimedDelivery]:
        """Hold the queued, pending deliveries of enabled endpoints among these for one attempt each; the
        others have nothing to do (delivered, dead-lettered, held by another attempt, a duplicate message)."""
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE webhook_deliveries d SET attempts = d.attempts + 1,"
                " lease_until = now() + make_interval(secs => %s)"
                " FROM webhook_endpoints ep, webhook_events e"
                " WHERE d.delivery_id = ANY (%s) AND d.status = 'pending' AND d.enqueued_at IS NOT NULL"
                " AND (d.lease_until IS NULL OR d.lease_until < now())"
                " AND ep.endpoint_id = d.endpoint_id AND ep.enabled AND e.event_id = d.event_id"
                " RETURNING d.delivery_id, d.attempts, e.event_id::text, e.type, e.created_at, e.data,"
                f" {_endpoint_columns('ep')}",
                (lease_seconds, list(delivery_ids)),
            )
            rows = cur.fetchall()
        return sorted(
            (ClaimedDelivery(r[0], r[1], r[2], r[3], r[4], r[5], _endpoint(r[6:])) for r in rows),
            key=lambda c: c.delivery_id,
        )

    def record(
        self,
        attempted: Sequence[tuple[ClaimedDelivery, Outcome, float | None]],
        deferred: Sequence[ClaimedDelivery],
        defer_seconds: float,
    ) -> dict[int, str]:
        """In one transaction: each attempt, and what follows it (delivered; retried at now + its delay;
        dead-lettered when the delay is None); deferred deliveries (never sent: their endpoint had just
        failed, or the invocation ran short of time) go back unattempted, due in defer_seconds."""
        statuses = {
            c.delivery_id: "delivered" if o.ok else ("pending" if retry_in is not None else "dead_lettered")
            for c, o, retry_in in attempted
        }
        with self.db.transaction() as cur:
            next_at: dict[int, Any] = {}
            if attempted:
                rows = psycopg2.extras.execute_values(
                    cur,
                    "UPDATE webhook_deliveries d SET status = v.status, lease_until = NULL, enqueued_at = NULL,"
                    " next_attempt_at = CASE WHEN v.retry_in IS NULL THEN d.next_attempt_at"
                    " ELSE now() + make_interval(secs => v.retry_in) END"
                    " FROM (VALUES %s) AS v (delivery_id, status, retry_in) WHERE d.delivery_id = v.delivery_id"
                    " RETURNING d.delivery_id, CASE WHEN v.status = 'pending' THEN d.next_attempt_at END",
                    [(c.delivery_id, statuses[c.delivery_id], retry_in) for c, _, retry_in in attempted],
                    template="(%s::bigint, %s::text, %s::float8)",
                    fetch=True,
                )
                next_at = {r[0]: r[1] for r in rows}
                # Joined to the deliveries: one removed meanwhile (endpoint deleted) loses its attempt, not the rest.
                psycopg2.extras.execute_values(
                    cur,
                    "INSERT INTO webhook_attempts (delivery_id, endpoint_id, event_id, status_code, error,"
                    " duration_ms, next_retry_at) SELECT v.* FROM (VALUES %s) AS v (delivery_id, endpoint_id, event_id,"
                    " status_code, error, duration_ms, next_retry_at)"
                    " JOIN webhook_deliveries d ON d.delivery_id = v.delivery_id",
                    [
                        (
                            c.delivery_id,
                            c.endpoint.endpoint_id,
                            c.event_id,
                            o.status_code,
                            o.error,
                            o.duration_ms,
                            next_at.get(c.delivery_id),
                        )
                        for c, o, _ in attempted
                    ],
                    template="(%s::bigint, %s::uuid, %s::uuid, %s::integer, %s::text, %s::integer, %s::timestamptz)",
                )
                dead = sorted(
                    {c.endpoint.endpoint_id for c, _, _ in attempted if statuses[c.delivery_id] == "dead_lettered"}
                )
                fine = sorted(
                    {c.endpoint.endpoint_id for c, _, _ in attempted if statuses[c.delivery_id] == "delivered"}
                )
                if dead:
                    cur.execute(
                        "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now())"
                        " WHERE endpoint_id = ANY (%s::uuid[])",
                        (dead,),
                    )
                if fine:
                    # No write (and no row lock) unless the endpoint was failing: 10,000 deliveries in a row
                    # must not queue up on one endpoint row.
                    cur.execute(
                        "UPDATE webhook_endpoints SET failing_since = NULL WHERE endpoint_id = ANY (%s::uuid[])"
                        " AND failing_since IS NOT NULL AND NOT endpoint_id = ANY (%s::uuid[])",
                        (fine, dead),
                    )
            if deferred:
                cur.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts - 1, lease_until = NULL, enqueued_at = NULL,"
                    " next_attempt_at = now() + make_interval(secs => %s) WHERE delivery_id = ANY (%s)",
                    (defer_seconds, [c.delivery_id for c in deferred]),
                )
        return {**statuses, **{c.delivery_id: "deferred" for c in deferred}}

    # --- reads and redelivery ------------------------------------------------------------------

    def attempts(self, endpoint_id: str, before_id: int | None, limit: int) -> list[dict[str, Any]]:
        with self.db.statement() as cur:
            cur.execute(
                "SELECT a.attempt_id, a.event_id::text, e.type, a.delivery_id, a.attempted_at, a.status_code,"
                " a.error, a.duration_ms, a.next_retry_at, d.status"
                " FROM webhook_attempts a JOIN webhook_events e ON e.event_id = a.event_id"
                " JOIN webhook_deliveries d ON d.delivery_id = a.delivery_id"
                " WHERE a.endpoint_id = %s AND (%s::bigint IS NULL OR a.attempt_id < %s)"
                " ORDER BY a.attempt_id DESC LIMIT %s",
                (endpoint_id, before_id, before_id, limit),
            )
            keys = (
                "attempt_id",
                "event_id",
                "event_type",
                "delivery_id",
                "attempted_at",
                "status_code",
                "error",
                "duration_ms",
                "next_retry_at",
                "delivery_status",
            )
            return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]

    def event_exists(self, event_id: str) -> tuple[bool, bool]:
        """(exists, relayed)"""
        with self.db.statement() as cur:
            cur.execute("SELECT relayed_at IS NOT NULL FROM webhook_events WHERE event_id = %s", (event_id,))
            row = cur.fetchone()
        return (False, False) if row is None else (True, bool(row[0]))

    def redeliver(self, event_id: str) -> int:
        """A new delivery of the event to every enabled endpoint that was sent it before; due at once."""
        with self.db.statement() as cur:
            cur.execute(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id)"
                " SELECT %s, ep.endpoint_id FROM webhook_endpoints ep WHERE ep.enabled AND ep.endpoint_id IN"
                " (SELECT endpoint_id FROM webhook_deliveries WHERE event_id = %s)",
                (event_id, event_id),
            )
            return int(cur.rowcount)
