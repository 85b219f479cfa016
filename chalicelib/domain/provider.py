"""The port every Pix provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .payout_status import PayoutEvent, Word


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


@dataclass(frozen=True, slots=True)
class SendReport:
    """The provider's word on one send: its answer to a send or an ask, a callback, or a list entry.

    A provider that settles asynchronously answers a send with event ACCEPTED (accepted, awaiting
    confirmation); its later word is CONFIRMED (money moved) or REJECTED (with failure_code).
    """

    send_id: str
    event: PayoutEvent
    provider_status: str  # the provider's own word, as it spelled it
    amount_cents: int | None = None
    end_to_end_id: str | None = None  # assigned by the provider, not by us
    pix_key: str | None = None
    requested_at: datetime | None = None
    settled_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    duplicate: bool = False  # the answer to a re-send of a known send id: nothing was paid twice

    def __post_init__(self) -> None:
        if self.event not in (PayoutEvent.ACCEPTED, PayoutEvent.CONFIRMED, PayoutEvent.REJECTED):
            raise ValueError(f"a provider reports a send accepted, confirmed or rejected, not {self.event}")

    def word(
        self, payout_id: str, source: str, provider: str, *, attempt: int | None = None, send_id: str | None = None
    ) -> Word:
        """What this report says about the payout, for the guarded transition (send, ask, callback, poll)."""
        return Word(
            payout_id,
            self.event,
            source,
            attempt,
            failure_code=self.failure_code,
            detail=self.failure_message or ("already sent under this id" if self.duplicate else None),
            provider=provider,
            send_id=send_id or self.send_id,
            end_to_end_id=self.end_to_end_id,
            provider_status=self.provider_status,
        )


class PixProvider(Protocol):
    def send(self, transfer: Transfer) -> SendReport | None:
        """Pay. None: the money moved (a provider that pays inline); a SendReport: the provider's word
        (usually accepted, awaiting confirmation). Raises ProviderRejected, ProviderThrottled,
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
