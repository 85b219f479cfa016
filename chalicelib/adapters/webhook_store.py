"""Webhook deliveries: relay passes, due deliveries to the queue, claims, outcomes, the attempt log, redelivery."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg2.extras

from ..domain.webhook_records import ClaimedDelivery, Endpoint, Outcome, PendingEvent
from .webhook_endpoints import WebhookEndpoints
from .webhook_records import RelayTransaction, add_batch_accepted
from .webhook_records import endpoint_columns as _endpoint_columns
from .webhook_records import endpoint_from_row as _endpoint

__all__ = [
    "ClaimedDelivery",
    "Endpoint",
    "Outcome",
    "PendingEvent",
    "RelayTransaction",
    "WebhookStore",
    "add_batch_accepted",
]


class WebhookStore(WebhookEndpoints):
    """The endpoints (adapters/webhook_endpoints.py) and the deliveries to them."""

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
