"""Settles payouts: claim the attempts, ask before re-sending, pay, record the outcomes.

Only the provider ends a payout Failed: by rejecting it, or by leaving `max_provider_attempts` sends
unpaid (the payout's own `provider_failures`). Any other error (database, lock table, queue, a
crash) reaches the caller as an exception and spends nothing: its message simply comes back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..adapters.postgres import PayoutRepository, exhausted_reason
from ..domain.errors import ProviderOutcomeUnknown, ProviderRejected, ProviderTransientError, Unavailable
from ..domain.payout_status import PayoutStatus
from ..domain.pix_keys import mask_pix_key
from ..domain.provider import PixProvider, Transfer, send_all
from ..observability import count, logger


class RetryLater(Exception):
    """The provider did not pay (transient error, unknown outcome): the message comes back after a
    backoff that grows with the payout's failed provider attempts."""

    def __init__(self, payout_id: str, failures: int, reason: str) -> None:
        super().__init__(f"payout {payout_id} provider failure {failures}: {reason}")
        self.payout_id = payout_id
        self.failures = failures


class UnknownPayout(Exception):
    """No such payout. Its message can only come from outside the service: the fan-out sends a
    payout's message after its batch commits, reading the payout from the database."""

    def __init__(self, payout_id: str) -> None:
        super().__init__(f"payout {payout_id} is not in the database")
        self.payout_id = payout_id


@dataclass(frozen=True, slots=True)
class Settled:
    payout_id: str
    outcome: str  # completed, recovered, failed (rejected), exhausted, already_final
    attempt: int = 0


Outcome = Settled | BaseException


def settle_payouts(
    repo: PayoutRepository, provider: PixProvider, payout_ids: Sequence[str], max_provider_attempts: int
) -> dict[str, Outcome]:
    """Settle payouts whose locks the caller holds. Each id maps to Settled, or to the exception that
    sends its message back (RetryLater, UnknownPayout, or any error). An error that escapes (the
    database down) sends every message back; payouts paid by then are found at the provider next time."""
    started = repo.start_attempts(payout_ids)
    not_started = [p for p in payout_ids if p not in started]
    final = repo.final_ids(not_started) if not_started else set()
    outcomes: dict[str, Outcome] = {
        p: Settled(p, "already_final") if p in final else UnknownPayout(p) for p in not_started
    }
    paid: list[tuple[str, int, str]] = []
    to_send: list[tuple[str, int, Transfer]] = []
    for payout_id, (payout, _previous) in started.items():
        attempt = payout.attempts
        try:
            # Any earlier claim may have paid and died before recording it: never send twice.
            if attempt > 1 and provider.find(payout.end_to_end_id) is not None:
                paid.append((payout_id, attempt, "recovered"))
                continue
            if payout.provider_failures >= max_provider_attempts:
                # The budget ran out on an unknown outcome, and the provider has no transfer.
                reason = exhausted_reason(payout.provider_failures, None, "the provider has no transfer")
                repo.finish(payout_id, PayoutStatus.FAILED, attempt, "RETRIES_EXHAUSTED", reason)
                outcomes[payout_id] = Settled(payout_id, "exhausted", attempt)
                continue
        except Exception as exc:  # noqa: BLE001 - this payout's message comes back; the others go on
            outcomes[payout_id] = exc
            continue
        transfer = Transfer(payout.end_to_end_id, payout_id, payout.amount_cents, payout.pix_key_type, payout.pix_key)
        to_send.append((payout_id, attempt, transfer))
    results: list[Exception | None]
    try:
        results = send_all(provider, [t for _, _, t in to_send])
    except Unavailable as exc:
        # Nothing reached the provider (the sandbox's ledger is our own PostgreSQL): not an attempt.
        results = [exc for _ in to_send]
    except Exception as exc:  # noqa: BLE001 - the provider call failed as a whole: unknown outcome
        results = [ProviderOutcomeUnknown(f"batch send failed: {exc}") for _ in to_send]
    for (payout_id, attempt, transfer), error in zip(to_send, results, strict=True):
        if error is None:
            paid.append((payout_id, attempt, "completed"))
        else:
            try:
                outcomes[payout_id] = _record_error(repo, transfer, attempt, error, max_provider_attempts)
            except Exception as exc:  # noqa: BLE001 - e.g. the database went away: this message comes back
                outcomes[payout_id] = exc
    # Recorded together at the end: a crash before this leaves them Processing, and their
    # next attempt finds the transfers at the provider instead of paying again.
    moved = repo.complete_many(paid)
    for payout_id, attempt, outcome in paid:
        outcomes[payout_id] = Settled(payout_id, outcome if payout_id in moved else "already_final", attempt)
    _count(outcomes)
    return outcomes


def _record_error(repo: PayoutRepository, transfer: Transfer, attempt: int, error: Exception, budget: int) -> Outcome:
    payout_id = transfer.payout_id
    log: dict[str, object] = {"payout_id": payout_id, "attempt": attempt}
    if isinstance(error, ProviderRejected):
        repo.finish(payout_id, PayoutStatus.FAILED, attempt, error.provider_code or "REJECTED", str(error))
        # Masked (LGPD), but enough for an operator to see which key the receiving bank refused.
        logger.info(
            "payout rejected", extra={**log, "code": error.provider_code, "pix_key": mask_pix_key(transfer.pix_key)}
        )
        return Settled(payout_id, "failed", attempt)
    if isinstance(error, ProviderTransientError | ProviderOutcomeUnknown):
        event = "outcome_unknown" if isinstance(error, ProviderOutcomeUnknown) else "attempt_failed"
        failures, exhausted = repo.record_provider_failure(
            payout_id, event, attempt, error.provider_code, str(error), budget
        )
        log.update(event=event, code=error.provider_code, provider_failures=failures)
        if exhausted:
            logger.warning("payout failed: provider attempts exhausted", extra=log)
            return Settled(payout_id, "exhausted", attempt)
        logger.warning("settlement attempt failed", extra=log)
        return RetryLater(payout_id, max(1, failures), event)
    return error  # not the provider's answer (e.g. our database): the message comes back, nothing spent


def _count(outcomes: dict[str, Outcome]) -> None:
    kinds = [o.outcome if isinstance(o, Settled) else "retry" for o in outcomes.values()]
    count("PayoutsCompleted", kinds.count("completed") + kinds.count("recovered"))
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
