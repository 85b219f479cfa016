"""settle_messages on fakes of its ports: which messages come back, when, whole or split; no socket.

A group message carries several payouts; every payout must still come back on its own backoff,
its own reason and the receives its message had, as if it had always had a message of its own.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from chalicelib.domain.errors import ProviderThrottled, ProviderTransientError, Unavailable
from chalicelib.domain.payout_messages import PayoutMessage, decode
from chalicelib.services.settle_messages import Malformed, Policy, Ports, Received, Report, settle_messages
from tests.fakes import FakeDeadLetters, FakeRepository
from tests.fakes_settlement import (
    FakeAsyncProvider,
    FakeInlineProvider,
    FakeSettlementStatements,
    FakeTransitions,
    submit_on_fakes,
)

_E2E = itertools.count()
POLICY = Policy(
    max_provider_attempts=5,
    retry_base_seconds=2,
    retry_max_seconds=300,
    infra_retry_max_seconds=120,
    in_progress_retry_seconds=5,
    max_receive_count=100,
)


class FakeLocks:
    def __init__(self) -> None:
        self.held_by_others: set[str] = set()
        self.down = False
        self.released: list[str] = []
        self.calls: list[list[str]] = []

    def acquire(self, payout_ids: Sequence[str], owner: str, lease_seconds: float) -> tuple[list[str], list[str]]:
        if self.down:
            raise Unavailable("the lock table is unavailable")
        self.calls.append(list(payout_ids))
        return [p for p in payout_ids if p not in self.held_by_others], [
            p for p in payout_ids if p in self.held_by_others
        ]

    def release(self, payout_id: str, owner: str) -> None:
        self.released.append(payout_id)


class FakeComebacks:
    """The payouts queue as settlement answers it: delays, renewals and one-payout messages sent."""

    def __init__(self) -> None:
        self.delays: dict[str, int] = {}  # receipt handle -> seconds
        self.renewed: list[tuple[tuple[str, ...], int, int]] = []
        self.singles: list[tuple[str, int, int]] = []
        self.refuse_sends = False

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays[receipt_handle] = seconds

    def renew(self, payout_ids: Sequence[str], retries: int, delay_seconds: int) -> None:
        self.renewed.append((tuple(payout_ids), retries, delay_seconds))

    def send_each(self, comebacks: Sequence[tuple[str, int, int]]) -> list[str]:
        if self.refuse_sends:
            return [p for p, _, _ in comebacks]
        self.singles += comebacks
        return []


@dataclass
class World:
    provider: FakeInlineProvider | FakeAsyncProvider = field(default_factory=FakeInlineProvider)
    repo: FakeRepository = field(default_factory=FakeRepository)

    def __post_init__(self) -> None:
        self.statements = FakeSettlementStatements(self.repo)
        self.locks = FakeLocks()
        self.queue = FakeComebacks()
        self.dead_letters = FakeDeadLetters()

    def submit(self, n: int) -> list[str]:
        return submit_on_fakes(self.repo, n)

    def settle(self, *messages: Received | Malformed, policy: Policy = POLICY, deadline: float | None = None) -> Report:
        ports = Ports(
            locks=self.locks,
            statements=self.statements,
            transitions=FakeTransitions(self.repo),
            provider=self.provider,
            queue=self.queue,
            dead_letters=self.dead_letters,
        )
        return settle_messages(messages, ports, policy, owner="me", lease_seconds=10, deadline=deadline)

    def status(self, payout_id: str) -> str:
        return str(self.repo.tables.payouts[payout_id]["status"])


def group(*payout_ids: str, receives: int = 1, retries: int = 0, handle: str = "rh") -> Received:
    return Received(f"m-{handle}", handle, receives, PayoutMessage(tuple(payout_ids), retries))


def test_a_group_whose_payouts_all_settle_is_deleted_and_nothing_comes_back() -> None:
    w = World()
    ids = w.submit(10)
    report = w.settle(group(*ids))
    assert report.failed_messages == [] and report.split == 0
    assert [w.status(p) for p in ids] == ["Completed"] * 10
    assert w.provider.payments == dict.fromkeys(ids, 1)
    assert w.queue.delays == {} and w.queue.singles == [] and w.queue.renewed == []
    assert w.locks.calls == [ids]  # one lock call for the whole group


def test_a_payout_of_a_group_that_must_be_retried_leaves_it_as_a_message_of_its_own() -> None:
    w = World()
    ids = w.submit(4)
    w.provider.answer(ids[2], ProviderTransientError("AB03 try later", provider_code="AB03"))
    report = w.settle(group(*ids, receives=3, retries=4))
    assert report.failed_messages == []  # the group is deleted ...
    assert report.split == 1
    [(payout_id, retries, seconds)] = w.queue.singles  # ... and the retried payout goes on alone
    assert payout_id == ids[2]
    assert retries == 7  # the group's receives plus what it carried
    assert 1 <= seconds <= 2  # the backoff of its first failed provider attempt (base 2 s, equal jitter)
    assert [w.status(p) for p in ids] == ["Completed", "Completed", "Processing", "Completed"]
    assert w.provider.payments == {ids[0]: 1, ids[1]: 1, ids[3]: 1}
    assert w.locks.released == [ids[2]]


def test_split_payouts_come_back_each_after_its_own_time() -> None:
    w = World(provider=FakeAsyncProvider())
    ids = w.submit(3)
    w.provider.answer(ids[0], ProviderThrottled("slow down", retry_after_seconds=30))
    w.provider.answer(ids[1], ProviderTransientError("AB03", provider_code="AB03"))
    w.settle(group(*ids))
    delays = {p: s for p, _, s in w.queue.singles}
    assert set(delays) == {ids[0], ids[1]}
    assert delays[ids[0]] >= 30  # never before the provider's Retry-After
    assert delays[ids[1]] <= 2
    assert w.status(ids[2]) == "Processing"  # accepted, awaiting its confirmation: no message needed


def test_a_group_whose_payouts_all_meet_our_own_fault_comes_back_whole() -> None:
    w = World()
    ids = w.submit(5)
    w.locks.down = True
    report = w.settle(group(*ids, receives=2, handle="rh-1"))
    assert report.failed_messages == ["m-rh-1"]
    assert w.queue.singles == [] and w.queue.renewed == []
    assert 1 <= w.queue.delays["rh-1"] <= 4  # the infrastructure backoff of its second receive
    assert w.provider.sends == []  # fail closed: no provider call without the lock


def test_a_group_whose_payouts_are_all_locked_elsewhere_comes_back_whole_a_few_seconds_later() -> None:
    w = World()
    ids = w.submit(3)
    w.locks.held_by_others = set(ids)
    report = w.settle(group(*ids))
    assert report.failed_messages == ["m-rh"] and w.queue.delays == {"rh": 5}
    assert w.queue.singles == [] and w.provider.sends == []


def test_a_group_past_half_its_receives_is_renewed_whole_instead_of_delayed() -> None:
    w = World()
    ids = w.submit(2)
    w.statements.down = True
    report = w.settle(group(*ids, receives=50, retries=10))
    assert report.failed_messages == []  # the old message is deleted
    [(renewed, retries, _)] = w.queue.renewed
    assert renewed == tuple(ids) and retries == 60


def test_a_split_the_queue_refuses_brings_the_whole_group_back_at_the_earliest_time() -> None:
    w = World()
    ids = w.submit(3)
    w.provider.answer(ids[1], ProviderTransientError("AB03", provider_code="AB03"))
    w.queue.refuse_sends = True
    report = w.settle(group(*ids))
    assert report.failed_messages == ["m-rh"]
    assert 1 <= w.queue.delays["rh"] <= 2
    again = World(repo=w.repo, provider=w.provider)
    again.settle(group(*ids, receives=2))  # the whole group comes back: the settled payouts are no-ops
    assert w.provider.payments == dict.fromkeys(ids, 1)


def test_a_single_payout_message_comes_back_as_itself() -> None:
    w = World()
    [p] = w.submit(1)
    w.provider.answer(p, ProviderTransientError("AB03", provider_code="AB03"))
    report = w.settle(group(p))
    assert report.failed_messages == ["m-rh"] and report.split == 0
    assert w.queue.singles == [] and 1 <= w.queue.delays["rh"] <= 2


def test_a_payout_named_by_two_messages_is_locked_and_paid_once() -> None:
    w = World()
    ids = w.submit(3)
    report = w.settle(group(*ids, handle="a"), group(ids[1], handle="b"))
    assert report.failed_messages == []
    assert w.locks.calls == [ids]
    assert w.provider.payments == dict.fromkeys(ids, 1)


def test_a_malformed_message_goes_to_the_dead_letter_queue_and_the_rest_settle() -> None:
    w = World()
    [p] = w.submit(1)
    report = w.settle(Malformed("m-bad", '{"payout_id": "nope"}'), group(p))
    assert report.failed_messages == []
    assert w.dead_letters.bodies == ['{"payout_id": "nope"}']
    assert w.status(p) == "Completed"


def test_past_the_deadline_only_the_first_wave_is_sent_and_the_rest_come_back_with_nothing_spent() -> None:
    w = World(provider=FakeAsyncProvider())
    ids = w.submit(5)
    policy = dataclasses.replace(POLICY, provider_concurrency=2, provider_call_seconds=7)
    w.settle(group(*ids), policy=policy, deadline=time.monotonic() + 1)  # no whole call fits any more
    sent = {t.payout_id for t in w.provider.sends}
    assert sent == set(ids[:2])
    assert {p for p, _, _ in w.queue.singles} == set(ids[2:])
    for p in ids[2:]:
        assert w.repo.tables.payouts[p]["provider_failures"] == 0  # not an attempt the provider left unpaid
    w.queue.singles.clear()
    w.settle(*(group(p, handle=p) for p in ids[2:]), policy=policy)  # next time, in time: sent once each
    assert w.provider.payments == dict.fromkeys(ids, 1)


@pytest.mark.parametrize("per_message", [1, 10])
def test_the_body_a_split_payout_is_sent_with_names_it_alone(per_message: int) -> None:
    from chalicelib.domain.payout_messages import encode

    ids = [str(uuid.uuid4()) for _ in range(per_message)]
    assert decode(encode(ids, retries=3)) == PayoutMessage(tuple(ids), 3)
    assert decode(encode(ids[:1], retries=3)).payout_ids == (ids[0],)
