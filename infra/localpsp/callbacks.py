"""Work the local PSP does later: settling accepted sends and calling the webhook back, each at its time."""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from collections.abc import Callable
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
    """POSTs {"pix": [...]} to the registered URL; a non-2xx answer is retried after a doubling pause."""

    def __init__(self, url: str, scheduler: Scheduler, retries: int, retry_seconds: float) -> None:
        self._target = callback_target(url) if url else ""
        self._scheduler = scheduler
        self._retries = retries
        self._retry_seconds = retry_seconds
        self._http = httpx.Client(timeout=5.0)
        self.delivered = 0
        self.failed = 0

    def close(self) -> None:
        self._http.close()

    def post(self, body: dict[str, Any], delay_seconds: float, attempt: int = 0) -> None:
        if self._target:
            self._scheduler.later(delay_seconds, lambda: self._deliver(body, attempt))

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
