"""Webhook use cases: relay recorded events to the delivery queue, deliver them (endpoints: webhook_endpoints.py)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from ..domain.errors import Unavailable
from ..domain.webhook_records import ClaimedDelivery, Outcome
from ..domain.webhooks import public_event_id, retry_delay
from ..observability import count, logger
from .ports import DeliveryQueue, Sender, WebhookDeliveries
from .webhook_events import accepted_data, event_body, render

__all__ = ["DeliveryQueue", "Sender", "accepted_data", "deliver", "relay_pass", "run_relay"]

# A delivery is held this long past the POST's own timeout before another attempt may take it.
LEASE_MARGIN_SECONDS = 20.0


# --- relay -----------------------------------------------------------------------------------------


def relay_pass(
    store: WebhookDeliveries, queue: DeliveryQueue, batch_size: int, requeue_seconds: int, group_size: int = 50
) -> tuple[int, int]:
    """Turn recorded events into deliveries (one transaction), then put due deliveries on the queue, one
    message per group of up to group_size deliveries to one endpoint."""
    with store.relay_transaction() as tx:
        pending = tx.unrelayed(batch_size)
        deliveries = tx.relay([(e.event_id, render(e, tx)) for e in pending])
    due = store.take_due(batch_size, requeue_seconds)
    by_endpoint: dict[str, list[int]] = {}
    for delivery_id, endpoint_id in due:
        by_endpoint.setdefault(endpoint_id, []).append(delivery_id)
    step = max(1, group_size)
    groups = [ids[i : i + step] for ids in by_endpoint.values() for i in range(0, len(ids), step)]
    unsent = queue.send(groups) if groups else []
    store.not_queued(unsent)
    count("WebhookEventsRelayed", len(pending))
    count("WebhookDeliveriesQueued", len(due) - len(unsent))
    if pending or due:
        logger.info(
            "webhook relay pass",
            extra={"events": len(pending), "deliveries_created": deliveries, "queued": len(due), "unsent": len(unsent)},
        )
    return len(pending), len(due)


def run_relay(
    store: WebhookDeliveries,
    queue: DeliveryQueue,
    *,
    batch_size: int,
    requeue_seconds: int,
    run_seconds: float,
    poll_seconds: float,
    group_size: int = 50,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Relay passes for run_seconds (at least one), resting poll_seconds whenever a pass found little."""
    end = clock() + run_seconds
    events = queued = passes = 0
    while True:
        try:
            e, q = relay_pass(store, queue, batch_size, requeue_seconds, group_size)
        except Unavailable:
            # The database is down: nothing was handed on; look again at the next poll, not the next minute.
            logger.warning("webhook relay pass failed: database unavailable")
            e = q = 0
        events, queued, passes = events + e, queued + q, passes + 1
        if clock() >= end:
            return {"passes": passes, "events": events, "queued": queued}
        if e < batch_size and q < batch_size:
            sleep(min(poll_seconds, max(0.0, end - clock())))


# --- delivery --------------------------------------------------------------------------------------


def deliver(
    store: WebhookDeliveries,
    sender: Sender,
    delivery_ids: Sequence[int],
    *,
    schedule: Sequence[float],
    jitter: float,
    timeout_seconds: float,
    endpoint_concurrency: int = 8,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[int, str]:
    """One attempt per delivery: each endpoint gets its own few threads, so a slow endpoint holds only its own.

    An endpoint that gave no answer (timeout, refused connection) is not tried again in this invocation: its
    remaining deliveries are deferred unattempted, as are all those not started by `deadline` (the
    invocation's end less one timeout). Returns each delivery's status after this ("skipped" when there was
    nothing to do).
    """
    claimed = store.claim(delivery_ids, timeout_seconds + LEASE_MARGIN_SECONDS)
    results: dict[int, str] = dict.fromkeys(delivery_ids, "skipped")
    if not claimed:
        return results
    queues: dict[str, deque[ClaimedDelivery]] = {}
    for c in claimed:
        queues.setdefault(c.endpoint.endpoint_id, deque()).append(c)
    lock = threading.Lock()
    attempted: list[tuple[ClaimedDelivery, Outcome, float | None]] = []
    deferred: list[ClaimedDelivery] = []
    tripped: set[str] = set()

    def work(endpoint_id: str) -> None:
        pending = queues[endpoint_id]
        while True:
            with lock:
                if not pending:
                    return
                c = pending.popleft()
                if endpoint_id in tripped or (deadline is not None and clock() > deadline):
                    deferred.append(c)
                    continue
            body = event_body(c.event_id, c.event_type, c.event_created_at, c.data)
            outcome = sender.send(c.endpoint.url, public_event_id(c.event_id), body, c.endpoint.signing_secrets())
            retry_in = None
            if not outcome.ok and c.attempts <= len(schedule):
                retry_in = retry_delay(schedule, c.attempts, jitter)
            with lock:
                attempted.append((c, outcome, retry_in))
                if outcome.status_code is None:
                    tripped.add(endpoint_id)

    workers = [
        threading.Thread(target=work, args=(endpoint_id,), name=f"webhook-{n}")
        for endpoint_id, pending in queues.items()
        for n in range(min(max(1, endpoint_concurrency), len(pending)))
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    results.update(store.record(attempted, deferred, schedule[0] if schedule else 0.0))
    for c, outcome, retry_in in attempted:
        status = results[c.delivery_id]
        count({"delivered": "WebhooksDelivered", "pending": "WebhooksRetried"}.get(status, "WebhooksDeadLettered"))
        if status != "delivered":
            log = logger.warning if status == "dead_lettered" else logger.info
            log(
                "webhook attempt failed",
                extra={
                    "delivery_id": c.delivery_id,
                    "endpoint_id": c.endpoint.endpoint_id,
                    "event_id": public_event_id(c.event_id),
                    "attempt": c.attempts,
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                    "duration_ms": outcome.duration_ms,
                    "outcome": status,
                    "retry_in_seconds": None if retry_in is None else round(retry_in, 1),
                },
            )
    count("WebhooksDeferred", len(deferred))
    delivered = sum(1 for c, _, _ in attempted if results[c.delivery_id] == "delivered")
    logger.info(
        "webhook deliveries",
        extra={
            "claimed": len(claimed),
            "delivered": delivered,
            "failed": len(attempted) - delivered,
            "deferred": len(deferred),
        },
    )
    return results
