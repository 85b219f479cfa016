"""Settles one payout: claim the attempt, ask before re-sending, pay, record the outcome."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..adapters.postgres import PayoutRepository
from ..domain.errors import ProviderOutcomeUnknown, ProviderRejected, ProviderTransientError
from ..domain.payout_status import PayoutStatus
from ..domain.provider import PixProvider, Transfer
from ..observability import count, logger


class RetryLater(Exception):
    """The payout is still Processing and its message must come back later."""

    def __init__(self, payout_id: str, attempt: int, reason: str) -> None:
        super().__init__(f"payout {payout_id} attempt {attempt}: {reason}")
        self.payout_id = payout_id
        self.attempt = attempt


@dataclass(frozen=True, slots=True)
class Settled:
    payout_id: str
    status: str
    outcome: str  # completed, failed, recovered, already_final, unknown_payout
    attempt: int = 0

    def to_json(self) -> dict[str, object]:
        return {"payout_id": self.payout_id, "status": self.status, "outcome": self.outcome, "attempt": self.attempt}


def settle_payout(repo: PayoutRepository, provider: PixProvider, payout_id: str) -> Settled:
    """Run under the per-payout lock; raises RetryLater when the message must be redelivered."""
    log = {"payout_id": payout_id}
    started = repo.start_attempt(payout_id)
    if started is None:
        payout = repo.get_payout(payout_id)
        if payout is None:
            logger.error("message for an unknown payout", extra=log)
            return Settled(payout_id, "Unknown", "unknown_payout")
        logger.info("payout already final", extra={**log, "status": payout.status.value})
        return Settled(payout_id, payout.status.value, "already_final")

    payout, previous = started
    attempt = payout.attempts
    log.update(end_to_end_id=payout.end_to_end_id, attempt=attempt)
    # An earlier attempt may have paid and died before recording it: never send twice.
    if attempt > 1 and provider.find(payout.end_to_end_id) is not None:
        repo.finish(payout_id, PayoutStatus.COMPLETED, attempt, event="recovered")
        count("PayoutsRecovered")
        logger.info("transfer found at the provider, recorded without re-sending", extra=log)
        return Settled(payout_id, PayoutStatus.COMPLETED.value, "recovered", attempt)

    transfer = Transfer(payout.end_to_end_id, payout_id, payout.amount_cents, payout.pix_key_type, payout.pix_key)
    try:
        provider.send(transfer)
    except ProviderRejected as exc:
        repo.finish(payout_id, PayoutStatus.FAILED, attempt, exc.provider_code or "REJECTED", str(exc))
        count("PayoutsFailed")
        logger.info("payout rejected", extra={**log, "code": exc.provider_code})
        return Settled(payout_id, PayoutStatus.FAILED.value, "failed", attempt)
    except (ProviderTransientError, ProviderOutcomeUnknown) as exc:
        event = "outcome_unknown" if isinstance(exc, ProviderOutcomeUnknown) else "attempt_failed"
        repo.record_event(payout_id, event, attempt, exc.provider_code, str(exc))
        count("SettlementRetries")
        logger.warning("settlement attempt failed", extra={**log, "event": event, "code": exc.provider_code})
        raise RetryLater(payout_id, attempt, event) from exc

    if not repo.finish(payout_id, PayoutStatus.COMPLETED, attempt):
        logger.warning("payout left Processing while it was being paid", extra=log)
    count("PayoutsCompleted")
    logger.info("payout completed", extra={**log, "from_status": previous.value})
    return Settled(payout_id, PayoutStatus.COMPLETED.value, "completed", attempt)


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> int:
    """Exponential backoff with equal jitter: half fixed, half random, so retries spread but never bunch at 0."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    r = rng or random
    return max(1, round(ceiling / 2 + r.uniform(0, ceiling / 2)))
