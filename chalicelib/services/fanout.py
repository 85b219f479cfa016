"""Fan-out: turn a committed batch's outbox records into payout messages (a group of payouts each), resumably."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..domain.outbox import ENQUEUE_PAYOUTS, NotClaimed
from ..observability import count, logger
from .ports import FanoutQueue, Outbox, PayoutQueue

# Payouts sent between two progress records (rounded up to whole SendMessageBatch calls): at most
# about this many are sent twice when a fan-out dies, a no-op each for settlement, never a second payment.
PROGRESS_EVERY_PAYOUTS = 250


class StillLeased(Exception):
    """Another invocation holds the record; look again once its lease has run out."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"outbox record leased for {seconds:.0f} s more")
        self.seconds = seconds


class NotSent(Exception):
    """SQS refused some messages; progress up to them is recorded and the record is free again."""


def plan_ranges(indexes: Sequence[int], per_range: int) -> list[tuple[int, int]]:
    """[start, end) item-index ranges, each holding at most per_range of the sorted `indexes`."""
    step = max(1, per_range)
    return [(indexes[i], indexes[min(i + step, len(indexes)) - 1] + 1) for i in range(0, len(indexes), step)]


def fan_out(
    outbox: Outbox,
    queue: PayoutQueue,
    wakeups: FanoutQueue,
    outbox_ids: Sequence[int],
    owner: str,
    lease_seconds: float,
) -> dict[str, Any]:
    """Handle one wake-up: give every record but the first an invocation of its own, then send the first's.

    The siblings are woken before our own sending starts, so a large batch's ranges go out from
    several invocations side by side (one interpreter sends about 1,400 SendMessageBatch calls a
    second at most, whatever its threads). A sibling that could not be woken is left to the sweeper.
    """
    first, rest = outbox_ids[0], list(outbox_ids[1:])
    if rest:
        unwoken = wakeups.wake_each(rest)
        if unwoken:
            logger.warning("outbox records not woken; the sweeper will", extra={"outbox_ids": unwoken})
    return enqueue_range(outbox, queue, first, owner, lease_seconds)


def enqueue_range(
    outbox: Outbox, queue: PayoutQueue, outbox_id: int, owner: str, lease_seconds: float
) -> dict[str, Any]:
    """Send the messages of the record's item range, from where its progress says it stopped.

    Safe to run twice at once: the lease lets one invocation in, and the other is told to come back
    when the lease ends (StillLeased). A worker that outlives its lease finds out at its next progress
    record and stops; until then both send, which duplicates messages, never payments.
    """
    started = time.perf_counter()
    claim = outbox.claim(outbox_id, owner, lease_seconds)
    if isinstance(claim, NotClaimed):
        if claim.reason == "leased":
            raise StillLeased(claim.lease_left_seconds)
        log = logger.error if claim.reason == "missing" else logger.info
        log("outbox record not claimed", extra={"outbox_id": outbox_id, "reason": claim.reason})
        return {"outbox_id": outbox_id, "outcome": claim.reason, "sent": 0}
    if claim.kind != ENQUEUE_PAYOUTS:
        raise ValueError(f"outbox record {outbox_id} is a {claim.kind!r}, not for the fan-out")
    batch_id, end = str(claim.payload["batch_id"]), int(claim.payload["end"])
    rows = outbox.batch_payouts(batch_id, claim.progress, end)
    size = queue.chunk_size
    every = max(1, -(-PROGRESS_EVERY_PAYOUTS // size))
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    results = queue.send_chunks([[pid for _, pid in chunk] for chunk in chunks])
    progress, sent, outcome = claim.progress, 0, "sent"
    try:
        for n, (chunk, unsent) in enumerate(zip(chunks, results, strict=True), start=1):
            if unsent:
                outbox.release(outbox_id, owner, progress, f"SQS refused {len(unsent)} of {len(chunk)} payouts")
                count("PayoutsNotEnqueued", len(rows) - sent)
                raise NotSent(f"outbox record {outbox_id}: messages from item {chunk[0][0]} on not sent")
            progress, sent = chunk[-1][0] + 1, sent + len(chunk)
            if n % every == 0 and not outbox.advance(outbox_id, owner, progress, lease_seconds):
                outcome = "lease_lost"
                break
    finally:
        results.close()
    if outcome == "sent" and not outbox.finish(outbox_id, owner, end):
        outcome = "lease_lost"
    count("PayoutsEnqueued", sent)
    extra = {"outbox_id": outbox_id, "batch_id": batch_id, "outcome": outcome, "sent": sent}
    logger.info("payouts enqueued", extra={**extra, "seconds": round(time.perf_counter() - started, 3)})
    return extra
