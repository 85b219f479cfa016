"""Settles payouts: claim the attempts, ask before re-sending, send, record the provider's word.

What a payout needs is the state machine's `next_action`: send (nothing sent yet), ask (an earlier
send's outcome is unknown), wait (the provider accepted it; its webhook or the poller confirms).
Every answer becomes a transition through the one guarded path (adapters/transitions.py).

Only the provider ends a payout Failed: by rejecting it, or by leaving `max_provider_attempts` sends
unpaid (the payout's own `provider_failures`). Any other error (database, lock table, queue, a
crash) reaches the caller as an exception and spends nothing: its message simply comes back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain.errors import (
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderThrottled,
    ProviderTransientError,
    Unavailable,
)
from ..domain.payout import Payout
from ..domain.payout_status import (
    AWAITING,
    RETRIES_EXHAUSTED,
    Decision,
    NextAction,
    PayoutEvent,
    PayoutStatus,
    Word,
    exhausted_reason,
    next_action,
)
from ..domain.pix_keys import mask_pix_key
from ..domain.provider import PixProvider, SendReport, Transfer, send_all
from ..observability import count, logger
from .ports import SettlementStatements, Transitions
from .provider_calls import NotStarted, ask, call_each, inline_report, overlaps, send, send_id


class RetryLater(Exception):
    """The provider did not settle it yet (transient error, unknown outcome, throttled): the message comes
    back after a backoff that grows with the payout's failed provider attempts, or after the provider's
    own Retry-After when it asked for one."""

    def __init__(self, payout_id: str, failures: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"payout {payout_id} provider failure {failures}: {reason}")
        self.payout_id = payout_id
        self.failures = failures
        self.retry_after = retry_after


class UnknownPayout(Exception):
    """No such payout. Its message can only come from outside the service: the fan-out sends a
    payout's message after its batch commits, reading the payout from the database."""

    def __init__(self, payout_id: str) -> None:
        super().__init__(f"payout {payout_id} is not in the database")
        self.payout_id = payout_id


@dataclass(frozen=True, slots=True)
class Settled:
    payout_id: str
    # completed, recovered (found paid by asking), accepted (awaiting the provider's confirmation),
    # awaiting (already was), failed (rejected), exhausted, already_final
    outcome: str
    attempt: int = 0
    # None when the payout was not claimed (unknown, already final, awaiting); for the logs, not for equality
    batch_id: str | None = field(default=None, compare=False)


Outcome = Settled | BaseException


def settle_payouts(
    repo: SettlementStatements,
    transitions: Transitions,
    provider: PixProvider,
    payout_ids: Sequence[str],
    max_provider_attempts: int,
    *,
    provider_name: str = "sandbox",
    concurrency: int = 1,
    start_calls_by: float | None = None,
) -> dict[str, Outcome]:
    """Settle payouts whose locks the caller holds, each as the state machine's next_action says.

    Each id maps to Settled, or to the exception that sends its message back (RetryLater,
    UnknownPayout, or any error). An error that escapes (the database down) sends every message
    back; a send that reached the provider by then is found by asking next time. Overlapped calls
    not started by `start_calls_by` (time.monotonic()) are not made: their payouts come back soon,
    nothing spent.
    """
    started = repo.start_attempts(payout_ids)
    not_started = [p for p in payout_ids if p not in started]
    states = transitions.states(not_started) if not_started else {}
    outcomes: dict[str, Outcome] = {}
    for p in not_started:
        state = states.get(p)
        if state is None:
            outcomes[p] = UnknownPayout(p)
        elif next_action(state) is NextAction.WAIT:
            outcomes[p] = Settled(p, "awaiting")
        else:
            outcomes[p] = Settled(p, "already_final")
    workers = concurrency if overlaps(provider) else 1
    payouts = {p: payout for p, (payout, _previous) in started.items()}

    # Any earlier claim may have sent and died before recording it, or left the outcome unknown:
    # ask before sending again. The provider's word, if it has one, is recorded as the ask's.
    to_ask = [
        payout
        for payout in payouts.values()
        if next_action(payout.state) is NextAction.ASK
        or payout.attempts > 1
        or payout.provider_failures >= max_provider_attempts
    ]
    words: list[Word] = []
    asking = {payout.payout_id for payout in to_ask}
    to_send: list[Payout] = [payout for payout in payouts.values() if payout.payout_id not in asking]
    asked = call_each(lambda p: ask(provider, p), to_ask, workers, start_calls_by)
    for payout, known in zip(to_ask, asked, strict=True):
        if isinstance(known, NotStarted):
            outcomes[payout.payout_id] = _not_started(payout)
        elif isinstance(known, Exception):
            outcomes[payout.payout_id] = _ask_failed(payout, known)
        elif known is not None:
            words.append(_said(payout, known, "ask", provider_name, provider))
        elif payout.provider_failures >= max_provider_attempts:
            # The budget ran out on unknown outcomes, and the provider has nothing: give up for good.
            reason = exhausted_reason(payout.provider_failures, None, "the provider has no transfer")
            words.append(_fact(payout, PayoutEvent.NOTHING_SENT, "ask", provider_name, provider))
            words.append(Word(payout.payout_id, PayoutEvent.GIVE_UP, "worker", payout.attempts, detail=reason))
        else:
            words.append(_fact(payout, PayoutEvent.NOTHING_SENT, "ask", provider_name, provider))
            to_send.append(payout)

    transfers = [_transfer(payout) for payout in to_send]
    results: list[SendReport | Exception]
    try:
        if overlaps(provider):
            results = call_each(lambda t: send(provider, t), transfers, workers, start_calls_by)
        else:
            results = [
                r if isinstance(r, Exception) else inline_report(t)
                for t, r in zip(transfers, send_all(provider, transfers), strict=True)
            ]
    except Unavailable as exc:
        # Nothing reached the provider (the sandbox's ledger is our own PostgreSQL): not an attempt.
        results = [exc for _ in transfers]
    except Exception as exc:  # noqa: BLE001 - the provider call failed as a whole: unknown outcome
        results = [ProviderOutcomeUnknown(f"batch send failed: {exc}") for _ in transfers]
    errors: list[tuple[Payout, Transfer, Exception]] = []
    for payout, transfer, answer in zip(to_send, transfers, results, strict=True):
        if isinstance(answer, NotStarted):
            outcomes[payout.payout_id] = _not_started(payout)
        elif isinstance(answer, SendReport):
            words.append(_said(payout, answer, "send", provider_name, provider))
        elif isinstance(answer, ProviderRejected):
            words.append(
                _fact(
                    payout,
                    PayoutEvent.REJECTED,
                    "send",
                    provider_name,
                    provider,
                    code=answer.provider_code or "REJECTED",
                    detail=str(answer),
                )
            )
            # Masked (LGPD), but enough for an operator to see which key the receiving bank refused.
            logger.info(
                "payout rejected",
                extra={
                    "payout_id": payout.payout_id,
                    "batch_id": payout.batch_id,
                    "attempt": payout.attempts,
                    "code": answer.provider_code,
                    "pix_key": mask_pix_key(transfer.pix_key),
                },
            )
        elif isinstance(answer, ProviderOutcomeUnknown):
            words.append(
                _fact(payout, PayoutEvent.OUTCOME_UNKNOWN, "send", provider_name, provider, code=answer.provider_code)
            )
            errors.append((payout, transfer, answer))
        else:
            errors.append((payout, transfer, answer))

    # Recorded together, after the calls: a crash before this leaves them Processing, and their next
    # attempt asks the provider instead of sending again.
    decisions = transitions.apply(words)
    for word, decision in zip(words, decisions, strict=True):
        if decision is None or word.event in (PayoutEvent.NOTHING_SENT, PayoutEvent.OUTCOME_UNKNOWN):
            continue
        batch_id = payouts[word.payout_id].batch_id if word.payout_id in payouts else None
        outcomes[word.payout_id] = Settled(word.payout_id, _outcome(word, decision), word.attempt or 0, batch_id)
    for payout, transfer, error in errors:
        try:
            outcomes[payout.payout_id] = _record_error(repo, payout, transfer, error, max_provider_attempts)
        except Exception as exc:  # noqa: BLE001 - e.g. the database went away: this message comes back
            outcomes[payout.payout_id] = exc
    _count(outcomes)
    return outcomes


def _transfer(payout: Payout) -> Transfer:
    return Transfer(payout.end_to_end_id, payout.payout_id, payout.amount_cents, payout.pix_key_type, payout.pix_key)


def _said(payout: Payout, report: SendReport, source: str, name: str, provider: PixProvider) -> Word:
    sent_as = send_id(provider, payout.payout_id, payout.end_to_end_id)
    return report.word(payout.payout_id, source, name, attempt=payout.attempts, send_id=sent_as)


def _fact(
    payout: Payout,
    event: PayoutEvent,
    source: str,
    name: str,
    provider: PixProvider,
    code: str | None = None,
    detail: str | None = None,
) -> Word:
    return Word(
        payout.payout_id,
        event,
        source,
        payout.attempts,
        failure_code=code,
        detail=detail,
        provider=name,
        send_id=send_id(provider, payout.payout_id, payout.end_to_end_id),
    )


def _outcome(word: Word, decision: Decision) -> str:
    if not decision.moves:
        return "awaiting" if decision.target == AWAITING else "already_final"
    target = decision.target.status
    if target is PayoutStatus.COMPLETED:
        return "recovered" if word.source == "ask" else "completed"
    if target is PayoutStatus.FAILED:
        return "exhausted" if decision.target.failure_code == RETRIES_EXHAUSTED else "failed"
    return "accepted"


def _not_started(payout: Payout) -> RetryLater:
    # Nothing was asked or sent: come back after the shortest backoff, no provider attempt spent.
    return RetryLater(payout.payout_id, 1, "not started before the invocation's deadline")


def _ask_failed(payout: Payout, error: Exception) -> Outcome:
    if isinstance(error, ProviderError):
        logger.warning(
            "could not ask the provider",
            extra={"payout_id": payout.payout_id, "batch_id": payout.batch_id, "code": error.provider_code},
        )
        retry_after = error.retry_after_seconds if isinstance(error, ProviderThrottled) else None
        return RetryLater(payout.payout_id, max(1, payout.provider_failures), "ask failed", retry_after)
    return error


def _record_error(
    repo: SettlementStatements, payout: Payout, transfer: Transfer, error: Exception, budget: int
) -> Outcome:
    payout_id, attempt = transfer.payout_id, payout.attempts
    log: dict[str, object] = {"payout_id": payout_id, "batch_id": payout.batch_id, "attempt": attempt}
    if isinstance(error, ProviderThrottled):
        # The provider asked us to wait and took nothing: not a failure of this payout, no budget spent.
        logger.warning("provider throttled the send", extra={**log, "retry_after": error.retry_after_seconds})
        count("ProviderThrottled")
        return RetryLater(payout_id, 1, "throttled", error.retry_after_seconds)
    if isinstance(error, ProviderTransientError | ProviderOutcomeUnknown):
        event = "outcome_unknown" if isinstance(error, ProviderOutcomeUnknown) else "attempt_failed"
        failures, exhausted = repo.record_provider_failure(
            payout_id, event, attempt, error.provider_code, str(error), budget
        )
        log.update(event=event, code=error.provider_code, provider_failures=failures)
        if exhausted:
            logger.warning("payout failed: provider attempts exhausted", extra=log)
            return Settled(payout_id, "exhausted", attempt, payout.batch_id)
        logger.warning("settlement attempt failed", extra=log)
        return RetryLater(payout_id, max(1, failures), event)
    return error  # not the provider's answer (e.g. our database): the message comes back, nothing spent


def _count(outcomes: dict[str, Outcome]) -> None:
    kinds = [o.outcome if isinstance(o, Settled) else "retry" for o in outcomes.values()]
    count("PayoutsCompleted", kinds.count("completed") + kinds.count("recovered"))
    count("PayoutsAwaitingConfirmation", kinds.count("accepted"))
    count("PayoutsRecovered", kinds.count("recovered"))
    count("PayoutsFailed", kinds.count("failed"))
    count("PayoutsExhausted", kinds.count("exhausted"))
    count("SettlementRetries", kinds.count("retry"))


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> int:
    """Exponential backoff with equal jitter: half fixed, half random, so retries spread but never bunch at 0."""
    # The exponent is bounded: a message renewed through an outage of days counts into the thousands.
    ceiling = min(cap, base * float(2 ** min(max(0, attempt - 1), 32)))
    uniform = rng.uniform if rng is not None else random.uniform
    return max(1, round(ceiling / 2 + uniform(0, ceiling / 2)))
