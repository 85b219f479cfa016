"""PayoutQueue sending a large batch from several processes: every id sent once or reported unsent.

The SQS client here is a stand-in for boto3's (not for our code): each process's instance appends
what it sends to one shared file, so the parent can see what its forked children sent.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from chalicelib.adapters.sqs_queue import MIN_MESSAGES_PER_PROCESS, SQS_BATCH, PayoutQueue

QUEUE_URL = "http://sqs.local/000000000000/payouts"


class RecordingSqs:
    """send_message_batch that appends "<pid> <payout_id>" lines to `log`; `behaviour` can break it."""

    def __init__(self, log: Path, behaviour: str = "ok") -> None:
        self.log = log
        self.behaviour = behaviour

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        if self.behaviour == "unreachable":
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        if self.behaviour == "dies":
            os._exit(3)
        if self.behaviour == "hangs":
            time.sleep(60)
        lines = "".join(f"{os.getpid()} {json.loads(e['MessageBody'])['payout_id']}\n" for e in Entries)
        with self.log.open("a") as fh:  # one write per call: lines from several processes never interleave
            fh.write(lines)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def sent(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(pid), payout_id) for pid, payout_id in (line.split() for line in log.read_text().splitlines())]


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def queue(log: Path, processes: int, child: str = "ok", timeout: float = 20.0) -> PayoutQueue:
    return PayoutQueue(
        RecordingSqs(log),
        QUEUE_URL,
        workers=4,
        processes=processes,
        client_factory=lambda: RecordingSqs(log, child),
        child_timeout=timeout,
    )


def test_a_large_batch_is_sent_once_by_two_processes_in_contiguous_shares(tmp_path: Path) -> None:
    log, payouts = tmp_path / "sent.log", ids(3 * MIN_MESSAGES_PER_PROCESS)
    unsent = queue(log, processes=2).enqueue_in_background(payouts).result(timeout=30)
    assert unsent == []
    records = sent(log)
    assert sorted(p for _, p in records) == sorted(payouts)  # every id, none twice
    by_pid: dict[int, set[str]] = {}
    for pid, payout_id in records:
        by_pid.setdefault(pid, set()).add(payout_id)
    assert len(by_pid) == 2 and os.getpid() in by_pid
    child = next(pid for pid in by_pid if pid != os.getpid())
    half = len(payouts) // 2
    assert by_pid[os.getpid()] == set(payouts[:half]) and by_pid[child] == set(payouts[half:])
    assert half % SQS_BATCH == 0


def test_a_batch_below_the_threshold_is_sent_by_this_process_alone(tmp_path: Path) -> None:
    log, payouts = tmp_path / "sent.log", ids(2 * MIN_MESSAGES_PER_PROCESS - 1)
    assert queue(log, processes=4).enqueue_in_background(payouts).result(timeout=30) == []
    assert {pid for pid, _ in sent(log)} == {os.getpid()}
    assert sorted(p for _, p in sent(log)) == sorted(payouts)


@pytest.mark.parametrize("behaviour", ["unreachable", "dies"])
def test_a_child_that_cannot_send_or_dies_reports_its_whole_share_unsent(tmp_path: Path, behaviour: str) -> None:
    log, payouts = tmp_path / "sent.log", ids(2 * MIN_MESSAGES_PER_PROCESS)
    unsent = queue(log, processes=2, child=behaviour).enqueue_in_background(payouts).result(timeout=30)
    half = len(payouts) // 2
    assert sorted(unsent) == sorted(payouts[half:])  # left for the sweeper, never silently dropped
    assert sorted(p for _, p in sent(log)) == sorted(payouts[:half])


def test_a_hung_child_is_killed_at_its_deadline_and_its_share_reported_unsent(tmp_path: Path) -> None:
    log, payouts = tmp_path / "sent.log", ids(2 * MIN_MESSAGES_PER_PROCESS)
    started = time.monotonic()
    unsent = queue(log, processes=2, child="hangs", timeout=1.0).enqueue_in_background(payouts).result(timeout=30)
    assert time.monotonic() - started < 20  # not the child's 60 s sleep
    assert sorted(unsent) == sorted(payouts[len(payouts) // 2 :])
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # reaped: no child of ours is left
