"""The webhooks figure: a local receiver told every event of a 10,000-item batch; seconds from the batch's last
payout turning terminal to the last event received, and its ratio to that batch's settle time (target <= 0.1).

`python -m bench.webhooks [--items N]` measures it alone (the stack must be up); `make bench` includes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from standardwebhooks import Webhook

from . import measure
from .env import Stack, connect
from .payloads import batch_body, new_run_id
from .stats import ratio

TARGET = 0.1
EVENTS = ["batch.accepted", "payout.completed", "payout.failed", "batch.completed"]


class CountingReceiver:
    """Verifies every delivery's signature and keeps, per batch, how many events came and when the last did."""

    def __init__(self) -> None:
        self.secret = ""
        self.counts: Counter[str] = Counter()
        self.last_at: dict[str, float] = {}
        self.bad = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = Webhook(receiver.secret).verify(body, dict(self.headers))
                    batch_id = str(event["data"]["batch_id"])
                except Exception:  # noqa: BLE001 - a bad delivery is counted, and refused
                    with receiver.lock:
                        receiver.bad += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.counts[batch_id] += 1
                    receiver.last_at[batch_id] = time.time()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure_webhooks(stack: Stack, db: Any, run_id: str, items: int, timeout: float) -> dict[str, Any]:
    receiver = CountingReceiver()
    resp = requests.post(
        stack.url("/webhook-endpoints"),
        data=json.dumps({"url": receiver.url, "events": EVENTS, "description": f"bench {run_id}"}),
        headers={"Content-Type": "application/json", **stack.headers},
        timeout=30,
    )
    if resp.status_code != 201:
        raise RuntimeError(f"POST /webhook-endpoints answered {resp.status_code}: {resp.text[:300]}")
    endpoint = resp.json()
    receiver.secret = endpoint["secret"]
    try:
        ing = measure.post_batch(stack, batch_body(run_id, "webhooks", items))
        last_terminal = measure.wait_terminal(db, ing.batch_id, items, timeout)
        expected = items + 2  # batch.accepted, one per payout, batch.completed
        end = time.monotonic() + timeout
        while receiver.counts[ing.batch_id] < expected and time.monotonic() < end:
            time.sleep(0.2)
        received = receiver.counts[ing.batch_id]
        if received < expected:
            raise RuntimeError(f"webhooks: {received} of {expected} events received in {timeout:.0f} s")
        settle_s = last_terminal - ing.answered_at
        webhooks_s = max(0.0, receiver.last_at[ing.batch_id] - last_terminal)
    finally:
        requests.delete(stack.url(f"/webhook-endpoints/{endpoint['id']}"), headers=stack.headers, timeout=30)
        receiver.close()
    return {
        "events": received,
        "seconds": round(webhooks_s, 3),
        "settle_seconds": round(settle_s, 3),
        "ratio": round(ratio(webhooks_s, settle_s), 3),
        "target": TARGET,
        "bad_signatures": receiver.bad,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args(argv)
    stack = Stack.from_files()
    print(json.dumps(measure_webhooks(stack, connect(stack.database_url), new_run_id(), args.items, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
