"""Measurements against the deployed API: ingest (POST /batches), settle (until terminal), read (pages)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
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
    answered_at: float  # time.time() when the 201 was read, to line up with Postgres timestamps


def post_batch(stack: Stack, body: dict[str, Any], timeout: float = 120) -> Ingest:
    """POST /batches through the API Gateway emulator; the clock covers send + 201 read (body pre-encoded)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    resp = requests.post(stack.url("/batches"), data=data, headers=headers, timeout=timeout)
    seconds = time.perf_counter() - started
    answered_at = time.time()
    if resp.status_code != 201:
        raise RuntimeError(f"POST /batches answered {resp.status_code}: {resp.text[:300]}")
    received = resp.json()["received_items"]
    if received != len(body["items"]):  # type: ignore[arg-type]
        raise RuntimeError(f"POST /batches received {received} items, sent {len(body['items'])}")  # type: ignore[arg-type]
    return Ingest(str(body["batch_id"]), received, seconds, answered_at)


def terminal(db: Any, batch_id: str) -> tuple[int, float | None]:
    """(payouts of the batch that are Completed/Failed, epoch of the last such status change)."""
    with db.cursor() as cur:
        cur.execute(TERMINAL_SQL, (batch_id,))
        done, last = cur.fetchone()
    return int(done), (float(last) if last is not None else None)


def wait_terminal(db: Any, batch_id: str, expected: int, timeout: float, poll: float = 0.25) -> float:
    """Block until every payout of the batch is terminal; returns the epoch of the last status change
    (Postgres' updated_at of the last payout to finish), so the polling interval does not blur it."""
    deadline = time.monotonic() + timeout
    while True:
        done, last = terminal(db, batch_id)
        if done >= expected and last is not None:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id}: {done}/{expected} terminal after {timeout:.0f} s")
        time.sleep(poll)


def read_pages(stack: Stack, batch_id: str, page_size: int, passes: int = 1) -> tuple[list[float], int]:
    """Walk every page of GET /batches/{id}?limit=page_size with the cursor, `passes` times.
    Returns (latency of each page in ms, payouts seen per pass)."""
    latencies: list[float] = []
    seen = 0
    with requests.Session() as http:
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
