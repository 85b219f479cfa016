"""The fan-out use case (services/fanout.py) on in-memory fakes of its ports (tests/fakes_fanout.py): batches are
submitted through submit_batch on the fake repository, whose outbox records the fake outbox leases. No sockets.

Each test that fans out runs with one payout a message and with ten (PAYOUTS_PER_MESSAGE's default)."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.outbox import Claimed, NotClaimed
from chalicelib.services.batches import FanoutPlan, submit_batch
from chalicelib.services.fanout import (
    PROGRESS_EVERY_PAYOUTS,
    NotSent,
    StillLeased,
    enqueue_range,
    fan_out,
    plan_ranges,
)
from chalicelib.services.ports import SQS_BATCH
from tests.fakes import FakeFanoutQueue, FakeRepository
from tests.fakes_fanout import Died, FakeClock, FakeOutboxTable, FaultyPayoutQueue

LEASE = 60.0
GRACE = 30

_E2E = itertools.count()


def new_e2e_id() -> str:
    return f"E2E{next(_E2E):029d}"


def items(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"external_id": f"{prefix}-{i}", "user_id": f"u{i}", "amount_cents": 100 + i, "pix_key": f"u{i}@email.com"}
        for i in range(n)
    ]


@dataclass(frozen=True)
class Sizes:
    """How the fan-out cuts a range for a queue of `per_message` payouts a message."""

    per_message: int

    @property
    def chunk(self) -> int:
        """Payouts one SendMessageBatch call carries."""
        return SQS_BATCH * self.per_message

    @property
    def every(self) -> int:
        """Chunks between two progress records: PROGRESS_EVERY_PAYOUTS, rounded up to whole calls."""
        return max(1, -(-PROGRESS_EVERY_PAYOUTS // self.chunk))

    @property
    def interval(self) -> int:
        """Payouts between two progress records."""
        return self.every * self.chunk

    @property
    def long(self) -> int:
        """A range that records progress twice on the way and ends in a part-filled chunk."""
        return 2 * self.interval + self.chunk // 2 + 3


@dataclass
class World:
    sizes: Sizes = field(default_factory=lambda: Sizes(1))
    clock: FakeClock = field(default_factory=FakeClock)
    repo: FakeRepository = field(init=False)
    outbox: FakeOutboxTable = field(init=False)
    wakeups: FakeFanoutQueue = field(default_factory=FakeFanoutQueue)

    def __post_init__(self) -> None:
        self.repo = FakeRepository(clock=self.clock)
        self.outbox = FakeOutboxTable(self.repo)

    def submit(self, batch_items: list[dict[str, Any]], range_items: int) -> tuple[list[str], list[int]]:
        """The batch's payout ids (item order, duplicates included) and its new outbox records."""
        before = len(self.repo.tables.outbox)
        body = {"batch_id": f"fan-{uuid.uuid4().hex[:12]}", "items": batch_items}
        plan = FanoutPlan(wakeups=self.wakeups, range_items=range_items, grace_seconds=GRACE)
        submission = submit_batch(self.repo, plan, parse_batch_request(body), new_e2e_id)
        return submission.payout_ids, [o["outbox_id"] for o in self.repo.tables.outbox[before:]]

    def record(self, outbox_id: int) -> dict[str, Any]:
        return next(o for o in self.repo.tables.outbox if o["outbox_id"] == outbox_id)

    def queue(self, **faults: Any) -> FaultyPayoutQueue:
        return FaultyPayoutQueue(per_message=self.sizes.per_message, **faults)

    def run(self, queue: FaultyPayoutQueue, outbox_id: int, owner: str = "worker") -> dict[str, Any]:
        return enqueue_range(self.outbox, queue, outbox_id, owner, LEASE)


@pytest.fixture(params=[1, 10], ids=["one_payout_a_message", "ten_payouts_a_message"])
def world(request: pytest.FixtureRequest) -> World:
    return World(Sizes(request.param))


# --- one range, then a batch ----------------------------------------------------------------------


def test_a_range_sends_each_payout_once_in_chunks_of_one_call_and_marks_its_record_done(world):
    n = 2 * world.sizes.chunk + 5
    ids, [outbox_id] = world.submit(items(n, "one"), range_items=n)
    queue = world.queue()
    batch_id = world.record(outbox_id)["batch_id"]
    assert world.run(queue, outbox_id) == {"outbox_id": outbox_id, "batch_id": batch_id, "outcome": "sent", "sent": n}
    assert queue.sent == ids
    assert [len(c) for c in queue.chunks] == [world.sizes.chunk, world.sizes.chunk, 5]
    record = world.record(outbox_id)
    assert (record["done"], record["progress"], record["lease_owner"], record["lease_until"]) == (True, n, None, None)


def test_every_range_of_a_batch_is_sent_once_and_every_payout_exactly_once(world):
    ids, outbox_ids = world.submit(items(45, "batch"), range_items=20)
    assert world.wakeups.woken == [outbox_ids] and len(outbox_ids) == 3  # the POST's one wake-up
    queue = world.queue()
    results = [fan_out(world.outbox, queue, world.wakeups, outbox_ids, "w0", LEASE)]
    # each sibling's own wake-up, as the fan-out function receives it
    results += [
        fan_out(world.outbox, queue, world.wakeups, ids_, f"w{ids_}", LEASE) for ids_ in world.wakeups.woken[1:]
    ]
    assert [r["sent"] for r in results] == [20, 20, 5]
    assert Counter(queue.sent) == Counter(dict.fromkeys(ids, 1))
    assert all(world.record(i)["done"] for i in outbox_ids)


def test_a_duplicate_item_is_never_sent_and_its_range_covers_only_new_payouts(world):
    earlier, _ = world.submit(items(3, "shared"), range_items=100)
    again = items(3, "shared")  # the same three, so each is a duplicate of the earlier batch's payout
    mixed = [again[0], *items(4, "new")[:2], again[1], *items(4, "new2")[:2], again[2]]
    ids, [outbox_id] = world.submit(mixed, range_items=100)
    assert (ids[0], ids[3], ids[6]) == tuple(earlier)
    queue = world.queue()
    assert world.run(queue, outbox_id)["sent"] == 4
    assert queue.sent == [ids[1], ids[2], ids[4], ids[5]]
    assert not set(queue.sent) & set(earlier)


def test_a_record_already_done_is_a_no_op(world):
    _, [outbox_id] = world.submit(items(5, "done"), range_items=100)
    world.run(world.queue(), outbox_id)
    queue = world.queue()
    assert world.run(queue, outbox_id, "late") == {"outbox_id": outbox_id, "outcome": "done", "sent": 0}
    assert queue.chunks == [] and world.record(outbox_id)["lease_owner"] is None


def test_a_record_that_does_not_exist_sends_nothing_and_says_missing(world):
    queue = world.queue()
    assert world.run(queue, 404) == {"outbox_id": 404, "outcome": "missing", "sent": 0}
    assert queue.chunks == []


def test_a_record_of_another_kind_is_refused_before_anything_is_sent(world):
    outbox_id = world.outbox.add("webhook.event", "some-batch", 0, 10)
    queue = world.queue()
    with pytest.raises(ValueError, match=r"webhook\.event"):
        world.run(queue, outbox_id)
    assert queue.chunks == []


# --- fan_out: the first record here, the others woken ----------------------------------------------


def test_fan_out_wakes_every_record_but_the_first_and_sends_the_first(world):
    ids, outbox_ids = world.submit(items(45, "wake"), range_items=20)
    world.wakeups.woken.clear()
    queue = world.queue()
    result = fan_out(world.outbox, queue, world.wakeups, outbox_ids, "w", LEASE)
    assert world.wakeups.woken == [[outbox_ids[1]], [outbox_ids[2]]]  # one wake-up each, an invocation each
    assert result["outbox_id"] == outbox_ids[0] and queue.sent == ids[:20]
    assert [world.record(i)["done"] for i in outbox_ids] == [True, False, False]
    assert [world.record(i)["lease_owner"] for i in outbox_ids[1:]] == [None, None]  # free for their own wake-ups


def test_a_single_record_wakes_nothing(world):
    _, [outbox_id] = world.submit(items(5, "single"), range_items=20)
    world.wakeups.woken.clear()
    fan_out(world.outbox, world.queue(), world.wakeups, [outbox_id], "w", LEASE)
    assert world.wakeups.woken == []


def test_siblings_that_cannot_be_woken_are_left_to_the_sweeper_and_the_first_still_goes_out():
    world = World(wakeups=FakeFanoutQueue(down=True))
    ids, outbox_ids = world.submit(items(45, "down"), range_items=20)
    queue = world.queue()
    assert fan_out(world.outbox, queue, world.wakeups, outbox_ids, "w", LEASE)["sent"] == 20
    assert queue.sent == ids[:20]
    assert world.outbox.due("enqueue_payouts", GRACE, 10) == []  # their POST's grace is not over
    world.clock.advance(GRACE)
    assert world.outbox.due("enqueue_payouts", GRACE, 10) == outbox_ids[1:]


# --- dying, resuming, two workers -----------------------------------------------------------------


def test_a_fan_out_that_dies_part_way_resumes_from_its_recorded_progress_and_together_they_send_every_payout(world):
    size = world.sizes
    ids, [outbox_id] = world.submit(items(size.long, "die"), range_items=size.long)
    died_after = size.every + 1 + size.every // 2  # chunks: progress was last recorded after chunk `every`
    dying = world.queue(die_after=died_after)
    with pytest.raises(Died):
        world.run(dying, outbox_id, "dead")
    assert world.record(outbox_id)["progress"] == size.interval
    world.clock.advance(LEASE + 1)  # the dead invocation's lease runs out
    resumed = world.queue()
    result = world.run(resumed, outbox_id, "next")
    assert result["outcome"] == "sent" and result["sent"] == size.long - size.interval
    assert resumed.sent == ids[size.interval :]
    sent = Counter(dying.sent + resumed.sent)
    assert set(sent) == set(ids)
    twice = [pid for pid, n in sent.items() if n == 2]
    assert twice == ids[size.interval : died_after * size.chunk]  # what went out after the last progress record
    assert len(twice) < size.interval and max(sent.values()) == 2


def test_a_second_invocation_while_the_lease_runs_is_told_how_long_the_lease_has_left(world):
    _, [outbox_id] = world.submit(items(30, "leased"), range_items=100)
    claim = world.outbox.claim(outbox_id, "first", LEASE)
    assert isinstance(claim, Claimed)
    world.clock.advance(20)
    queue = world.queue()
    with pytest.raises(StillLeased) as held:
        world.run(queue, outbox_id, "second")
    assert held.value.seconds == LEASE - 20
    assert queue.chunks == [] and world.record(outbox_id)["lease_owner"] == "first"


def test_a_worker_that_lost_its_lease_stops_at_its_next_progress_record(world):
    size = world.sizes
    ids, [outbox_id] = world.submit(items(size.long, "lost"), range_items=size.long)
    other = world.queue()
    results = {}

    def stall_then_another_worker_takes_over(number: int) -> None:
        if number == 2:
            world.clock.advance(LEASE + 1)
            results["other"] = world.run(other, outbox_id, "other")

    late = world.queue(before_chunk=stall_then_another_worker_takes_over)
    result = world.run(late, outbox_id, "late")
    assert result["outcome"] == "lease_lost" and result["sent"] == size.interval
    assert len(late.chunks) == size.every and late.closed_early == 1  # no chunk after the progress record
    assert results["other"]["outcome"] == "sent" and other.sent == ids
    assert world.record(outbox_id)["done"] and world.record(outbox_id)["progress"] == size.long


def test_a_worker_whose_lease_was_taken_before_it_finished_says_lease_lost_and_leaves_the_record_to_the_other(world):
    n = 2 * world.sizes.chunk  # two chunks: no progress record on the way
    assert world.sizes.every > 2
    _, [outbox_id] = world.submit(items(n, "taken"), range_items=n)

    def another_worker_claims(number: int) -> None:
        if number == 2:
            world.clock.advance(LEASE + 1)
            assert isinstance(world.outbox.claim(outbox_id, "other", LEASE), Claimed)

    result = world.run(world.queue(before_chunk=another_worker_claims), outbox_id, "late")
    assert result["outcome"] == "lease_lost" and result["sent"] == n
    record = world.record(outbox_id)
    assert not record["done"] and record["lease_owner"] == "other"


def test_a_worker_whose_lease_ran_out_but_was_not_taken_carries_on_and_finishes(world):
    ids, [outbox_id] = world.submit(items(world.sizes.long, "slow"), range_items=world.sizes.long)

    def stall(number: int) -> None:
        if number == 2:
            world.clock.advance(LEASE + 1)

    queue = world.queue(before_chunk=stall)
    assert world.run(queue, outbox_id, "slow")["outcome"] == "sent"
    assert queue.sent == ids and world.record(outbox_id)["done"]


# --- SQS refusing messages --------------------------------------------------------------------------


def test_sqs_refusing_some_messages_releases_the_record_at_the_progress_before_them_and_raises_not_sent(world):
    size = world.sizes
    ids, [outbox_id] = world.submit(items(size.long, "refused"), range_items=size.long)
    bad = size.every + 2  # a chunk after the first progress record
    refused = 3 * size.per_message  # the payouts of its last three messages
    before = (bad - 1) * size.chunk
    refusing = world.queue(refuse={bad: 3})
    with pytest.raises(NotSent, match=f"from item {before} on"):
        world.run(refusing, outbox_id, "first")
    record = world.record(outbox_id)
    assert (record["progress"], record["lease_owner"], record["done"]) == (before, None, False)
    assert record["last_error"].startswith("SQS refused")
    assert len(refusing.chunks) == bad and refusing.closed_early == 1  # nothing asked for after the refusal
    # Free at once, and due for the sweeper at once (within the POST's grace).
    assert world.outbox.due("enqueue_payouts", GRACE, 10) == [outbox_id]
    retry = world.queue()
    assert world.run(retry, outbox_id, "retry")["sent"] == size.long - before
    sent = Counter(refusing.sent + retry.sent)
    assert set(sent) == set(ids)
    assert [pid for pid, n in sent.items() if n == 2] == ids[before : bad * size.chunk - refused]


def test_a_queue_down_from_the_first_chunk_sends_nothing_and_keeps_the_records_progress(world):
    _, [outbox_id] = world.submit(items(30, "down"), range_items=100)
    with pytest.raises(NotSent, match="from item 0 on"):
        world.run(world.queue(down_from=1), outbox_id, "first")
    record = world.record(outbox_id)
    assert (record["progress"], record["lease_owner"]) == (0, None)


def test_a_refusal_after_a_resume_keeps_the_progress_the_dead_invocation_recorded(world):
    size = world.sizes
    _, [outbox_id] = world.submit(items(size.long, "resume"), range_items=size.long)
    with pytest.raises(Died):
        world.run(world.queue(die_after=size.every + 1), outbox_id, "dead")
    world.clock.advance(LEASE + 1)
    with pytest.raises(NotSent, match=f"from item {size.interval} on"):
        world.run(world.queue(down_from=1), outbox_id, "next")
    assert world.record(outbox_id)["progress"] == size.interval


# --- the outbox fake itself, where the use case does not reach ------------------------------------


def test_the_fake_outbox_records_progress_only_forward(world):
    _, [outbox_id] = world.submit(items(30, "forward"), range_items=100)
    world.outbox.claim(outbox_id, "w", LEASE)
    assert world.outbox.advance(outbox_id, "w", 20, LEASE)
    assert world.outbox.advance(outbox_id, "w", 10, LEASE)
    world.outbox.release(outbox_id, "w", 5, "boom")
    claim = world.outbox.claim(outbox_id, "w2", LEASE)
    assert isinstance(claim, Claimed) and claim.progress == 20
    assert world.outbox.claim(outbox_id, "w3", LEASE) == NotClaimed("leased", LEASE)


# --- plan_ranges ----------------------------------------------------------------------------------


def test_no_new_items_plan_no_range():
    assert plan_ranges([], 1) == []


def test_a_single_new_item_is_a_range_of_one():
    assert plan_ranges([7], 2500) == [(7, 8)]


def test_fewer_new_items_than_a_range_holds_make_one_range_from_the_first_to_one_past_the_last():
    assert plan_ranges([2, 5, 9], 10) == [(2, 10)]


def test_exactly_a_range_full_makes_one_range_and_one_more_item_a_second():
    assert plan_ranges([0, 1, 2], 3) == [(0, 3)]
    assert plan_ranges([0, 1, 2, 3], 3) == [(0, 3), (3, 4)]


def test_a_range_ends_one_past_its_last_new_item_not_at_the_next_ranges_start():
    assert plan_ranges([0, 1, 5, 6], 2) == [(0, 2), (5, 7)]


def test_a_range_size_below_one_is_taken_as_one():
    assert plan_ranges([3, 4], 0) == [(3, 4), (4, 5)]
    assert plan_ranges([3, 4], -5) == [(3, 4), (4, 5)]
