"""Measurements against the deployed API: ingest (POST /batches), enqueued (fan-out done), settle, read (pages)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from .env import Stack

TERMINAL_SQL = (
    "SELECT count(*) FILTER (WHERE status IN ('Completed', 'Failed')),"
    " extract(epoch FROM max(updated_at) FILTER (WHERE status IN ('Completed', 'Failed')))"
    " FROM payouts WHERE batch_id = %s"
)


@dataclass(frozen=True)
class Ingest:
    batch_id: str
    items: int
    seconds: float
    sent_at: float  # time.time() just before sending; with answered_at, lines up with Postgres/log timestamps
    answered_at: float  # time.time() when the 201 was read


def post_batch(stack: Stack, body: dict[str, Any], timeout: float = 120) -> Ingest:
    """POST /batches through the API Gateway emulator; the clock covers send + 201 read (body pre-encoded)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", **stack.headers}
    sent_at = time.time()
    started = time.perf_counter()
    resp = requests.post(stack.url("/batches"), data=data, headers=headers, timeout=timeout)
    seconds = time.perf_counter() - started
    answered_at = time.time()
    if resp.status_code != 201:
        raise RuntimeError(f"POST /batches answered {resp.status_code}: {resp.text[:300]}")
    received = resp.json()["received_items"]
    if received != len(body["items"]):  # type: ignore[arg-type]
        raise RuntimeError(f"POST /batches received {received} items, sent {len(body['items'])}")  # type: ignore[arg-type]
    return Ingest(str(body["batch_id"]), received, seconds, sent_at, answered_at)


def terminal(db: Any, batch_id: str) -> tuple[int, float | None]:
    """(payouts of the batch that are Completed/Failed, epoch of the last such status change)."""
    with db.cursor() as cur:
        cur.execute(TERMINAL_SQL, (batch_id,))
        done, last = cur.fetchone()
    return int(done), (float(last) if last is not None else None)


OPEN_SQL = "SELECT count(*) FROM payouts WHERE status IN ('Pending', 'Processing') AND batch_id = %s"


def wait_terminal(db: Any, batch_id: str, expected: int, timeout: float, poll: float = 0.5) -> float:
    """Block until every payout of the batch is terminal; returns the epoch of the last status change
    (Postgres' updated_at of the last payout to finish), so the polling interval does not blur it.

    Polls with a query the partial index payouts_open_idx answers (open payouts only): a count over
    the whole payouts table would be a sequential scan, and polling it would load the database we time.
    """
    deadline = time.monotonic() + timeout
    while True:
        with db.cursor() as cur:
            cur.execute(OPEN_SQL, (batch_id,))
            still_open = cur.fetchone()[0]
        if still_open == 0:
            done, last = terminal(db, batch_id)
            if done >= expected and last is not None:
                return last
            raise RuntimeError(f"batch {batch_id}: nothing open but only {done}/{expected} terminal")
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id}: {still_open} payouts still open after {timeout:.0f} s")
        time.sleep(poll)


def read_pages(stack: Stack, batch_id: str, page_size: int, passes: int = 1) -> tuple[list[float], int]:
    """Walk every page of GET /batches/{id}?limit=page_size with the cursor, `passes` times.
    Returns (latency of each page in ms, payouts seen per pass)."""
    latencies: list[float] = []
    seen = 0
    with requests.Session() as http:
        http.headers.update(stack.headers)
        for _ in range(passes):
            cursor: str | None = None
            seen = 0
            while True:
                params = {"limit": str(page_size), **({"cursor": cursor} if cursor else {})}
                started = time.perf_counter()
                resp = http.get(stack.url(f"/batches/{batch_id}"), params=params, timeout=60)
                body = resp.json()
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status_code != 200:
                    raise RuntimeError(f"GET /batches/{batch_id} answered {resp.status_code}: {resp.text[:300]}")
                seen += len(body["payouts"])
                cursor = body.get("next_cursor")
                if not cursor:
                    break
    return latencies, seen


def accepted_at(logs: Any, log_group: str, batch_id: str, since: float) -> float | None:
    """Epoch of the API's "batch accepted" log line for the batch (written right after the batch's
    transaction commits), from CloudWatch Logs on MiniStack; None when it cannot be found."""
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": int(since * 1000) - 5000}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            message = event.get("message", "")
            if batch_id not in message or "batch accepted" not in message:
                continue
            try:
                stamp = json.loads(message)["timestamp"]
                return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
            except (ValueError, KeyError):
                return None
        if not page.get("nextToken") or page.get("nextToken") == kwargs.get("nextToken"):
            return None
        kwargs["nextToken"] = page["nextToken"]


ENQUEUED_SQL = (
    "SELECT count(*), count(done_at), sum((payload->>'end')::int - (payload->>'start')::int),"
    " extract(epoch FROM max(done_at)) FROM outbox WHERE aggregate_id = %s AND kind = 'enqueue_payouts'"
)


def wait_enqueued(db: Any, batch_id: str, items: int, timeout: float, poll: float = 0.1) -> float:
    """Block until the fan-out has sent every payout's message; returns the epoch at which the last of the
    batch's outbox records was done (its last SendMessageBatch had returned), so polling does not blur it."""
    deadline = time.monotonic() + timeout
    while True:
        with db.cursor() as cur:
            cur.execute(ENQUEUED_SQL, (batch_id,))
            records, done, covered, last = cur.fetchone()
        if records and done == records:
            if covered != items:
                raise RuntimeError(f"batch {batch_id}: outbox records cover {covered} items, expected {items}")
            return float(last)
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id}: {records - done} of {records} outbox records undone")
        time.sleep(poll)


def ingest_phases(db: Any, ingest: Ingest, accepted: float | None, enqueued: float) -> dict[str, float]:
    """Where the time went, from timestamps the app leaves behind: batches.created_at (start of the write
    transaction), the "batch accepted" log line (after its commit), the 201, and the fan-out's last
    outbox record done (every message sent)."""
    with db.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM created_at) FROM batches WHERE batch_id = %s", (ingest.batch_id,))
        row = cur.fetchone()
    if row is None:
        return {}
    created = float(row[0])
    phases = {"before_transaction": created - ingest.sent_at}
    if accepted is not None:
        phases["write_transaction"] = accepted - created
        phases["reply"] = ingest.answered_at - accepted
    else:
        phases["write_transaction_and_reply"] = ingest.answered_at - created
    phases["fan_out_after_reply"] = enqueued - ingest.answered_at
    return {k: round(v, 3) for k, v in phases.items()}
