"""The webhook delivery queue: one message per group of one endpoint's deliveries, sent ten at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..domain.errors import Unavailable
from .aws_errors import aws_errors
from .sqs_queue import SQS_BATCH

_QUEUE = "the webhook queue"


def delivery_body(delivery_ids: Sequence[int]) -> str:
    return json.dumps({"delivery_ids": list(delivery_ids)}, separators=(",", ":"))


class WebhookQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, groups: Sequence[Sequence[int]]) -> list[int]:
        """One message per group of delivery ids; returns the ids SQS did not take (the relay marks them due again)."""
        unsent: list[int] = []
        for i in range(0, len(groups), SQS_BATCH):
            chunk = groups[i : i + SQS_BATCH]
            entries = [{"Id": str(n), "MessageBody": delivery_body(g)} for n, g in enumerate(chunk)]
            try:
                with aws_errors(_QUEUE):
                    failed = self._client.send_message_batch(QueueUrl=self._url, Entries=entries).get("Failed", [])
            except Unavailable:  # down, or refused: the caller marks what is left to go again
                return unsent + [d for g in groups[i:] for d in g]
            unsent += [d for f in failed for d in chunk[int(f["Id"])]]
        return unsent
