"""Work the local PSP does later: settling accepted sends and calling the webhook back, each at its time."""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


class Scheduler:
    """One thread that runs each job at its due time (a heap: thousands of pending jobs, one thread)."""

    def __init__(self) -> None:
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="localpsp-scheduler", daemon=True)
        self._thread.start()

    def later(self, delay_seconds: float, job: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._jobs, (time.monotonic() + max(0.0, delay_seconds), next(self._seq), job))
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._jobs or self._jobs[0][0] > time.monotonic()):
                    self._wake.wait(timeout=self._jobs[0][0] - time.monotonic() if self._jobs else None)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._jobs)
            try:
                job()
            except Exception as exc:  # a job's failure must not stop the jobs after it
                print(f"localpsp: scheduled job failed: {exc!r}", file=sys.stderr)


def callback_target(webhook_url: str) -> str:
    """Efí POSTs to <url>/pix, or to <url> itself when it carries ignorar= (its skip-mTLS form)."""
    parts = urlsplit(webhook_url)
    if "ignorar=" in parts.query:
        return webhook_url
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/pix"))


class Webhook:
    """POSTs {"pix": [...]} to the registered URL; a non-2xx answer is retried after a doubling pause.

    Deliveries run on a small pool, not on the scheduler's thread, so a slow receiver never delays
    settlements. With batch_seconds > 0, entries that fall due within that window go out together,
    up to MAX_ENTRIES a POST (Efí's callbacks may carry several entries): thousands of sends a minute
    then cost the receiver tens of calls, not thousands.
    """

    MAX_ENTRIES = 100

    def __init__(
        self, url: str, scheduler: Scheduler, retries: int, retry_seconds: float, batch_seconds: float = 0.0
    ) -> None:
        self._target = callback_target(url) if url else ""
        self._scheduler = scheduler
        self._retries = retries
        self._retry_seconds = retry_seconds
        self._batch_seconds = batch_seconds
        self._http = httpx.Client(timeout=5.0, limits=httpx.Limits(max_connections=8))
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="localpsp-webhook")
        self._pending: list[Any] = []
        self._pending_lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def post(self, body: dict[str, Any], delay_seconds: float, attempt: int = 0) -> None:
        if not self._target:
            return
        if self._batch_seconds <= 0 or attempt:
            self._scheduler.later(delay_seconds, lambda: self._pool.submit(self._deliver, body, attempt))
            return
        self._scheduler.later(delay_seconds, lambda: self._collect(body["pix"]))

    def _collect(self, entries: list[Any]) -> None:
        with self._pending_lock:
            first = not self._pending
            self._pending.extend(entries)
        if first:
            self._scheduler.later(self._batch_seconds, self._flush)

    def _flush(self) -> None:
        with self._pending_lock:
            entries, self._pending = self._pending, []
        for start in range(0, len(entries), self.MAX_ENTRIES):
            self._pool.submit(self._deliver, {"pix": entries[start : start + self.MAX_ENTRIES]}, 0)

    def _deliver(self, body: dict[str, Any], attempt: int) -> None:
        try:
            ok = self._http.post(self._target, json=body).is_success
        except httpx.HTTPError:
            ok = False
        if ok:
            self.delivered += 1
            return
        self.failed += 1
        if attempt < self._retries:
            self.post(body, self._retry_seconds * 2**attempt, attempt + 1)
