"""The fan-out use case (services/fanout.py) on in-memory fakes of its ports (tests/fakes_fanout.py): batches are
submitted through submit_batch on the fake repository, whose outbox records the fake outbox leases. No sockets."""

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
from chalicelib.services.fanout import PROGRESS_EVERY, NotSent, StillLeased, enqueue_range, fan_out, plan_ranges
from chalicelib.services.ports import SQS_BATCH
from tests.fakes import FakeFanoutQueue, FakePayoutQueue, FakeRepository
from tests.fakes_fanout import Died, FakeClock, FakeOutboxTable, FaultyPayoutQueue

LEASE = 60.0
GRACE = 30
# Items between two progress records, and a batch long enough to record progress twice on the way.
INTERVAL = PROGRESS_EVERY * SQS_BATCH
LONG = 2 * INTERVAL + 100

_E2E = itertools.count()


def new_e2e_id() -> str:
    return f"E2E{next(_E2E):029d}"


def items(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"external_id": f"{prefix}-{i}", "user_id": f"u{i}", "amount_cents": 100 + i, "pix_key": f"u{i}@email.com"}
        for i in range(n)
    ]


@dataclass
class World:
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

    def run(self, queue: FakePayoutQueue, outbox_id: int, owner: str = "worker") -> dict[str, Any]:
        return enqueue_range(self.outbox, queue, outbox_id, owner, LEASE)


@pytest.fixture
def world() -> World:
    return World()


# --- one range, then a batch ----------------------------------------------------------------------


def test_a_range_sends_one_message_per_payout_and_marks_its_record_done(world):
    ids, [outbox_id] = world.submit(items(25, "one"), range_items=100)
    queue = FaultyPayoutQueue()
    batch_id = world.record(outbox_id)["batch_id"]
    assert world.run(queue, outbox_id) == {"outbox_id": outbox_id, "batch_id": batch_id, "outcome": "sent", "sent": 25}
    assert queue.sent == ids
    assert [len(c) for c in queue.chunks] == [10, 10, 5]
    record = world.record(outbox_id)
    assert (record["done"], record["progress"], record["lease_owner"], record["lease_until"]) == (True, 25, None, None)


def test_every_range_of_a_batch_is_sent_once_and_every_payout_exactly_once(world):
    ids, outbox_ids = world.submit(items(45, "batch"), range_items=20)
    assert world.wakeups.woken == [outbox_ids] and len(outbox_ids) == 3  # the POST's one wake-up
    queue = FaultyPayoutQueue()
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
    queue = FaultyPayoutQueue()
    assert world.run(queue, outbox_id)["sent"] == 4
    assert queue.sent == [ids[1], ids[2], ids[4], ids[5]]
    assert not set(queue.sent) & set(earlier)


def test_a_record_already_done_is_a_no_op(world):
    _, [outbox_id] = world.submit(items(5, "done"), range_items=100)
    world.run(FaultyPayoutQueue(), outbox_id)
    queue = FaultyPayoutQueue()
    assert world.run(queue, outbox_id, "late") == {"outbox_id": outbox_id, "outcome": "done", "sent": 0}
    assert queue.chunks == [] and world.record(outbox_id)["lease_owner"] is None


def test_a_record_that_does_not_exist_sends_nothing_and_says_missing(world):
    queue = FaultyPayoutQueue()
    assert world.run(queue, 404) == {"outbox_id": 404, "outcome": "missing", "sent": 0}
    assert queue.chunks == []


def test_a_record_of_another_kind_is_refused_before_anything_is_sent(world):
    outbox_id = world.outbox.add("webhook.event", "some-batch", 0, 10)
    queue = FaultyPayoutQueue()
    with pytest.raises(ValueError, match=r"webhook\.event"):
        world.run(queue, outbox_id)
    assert queue.chunks == []


# --- fan_out: the first record here, the others woken ----------------------------------------------


def test_fan_out_wakes_every_record_but_the_first_and_sends_the_first(world):
    ids, outbox_ids = world.submit(items(45, "wake"), range_items=20)
    world.wakeups.woken.clear()
    queue = FaultyPayoutQueue()
    result = fan_out(world.outbox, queue, world.wakeups, outbox_ids, "w", LEASE)
    assert world.wakeups.woken == [[outbox_ids[1]], [outbox_ids[2]]]  # one wake-up each, an invocation each
    assert result["outbox_id"] == outbox_ids[0] and queue.sent == ids[:20]
    assert [world.record(i)["done"] for i in outbox_ids] == [True, False, False]
    assert [world.record(i)["lease_owner"] for i in outbox_ids[1:]] == [None, None]  # free for their own wake-ups


def test_a_single_record_wakes_nothing(world):
    _, [outbox_id] = world.submit(items(5, "single"), range_items=20)
    world.wakeups.woken.clear()
    fan_out(world.outbox, FaultyPayoutQueue(), world.wakeups, [outbox_id], "w", LEASE)
    assert world.wakeups.woken == []


def test_siblings_that_cannot_be_woken_are_left_to_the_sweeper_and_the_first_still_goes_out():
    world = World(wakeups=FakeFanoutQueue(down=True))
    ids, outbox_ids = world.submit(items(45, "down"), range_items=20)
    queue = FaultyPayoutQueue()
    assert fan_out(world.outbox, queue, world.wakeups, outbox_ids, "w", LEASE)["sent"] == 20
    assert queue.sent == ids[:20]
    assert world.outbox.due("enqueue_payouts", GRACE, 10) == []  # their POST's grace is not over
    world.clock.advance(GRACE)
    assert world.outbox.due("enqueue_payouts", GRACE, 10) == outbox_ids[1:]


# --- dying, resuming, two workers -----------------------------------------------------------------


def test_a_fan_out_that_dies_part_way_resumes_from_its_recorded_progress_and_together_they_send_every_payout(world):
    ids, [outbox_id] = world.submit(items(LONG, "die"), range_items=LONG)
    died_after = PROGRESS_EVERY + 12  # chunks: progress was recorded after chunk PROGRESS_EVERY
    dying = FaultyPayoutQueue(die_after=died_after)
    with pytest.raises(Died):
        world.run(dying, outbox_id, "dead")
    assert world.record(outbox_id)["progress"] == INTERVAL
    world.clock.advance(LEASE + 1)  # the dead invocation's lease runs out
    resumed = FaultyPayoutQueue()
    result = world.run(resumed, outbox_id, "next")
    assert result["outcome"] == "sent" and result["sent"] == LONG - INTERVAL
    assert resumed.sent == ids[INTERVAL:]
    sent = Counter(dying.sent + resumed.sent)
    assert set(sent) == set(ids)
    twice = [pid for pid, n in sent.items() if n == 2]
    assert twice == ids[INTERVAL : died_after * SQS_BATCH]  # what went out after the last progress record
    assert len(twice) < INTERVAL and max(sent.values()) == 2


def test_a_second_invocation_while_the_lease_runs_is_told_how_long_the_lease_has_left(world):
    _, [outbox_id] = world.submit(items(30, "leased"), range_items=100)
    claim = world.outbox.claim(outbox_id, "first", LEASE)
    assert isinstance(claim, Claimed)
    world.clock.advance(20)
    queue = FaultyPayoutQueue()
    with pytest.raises(StillLeased) as held:
        world.run(queue, outbox_id, "second")
    assert held.value.seconds == LEASE - 20
    assert queue.chunks == [] and world.record(outbox_id)["lease_owner"] == "first"


def test_a_worker_that_lost_its_lease_stops_at_its_next_progress_record(world):
    ids, [outbox_id] = world.submit(items(LONG, "lost"), range_items=LONG)
    other = FaultyPayoutQueue()
    results = {}

    def stall_then_another_worker_takes_over(number: int) -> None:
        if number == 3:
            world.clock.advance(LEASE + 1)
            results["other"] = world.run(other, outbox_id, "other")

    late = FaultyPayoutQueue(before_chunk=stall_then_another_worker_takes_over)
    result = world.run(late, outbox_id, "late")
    assert result["outcome"] == "lease_lost" and result["sent"] == INTERVAL
    assert len(late.chunks) == PROGRESS_EVERY and late.closed_early == 1  # no chunk after the progress record
    assert results["other"]["outcome"] == "sent" and other.sent == ids
    assert world.record(outbox_id)["done"] and world.record(outbox_id)["progress"] == LONG


def test_a_worker_whose_lease_was_taken_before_it_finished_says_lease_lost_and_leaves_the_record_to_the_other(world):
    _, [outbox_id] = world.submit(items(20, "taken"), range_items=100)  # two chunks: no progress record on the way

    def another_worker_claims(number: int) -> None:
        if number == 2:
            world.clock.advance(LEASE + 1)
            assert isinstance(world.outbox.claim(outbox_id, "other", LEASE), Claimed)

    result = world.run(FaultyPayoutQueue(before_chunk=another_worker_claims), outbox_id, "late")
    assert result["outcome"] == "lease_lost" and result["sent"] == 20
    record = world.record(outbox_id)
    assert not record["done"] and record["lease_owner"] == "other"


def test_a_worker_whose_lease_ran_out_but_was_not_taken_carries_on_and_finishes(world):
    ids, [outbox_id] = world.submit(items(LONG, "slow"), range_items=LONG)

    def stall(number: int) -> None:
        if number == 3:
            world.clock.advance(LEASE + 1)

    queue = FaultyPayoutQueue(before_chunk=stall)
    assert world.run(queue, outbox_id, "slow")["outcome"] == "sent"
    assert queue.sent == ids and world.record(outbox_id)["done"]


# --- SQS refusing messages --------------------------------------------------------------------------


def test_sqs_refusing_some_messages_releases_the_record_at_the_progress_before_them_and_raises_not_sent(world):
    ids, [outbox_id] = world.submit(items(LONG, "refused"), range_items=LONG)
    bad = PROGRESS_EVERY + 5  # a chunk after the first progress record
    refusing = FaultyPayoutQueue(refuse={bad: 3})
    with pytest.raises(NotSent, match=f"from item {(bad - 1) * SQS_BATCH} on"):
        world.run(refusing, outbox_id, "first")
    record = world.record(outbox_id)
    assert (record["progress"], record["lease_owner"], record["done"]) == ((bad - 1) * SQS_BATCH, None, False)
    assert record["last_error"] == "SQS refused 3 of 10 messages"
    assert len(refusing.chunks) == bad and refusing.closed_early == 1  # nothing asked for after the refusal
    # Free at once, and due for the sweeper at once (within the POST's grace).
    assert world.outbox.due("enqueue_payouts", GRACE, 10) == [outbox_id]
    retry = FaultyPayoutQueue()
    assert world.run(retry, outbox_id, "retry")["sent"] == LONG - (bad - 1) * SQS_BATCH
    sent = Counter(refusing.sent + retry.sent)
    assert set(sent) == set(ids)
    assert [pid for pid, n in sent.items() if n == 2] == ids[(bad - 1) * SQS_BATCH : bad * SQS_BATCH - 3]


def test_a_queue_down_from_the_first_chunk_sends_nothing_and_keeps_the_records_progress(world):
    _, [outbox_id] = world.submit(items(30, "down"), range_items=100)
    with pytest.raises(NotSent, match="from item 0 on"):
        world.run(FaultyPayoutQueue(down_from=1), outbox_id, "first")
    record = world.record(outbox_id)
    assert (record["progress"], record["lease_owner"]) == (0, None)


def test_a_refusal_after_a_resume_keeps_the_progress_the_dead_invocation_recorded(world):
    _, [outbox_id] = world.submit(items(LONG, "resume"), range_items=LONG)
    with pytest.raises(Died):
        world.run(FaultyPayoutQueue(die_after=PROGRESS_EVERY + 1), outbox_id, "dead")
    world.clock.advance(LEASE + 1)
    with pytest.raises(NotSent, match=f"from item {INTERVAL} on"):
        world.run(FaultyPayoutQueue(down_from=1), outbox_id, "next")
    assert world.record(outbox_id)["progress"] == INTERVAL


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
