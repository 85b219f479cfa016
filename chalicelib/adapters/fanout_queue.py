"""The fan-out queue: small wake-up messages naming outbox records, one SQS-triggered invocation each.

SDK errors leave as the domain's (aws_errors.py); a send that SQS refuses in part or in whole
comes back as the ids not woken, which the sweeper wakes later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..domain.errors import Unavailable
from .aws_errors import aws_errors
from .sqs_queue import SQS_BATCH, change_visibility

_QUEUE = "the fan-out queue"


def wakeup_body(outbox_ids: Sequence[int]) -> str:
    return json.dumps({"outbox_ids": list(outbox_ids)}, separators=(",", ":"))


class FanoutQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def wake(self, outbox_ids: Sequence[int]) -> None:
        """One message for all the records (the API's one call): its invocation wakes the others.

        Raises Unavailable (or DependencyRefused) when SQS does not take it."""
        with aws_errors(_QUEUE):
            self._client.send_message(QueueUrl=self._url, MessageBody=wakeup_body(outbox_ids))

    def wake_each(self, outbox_ids: Sequence[int]) -> list[int]:
        """One message per record, so each gets an invocation of its own; returns the ids not woken."""
        unsent: list[int] = []
        for i in range(0, len(outbox_ids), SQS_BATCH):
            chunk = outbox_ids[i : i + SQS_BATCH]
            entries = [{"Id": str(n), "MessageBody": wakeup_body([oid])} for n, oid in enumerate(chunk)]
            try:
                with aws_errors(_QUEUE):
                    failed = self._client.send_message_batch(QueueUrl=self._url, Entries=entries).get("Failed", [])
            except Unavailable:  # down, or refused: the caller marks what is left to go again
                return unsent + list(outbox_ids[i:])
            unsent += [chunk[int(f["Id"])] for f in failed]
        return unsent

    def delay(self, receipt_handle: str, seconds: int) -> None:
        with aws_errors(_QUEUE):
            change_visibility(self._client, self._url, receipt_handle, seconds)
