"""The per-payout DynamoDB lease on its own, against moto: who gets a lock, when it is given back."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from chalicelib.adapters.locks import PayoutLocks, lock_key


@pytest.fixture
def locks(aws: dict[str, Any]) -> PayoutLocks:
    return PayoutLocks(aws["dynamodb"], aws["table"])


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def lock_item(aws: dict[str, Any], payout_id: str) -> dict[str, Any] | None:
    return aws["dynamodb"].get_item(TableName=aws["table"], Key={"id": {"S": lock_key(payout_id)}}).get("Item")


def test_free_payouts_are_all_locked_by_one_owner(aws, locks):
    payouts = ids(10)
    acquired, held = locks.acquire(payouts, "worker-a", 60)
    assert (acquired, held) == (payouts, [])
    assert {lock_item(aws, p)["owner"]["S"] for p in payouts} == {"worker-a"}


def test_a_live_lease_is_held_and_only_the_free_payouts_are_taken(aws, locks):
    taken, free = ids(3), ids(4)
    locks.acquire(taken, "worker-a", 60)
    acquired, held = locks.acquire(free[:2] + taken + free[2:], "worker-b", 60)
    assert acquired == free[:2] + free[2:]
    assert sorted(held) == sorted(taken)
    assert {lock_item(aws, p)["owner"]["S"] for p in taken} == {"worker-a"}
    assert {lock_item(aws, p)["owner"]["S"] for p in free} == {"worker-b"}


def test_an_expired_lease_is_taken_over(aws, locks):
    dead, live = ids(1), ids(1)
    locks.acquire(dead, "crashed-worker", 0.01)
    locks.acquire(live, "busy-worker", 60)
    time.sleep(0.05)
    acquired, held = locks.acquire(dead + live, "worker-b", 60)
    assert (acquired, held) == (dead, live)
    assert lock_item(aws, dead[0])["owner"]["S"] == "worker-b"


def test_a_released_lock_is_free_again_but_only_its_owner_releases_it(aws, locks):
    payout = ids(1)
    locks.acquire(payout, "worker-a", 60)
    locks.release(payout[0], "worker-b")  # not the owner: nothing happens
    assert locks.acquire(payout, "worker-b", 60) == ([], payout)
    locks.release(payout[0], "worker-a")
    assert lock_item(aws, payout[0]) is None
    assert locks.acquire(payout, "worker-b", 60) == (payout, [])


def test_a_payout_named_twice_in_one_batch_is_locked_once(locks):
    payout = ids(1)
    assert locks.acquire(payout + payout, "worker-a", 60) == (payout, [])


def test_when_every_lease_is_live_nothing_is_acquired(locks):
    payouts = ids(5)
    locks.acquire(payouts, "worker-a", 60)
    assert locks.acquire(payouts, "worker-b", 60) == ([], payouts)
