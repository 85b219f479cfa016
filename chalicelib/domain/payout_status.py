"""Payout life cycle: statuses and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class PayoutStatus(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"


# A reversal after completion is a new record, so nothing ever leaves these.
TERMINAL: frozenset[PayoutStatus] = frozenset({PayoutStatus.COMPLETED, PayoutStatus.FAILED})

_ALLOWED: frozenset[tuple[PayoutStatus, PayoutStatus]] = frozenset(
    {
        (PayoutStatus.PENDING, PayoutStatus.PROCESSING),
        # Cancelled before any attempt started, e.g. retries exhausted while queued.
        (PayoutStatus.PENDING, PayoutStatus.FAILED),
        # Each retry attempt re-enters Processing.
        (PayoutStatus.PROCESSING, PayoutStatus.PROCESSING),
        (PayoutStatus.PROCESSING, PayoutStatus.COMPLETED),
        (PayoutStatus.PROCESSING, PayoutStatus.FAILED),
    }
)


class IllegalTransition(Exception):
    def __init__(self, src: object, dst: object) -> None:
        self.src: object = src
        self.dst: object = dst
        super().__init__(f"a payout cannot move from {_label(src)} to {_label(dst)}")


def can_transition(src: PayoutStatus, dst: PayoutStatus) -> bool:
    """True when a payout in src may move to dst; unknown statuses never may."""
    source = _coerce(src)
    target = _coerce(dst)
    if source is None or target is None:
        return False
    return (source, target) in _ALLOWED


def check_transition(src: PayoutStatus, dst: PayoutStatus) -> None:
    """Raise IllegalTransition unless can_transition(src, dst)."""
    if not can_transition(src, dst):
        raise IllegalTransition(src, dst)


def _coerce(value: object) -> PayoutStatus | None:
    # Statuses read back from storage arrive as plain strings; anything that is
    # not a known status is refused rather than guessed at.
    try:
        return PayoutStatus(value)
    except ValueError:
        return None


def _label(value: object) -> str:
    status = _coerce(value)
    return status.value if status is not None else "an unknown status"
