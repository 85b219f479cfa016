"""The payouts queue: one message per payout, sent ten at a time over a few threads, and for a large
batch over a few processes."""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries
# A share smaller than this is not worth a process: forking and a client cost a few milliseconds.
MIN_MESSAGES_PER_PROCESS = 1000


class PayoutQueue:
    """Sends one message per payout.

    botocore spends about 0.7 ms of CPU on each SendMessageBatch call, so the 1,000 calls of a
    10,000-item batch keep one interpreter busy however many threads send them (`make bench`
    measured 1, 2, 3 and 8 alike). With `processes` > 1 a large batch is split into contiguous
    shares and all but one are sent by forked child processes, each with its own client from
    `client_factory`, so the work spreads over the CPUs the function has.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        workers: int = 8,
        processes: int = 1,
        client_factory: Callable[[], Any] | None = None,
        child_timeout: float = 20.0,
    ) -> None:
        self._client = client
        self._url = queue_url
        self._workers = max(1, workers)
        self._processes = max(1, processes) if client_factory is not None and hasattr(os, "fork") else 1
        self._client_factory = client_factory
        self._child_timeout = child_timeout

    def enqueue(self, payout_ids: Sequence[str]) -> list[str]:
        """Send one message per payout from this process; returns the ids that could not be sent.

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

    def enqueue_in_background(self, payout_ids: Sequence[str]) -> Future[list[str]]:
        """Send in the background; the future gives the ids that could not be sent.

        Child processes are forked here, in the calling thread and before any sender thread of
        this call exists; this process's own share is then sent on a thread of its own.
        """
        shares = self._shares(list(payout_ids))
        own, children = list(shares[0]), []
        for share in shares[1:]:
            child = self._fork(share)
            if child is None:
                own += share
            else:
                children.append(child)

        def run() -> list[str]:
            unsent: list[str] = []
            try:
                unsent += self.enqueue(own)
            finally:
                for child in children:  # always reaped, even when our own share failed
                    unsent += child.collect()
            return unsent

        runner = ThreadPoolExecutor(max_workers=1)
        try:
            return runner.submit(run)
        finally:
            runner.shutdown(wait=False)

    def _shares(self, payout_ids: list[str]) -> list[list[str]]:
        """Contiguous, chunk-aligned shares: one per process, none below MIN_MESSAGES_PER_PROCESS."""
        n = min(self._processes, len(payout_ids) // MIN_MESSAGES_PER_PROCESS)
        if n <= 1:
            return [payout_ids]
        chunks = -(-len(payout_ids) // SQS_BATCH)
        bounds = [round(chunks * k / n) * SQS_BATCH for k in range(n + 1)]
        return [payout_ids[bounds[k] : bounds[k + 1]] for k in range(n)]

    def _fork(self, share: list[str]) -> _Child | None:
        """Send `share` from a forked child; None when no process could be made (then we send it)."""
        factory = self._client_factory
        if factory is None:
            return None
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # the child: send, report what was not sent, and leave without running any cleanup
            status = 1
            try:
                os.close(read_end)
                queue = PayoutQueue(factory(), self._url, self._workers)
                report = json.dumps(queue.enqueue(share)).encode()
                with os.fdopen(write_end, "wb") as out:
                    out.write(report)
                status = 0
            finally:
                # os._exit: the parent's database connection, sockets and buffered output were copied
                # into this process; no finaliser may touch them.
                os._exit(status)
        os.close(write_end)
        return _Child(pid, read_end, share, time.monotonic() + self._child_timeout)

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after `seconds` (retry backoff)."""
        self._client.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )


@dataclass
class _Child:
    pid: int
    fd: int
    payout_ids: list[str]
    deadline: float  # time.monotonic() after which the child is killed

    def collect(self) -> list[str]:
        """The ids the child did not send: its report, or its whole share when it died, hung or lied."""
        data = bytearray()
        try:
            while (left := self.deadline - time.monotonic()) > 0:
                if not select.select([self.fd], [], [], left)[0]:
                    continue
                block = os.read(self.fd, 65536)
                if not block:
                    break
                data += block
            else:
                os.kill(self.pid, signal.SIGKILL)  # hung: what it sent stays sent, its whole share is reported
        finally:
            os.close(self.fd)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:  # reaped already (SIGCHLD ignored)
                pass
        try:
            unsent = json.loads(data)
        except ValueError:
            return list(self.payout_ids)  # died before reporting: a share may be sent twice, never lost
        known = set(self.payout_ids)
        if not isinstance(unsent, list) or not all(isinstance(p, str) and p in known for p in unsent):
            return list(self.payout_ids)
        return unsent


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
        self._client.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )

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
