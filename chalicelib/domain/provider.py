"""The port every Pix provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Transfer:
    end_to_end_id: str
    payout_id: str
    amount_cents: int
    pix_key_type: str
    pix_key: str


@dataclass(frozen=True, slots=True)
class ExecutedTransfer:
    end_to_end_id: str
    amount_cents: int
    executed_at: datetime


class PixProvider(Protocol):
    def send(self, transfer: Transfer) -> None:
        """Pay. Returns once the money moved; raises ProviderRejected,
        ProviderTransientError or ProviderOutcomeUnknown otherwise."""

    def find(self, end_to_end_id: str) -> ExecutedTransfer | None:
        """The transfer executed under this end-to-end id, if any."""


def send_all(provider: PixProvider, transfers: Sequence[Transfer]) -> list[Exception | None]:
    """Send each transfer; per transfer None (paid) or the error it raised.

    Uses the provider's batch endpoint (send_many) when it has one; BaseExceptions propagate.
    """
    send_many = getattr(provider, "send_many", None)
    if send_many is not None:
        return list(send_many(transfers))
    results: list[Exception | None] = []
    for transfer in transfers:
        try:
            provider.send(transfer)
            results.append(None)
        except Exception as exc:  # noqa: BLE001 - the caller handles each transfer's error
            results.append(exc)
    return results
