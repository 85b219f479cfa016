"""Settle a batch of payout messages: lock their payouts, settle them, and decide which messages come back, when.

Why a payout comes back, and when:
- the provider did not pay (transient error, unknown outcome, throttled): after a backoff on the
  payout's own count of failed provider attempts, or the provider's Retry-After; that count, not
  SQS, decides when it fails (settlement.py);
- another worker holds its lock: a few seconds later;
- our own infrastructure failed (PostgreSQL, the lock table, a deadlock that outlived its retries):
  after a capped backoff on how often its message came back, for as long as the fault lasts,
  counted as InfrastructureRetries for an alarm. Nothing of the provider budget is spent.

A message comes back whole when all its payouts come back for the same reason and after the same
time (a single payout's message always does). A group whose payouts part ways is split: each
payout that must come back is sent on as a message of its own, delayed by its own backoff and
carrying the group's receives, and the group is deleted. So retries, backoff and dead-lettering
stay exactly per payout, whatever the message carried.

A message that has used half the queue's receives (maxReceiveCount, far above the provider budget)
is renewed instead of delayed: sent again as a new message and the old one deleted, so a fault of
hours never walks it into the dead-letter queue. Receives are a poor clock (a crash or a held lock
spends one too); renewing needs the queue to take a send, and if it does not, the dead-letter
consumer still sends the payout back rather than fail it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain.payout_messages import PayoutMessage
from ..domain.provider import PixProvider
from ..observability import count, logger
from .ports import DeadLetters, PayoutComebacks, PayoutLocks, SettlementStatements, Transitions
from .settlement import RetryLater, Settled, UnknownPayout, backoff_seconds, settle_payouts


@dataclass(frozen=True, slots=True)
class Received:
    """A payout message as the settle function got it."""

    message_id: str
    receipt_handle: str
    receive_count: int
    message: PayoutMessage

    @property
    def comebacks(self) -> int:
        """How often its payouts' messages came back: this one's receives plus those it continues."""
        return self.message.comebacks(self.receive_count)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message that names no payout of ours."""

    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Policy:
    max_provider_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    infra_retry_max_seconds: float
    in_progress_retry_seconds: int
    max_receive_count: int
    provider_name: str = "sandbox"
    provider_concurrency: int = 1
    # A provider call is started only while one whole call (connect + read timeout) still fits.
    provider_call_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Later:
    """Come back after these seconds (the provider's retry, a held lock)."""

    seconds: int


@dataclass(frozen=True, slots=True)
class OurFault:
    """Our own infrastructure failed: come back after a backoff on the message's comebacks."""

    error: str


DONE = "done"
Comeback = Later | OurFault


@dataclass
class Report:
    failed_messages: list[str] = field(default_factory=list)
    settled: dict[str, list[str]] = field(default_factory=dict)
    batch_ids: set[str] = field(default_factory=set)
    held: list[str] = field(default_factory=list)
    split: int = 0
    lock_ms: float = 0.0
    settle_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Ports:
    locks: PayoutLocks
    statements: SettlementStatements
    transitions: Transitions
    provider: PixProvider
    queue: PayoutComebacks
    dead_letters: DeadLetters


def settle_messages(
    messages: Sequence[Received | Malformed],
    ports: Ports,
    policy: Policy,
    *,
    owner: str,
    lease_seconds: float,
    deadline: float | None = None,
) -> Report:
    """Settle every payout the messages name; the report's failed_messages are the ones to redeliver.

    `deadline` (time.monotonic()) is when the invocation must have recorded its work: provider calls
    that could not finish before it are not started (settlement.py), and their payouts come back.
    """
    report = Report()
    received = [m for m in messages if isinstance(m, Received)]
    for bad in (m for m in messages if isinstance(m, Malformed)):
        logger.error("message names no payout", extra={"message_id": bad.message_id})
        if not _to_dead_letters(ports.dead_letters, bad):
            report.failed_messages.append(bad.message_id)
    payout_ids = list(dict.fromkeys(p for r in received for p in r.message.payout_ids))
    if payout_ids:
        verdicts = _settle(payout_ids, ports, policy, owner, lease_seconds, deadline, report)
        for r in received:
            _answer(r, verdicts, ports.queue, policy, report)
    return report


def _settle(
    payout_ids: list[str],
    ports: Ports,
    policy: Policy,
    owner: str,
    lease_seconds: float,
    deadline: float | None,
    report: Report,
) -> dict[str, Comeback | str]:
    verdicts: dict[str, Comeback | str] = {}
    started = time.perf_counter()
    try:
        acquired, held = ports.locks.acquire(payout_ids, owner, lease_seconds)
    except Exception as exc:  # noqa: BLE001 - fail closed: no provider call without the lock
        logger.exception("lock table unavailable; nothing settled")
        return _our_fault(payout_ids, exc)
    locked = time.perf_counter()
    report.lock_ms = round((locked - started) * 1000, 1)
    report.held = held
    # A lock is left to expire after success, so a duplicate delivery can find it held: if the
    # payout is final (or awaits the provider's confirmation) there is nothing to wait for.
    final = _final(ports.statements, held)
    for payout_id in held:
        if payout_id in final:
            verdicts[payout_id] = DONE
        else:
            logger.info("payout locked by another worker", extra={"payout_id": payout_id})
            verdicts[payout_id] = Later(policy.in_progress_retry_seconds)
    if not acquired:
        return verdicts
    try:
        outcomes = settle_payouts(
            ports.statements,
            ports.transitions,
            ports.provider,
            acquired,
            policy.max_provider_attempts,
            provider_name=policy.provider_name,
            concurrency=policy.provider_concurrency,
            start_calls_by=None if deadline is None else deadline - policy.provider_call_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - e.g. the database is down: every acquired payout comes back
        outcomes = dict.fromkeys(acquired, exc)
    report.settle_ms = round((time.perf_counter() - locked) * 1000, 1)
    faults: list[OurFault] = []
    for payout_id in acquired:
        outcome = outcomes[payout_id]
        if isinstance(outcome, Settled):
            report.settled.setdefault(outcome.outcome, []).append(payout_id)
            if outcome.batch_id:
                report.batch_ids.add(outcome.batch_id)
            verdicts[payout_id] = DONE
            continue
        if isinstance(outcome, UnknownPayout):
            # Messages leave only after their batch commits (the fan-out reads them from the database).
            logger.error("message for a payout that does not exist", extra={"payout_id": payout_id})
            verdicts[payout_id] = DONE
            continue
        _release(ports.locks, payout_id, owner)
        if isinstance(outcome, RetryLater):
            wait = backoff_seconds(outcome.failures, policy.retry_base_seconds, policy.retry_max_seconds)
            # Retry-After is the provider's own word on when to come back: never earlier.
            verdicts[payout_id] = Later(max(wait, math.ceil(outcome.retry_after or 0)))
        else:
            fault = OurFault(repr(outcome))
            verdicts[payout_id] = fault
            faults.append(fault)
    if faults:
        logger.warning(
            "infrastructure fault; messages come back", extra={"payouts": len(faults), "error": faults[0].error}
        )
        count("InfrastructureRetries", len(faults))
    return verdicts


def _our_fault(payout_ids: Sequence[str], error: BaseException) -> dict[str, Comeback | str]:
    logger.warning("infrastructure fault; messages come back", extra={"payouts": len(payout_ids), "error": repr(error)})
    count("InfrastructureRetries", len(payout_ids))
    return dict.fromkeys(payout_ids, OurFault(repr(error)))


def _answer(
    received: Received, verdicts: dict[str, Comeback | str], queue: PayoutComebacks, policy: Policy, report: Report
) -> None:
    """Delete the message (by not failing it), delay or renew it whole, or split it."""
    ids = received.message.payout_ids
    comebacks = {p: v for p in ids if not isinstance(v := verdicts[p], str)}
    if not comebacks:
        return
    # Our own faults wait on the message's comebacks, the same for all its payouts: one draw of the jitter.
    ours = backoff_seconds(received.comebacks, policy.retry_base_seconds, policy.infra_retry_max_seconds)
    seconds = {p: v.seconds if isinstance(v, Later) else ours for p, v in comebacks.items()}
    kinds = {(type(v), seconds[p]) for p, v in comebacks.items()}
    if len(comebacks) == len(ids) and len(kinds) == 1:
        _come_back_whole(received, next(iter(seconds.values())), queue, policy, report)
        return
    # The group's payouts part ways: each that must come back does so as a message of its own.
    unsent = queue.send_each([(p, received.comebacks, s) for p, s in seconds.items()])
    if unsent:
        logger.warning(
            "could not split a message; it comes back whole",
            extra={"message_id": received.message_id, "payouts": len(unsent)},
        )
        _delay(queue, received, min(seconds[p] for p in unsent), policy)
        report.failed_messages.append(received.message_id)
        return
    report.split += 1
    count("MessagesSplit")


def _come_back_whole(received: Received, seconds: int, queue: PayoutComebacks, policy: Policy, report: Report) -> None:
    if received.receive_count >= policy.max_receive_count // 2 and _renew(queue, received, seconds):
        return
    _delay(queue, received, seconds, policy)
    report.failed_messages.append(received.message_id)


def _renew(queue: PayoutComebacks, received: Received, seconds: int) -> bool:
    """Past half its receives, send the message again as a new one; True once the new one is sent."""
    ids = received.message.payout_ids
    try:
        queue.renew(ids, received.comebacks, seconds)
    except Exception:  # noqa: BLE001 - then it comes back as it is, one receive closer to the DLQ
        logger.warning("could not renew message", extra={"message_id": received.message_id, "payout_ids": ids})
        return False
    count("MessagesRenewed")
    logger.info("message renewed", extra={"payout_ids": ids, "comebacks": received.comebacks})
    return True


def _delay(queue: PayoutComebacks, received: Received, seconds: int, policy: Policy) -> None:
    # On its last allowed receive a message waits for nothing: let it reach the DLQ now.
    if received.receive_count >= policy.max_receive_count:
        seconds = 0
    try:
        queue.delay(received.receipt_handle, seconds)
    except Exception:  # noqa: BLE001 - the redelivery still happens, just after the queue's own visibility timeout
        logger.warning("could not change message visibility", extra={"message_id": received.message_id})


def _to_dead_letters(dead_letters: DeadLetters, bad: Malformed) -> bool:
    # A message that names no payout: no receive will ever settle it, so it goes where an operator looks.
    try:
        dead_letters.send(bad.body)
    except Exception:  # noqa: BLE001 - then it fails until the queue's redrive moves it there
        return False
    return True


def _final(statements: SettlementStatements, payout_ids: list[str]) -> set[str]:
    if not payout_ids:
        return set()
    try:
        return statements.settled_ids(payout_ids)
    except Exception:  # noqa: BLE001 - then they wait like any locked payout
        return set()


def _release(locks: PayoutLocks, payout_id: str, owner: str) -> None:
    try:
        locks.release(payout_id, owner)
    except Exception:  # noqa: BLE001 - the lease runs out by itself
        logger.warning("could not release payout lock", extra={"payout_id": payout_id})
