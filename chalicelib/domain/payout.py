"""A payout as the service sees it, and what a stored batch item looks like."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .payout_status import PayoutState, PayoutStatus, ProviderStep


@dataclass(frozen=True, slots=True)
class Payout:
    payout_id: str
    external_id: str
    batch_id: str
    user_id: str
    amount_cents: int
    pix_key_type: str
    pix_key: str
    end_to_end_id: str
    status: PayoutStatus
    attempts: int
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime
    # Sends the provider answered with a transient error or left unknown since the payout was last
    # opened: the provider budget. `attempts` counts claims, which infrastructure faults also make.
    provider_failures: int = 0
    # The provider's side: which one, our send id there, the end-to-end id it assigned, its last word,
    # and where a Processing payout stands with it.
    provider: str | None = None
    provider_send_id: str | None = None
    provider_end_to_end_id: str | None = None
    provider_status: str | None = None
    provider_step: ProviderStep | None = None

    @property
    def state(self) -> PayoutState:
        if self.status is PayoutStatus.PROCESSING:
            return PayoutState(self.status, self.provider_step or ProviderStep.NOT_SENT)
        if self.status is PayoutStatus.FAILED:
            return PayoutState(self.status, failure_code=self.failure_code or "UNKNOWN")
        return PayoutState(self.status)

    def fingerprint(self) -> tuple[str, str, int, str, str]:
        return (self.external_id, self.user_id, self.amount_cents, self.pix_key_type, self.pix_key)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "payout_id": self.payout_id,
            "external_id": self.external_id,
            "batch_id": self.batch_id,
            "user_id": self.user_id,
            "amount_cents": self.amount_cents,
            "pix_key_type": self.pix_key_type,
            "pix_key": self.pix_key,
            "end_to_end_id": self.end_to_end_id,
            "status": self.status.value,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        if self.failure_code is not None:
            body["failure"] = {"code": self.failure_code, "message": self.failure_message}
        return body


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item of a batch, in request order: its own payout, or a duplicate of an earlier one."""

    index: int
    duplicate: bool
    payout: Payout

    def to_json(self) -> dict[str, object]:
        body = self.payout.to_json()
        body["index"] = self.index
        body["duplicate"] = self.duplicate
        return body
