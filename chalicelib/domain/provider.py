"""The port every Pix provider implements."""

from __future__ import annotations

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
