"""One contract for the Outbox port (leases, progress, completion, the batch's payouts, what is due), run against
the in-memory fake (tests/fakes_fanout.py) and against PostgreSQL (chalicelib/adapters/outbox.py).

The fan-out's unit tests (tests/unit/test_fanout_on_fakes.py) run on the fake; this is what makes their answers
worth trusting. Time passes without sleeping: the fake's clock moves, and on PostgreSQL the test batch's
records move back in time by as much (their lease_until and available_at, the only times the statements read).
The records whose due-ness is tested have a kind of their own, so records other tests left are never in the way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2.extras
import pytest

from chalicelib.adapters.database import Database
from chalicelib.adapters.outbox import Outbox
from chalicelib.adapters.postgres import PayoutRepository
from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.outbox import ENQUEUE_PAYOUTS, Claimed, NotClaimed
from chalicelib.domain.payout_ids import new_payout_ids
from tests.fakes import FakeRepository
from tests.fakes_fanout import FakeClock, FakeOutboxTable

LEASE = 60.0


def new_e2e_id() -> str:
    return f"O{uuid.uuid4().int % 10**31:031d}"


@dataclass
class Written:
    batch_id: str
    payout_ids: dict[int, str]  # item_index -> payout_id, duplicates included
    outbox_ids: list[int]


@dataclass
class Store:
    writes: Any  # BatchWrites: the batch and its records, as a submission writes them
    outbox: Any  # Outbox
    pass_time: Callable[[str, float], None]  # (batch_id, seconds): time passes for that batch's records
    add_record: Callable[[str, str, int, int, float], int]  # (kind, batch_id, start, end, grace seconds) -> id

    def batch(
        self,
        n: int,
        ranges: list[tuple[int, int]] | None = None,
        grace: int = 0,
        duplicates: dict[int, str] | None = None,
    ) -> Written:
        """A batch of n items, those at `duplicates`' indexes repeating earlier payouts; one record per range."""
        batch_id = f"oc-{uuid.uuid4().hex[:12]}"
        body = {
            "batch_id": batch_id,
            "items": [
                {
                    "external_id": f"{batch_id}-{i}",
                    "user_id": f"u{i}",
                    "amount_cents": 100 + i,
                    "pix_key": f"k{i}@x.com",
                }
                for i in range(n)
            ],
        }
        dups = duplicates or {}
        new = [i for i in parse_batch_request(body).items if i.index not in dups]
        ids = {**dict(zip((i.index for i in new), new_payout_ids(len(new)), strict=True)), **dups}
        rows = [(index, pid, index in dups) for index, pid in sorted(ids.items(), reverse=True)]  # not in order
        with self.writes.batch_writer() as tx:
            tx.insert_batch(batch_id, f"hash-{batch_id}", n)
            tx.insert_payouts(batch_id, new, ids, new_e2e_id)
            tx.insert_batch_items(batch_id, rows)
            outbox_ids = tx.add_enqueue_tasks(batch_id, ranges if ranges is not None else [(0, n)], grace)
        return Written(batch_id, ids, outbox_ids)

    def record(self, n: int = 10, grace: int = 0) -> tuple[int, str]:
        """One record of a batch of n items: (outbox_id, batch_id)."""
        written = self.batch(n, grace=grace)
        return written.outbox_ids[0], written.batch_id

    def progress(self, outbox_id: int) -> int:
        """Where the record's progress stands, seen through the port: a passer-by takes the record and lets it go."""
        claim = self.outbox.claim(outbox_id, "passer-by", LEASE)
        assert isinstance(claim, Claimed), claim
        self.outbox.release(outbox_id, "passer-by", 0, "looked")
        return int(claim.progress)


def fake_store() -> Store:
    clock = FakeClock()
    repo = FakeRepository(clock=clock)
    outbox = FakeOutboxTable(repo)
    return Store(repo, outbox, lambda _batch_id, seconds: clock.advance(seconds), outbox.add)


def postgres_store(db: Database) -> Store:
    def pass_time(batch_id: str, seconds: float) -> None:
        with db.statement() as cur:
            cur.execute(
                "UPDATE outbox SET lease_until = lease_until - make_interval(secs => %s),"
                " available_at = available_at - make_interval(secs => %s) WHERE aggregate_id = %s",
                (seconds, seconds, batch_id),
            )

    def add_record(kind: str, batch_id: str, start: int, end: int, grace: float) -> int:
        with db.statement() as cur:
            cur.execute(
                "INSERT INTO outbox (kind, aggregate_id, payload, progress, available_at)"
                " VALUES (%s, %s, %s::jsonb, %s, now() + make_interval(secs => %s)) RETURNING outbox_id",
                (
                    kind,
                    batch_id,
                    psycopg2.extras.Json({"batch_id": batch_id, "start": start, "end": end}),
                    start,
                    grace,
                ),
            )
            return int(cur.fetchone()[0])

    return Store(PayoutRepository(db), Outbox(db), pass_time, add_record)


@pytest.fixture(params=["fake", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "fake":
        yield fake_store()
        return
    db = Database(request.getfixturevalue("database_url"))
    yield postgres_store(db)
    db.close()


def leased_for(result: Any, seconds: float) -> bool:
    """NotClaimed("leased") with about `seconds` left (PostgreSQL's clock runs on while the test does)."""
    return (
        isinstance(result, NotClaimed)
        and result.reason == "leased"
        and seconds - 2 < result.lease_left_seconds <= seconds
    )


def own_kind() -> str:
    return f"contract.{uuid.uuid4().hex[:10]}"


class TestClaim:
    def test_a_new_record_is_claimed_with_its_range_and_its_progress_at_the_range_start(self, store):
        written = store.batch(6, ranges=[(0, 4), (4, 6)])
        claim = store.outbox.claim(written.outbox_ids[1], "w", LEASE)
        assert claim == Claimed(
            written.outbox_ids[1], ENQUEUE_PAYOUTS, {"batch_id": written.batch_id, "start": 4, "end": 6}, 4
        )

    def test_a_batchs_records_have_ascending_ids_one_per_range(self, store):
        written = store.batch(9, ranges=[(0, 3), (3, 6), (6, 9)])
        assert written.outbox_ids == sorted(written.outbox_ids) and len(set(written.outbox_ids)) == 3
        starts = [store.outbox.claim(i, "w", LEASE).payload["start"] for i in written.outbox_ids]
        assert starts == [0, 3, 6]

    def test_a_record_leased_to_one_worker_is_refused_to_another_with_the_seconds_its_lease_has_left(self, store):
        outbox_id, batch_id = store.record()
        assert isinstance(store.outbox.claim(outbox_id, "first", LEASE), Claimed)
        store.pass_time(batch_id, 20)
        assert leased_for(store.outbox.claim(outbox_id, "second", LEASE), LEASE - 20)

    def test_the_owner_itself_cannot_claim_its_leased_record_again(self, store):
        outbox_id, _ = store.record()
        store.outbox.claim(outbox_id, "w", LEASE)
        assert leased_for(store.outbox.claim(outbox_id, "w", LEASE), LEASE)

    def test_once_the_lease_runs_out_another_worker_claims_the_record_where_its_progress_stands(self, store):
        outbox_id, batch_id = store.record()
        store.outbox.claim(outbox_id, "dead", LEASE)
        assert store.outbox.advance(outbox_id, "dead", 7, LEASE)
        store.pass_time(batch_id, LEASE + 1)
        claim = store.outbox.claim(outbox_id, "next", LEASE)
        assert isinstance(claim, Claimed) and claim.progress == 7
        assert leased_for(store.outbox.claim(outbox_id, "third", LEASE), LEASE)  # the new lease, from now

    def test_a_record_that_does_not_exist_is_missing(self, store):
        assert store.outbox.claim(2**62, "w", LEASE) == NotClaimed("missing")

    def test_a_finished_record_is_done_and_never_claimed_again(self, store):
        outbox_id, batch_id = store.record()
        store.outbox.claim(outbox_id, "w", LEASE)
        assert store.outbox.finish(outbox_id, "w", 10)
        assert store.outbox.claim(outbox_id, "w", LEASE) == NotClaimed("done")
        store.pass_time(batch_id, 10 * LEASE)
        assert store.outbox.claim(outbox_id, "other", LEASE) == NotClaimed("done")


class TestAdvance:
    def test_progress_only_moves_forward(self, store):
        outbox_id, _ = store.record(30)
        store.outbox.claim(outbox_id, "w", LEASE)
        assert store.outbox.advance(outbox_id, "w", 20, LEASE)
        assert store.outbox.advance(outbox_id, "w", 10, LEASE)  # accepted, and ignored
        store.outbox.release(outbox_id, "w", 0, "stopped")
        assert store.progress(outbox_id) == 20

    def test_advancing_extends_the_lease_from_now(self, store):
        outbox_id, batch_id = store.record()
        store.outbox.claim(outbox_id, "w", 10)
        store.pass_time(batch_id, 8)
        assert store.outbox.advance(outbox_id, "w", 1, 10)
        store.pass_time(batch_id, 8)
        assert leased_for(store.outbox.claim(outbox_id, "other", LEASE), 2)

    def test_a_worker_that_lost_its_lease_cannot_advance_and_moves_nothing(self, store):
        outbox_id, batch_id = store.record(30)
        store.outbox.claim(outbox_id, "late", LEASE)
        store.pass_time(batch_id, LEASE + 1)
        store.outbox.claim(outbox_id, "other", LEASE)
        assert not store.outbox.advance(outbox_id, "late", 20, LEASE)
        assert store.outbox.advance(outbox_id, "other", 5, LEASE)
        store.outbox.release(outbox_id, "other", 0, "stopped")
        assert store.progress(outbox_id) == 5

    def test_an_owner_whose_lease_ran_out_with_nobody_taking_it_still_advances_and_holds_it_again(self, store):
        outbox_id, batch_id = store.record()
        store.outbox.claim(outbox_id, "slow", 10)
        store.pass_time(batch_id, 11)
        assert store.outbox.advance(outbox_id, "slow", 3, LEASE)
        assert leased_for(store.outbox.claim(outbox_id, "other", LEASE), LEASE)

    def test_a_record_nobody_claimed_cannot_be_advanced(self, store):
        outbox_id, _ = store.record()
        assert not store.outbox.advance(outbox_id, "nobody", 5, LEASE)
        assert store.progress(outbox_id) == 0


class TestFinish:
    def test_the_owner_finishes_once_and_the_done_record_takes_no_more_writes(self, store):
        outbox_id, _ = store.record()
        store.outbox.claim(outbox_id, "w", LEASE)
        assert store.outbox.finish(outbox_id, "w", 10)
        assert not store.outbox.finish(outbox_id, "w", 10)
        assert not store.outbox.advance(outbox_id, "w", 10, LEASE)
        store.outbox.release(outbox_id, "w", 10, "too late")
        assert store.outbox.claim(outbox_id, "w", LEASE) == NotClaimed("done")

    def test_a_worker_that_lost_its_lease_cannot_finish_and_the_owner_still_can(self, store):
        outbox_id, batch_id = store.record()
        store.outbox.claim(outbox_id, "late", LEASE)
        store.pass_time(batch_id, LEASE + 1)
        store.outbox.claim(outbox_id, "other", LEASE)
        assert not store.outbox.finish(outbox_id, "late", 10)
        assert leased_for(store.outbox.claim(outbox_id, "third", LEASE), LEASE)
        assert store.outbox.finish(outbox_id, "other", 10)


class TestRelease:
    def test_release_gives_the_lease_up_at_once_keeping_the_greater_progress(self, store):
        outbox_id, _ = store.record(30)
        store.outbox.claim(outbox_id, "w", LEASE)
        store.outbox.advance(outbox_id, "w", 5, LEASE)
        store.outbox.release(outbox_id, "w", 3, "SQS refused 1 of 10 messages")
        claim = store.outbox.claim(outbox_id, "next", LEASE)
        assert isinstance(claim, Claimed) and claim.progress == 5
        store.outbox.release(outbox_id, "next", 12, "SQS refused 1 of 10 messages")
        assert store.progress(outbox_id) == 12

    def test_release_by_a_worker_that_does_not_hold_the_lease_changes_nothing(self, store):
        outbox_id, _ = store.record(30)
        store.outbox.claim(outbox_id, "owner", LEASE)
        store.outbox.release(outbox_id, "stranger", 20, "not mine")
        assert leased_for(store.outbox.claim(outbox_id, "third", LEASE), LEASE)
        store.outbox.release(outbox_id, "owner", 0, "done with it")
        assert store.progress(outbox_id) == 0

    def test_a_released_record_is_due_at_once_even_within_its_grace(self, store):
        kind, batch_id = own_kind(), f"oc-{uuid.uuid4().hex[:12]}"
        outbox_id = store.add_record(kind, batch_id, 0, 10, 300)
        assert store.outbox.due(kind, 30, 10) == []
        store.outbox.claim(outbox_id, "w", LEASE)
        store.outbox.release(outbox_id, "w", 4, "SQS refused 10 of 10 messages")
        assert store.outbox.due(kind, 30, 10) == [outbox_id]


class TestBatchPayouts:
    def test_the_new_payouts_of_the_range_come_back_in_item_order_and_never_its_duplicates(self, store):
        earlier = store.batch(2)
        written = store.batch(6, duplicates={1: earlier.payout_ids[0], 4: earlier.payout_ids[1]})
        ids = written.payout_ids
        assert store.outbox.batch_payouts(written.batch_id, 0, 6) == [(i, ids[i]) for i in (0, 2, 3, 5)]
        assert store.outbox.batch_payouts(written.batch_id, 2, 5) == [(2, ids[2]), (3, ids[3])]  # end excluded
        assert store.outbox.batch_payouts(written.batch_id, 1, 2) == []  # a duplicate only
        assert store.outbox.batch_payouts(written.batch_id, 6, 100) == []

    def test_another_batchs_items_are_never_in_the_range(self, store):
        earlier = store.batch(3)
        store.batch(3)
        assert [pid for _, pid in store.outbox.batch_payouts(earlier.batch_id, 0, 3)] == [
            earlier.payout_ids[i] for i in range(3)
        ]
        assert store.outbox.batch_payouts("oc-no-such-batch", 0, 3) == []


class TestDue:
    def test_a_new_batchs_records_are_due_once_the_grace_of_its_post_is_over(self, store):
        written = store.batch(4, ranges=[(0, 2), (2, 4)], grace=30)
        # grace 0 here: records other tests left, due too, are not pushed back by this test
        mine = set(written.outbox_ids)
        assert mine.isdisjoint(store.outbox.due(ENQUEUE_PAYOUTS, 0, 100_000))
        store.pass_time(written.batch_id, 31)
        assert mine <= set(store.outbox.due(ENQUEUE_PAYOUTS, 0, 100_000))

    def test_a_due_record_is_not_due_again_for_the_grace_it_was_handed_out_with(self, store):
        kind, batch_id = own_kind(), f"oc-{uuid.uuid4().hex[:12]}"
        outbox_id = store.add_record(kind, batch_id, 0, 10, 0)
        assert store.outbox.due(kind, 30, 10) == [outbox_id]
        assert store.outbox.due(kind, 30, 10) == []
        store.pass_time(batch_id, 31)
        assert store.outbox.due(kind, 30, 10) == [outbox_id]

    def test_a_leased_or_done_record_is_not_due_and_an_expired_lease_is(self, store):
        kind, batch_id = own_kind(), f"oc-{uuid.uuid4().hex[:12]}"
        leased, done, free = (store.add_record(kind, batch_id, 0, 10, 0) for _ in range(3))
        store.outbox.claim(leased, "w", LEASE)
        store.outbox.claim(done, "w", LEASE)
        store.outbox.finish(done, "w", 10)
        assert store.outbox.due(kind, 0, 10) == [free]
        store.pass_time(batch_id, LEASE + 1)
        assert store.outbox.due(kind, 0, 10) == sorted([leased, free])

    def test_due_hands_out_the_longest_waiting_first_up_to_the_limit_and_only_of_its_kind(self, store):
        kind, batch_id = own_kind(), f"oc-{uuid.uuid4().hex[:12]}"
        newer = store.add_record(kind, batch_id, 0, 10, -10)
        older = store.add_record(kind, batch_id, 10, 20, -20)
        store.add_record(own_kind(), batch_id, 20, 30, -30)  # another kind, longer due still
        assert store.outbox.due(kind, 30, 1) == [older]
        assert store.outbox.due(kind, 30, 1) == [newer]
        assert store.outbox.due(kind, 30, 1) == []
