"""In-memory fakes built on the ports (chalicelib/services/ports.py): the use cases without sockets."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.batch_request import PayoutItem
from chalicelib.domain.dead_letter import DeadLetterOutcome, DeadLetterView
from chalicelib.domain.errors import ExternalIdTaken
from chalicelib.domain.idempotency import ExistingPayout, Fingerprint
from chalicelib.domain.outbox import ENQUEUE_PAYOUTS
from chalicelib.domain.payout_status import RETRIES_EXHAUSTED, PayoutStatus, exhausted_reason
from chalicelib.services.ports import SQS_BATCH

_NOW = datetime(2026, 1, 1, tzinfo=UTC)  # no clock for the payouts: times only fill the Payout


def _no_clock() -> float:
    """The outbox's time when a test gives none (a FakeClock from tests/fakes_fanout.py dates its leases)."""
    return 0.0


@dataclass
class Tables:
    """What the repository's tables hold; one committed copy, replaced whole at each commit."""

    batches: dict[str, tuple[str, int]] = field(default_factory=dict)  # batch_id -> (request hash, items)
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)  # payout_id -> row
    items: dict[str, list[tuple[int, str, bool]]] = field(default_factory=dict)  # batch_id -> (index, id, dup)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)  # (type, batch_id)
    history: list[tuple[str, str]] = field(default_factory=list)  # (payout_id, event): each payout's history


class FakeBatchWriter:
    def __init__(self, tables: Tables, clock: Callable[[], float] = _no_clock) -> None:
        self.tables = tables
        self.clock = clock

    def insert_batch(self, batch_id: str, request_hash: str, item_count: int) -> str | None:
        if batch_id in self.tables.batches:
            return self.tables.batches[batch_id][0]
        self.tables.batches[batch_id] = (request_hash, item_count)
        return None

    def stored_items(self, batch_id: str) -> list[tuple[int, str, bool, str, Fingerprint]]:
        rows = []
        for index, payout_id, duplicate in sorted(self.tables.items.get(batch_id, [])):
            p = self.tables.payouts[payout_id]
            rows.append((index, payout_id, duplicate, p["batch_id"], _fingerprint(p)))
        return rows

    def existing_payouts(self, external_ids: Sequence[str]) -> dict[str, ExistingPayout]:
        wanted = set(external_ids)
        return {
            p["external_id"]: ExistingPayout(payout_id=pid, batch_id=p["batch_id"], fingerprint=_fingerprint(p))
            for pid, p in self.tables.payouts.items()
            if p["external_id"] in wanted
        }

    def insert_payouts(
        self, batch_id: str, items: Sequence[PayoutItem], ids: dict[int, str], new_e2e_id: Callable[[], str]
    ) -> None:
        taken = {p["external_id"] for p in self.tables.payouts.values()}
        for item in items:
            if item.external_id in taken:
                raise ExternalIdTaken(item.external_id)
            self.tables.payouts[ids[item.index]] = {
                "external_id": item.external_id,
                "batch_id": batch_id,
                "user_id": item.user_id,
                "amount_cents": item.amount_cents,
                "pix_key_type": item.pix_key.type.value,
                "pix_key": item.pix_key.value,
                "end_to_end_id": new_e2e_id(),
                "status": PayoutStatus.PENDING,
                "stale": False,
                # what settlement reads and writes (tests/fakes_settlement.py)
                "attempts": 0,
                "provider_failures": 0,
                "provider_step": None,
                "failure_code": None,
                "failure_message": None,
                "provider": None,
                "provider_send_id": None,
                "provider_end_to_end_id": None,
                "provider_status": None,
                "created_at": _NOW,
                "updated_at": _NOW,
                "recent": False,  # touched within a settle lease (the dead-letter rule's question)
                "last_event": None,  # (event, attempt, code, detail) of its latest history entry
            }

    def insert_batch_items(self, batch_id: str, rows: Sequence[tuple[int, str, bool]]) -> None:
        self.tables.items.setdefault(batch_id, []).extend(rows)

    def add_enqueue_tasks(self, batch_id: str, ranges: Sequence[tuple[int, int]], grace_seconds: int) -> list[int]:
        return [
            add_outbox_record(self.tables, ENQUEUE_PAYOUTS, batch_id, s, e, self.clock() + grace_seconds)
            for s, e in ranges
        ]

    def add_batch_accepted(self, batch_id: str, accepted_data: Any, completed: bool) -> None:
        self.tables.events += [("batch.accepted", batch_id)] + ([("batch.completed", batch_id)] if completed else [])


def add_outbox_record(tables: Tables, kind: str, batch_id: str, start: int, end: int, available_at: float) -> int:
    """An outbox row as adapters/outbox.py's add_enqueue_tasks writes it (tests/fakes_fanout.py leases it)."""
    outbox_id = len(tables.outbox) + 1
    tables.outbox.append(
        {"outbox_id": outbox_id, "kind": kind, "batch_id": batch_id, "start": start, "end": end, "done": False,
         "progress": start, "attempts": 0, "lease_owner": None, "lease_until": None, "last_error": None,
         "available_at": available_at}
    )  # fmt: skip
    return outbox_id


_TICKS = itertools.count(1)


def touch(
    row: dict[str, Any], event: str, attempt: int | None = None, code: str | None = None, detail: str | None = None
) -> None:
    """A write to the row: a later updated_at (a tick, no clock) and its latest history entry."""
    row["updated_at"] = _NOW + timedelta(microseconds=next(_TICKS))
    row["last_event"] = (event, attempt, code, detail)


def _fingerprint(p: dict[str, Any]) -> Fingerprint:
    return (p["external_id"], p["user_id"], p["amount_cents"], p["pix_key_type"], p["pix_key"])


class FakeRepository:
    """BatchWrites, PayoutReads' lookups and RecoveryStatements' sweeper half, over Tables.

    A batch writer works on a copy that replaces the tables only when its block ends without an
    error: a failed submission leaves nothing behind, as a rolled-back transaction does.
    `fail_next` raises the given errors at the next commits, one each (a lost conflict, a race).
    `clock` (seconds) dates the outbox records a batch writes: tests/fakes_fanout.py's FakeClock, or none.
    """

    def __init__(self, clock: Callable[[], float] = _no_clock) -> None:
        self.tables = Tables()
        self.clock = clock
        self.fail_next: list[Exception] = []
        self.commits = 0

    @contextmanager
    def batch_writer(self) -> Iterator[FakeBatchWriter]:
        staged = copy.deepcopy(self.tables)
        yield FakeBatchWriter(staged, self.clock)
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.tables = staged
        self.commits += 1

    # -- the sweeper's statements --------------------------------------------------------------

    def count_open(self) -> int:
        done = {o["batch_id"] for o in self.tables.outbox if not o["done"]}
        return sum(
            1
            for p in self.tables.payouts.values()
            if p["status"] in (PayoutStatus.PENDING, PayoutStatus.PROCESSING) and p["batch_id"] not in done
        )

    def claim_stale_payouts(self, stale_seconds: int, limit: int) -> list[str]:
        """Payouts the test marked stale (no clock here); each is claimed once."""
        claimed = [pid for pid, p in sorted(self.tables.payouts.items()) if p["stale"]][:limit]
        for pid in claimed:
            self.tables.payouts[pid]["stale"] = False
        return claimed

    # -- the dead-letter rule's statements (no clock: a row's "recent" says it was touched within the lease) --

    def dead_letter_view(self, payout_id: str, lease_seconds: int) -> DeadLetterView | None:
        p = self.tables.payouts.get(payout_id)
        if p is None:
            return None
        event, attempt, code, detail = p["last_event"] or (None, None, None, None)
        return DeadLetterView(
            PayoutStatus(p["status"]), p["attempts"], p["provider_failures"], p["end_to_end_id"], p["updated_at"],
            p["recent"], event, attempt, code, detail,
        )  # fmt: skip

    def close_dead_letter(
        self, payout_id: str, seen: DeadLetterView, outcome: DeadLetterOutcome, lease_seconds: int
    ) -> bool:
        now = self.dead_letter_view(payout_id, lease_seconds)
        if now is None or not now.same_payout_state(seen):
            return False
        p = self.tables.payouts[payout_id]
        if outcome is DeadLetterOutcome.RECOVERED:
            p.update(status=PayoutStatus.COMPLETED, provider_step=None)
        elif outcome is DeadLetterOutcome.FAILED:
            reason = exhausted_reason(now.provider_failures, *now.last_error())
            p.update(
                status=PayoutStatus.FAILED, provider_step=None, failure_code=RETRIES_EXHAUSTED, failure_message=reason
            )
        touch(p, outcome.value)
        self.tables.history.append((payout_id, outcome.value))
        return True

    def reopen_exhausted(self, batch_id: str | None = None, limit: int = 10_000) -> list[str]:
        return []


class FakeFanoutQueue:
    def __init__(self, down: bool = False) -> None:
        self.woken: list[list[int]] = []
        self.down = down

    def wake(self, outbox_ids: Sequence[int]) -> None:
        if self.down:
            raise ConnectionError("fan-out queue unreachable")
        self.woken.append(list(outbox_ids))

    def wake_each(self, outbox_ids: Sequence[int]) -> list[int]:
        if self.down:
            return list(outbox_ids)
        self.woken += [[i] for i in outbox_ids]
        return []


class FakePayoutQueue:
    """`held` messages already queued; every payout sent counts as a message of its own (per_message 1)
    unless per_message says otherwise."""

    def __init__(self, held: int = 0, per_message: int = 1) -> None:
        self.sent: list[str] = []
        self.held = held
        self.per_message = per_message

    @property
    def chunk_size(self) -> int:
        return SQS_BATCH * self.per_message

    def enqueue(self, payout_ids: Sequence[str]) -> list[str]:
        self.sent += payout_ids
        return []

    def send_chunks(self, chunks: Sequence[Sequence[str]]) -> Generator[list[str], None, None]:
        for chunk in chunks:
            assert len(chunk) <= self.chunk_size
            self.sent += chunk
            yield []

    def depth(self) -> int:
        return self.held + -(-len(self.sent) // self.per_message)


class FakeOutbox:
    """The sweeper's view of the outbox: which records are due (the test says)."""

    def __init__(self, due_ids: Sequence[int] = ()) -> None:
        self.due_ids = list(due_ids)

    def due(self, kind: str, grace_seconds: int, limit: int) -> list[int]:
        assert kind == ENQUEUE_PAYOUTS
        return self.due_ids[:limit]


class FakeDeadLetters:
    def __init__(self, held: int = 0) -> None:
        self.held = held
        self.bodies: list[str] = []

    def send(self, body: str) -> None:
        self.bodies.append(body)

    def depth(self) -> int:
        return self.held

    def move_back(self) -> tuple[str, int | None]:
        return "copied", self.held
