"""In-memory fakes of the fan-out's ports: the Outbox over a FakeRepository's tables, a clock, and a payout queue
that refuses messages or dies part-way.

FakeOutboxTable follows chalicelib/adapters/outbox.py statement by statement, on the outbox rows a batch
submitted through the fake repository writes (tests/fakes.py, add_outbox_record), so a batch submitted there
is fanned out here, as one PostgreSQL holds both; tests/integration/test_outbox_contract.py runs the same tests
on this and on PostgreSQL. Time is a FakeClock the test moves: a lease runs out without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from chalicelib.domain.outbox import Claimed, NotClaimed
from chalicelib.services.ports import SQS_BATCH
from tests.fakes import FakePayoutQueue, FakeRepository, add_outbox_record


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeOutboxTable:
    """The Outbox port (services/ports.py) over `repo.tables.outbox`, dated by the repository's clock.

    Each method is one of the adapter's statements: a lease is taken only when the record is not done and
    no lease runs (lease_until in the past, strictly); advance, finish and release act only for the lease's
    owner on a record not done, whether or not the lease has run out; advance and release keep the greater
    progress, finish writes the one it is given.
    """

    def __init__(self, repo: FakeRepository) -> None:
        self.repo = repo

    def _now(self) -> float:
        return self.repo.clock()

    def _record(self, outbox_id: int) -> dict[str, Any] | None:
        # Read the tables at each call: a batch writer's commit replaces them whole.
        return next((o for o in self.repo.tables.outbox if o["outbox_id"] == outbox_id), None)

    def _held_by(self, outbox_id: int, owner: str) -> dict[str, Any] | None:
        record = self._record(outbox_id)
        if record is None or record["done"] or record["lease_owner"] != owner:
            return None
        return record

    def add(self, kind: str, batch_id: str, start: int, end: int, grace_seconds: float = 0) -> int:
        """A record of any kind, as a later writer of the outbox would add it (the adapter has no such method)."""
        return add_outbox_record(self.repo.tables, kind, batch_id, start, end, self._now() + grace_seconds)

    def claim(self, outbox_id: int, owner: str, lease_seconds: float) -> Claimed | NotClaimed:
        record, now = self._record(outbox_id), self._now()
        if record is None:
            return NotClaimed("missing")
        if record["done"]:
            return NotClaimed("done")
        if record["lease_until"] is not None and not record["lease_until"] < now:
            return NotClaimed("leased", max(0.0, record["lease_until"] - now))
        record.update(lease_owner=owner, lease_until=now + lease_seconds, attempts=record["attempts"] + 1)
        payload = {"batch_id": record["batch_id"], "start": record["start"], "end": record["end"]}
        return Claimed(outbox_id, record["kind"], payload, record["progress"])

    def advance(self, outbox_id: int, owner: str, progress: int, lease_seconds: float) -> bool:
        record = self._held_by(outbox_id, owner)
        if record is None:
            return False
        record.update(progress=max(record["progress"], progress), lease_until=self._now() + lease_seconds)
        return True

    def finish(self, outbox_id: int, owner: str, progress: int) -> bool:
        record = self._held_by(outbox_id, owner)
        if record is None:
            return False
        record.update(progress=progress, done=True, lease_owner=None, lease_until=None, last_error=None)
        return True

    def release(self, outbox_id: int, owner: str, progress: int, error: str) -> None:
        record = self._held_by(outbox_id, owner)
        if record is not None:
            record.update(
                progress=max(record["progress"], progress),
                lease_owner=None,
                lease_until=None,
                last_error=error[:500],
                available_at=self._now(),
            )

    def batch_payouts(self, batch_id: str, start: int, end: int) -> list[tuple[int, str]]:
        rows = self.repo.tables.items.get(batch_id, [])
        return sorted((index, pid) for index, pid, duplicate in rows if not duplicate and start <= index < end)

    def due(self, kind: str, grace_seconds: int, limit: int) -> list[int]:
        now = self._now()
        due = sorted(
            (
                o
                for o in self.repo.tables.outbox
                if not o["done"]
                and o["kind"] == kind
                and o["available_at"] <= now
                and (o["lease_until"] is None or o["lease_until"] < now)
            ),
            key=lambda o: (o["available_at"], o["outbox_id"]),
        )[:limit]
        for o in due:
            o["available_at"] = now + grace_seconds
        return sorted(o["outbox_id"] for o in due)


class Died(BaseException):
    """Where a real fan-out dies (the Lambda killed); BaseException, so nothing in the use case catches it."""


class FaultyPayoutQueue(FakePayoutQueue):
    """The payout queue with SQS's faults, chunk by chunk; chunks are numbered from 1 over the queue's life.

    A chunk is one SendMessageBatch call: up to SQS_BATCH messages of `per_message` payouts each, grouped
    in order as adapters/sqs_queue.py groups them.

    refuse:     {chunk number: how many of its last messages SQS refuses} (throttled entries, after the retry)
    down_from:  from this chunk on every chunk comes back whole (the queue unreachable, as the adapter does)
    die_after:  the invocation dies (Died) when asked for a chunk after this many
    before_chunk: called with each chunk's number before it is sent (another worker's move, time passing)

    `chunks` keeps each chunk asked for, `sent` (FakePayoutQueue's) only the payouts of messages SQS took.
    Sending is lazy, one chunk per step of the generator, as the adapter's one-worker path is.
    """

    def __init__(
        self,
        *,
        per_message: int = 1,
        refuse: dict[int, int] | None = None,
        down_from: int | None = None,
        die_after: int | None = None,
        before_chunk: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(per_message=per_message)
        self.refuse = dict(refuse or {})
        self.down_from = down_from
        self.die_after = die_after
        self.before_chunk = before_chunk
        self.chunks: list[list[str]] = []
        self.closed_early = 0  # generators the caller closed before their last chunk

    def send_chunks(self, chunks: Sequence[Sequence[str]]) -> Generator[list[str], None, None]:
        done = 0
        try:
            for chunk in chunks:
                assert 0 < len(chunk) <= self.chunk_size
                number = len(self.chunks) + 1
                if self.die_after is not None and number > self.die_after:
                    raise Died(f"died before chunk {number}")
                if self.before_chunk is not None:
                    self.before_chunk(number)
                self.chunks.append(list(chunk))
                n = self.per_message
                messages = [list(chunk[i : i + n]) for i in range(0, len(chunk), n)]
                assert len(messages) <= SQS_BATCH
                if self.down_from is not None and number >= self.down_from:
                    refused = len(messages)
                else:
                    refused = min(len(messages), self.refuse.get(number, 0))
                taken, unsent = messages[: len(messages) - refused], messages[len(messages) - refused :]
                self.sent += [pid for message in taken for pid in message]
                done += 1
                yield [pid for message in unsent for pid in message]
        except GeneratorExit:
            if done < len(chunks):
                self.closed_early += 1
            raise
