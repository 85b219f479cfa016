"""Webhook use cases: manage endpoints, relay recorded events to the delivery queue, deliver, list, redeliver."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from ..adapters.views import BatchTotals
from ..adapters.webhook_store import ClaimedDelivery, Outcome, PendingEvent, RelayTransaction, WebhookStore
from ..domain.batch_request import Problem
from ..domain.errors import Conflict, NotFound, Unavailable
from ..domain.payout import Payout
from ..domain.payout_status import PayoutStatus
from ..domain.pix_keys import mask_pix_key
from ..domain.report import Amounts, Summary, batch_status, report_totals
from ..domain.uuids import ANY_CASE_UUID as _UUID_RE
from ..domain.webhooks import (
    InvalidEndpoint,
    Resolver,
    UnsafeUrl,
    check_url,
    event_uuid,
    new_secret,
    parse_endpoint_request,
    public_event_id,
    retry_delay,
)
from ..observability import count, logger
from .paging import decode_attempt_cursor, encode_attempt_cursor

# A delivery is held this long past the POST's own timeout before another attempt may take it.
LEASE_MARGIN_SECONDS = 20.0


class DeliveryQueue(Protocol):
    def send(self, groups: Sequence[Sequence[int]]) -> list[int]: ...


class Sender(Protocol):
    def send(self, url: str, msg_id: str, body: str, secrets: Sequence[str]) -> Outcome: ...


# --- endpoints -------------------------------------------------------------------------------------


def create_endpoint(store: WebhookStore, body: object, resolve: Resolver, allow_http_loopback: bool) -> dict[str, Any]:
    """Register an endpoint; the answer is the only place its signing secret is ever shown."""
    request = parse_endpoint_request(body)
    assert request.url is not None and request.events is not None
    _check(request.url, resolve, allow_http_loopback)
    endpoint = store.create_endpoint(
        str(uuid.uuid4()), request.url, request.events, request.description or "", new_secret()
    )
    logger.info("webhook endpoint created", extra={"endpoint_id": endpoint.endpoint_id, "events": request.events})
    return {**endpoint.to_json(), "secret": endpoint.secret}


def list_endpoints(store: WebhookStore) -> dict[str, Any]:
    return {"webhook_endpoints": [e.to_json() for e in store.endpoints()]}


def get_endpoint(store: WebhookStore, endpoint_id: str) -> dict[str, Any]:
    endpoint = store.endpoint(_endpoint_id(endpoint_id))
    if endpoint is None:
        raise _no_endpoint(endpoint_id)
    return endpoint.to_json()


def update_endpoint(
    store: WebhookStore, endpoint_id: str, body: object, resolve: Resolver, allow_http_loopback: bool
) -> dict[str, Any]:
    key = _endpoint_id(endpoint_id)
    request = parse_endpoint_request(body, partial=True)
    if request.url is not None:
        _check(request.url, resolve, allow_http_loopback)
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("url", request.url),
            ("events", request.events),
            ("description", request.description),
            ("enabled", request.enabled),
        )
        if value is not None
    }
    endpoint = store.update_endpoint(key, changes)
    if endpoint is None:
        raise _no_endpoint(endpoint_id)
    logger.info("webhook endpoint updated", extra={"endpoint_id": key, "fields": sorted(changes)})
    return endpoint.to_json()


def delete_endpoint(store: WebhookStore, endpoint_id: str) -> None:
    key = _endpoint_id(endpoint_id)
    if not store.delete_endpoint(key):
        raise _no_endpoint(endpoint_id)
    logger.info("webhook endpoint deleted", extra={"endpoint_id": key})


def rotate_secret(store: WebhookStore, endpoint_id: str, overlap_seconds: int) -> dict[str, Any]:
    """A new secret; the old one keeps signing beside it for overlap_seconds (two v1 signatures)."""
    key = _endpoint_id(endpoint_id)
    endpoint = store.rotate_secret(key, new_secret(), overlap_seconds)
    if endpoint is None:
        raise _no_endpoint(endpoint_id)
    logger.info("webhook secret rotated", extra={"endpoint_id": key, "overlap_seconds": overlap_seconds})
    return {**endpoint.to_json(), "secret": endpoint.secret, "previous_secret_expires_in_seconds": overlap_seconds}


def list_deliveries(store: WebhookStore, endpoint_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Every attempt to the endpoint, newest first."""
    key = _endpoint_id(endpoint_id)
    if store.endpoint(key) is None:
        raise _no_endpoint(endpoint_id)
    before = decode_attempt_cursor(cursor) if cursor else None
    rows = store.attempts(key, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "deliveries": [_attempt_json(r) for r in rows],
        "next_cursor": encode_attempt_cursor(rows[-1]["attempt_id"]) if more else None,
    }


def redeliver(store: WebhookStore, event_id: str) -> dict[str, Any]:
    """Send the event again, with the same webhook-id, to every enabled endpoint it was sent to."""
    key = event_uuid(event_id)
    exists, relayed = store.event_exists(key) if key else (False, False)
    if key is None or not exists:
        raise NotFound("no such event; event ids look like evt_ followed by 32 hex digits")
    if not relayed:
        raise Conflict("the event has not been sent yet; it will be shortly")
    created = store.redeliver(key)
    logger.info("webhook event redelivered", extra={"event_id": event_id, "deliveries": created})
    return {"event_id": event_id, "deliveries": created}


def _check(url: str, resolve: Resolver, allow_http_loopback: bool) -> None:
    try:
        check_url(url, resolve, allow_http_loopback=allow_http_loopback)
    except UnsafeUrl as exc:
        raise InvalidEndpoint([Problem(None, "url", "unsafe_url", str(exc))]) from exc


def _endpoint_id(text: str) -> str:
    if not _UUID_RE.fullmatch(text):
        raise NotFound("no such webhook endpoint; endpoint ids are UUIDs")
    return text.lower()


def _no_endpoint(endpoint_id: str) -> NotFound:
    return NotFound(f"no webhook endpoint {endpoint_id}")


def _attempt_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": public_event_id(row["event_id"]),
        "event_type": row["event_type"],
        "attempted_at": row["attempted_at"].isoformat(),
        "status_code": row["status_code"],
        "error": row["error"],
        "duration_ms": row["duration_ms"],
        "next_retry_at": row["next_retry_at"].isoformat() if row["next_retry_at"] else None,
        "delivery_status": row["delivery_status"],
    }


# --- event data ------------------------------------------------------------------------------------


def batch_data(
    batch_id: str, created_at: datetime, summary: Summary, amounts: Amounts, *, with_report: bool
) -> dict[str, Any]:
    """A batch as GET /batches lists it; batch.completed adds the report's counts."""
    data: dict[str, Any] = {
        "batch_id": batch_id,
        "created_at": created_at.isoformat(),
        "status": batch_status(summary),
        "summary": summary.to_json(),
        "amounts": amounts.to_json(),
    }
    if with_report:
        report = report_totals(batch_id, summary, amounts)
        data["report"] = {k: v for k, v in report.items() if k not in ("batch_id", "amounts")}
    return data


def accepted_data(
    batch_id: str, new_amounts: Sequence[int], duplicates: int
) -> Callable[[datetime, str], dict[str, Any]]:
    """batch.accepted's data for a batch just written: every new payout Pending."""
    summary = Summary.from_counts({"Pending": len(new_amounts), "duplicates": duplicates})
    total = sum(new_amounts)
    amounts = Amounts(total=total, paid=0, failed=0, pending=total)

    def render(created_at: datetime, event_type: str) -> dict[str, Any]:
        return batch_data(batch_id, created_at, summary, amounts, with_report=event_type == "batch.completed")

    return render


def render(event: PendingEvent, tx: RelayTransaction) -> dict[str, Any]:
    if event.data is not None:
        return event.data
    if event.snapshot is not None:
        return payout_data(event.snapshot, event.pix_key or "")
    totals = tx.batch_totals(event.batch_id)
    if totals is None:
        return {"batch_id": event.batch_id}
    return _totals_data(totals, with_report=event.type == "batch.completed")


def payout_data(snapshot: dict[str, Any], pix_key: str) -> dict[str, Any]:
    """The payout as GET /payouts/{id} shows it at the change, Pix key masked."""
    payout = Payout(
        payout_id=str(snapshot["payout_id"]),
        external_id=snapshot["external_id"],
        batch_id=snapshot["batch_id"],
        user_id=snapshot["user_id"],
        amount_cents=int(snapshot["amount_cents"]),
        pix_key_type=snapshot["pix_key_type"],
        pix_key=mask_pix_key(pix_key),
        end_to_end_id=snapshot["end_to_end_id"],
        status=PayoutStatus(snapshot["status"]),
        attempts=int(snapshot["attempts"]),
        failure_code=snapshot.get("failure_code"),
        failure_message=snapshot.get("failure_message"),
        created_at=_utc(snapshot["created_at"]),
        updated_at=_utc(snapshot["updated_at"]),
    )
    return payout.to_json()


def _totals_data(totals: BatchTotals, *, with_report: bool) -> dict[str, Any]:
    return batch_data(totals.batch_id, totals.created_at, totals.summary, totals.amounts, with_report=with_report)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def event_body(event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]) -> str:
    """The bytes every attempt of the event sends (and signs)."""
    body = {"id": public_event_id(event_id), "type": event_type, "created_at": created_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# --- relay -----------------------------------------------------------------------------------------


def relay_pass(
    store: WebhookStore, queue: DeliveryQueue, batch_size: int, requeue_seconds: int, group_size: int = 50
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
    store: WebhookStore,
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
    store: WebhookStore,
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
