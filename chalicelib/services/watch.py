"""What the sweeper tells an operator besides what it repaired: payouts open longer than they should be."""

from __future__ import annotations

from typing import Protocol

from ..observability import count, logger


class OpenPayoutCount(Protocol):
    def older_than(self, seconds: int) -> int: ...


def open_too_long(open_payouts: OpenPayoutCount, seconds: int) -> int:
    """Counted as `PayoutsOpenTooLong` (the template's alarm fires on any) and logged when there are some."""
    found = open_payouts.older_than(seconds)
    count("PayoutsOpenTooLong", found)
    if found:
        logger.warning("payouts open too long", extra={"payouts": found, "open_for_seconds_over": seconds})
    return found
