"""The payouts queue: one message per payout, sent ten at a time over a few threads."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries


class PayoutQueue:
    def __init__(self, client: Any, queue_url: str, workers: int = 8) -> None:
        self._client = client
        self._url = queue_url
        self._workers = max(1, workers)

    def enqueue(self, payout_ids: Sequence[str]) -> list[str]:
        """Send one message per payout; returns the ids that could not be sent.

        After a call fails outright (queue unreachable) the remaining chunks are not
        attempted: they stay Pending and unenqueued, for the sweeper to pick up.
        """
        chunks = [payout_ids[i : i + SQS_BATCH] for i in range(0, len(payout_ids), SQS_BATCH)]
        if not chunks:
            return []
        broken = threading.Event()

        def send(chunk: Sequence[str]) -> list[str]:
            if broken.is_set():
                return list(chunk)
            entries = [
                {"Id": str(n), "MessageBody": json.dumps({"payout_id": pid}, separators=(",", ":"))}
                for n, pid in enumerate(chunk)
            ]
            try:
                # Entries failing on their own (throttling, internal errors) get one more try.
                for _ in range(2):
                    resp = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
                    failed = {f["Id"] for f in resp.get("Failed", [])}
                    entries = [e for e in entries if e["Id"] in failed]
                    if not entries:
                        return []
                return [chunk[int(e["Id"])] for e in entries]
            except (BotoCoreError, ClientError):
                broken.set()
                return list(chunk)

        if len(chunks) == 1 or self._workers == 1:
            results = [send(c) for c in chunks]
        else:
            with ThreadPoolExecutor(max_workers=min(self._workers, len(chunks))) as pool:
                results = list(pool.map(send, chunks))
        return [pid for unsent in results for pid in unsent]

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after `seconds` (retry backoff)."""
        self._client.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )
