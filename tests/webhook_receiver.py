"""A real local webhook endpoint for the tests: records every request and verifies signatures with standardwebhooks."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


class Receiver:
    """A local webhook endpoint: records every request; answers `fail_first` failures per webhook-id, or
    `status` always, after `delay` seconds."""

    def __init__(self, status: int = 200, fail_first: int = 0, delay: float = 0.0) -> None:
        self.status, self.fail_first, self.delay = status, fail_first, delay
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append({"headers": headers, "body": body, "at": time.monotonic()})
                    seen = sum(1 for r in receiver.requests if r["headers"]["webhook-id"] == headers["webhook-id"])
                time.sleep(receiver.delay)
                code = 500 if seen <= receiver.fail_first else receiver.status
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timeout) before the answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, secret: str, batch_id: str | None = None) -> list[dict[str, Any]]:
        """Every request's body, each verified with the standardwebhooks library (raises if one does not)."""
        out = []
        for r in list(self.requests):
            event = Webhook(secret).verify(r["body"], r["headers"])
            if batch_id is None or event["data"].get("batch_id") == batch_id:
                out.append(event)
        return out
