"""The webhook delivery queue: one message per delivery, sent ten at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .sqs_queue import SQS_BATCH


def delivery_body(delivery_id: int) -> str:
    return json.dumps({"delivery_id": delivery_id}, separators=(",", ":"))


class WebhookQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, delivery_ids: Sequence[int]) -> list[int]:
        """Queue each delivery; returns the ids SQS did not take (the relay marks them due again)."""
        unsent: list[int] = []
        for i in range(0, len(delivery_ids), SQS_BATCH):
            chunk = delivery_ids[i : i + SQS_BATCH]
            entries = [{"Id": str(n), "MessageBody": delivery_body(d)} for n, d in enumerate(chunk)]
            try:
                failed = self._client.send_message_batch(QueueUrl=self._url, Entries=entries).get("Failed", [])
            except (BotoCoreError, ClientError):
                return unsent + list(delivery_ids[i:])
            unsent += [chunk[int(f["Id"])] for f in failed]
        return unsent
