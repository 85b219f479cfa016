"""Keeping the promise when things fail: the sweeper, dead letters, and the operator's redrive."""

from __future__ import annotations

from typing import Any

from ..domain.dead_letter import DeadLetterOutcome, DeadLetterView
from ..domain.outbox import ENQUEUE_PAYOUTS
from ..domain.provider import PixProvider
from ..observability import count, logger
from .ports import DeadLetters, FanoutQueue, Outbox, PayoutQueue, RecoveryStatements, Transitions
from .provider_calls import ask_by_id, is_async


class StillInFlight(Exception):
    """A settle attempt for this payout may still be running; decide later."""


def sweep(
    repo: RecoveryStatements,
    queue: PayoutQueue,
    outbox: Outbox,
    wakeups: FanoutQueue,
    *,
    grace_seconds: int,
    stale_seconds: int,
    limit: int,
    dead_letters: DeadLetters | None = None,
    lost_seconds: int | None = None,
) -> dict[str, int]:
    """Re-wake fan-outs that never finished, and re-send payouts whose message is gone.

    An outbox record is due when its wake-up may have been lost (SQS down after the commit) or its
    fan-out died: undone, unleased, untouched for grace_seconds.

    A payout message is known to be gone, without knowing whose, when the queues' messages could
    not carry all the open payouts whose fan-out is done (each is in one: waiting, in flight or
    delayed, or in the dead-letter queue; _missing_messages says how many each may carry). That
    happens when the emulator dies (its queues live in memory) or a queue is purged. Then up to that
    many payouts untouched for `lost_seconds` are re-sent at once, oldest first; otherwise only those
    untouched for `stale_seconds`, a window longer than any backoff. A second wake-up or message is
    harmless: the lease, the lock and the status guard make it a no-op, and a payout is re-sent at
    most once per window.
    """
    report = {"outbox_records": 0, "unwoken": 0, "stale_payouts": 0, "lost_payouts": 0, "missing": 0, "unsent": 0}
    missing = _missing_messages(repo, queue, dead_letters) if lost_seconds is not None else 0
    due = outbox.due(ENQUEUE_PAYOUTS, grace_seconds, limit)
    report["outbox_records"] = len(due)
    report["unwoken"] = len(wakeups.wake_each(due)) if due else 0
    stale = repo.claim_stale_payouts(stale_seconds, limit)
    report["stale_payouts"] = len(stale)
    report["unsent"] += len(queue.enqueue(stale))
    report["missing"] = max(0, missing - report["stale_payouts"])
    if report["missing"] and lost_seconds is not None:
        lost = repo.claim_stale_payouts(lost_seconds, min(report["missing"], limit))
        report["lost_payouts"] = len(lost)
        report["unsent"] += len(queue.enqueue(lost))
    count("SweptPayouts", report["stale_payouts"] + report["lost_payouts"])
    count("SweptOutboxRecords", report["outbox_records"])
    if any(report.values()):
        logger.warning("sweeper re-woke fan-outs or re-enqueued payouts", extra=report)
    return report


def _missing_messages(repo: RecoveryStatements, queue: PayoutQueue, dead_letters: DeadLetters | None) -> int:
    """Open payouts minus the most the queues' messages can carry; 0 when the queues cannot say.

    A payouts-queue message carries up to `per_message` payouts; a dead letter one (the dead-letter
    function splits a group as soon as it arrives there). Messages of payouts already final (a
    restored emulator's old state, duplicates) hide as many missing ones until settlement has
    deleted them, a few seconds: the next sweep sees the difference.
    """
    try:
        held = queue.depth() * queue.per_message + (dead_letters.depth() if dead_letters is not None else 0)
    except Exception:  # noqa: BLE001 - then only the slow stale rule runs this time
        logger.warning("could not read the queues' depth")
        return 0
    return max(0, repo.count_open() - held)


def handle_dead_letter(
    repo: RecoveryStatements,
    provider: PixProvider,
    queue: PayoutQueue,
    payout_id: str,
    *,
    lease_seconds: int,
    max_provider_attempts: int,
    transitions: Transitions | None = None,
    provider_name: str = "sandbox",
) -> str:
    """A payout whose message ran out of receives. Completed if it was paid after all; Failed only
    when its own count of unpaid provider attempts is spent; otherwise its receives went on faults
    of our own, and it goes back to the payouts queue.

    A provider that confirms later (Efí) is asked by our send id first: whatever it knows of the send
    (accepted, settled, rejected) goes through the guarded transition, and the payout is not failed.
    """
    if transitions is not None and is_async(provider):
        known = ask_by_id(provider, payout_id)
        if known is not None:
            [decision] = transitions.apply([known.word(payout_id, "ask", provider_name)])
            logger.info(
                "dead letter: the provider has the send",
                extra={"payout_id": payout_id, "provider_status": known.provider_status},
            )
            return "known_to_provider" if decision is not None else "unknown_payout"
    outcome = _close_dead_letter(repo, provider, payout_id, lease_seconds, max_provider_attempts)
    if outcome == "returned":
        if queue.enqueue([payout_id]):
            raise RuntimeError(f"could not send payout {payout_id} back to the payouts queue")
        count("DeadLettersReturned")
        logger.warning("dead letter sent back to the payouts queue", extra={"payout_id": payout_id})
        return outcome
    if outcome == "failed":
        count("PayoutsExhausted")
    logger.info("dead letter handled", extra={"payout_id": payout_id, "outcome": outcome})
    return outcome


def dead_letter_outcome(view: DeadLetterView, paid: bool, budget: int) -> DeadLetterOutcome:
    """Completed if the provider has the transfer; Failed only when the payout's own count of unpaid
    provider attempts is spent; otherwise its receives went on faults of our own: send it back."""
    if paid:
        return DeadLetterOutcome.RECOVERED
    if view.provider_failures >= budget:
        return DeadLetterOutcome.FAILED
    return DeadLetterOutcome.RETURNED


def _close_dead_letter(
    repo: RecoveryStatements, provider: PixProvider, payout_id: str, lease_seconds: int, budget: int
) -> str:
    """Read the payout, ask the provider with no lock held, then record the outcome under the row lock
    only if nothing moved meanwhile (close_dead_letter): an attempt that started during the ask, or a
    word that arrived, is never overruled by what was read before it. Nothing here ever sends."""
    view = repo.dead_letter_view(payout_id, lease_seconds)
    if view is None:
        return "unknown_payout"
    if view.final:
        return "already_final"
    if view.in_flight:
        raise StillInFlight(payout_id)
    # An asynchronous provider was asked by our send id before this: it has nothing under it.
    paid = not is_async(provider) and provider.find(view.end_to_end_id) is not None
    outcome = dead_letter_outcome(view, paid, budget)
    if not repo.close_dead_letter(payout_id, view, outcome, lease_seconds):
        raise StillInFlight(payout_id)  # it moved while the provider was asked: decide again later
    return outcome.value


def redrive(
    repo: RecoveryStatements, queue: PayoutQueue, dead_letters: DeadLetters, batch_id: str | None = None
) -> dict[str, Any]:
    """Operator action after fixing a cause: reopen RETRIES_EXHAUSTED payouts, then move dead letters back."""
    # Reopen before moving: a moved message for a payout still Failed would be acknowledged and dropped.
    reopened = repo.reopen_exhausted(batch_id)
    unsent = queue.enqueue(reopened)
    method, moved = dead_letters.move_back()
    report = {"reopened": len(reopened), "unsent": len(unsent), "dead_letters": method, "moved": moved}
    logger.warning("dead letters redriven", extra=report)
    return report
