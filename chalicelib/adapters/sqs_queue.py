"""The payouts queue: a group of payouts per message from the fan-out, one per message when a payout comes back."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.payout_messages import MAX_GROUP, encode
from ..services.ports import SQS_BATCH

__all__ = ["SQS_BATCH", "DeadLetters", "PayoutQueue", "change_visibility", "queue_depth"]

MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds
_DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def change_visibility(client: Any, queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Make a received message visible again after `seconds` (SQS allows at most 12 hours)."""
    client.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
    )


class PayoutQueue:
    """Sends payouts `per_message` to a message, ten messages to a SendMessageBatch call.

    botocore spends about 0.7 ms of CPU on each SendMessageBatch call, so one interpreter sends
    about as fast from one thread as from eight; the threads only overlap the waits for answers.
    A large batch is sent from several fan-out invocations at once (services/fanout.py).
    """

    def __init__(self, client: Any, queue_url: str, workers: int = 8, per_message: int = 1) -> None:
        if not 1 <= per_message <= MAX_GROUP:
            raise ValueError(f"PAYOUTS_PER_MESSAGE is 1 to {MAX_GROUP}, not {per_message}")
        self._client = client
        self._url = queue_url
        self._workers = max(1, workers)
        self.per_message = per_message

    @property
    def chunk_size(self) -> int:
        """Payouts one SendMessageBatch call carries."""
        return SQS_BATCH * self.per_message

    def enqueue(self, payout_ids: Sequence[str]) -> list[str]:
        """Send the payouts' messages; returns the ids that could not be sent."""
        size = self.chunk_size
        chunks = [payout_ids[i : i + size] for i in range(0, len(payout_ids), size)]
        return [pid for unsent in self.send_chunks(chunks) for pid in unsent]

    def send_chunks(self, chunks: Sequence[Sequence[str]]) -> Generator[list[str], None, None]:
        """Send each chunk (at most chunk_size ids) as one call; yields each chunk's unsent ids, in order.

        After a call fails outright (queue unreachable) the remaining chunks are not attempted
        and come back whole. Closing the iterator early cancels the chunks not started yet.
        """
        broken = threading.Event()
        n = self.per_message

        def send(chunk: Sequence[str]) -> list[str]:
            if broken.is_set():
                return list(chunk)
            groups = [list(chunk[i : i + n]) for i in range(0, len(chunk), n)]
            unsent, reached = self._send_batch([(g, encode(g), 0) for g in groups])
            if not reached:
                broken.set()
            return [pid for group in unsent for pid in group]

        if len(chunks) <= 1 or self._workers == 1:
            yield from (send(c) for c in chunks)
            return
        pool = ThreadPoolExecutor(max_workers=min(self._workers, len(chunks)))
        try:
            yield from pool.map(send, chunks)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def send_each(self, comebacks: Sequence[tuple[str, int, int]]) -> list[str]:
        """(payout_id, retries, delay seconds): one message each, visible after its delay (at most
        SQS's 900 s). Returns the payouts whose message could not be sent."""
        unsent: list[str] = []
        for i in range(0, len(comebacks), SQS_BATCH):
            entries = [
                ([pid], encode([pid], retries), max(0, min(delay, MAX_DELAY_SECONDS)))
                for pid, retries, delay in comebacks[i : i + SQS_BATCH]
            ]
            failed, _reached = self._send_batch(entries)
            unsent += [pid for group in failed for pid in group]
        return unsent

    def _send_batch(self, messages: Sequence[tuple[list[str], str, int]]) -> tuple[list[list[str]], bool]:
        """One SendMessageBatch of (payouts, body, delay) entries: the payout groups not sent, and
        whether the queue answered at all.

        Entries failing on their own (throttling, internal errors) get one more try; a call that
        fails outright (BotoCoreError, ClientError) leaves all of them unsent.
        """
        entries: list[dict[str, Any]] = []
        for n, (_ids, body, delay) in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(n), "MessageBody": body}
            if delay:
                entry["DelaySeconds"] = delay
            entries.append(entry)
        try:
            for _ in range(2):
                resp = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
                failed = {f["Id"] for f in resp.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    return [], True
        except (BotoCoreError, ClientError):
            return [ids for ids, _body, _delay in messages], False
        return [messages[int(e["Id"])][0] for e in entries], True

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after `seconds` (retry backoff)."""
        change_visibility(self._client, self._url, receipt_handle, seconds)

    def renew(self, payout_ids: Sequence[str], retries: int, delay_seconds: int) -> None:
        """Send a message's payouts again as a new message (receive count 0), visible after the delay.

        `retries` rides along so the next backoff carries on from where the old message was.
        """
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=encode(payout_ids, retries),
            DelaySeconds=max(0, min(delay_seconds, MAX_DELAY_SECONDS)),
        )

    def depth(self) -> int:
        """Messages the queue holds: waiting, received and not yet deleted, and delayed."""
        return queue_depth(self._client, self._url)


def queue_depth(client: Any, url: str) -> int:
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=list(_DEPTH_ATTRIBUTES))["Attributes"]
    return sum(int(attrs.get(name, 0)) for name in _DEPTH_ATTRIBUTES)


# Error codes meaning "this endpoint has no StartMessageMoveTask" (MiniStack, older emulators).
_NO_MOVE_TASK = {
    "InvalidAction",
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "UnknownOperationException",
    "NotImplemented",
}


class DeadLetters:
    """The dead-letter queue of the payouts queue: delay a message, or move everything back."""

    def __init__(self, client: Any, dlq_url: str, target_url: str) -> None:
        self._client = client
        self._url = dlq_url
        self._target = target_url

    def delay(self, receipt_handle: str, seconds: int) -> None:
        change_visibility(self._client, self._url, receipt_handle, seconds)

    def depth(self) -> int:
        return queue_depth(self._client, self._url)

    def send(self, body: str) -> None:
        """Put a message here directly (one that names no payout: nothing can settle it)."""
        self._client.send_message(QueueUrl=self._url, MessageBody=body)

    def move_back(self) -> tuple[str, int | None]:
        """Move every dead letter to the payouts queue: ("move_task", None) or ("copied", count)."""
        try:
            self._client.start_message_move_task(SourceArn=self._arn(self._url), DestinationArn=self._arn(self._target))
            return "move_task", None
        except NotImplementedError:  # moto
            pass
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _NO_MOVE_TASK:
                raise
        return "copied", self._copy_back()

    def _arn(self, url: str) -> str:
        attrs = self._client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def _copy_back(self) -> int:
        # Send first, delete after: a crash in between duplicates a message, which settlement tolerates,
        # instead of losing one, which it would not.
        moved = 0
        while True:
            msgs = self._client.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            if not msgs:
                return moved
            entries = [{"Id": str(n), "MessageBody": m["Body"]} for n, m in enumerate(msgs)]
            sent = self._client.send_message_batch(QueueUrl=self._target, Entries=entries).get("Successful", [])
            done = [{"Id": s["Id"], "ReceiptHandle": msgs[int(s["Id"])]["ReceiptHandle"]} for s in sent]
            if done:
                self._client.delete_message_batch(QueueUrl=self._url, Entries=done)
            moved += len(done)
            if len(done) < len(msgs):
                raise RuntimeError(f"could not move {len(msgs) - len(done)} dead letters; run the redrive again")
