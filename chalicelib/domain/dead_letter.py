"""A dead letter's payout as the dead-letter rule sees it, and what the rule can decide.

The rule (services/recovery.py) reads this without a lock, asks the provider, and only then writes
its outcome; the write holds the row lock and goes through only if the payout is still as it was
read (`seen`), so an attempt that started during the ask is never overruled by a stale verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .payout_status import PayoutStatus

# What a dead letter's settle attempts record when they end without the provider's money moving.
_ATTEMPT_ENDS = ("attempt_failed", "outcome_unknown")


class DeadLetterOutcome(StrEnum):
    RECOVERED = "recovered"  # the provider has the transfer: Completed
    FAILED = "failed"  # its provider budget is spent and the provider has nothing: Failed RETRIES_EXHAUSTED
    RETURNED = "returned"  # its receives went on faults of our own: back to the payouts queue


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    status: PayoutStatus
    attempts: int
    provider_failures: int
    end_to_end_id: str
    updated_at: datetime
    recent: bool  # touched within a settle lease: an attempt may still run
    last_event: str | None = None  # the payout's latest history entry
    last_attempt: int | None = None
    last_code: str | None = None
    last_detail: str | None = None

    @property
    def final(self) -> bool:
        return self.status in (PayoutStatus.COMPLETED, PayoutStatus.FAILED)

    @property
    def in_flight(self) -> bool:
        """An attempt may still run: Processing, touched within the lease, and its last attempt did not
        record its end (an attempt that started longer ago than a settle function runs is over)."""
        attempt_over = self.last_event in _ATTEMPT_ENDS and self.last_attempt == self.attempts
        return self.status is PayoutStatus.PROCESSING and self.recent and not attempt_over

    def last_error(self) -> tuple[str | None, str | None]:
        """(code, detail) of the last provider failure, when that is the latest entry."""
        if self.last_event in _ATTEMPT_ENDS:
            return self.last_code, self.last_detail
        return None, None

    def same_payout_state(self, other: DeadLetterView) -> bool:
        """Nothing moved between two reads: no attempt started or ended, no word changed its status."""
        return (self.status, self.attempts, self.provider_failures, self.updated_at) == (
            other.status,
            other.attempts,
            other.provider_failures,
            other.updated_at,
        )
