"""Keeping the promise when things fail: the sweeper, dead letters, and the operator's redrive."""

from __future__ import annotations

from typing import Any

from ..adapters.fanout_queue import FanoutQueue
from ..adapters.outbox import ENQUEUE_PAYOUTS, Outbox
from ..adapters.postgres import PayoutRepository
from ..adapters.sqs_queue import DeadLetters, PayoutQueue
from ..domain.provider import PixProvider
from ..observability import count, logger


class StillInFlight(Exception):
    """A settle attempt for this payout may still be running; decide later."""


def sweep(
    repo: PayoutRepository,
    queue: PayoutQueue,
    outbox: Outbox,
    wakeups: FanoutQueue,
    *,
    grace_seconds: int,
    stale_seconds: int,
    limit: int,
) -> dict[str, int]:
    """Re-wake fan-outs that never finished, and re-send payouts that have sat open too long.

    An outbox record is due when its wake-up may have been lost (SQS down after the commit) or its
    fan-out died: undone, unleased, untouched for grace_seconds. A second wake-up or a second
    message for a payout is harmless: the lease, the lock and the status guard make it a no-op.
    """
    report = {"outbox_records": 0, "unwoken": 0, "stale_payouts": 0, "unsent": 0}
    due = outbox.due(ENQUEUE_PAYOUTS, grace_seconds, limit)
    report["outbox_records"] = len(due)
    report["unwoken"] = len(wakeups.wake_each(due)) if due else 0
    stale = repo.claim_stale_payouts(stale_seconds, limit)
    report["stale_payouts"] = len(stale)
    report["unsent"] += len(queue.enqueue(stale))
    count("SweptPayouts", report["stale_payouts"])
    count("SweptOutboxRecords", report["outbox_records"])
    if any(report.values()):
        logger.warning("sweeper re-woke fan-outs or re-enqueued payouts", extra=report)
    return report


def handle_dead_letter(repo: PayoutRepository, provider: PixProvider, payout_id: str, lease_seconds: int) -> str:
    """A payout whose message exhausted its receives: Completed if it was paid after all, else Failed."""
    outcome, _ = repo.give_up(payout_id, lease_seconds, lambda e2e: provider.find(e2e) is not None)
    if outcome == "in_flight":
        raise StillInFlight(payout_id)
    if outcome == "failed":
        count("PayoutsExhausted")
    logger.info("dead letter handled", extra={"payout_id": payout_id, "outcome": outcome})
    return outcome


def redrive(
    repo: PayoutRepository, queue: PayoutQueue, dead_letters: DeadLetters, batch_id: str | None = None
) -> dict[str, Any]:
    """Operator action after fixing a cause: reopen RETRIES_EXHAUSTED payouts, then move dead letters back."""
    # Reopen before moving: a moved message for a payout still Failed would be acknowledged and dropped.
    reopened = repo.reopen_exhausted(batch_id)
    unsent = queue.enqueue(reopened)
    method, moved = dead_letters.move_back()
    report = {"reopened": len(reopened), "unsent": len(unsent), "dead_letters": method, "moved": moved}
    logger.warning("dead letters redriven", extra=report)
    return report
