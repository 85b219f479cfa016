"""The ports the use cases depend on: what they need of storage, queues, locks; adapters/ implements them.

The Pix provider's port is the domain's (domain/provider.py). wiring.py builds the concrete adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from ..domain.batch_request import PayoutItem
from ..domain.dead_letter import DeadLetterOutcome, DeadLetterView
from ..domain.idempotency import ExistingPayout, Fingerprint
from ..domain.outbox import Claimed, NotClaimed
from ..domain.payout import BatchItem, Payout
from ..domain.payout_status import Decision, PayoutState, PayoutStatus, Word
from ..domain.provider import PixProvider
from ..domain.report import BatchTotals
from ..domain.webhook_records import ClaimedDelivery, Endpoint, Outcome, PendingEvent

__all__ = ["SQS_BATCH", "PixProvider"]

SQS_BATCH = 10  # one SendMessageBatch takes at most 10 entries


# --- the payouts in PostgreSQL (adapters/postgres.py composes these parts) --------------------------


class BatchWriter(Protocol):
    """The writes of one batch submission, in one transaction (adapters/batch_writes.py)."""

    def insert_batch(self, batch_id: str, request_hash: str, item_count: int) -> str | None: ...

    def stored_items(self, batch_id: str) -> list[tuple[int, str, bool, str, Fingerprint]]: ...

    def existing_payouts(self, external_ids: Sequence[str]) -> dict[str, ExistingPayout]: ...

    def insert_payouts(
        self, batch_id: str, items: Sequence[PayoutItem], ids: dict[int, str], new_e2e_id: Callable[[], str]
    ) -> None: ...

    def insert_batch_items(self, batch_id: str, rows: Sequence[tuple[int, str, bool]]) -> None: ...

    def add_enqueue_tasks(self, batch_id: str, ranges: Sequence[tuple[int, int]], grace_seconds: int) -> list[int]: ...

    def add_batch_accepted(self, batch_id: str, accepted_data: Any, completed: bool) -> None: ...


class BatchWrites(Protocol):
    """Opens a batch writer; the transaction commits when the block ends. Raises WriteConflict or
    ExternalIdTaken (domain/errors.py) when the writes must be planned and run again."""

    def batch_writer(self) -> AbstractContextManager[BatchWriter]: ...


class PayoutReads(Protocol):
    def get_payout(self, payout_id: str) -> Payout | None: ...

    def payout_events(self, payout_id: str) -> list[dict[str, Any]]: ...


class SettlementStatements(Protocol):
    def settled_ids(self, payout_ids: Sequence[str]) -> set[str]: ...

    def start_attempts(self, payout_ids: Sequence[str]) -> dict[str, tuple[Payout, PayoutStatus]]: ...

    def record_provider_failure(
        self, payout_id: str, event: str, attempt: int, code: str | None, detail: str, budget: int
    ) -> tuple[int, bool]: ...


class RecoveryStatements(Protocol):
    def count_open(self) -> int: ...

    def claim_stale_payouts(self, stale_seconds: int, limit: int) -> list[str]: ...

    def dead_letter_view(self, payout_id: str, lease_seconds: int) -> DeadLetterView | None: ...

    def close_dead_letter(
        self, payout_id: str, seen: DeadLetterView, outcome: DeadLetterOutcome, lease_seconds: int
    ) -> bool: ...

    def reopen_exhausted(self, batch_id: str | None = None, limit: int = 10_000) -> list[str]: ...


class Transitions(Protocol):
    """The one guarded transition path (adapters/transitions.py)."""

    def states(self, payout_ids: Sequence[str]) -> dict[str, PayoutState]: ...

    def amounts(self, payout_ids: Sequence[str]) -> dict[str, int]: ...

    def claim_awaiting(self, older_than_seconds: int, limit: int) -> list[str]: ...

    def apply(self, words: Sequence[Word]) -> list[Decision | None]: ...


class ReadModel(Protocol):
    """The read side's queries (adapters/views.py)."""

    def batches(
        self,
        *,
        created_after: datetime | None,
        created_before: datetime | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[BatchTotals]: ...

    def batch_totals(self, batch_id: str) -> BatchTotals | None: ...

    def batch_items(
        self, batch_id: str, *, after_index: int = -1, limit: int | None = None, status: str | None = None
    ) -> list[BatchItem]: ...

    def payouts(
        self, *, external_id: str | None = None, user_id: str | None = None, after_id: str | None, limit: int
    ) -> list[Payout]: ...


class Outbox(Protocol):
    """Leases and progress of outbox records (adapters/outbox.py)."""

    def claim(self, outbox_id: int, owner: str, lease_seconds: float) -> Claimed | NotClaimed: ...

    def advance(self, outbox_id: int, owner: str, progress: int, lease_seconds: float) -> bool: ...

    def finish(self, outbox_id: int, owner: str, progress: int) -> bool: ...

    def release(self, outbox_id: int, owner: str, progress: int, error: str) -> None: ...

    def batch_payouts(self, batch_id: str, start: int, end: int) -> list[tuple[int, str]]: ...

    def due(self, kind: str, grace_seconds: int, limit: int) -> list[int]: ...


# --- queues and locks ---------------------------------------------------------------------------------


class PayoutQueue(Protocol):
    """Payout messages, `per_message` payouts each (adapters/sqs_queue.py)."""

    per_message: int

    @property
    def chunk_size(self) -> int: ...

    def enqueue(self, payout_ids: Sequence[str]) -> list[str]: ...

    def send_chunks(self, chunks: Sequence[Sequence[str]]) -> Generator[list[str], None, None]: ...

    def depth(self) -> int: ...


class PayoutComebacks(Protocol):
    """What settlement does with a received payout message that is not done (adapters/sqs_queue.py)."""

    def delay(self, receipt_handle: str, seconds: int) -> None: ...

    def renew(self, payout_ids: Sequence[str], retries: int, delay_seconds: int) -> None: ...

    def send_each(self, comebacks: Sequence[tuple[str, int, int]]) -> list[str]: ...


class DeadLetters(Protocol):
    def depth(self) -> int: ...

    def send(self, body: str) -> None: ...

    def move_back(self) -> tuple[str, int | None]: ...


class FanoutQueue(Protocol):
    """Wake-ups of the fan-out function (adapters/fanout_queue.py)."""

    def wake(self, outbox_ids: Sequence[int]) -> None: ...

    def wake_each(self, outbox_ids: Sequence[int]) -> list[int]: ...


class PayoutLocks(Protocol):
    """Per-payout leases (adapters/locks.py)."""

    def acquire(self, payout_ids: Sequence[str], owner: str, lease_seconds: float) -> tuple[list[str], list[str]]: ...

    def release(self, payout_id: str, owner: str) -> None: ...


# --- webhooks -------------------------------------------------------------------------------------------


class WebhookEndpoints(Protocol):
    def create_endpoint(
        self, endpoint_id: str, url: str, events: Sequence[str], description: str, secret: str
    ) -> Endpoint: ...

    def endpoints(self) -> list[Endpoint]: ...

    def endpoint(self, endpoint_id: str) -> Endpoint | None: ...

    def update_endpoint(self, endpoint_id: str, changes: dict[str, Any]) -> Endpoint | None: ...

    def delete_endpoint(self, endpoint_id: str) -> bool: ...

    def rotate_secret(self, endpoint_id: str, secret: str, overlap_seconds: int) -> Endpoint | None: ...

    def attempts(self, endpoint_id: str, before_id: int | None, limit: int) -> list[dict[str, Any]]: ...

    def event_exists(self, event_id: str) -> tuple[bool, bool]: ...

    def redeliver(self, event_id: str) -> int: ...


class RelayTransaction(Protocol):
    def unrelayed(self, limit: int) -> list[PendingEvent]: ...

    def batch_totals(self, batch_id: str) -> BatchTotals | None: ...

    def relay(self, rendered: Sequence[tuple[str, dict[str, Any]]]) -> int: ...


class WebhookDeliveries(Protocol):
    def relay_transaction(self) -> AbstractContextManager[RelayTransaction]: ...

    def take_due(self, limit: int, requeue_seconds: int) -> list[tuple[int, str]]: ...

    def not_queued(self, delivery_ids: Sequence[int]) -> None: ...

    def claim(self, delivery_ids: Sequence[int], lease_seconds: float) -> list[ClaimedDelivery]: ...

    def record(
        self,
        attempted: Sequence[tuple[ClaimedDelivery, Outcome, float | None]],
        deferred: Sequence[ClaimedDelivery],
        defer_seconds: float,
    ) -> dict[int, str]: ...


class DeliveryQueue(Protocol):
    def send(self, groups: Sequence[Sequence[int]]) -> list[int]: ...


class Sender(Protocol):
    def send(self, url: str, msg_id: str, body: str, secrets: Sequence[str]) -> Outcome: ...
