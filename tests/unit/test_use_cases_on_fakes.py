"""The submit and sweep use cases on in-memory fakes of their ports (tests/fakes.py): no database, no queue."""

from __future__ import annotations

import itertools
import uuid

import pytest

from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.errors import Busy, Conflict, ExternalIdTaken, WriteConflict
from chalicelib.domain.payout_status import PayoutStatus
from chalicelib.services.batches import FanoutPlan, submit_batch
from chalicelib.services.recovery import sweep
from tests.fakes import FakeDeadLetters, FakeFanoutQueue, FakeOutbox, FakePayoutQueue, FakeRepository

_E2E = itertools.count()


def new_e2e_id() -> str:
    return f"E2E{next(_E2E):029d}"


def batch(n: int = 3, *, amount: int = 1000, prefix: str | None = None) -> tuple[str, object]:
    batch_id = f"fake-{uuid.uuid4().hex[:12]}"
    prefix = prefix or batch_id
    items = [
        {"external_id": f"{prefix}-{i}", "user_id": f"u{i}", "amount_cents": amount + i, "pix_key": f"u{i}@email.com"}
        for i in range(n)
    ]
    return batch_id, {"batch_id": batch_id, "items": items}


def submit(repo: FakeRepository, body: object, wakeups: FakeFanoutQueue | None = None, range_items: int = 2):
    plan = FanoutPlan(wakeups=wakeups or FakeFanoutQueue(), range_items=range_items, grace_seconds=30)
    return submit_batch(repo, plan, parse_batch_request(body), new_e2e_id)


def test_a_new_batch_writes_its_payouts_and_outbox_ranges_and_wakes_the_fan_out_once():
    repo, wakeups = FakeRepository(), FakeFanoutQueue()
    batch_id, body = batch(5)
    submission = submit(repo, body, wakeups, range_items=2)
    assert submission.created and submission.duplicates == []
    assert len(set(submission.payout_ids)) == 5
    assert {p["status"] for p in repo.tables.payouts.values()} == {PayoutStatus.PENDING}
    assert [(o["start"], o["end"]) for o in repo.tables.outbox] == [(0, 2), (2, 4), (4, 5)]
    assert wakeups.woken == [[1, 2, 3]]
    assert repo.tables.events == [("batch.accepted", batch_id)]


def test_replaying_a_batch_returns_the_same_payout_ids_and_wakes_nothing():
    repo, wakeups = FakeRepository(), FakeFanoutQueue()
    _, body = batch(3)
    first = submit(repo, body, wakeups)
    again = submit(repo, body, wakeups)
    assert not again.created
    assert again.payout_ids == first.payout_ids
    assert len(repo.tables.payouts) == 3
    assert len(wakeups.woken) == 1


def test_the_same_batch_id_with_other_items_is_a_conflict_and_changes_nothing():
    repo = FakeRepository()
    batch_id, body = batch(2)
    submit(repo, body)
    _, other = batch(2, amount=5000)
    with pytest.raises(Conflict):
        submit(repo, {**other, "batch_id": batch_id})
    assert len(repo.tables.payouts) == 2


def test_an_external_id_seen_in_another_batch_becomes_a_duplicate_of_its_payout():
    repo = FakeRepository()
    _, body = batch(2, prefix="shared")
    first = submit(repo, body)
    _, again = batch(2, prefix="shared")
    second = submit(repo, again)
    assert second.created
    assert second.payout_ids == first.payout_ids
    assert [d["index"] for d in second.duplicates] == [0, 1]
    assert not repo.tables.outbox[1:]  # nothing new to pay: no second outbox record
    assert ("batch.completed", second.batch_id) in repo.tables.events


def test_a_lost_write_conflict_runs_the_submission_again():
    repo = FakeRepository()
    repo.fail_next = [WriteConflict("deadlock detected", "40P01"), WriteConflict("lock timeout", "55P03")]
    _, body = batch(2)
    submission = submit(repo, body)
    assert submission.created and repo.commits == 1
    assert len(repo.tables.payouts) == 2


def test_a_conflict_that_does_not_pass_is_answered_busy():
    repo = FakeRepository()
    repo.fail_next = [WriteConflict("deadlock detected", "40P01") for _ in range(10)]
    with pytest.raises(Busy):
        submit(repo, batch(1)[1])
    assert repo.tables.payouts == {}


def test_losing_an_external_id_race_replans_and_gives_up_after_three_rounds():
    repo = FakeRepository()
    repo.fail_next = [ExternalIdTaken("ext")]
    assert submit(repo, batch(1)[1]).created
    repo.fail_next = [ExternalIdTaken("ext") for _ in range(3)]
    with pytest.raises(ExternalIdTaken):
        submit(repo, batch(1)[1])


def test_a_batch_is_accepted_even_when_its_wake_up_cannot_be_sent():
    repo = FakeRepository()
    submission = submit(repo, batch(2)[1], FakeFanoutQueue(down=True))
    assert submission.created and len(repo.tables.outbox) == 1


def sweep_once(repo, queue, outbox, wakeups, dead_letters=None, lost_seconds=None):
    return sweep(
        repo,
        queue,
        outbox,
        wakeups,
        grace_seconds=30,
        stale_seconds=600,
        limit=100,
        dead_letters=dead_letters,
        lost_seconds=lost_seconds,
    )


def test_the_sweeper_rewakes_due_outbox_records_and_resends_stale_payouts_once():
    repo = FakeRepository()
    submission = submit(repo, batch(3)[1])
    for record in repo.tables.outbox:
        record["done"] = True
    repo.tables.payouts[submission.payout_ids[1]]["stale"] = True
    queue, wakeups = FakePayoutQueue(held=3), FakeFanoutQueue()
    report = sweep_once(repo, queue, FakeOutbox([7, 8]), wakeups)
    assert report["outbox_records"] == 2 and report["unwoken"] == 0
    assert wakeups.woken == [[7], [8]]
    assert queue.sent == [submission.payout_ids[1]]
    assert sweep_once(repo, queue, FakeOutbox(), wakeups)["stale_payouts"] == 0


def test_the_sweeper_counts_messages_missing_from_both_queues():
    repo = FakeRepository()
    submit(repo, batch(4)[1])
    for record in repo.tables.outbox:
        record["done"] = True
    # four open payouts, one message waiting and one dead letter: two are missing
    report = sweep_once(
        repo, FakePayoutQueue(held=1), FakeOutbox(), FakeFanoutQueue(), FakeDeadLetters(held=1), lost_seconds=60
    )
    assert report["missing"] == 2


def test_a_batch_still_fanning_out_has_no_missing_messages():
    repo = FakeRepository()
    submit(repo, batch(4)[1])
    report = sweep_once(repo, FakePayoutQueue(), FakeOutbox(), FakeFanoutQueue(), FakeDeadLetters(), lost_seconds=60)
    assert report["missing"] == 0
