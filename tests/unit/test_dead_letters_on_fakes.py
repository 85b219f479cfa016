"""The dead-letter rule (services/recovery.py) on fakes: it decides from what it read, asks the provider
with no lock held, and writes only if the payout did not move meanwhile."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ProviderOutcomeUnknown, ProviderTransientError
from chalicelib.domain.payout_status import COMPLETED, NOT_SENT, RETRIES_EXHAUSTED, failed
from chalicelib.domain.provider import ExecutedTransfer
from chalicelib.services.recovery import StillInFlight, handle_dead_letter
from tests.fakes import FakePayoutQueue
from tests.fakes_settlement import LOSE_ANSWER, FakeInlineProvider
from tests.unit.test_settlement_on_fakes import World, retry


def dead_letter(w: World, payout_id: str, budget: int = 3) -> tuple[str, FakePayoutQueue]:
    queue = FakePayoutQueue()
    outcome = handle_dead_letter(
        w.repo, w.provider, queue, payout_id, lease_seconds=60, max_provider_attempts=budget, transitions=w.transitions
    )
    return outcome, queue


def test_a_payout_with_provider_attempts_left_goes_back_to_the_queue() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderTransientError("503", provider_code="HTTP503"))
    retry(w.settle(p)[p])
    outcome, queue = dead_letter(w, p)
    assert (outcome, queue.sent) == ("returned", [p])
    assert w.state(p) == NOT_SENT and w.repo.tables.history[-1] == (p, "returned")


def test_a_payout_whose_budget_is_spent_fails_with_the_last_error() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderOutcomeUnknown("read timeout", provider_code="TIMEOUT"))
    retry(w.settle(p)[p])
    outcome, queue = dead_letter(w, p, budget=1)
    assert (outcome, queue.sent) == ("failed", [])
    assert w.state(p) == failed(RETRIES_EXHAUSTED)
    assert w.row(p)["failure_message"] == "gave up after 1 failed provider attempt(s); last error: TIMEOUT read timeout"


def test_a_payout_the_provider_paid_is_completed_even_with_its_budget_spent() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, LOSE_ANSWER)
    retry(w.settle(p)[p])
    assert dead_letter(w, p, budget=1)[0] == "recovered"
    assert w.state(p) == COMPLETED and w.provider.payments == {p: 1}


def test_an_attempt_that_may_still_run_is_not_decided_and_the_provider_is_not_asked() -> None:
    w = World()
    [p] = w.submit()
    w.statements.start_attempts([p])
    w.row(p)["recent"] = True  # claimed within the lease, and no end recorded
    with pytest.raises(StillInFlight):
        dead_letter(w, p)
    assert w.provider.asks == [] and w.state(p) == NOT_SENT


class StartsAnAttemptWhileAsked(FakeInlineProvider):
    """While the rule asks, a settle worker claims the payout and pays it."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def find(self, end_to_end_id: str) -> ExecutedTransfer | None:
        answer = super().find(end_to_end_id)  # nothing yet
        [p] = [pid for pid, row in self.world.repo.tables.payouts.items() if row["end_to_end_id"] == end_to_end_id]
        self.world.statements.start_attempts([p])
        self.send(self.world.transfer(p))
        return answer


def test_a_payout_that_moved_while_the_provider_was_asked_is_left_alone_and_decided_later() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderOutcomeUnknown("reset"))
    retry(w.settle(p, budget=1)[p])
    w.provider = StartsAnAttemptWhileAsked(w)
    with pytest.raises(StillInFlight):
        dead_letter(w, p, budget=1)
    assert w.row(p)["status"] != "Failed"  # the stale "nothing paid" never fails a payout that was just paid
    assert w.provider.payments == {p: 1}


def test_final_and_unknown_payouts_are_reported_as_such() -> None:
    w = World()
    [p] = w.submit()
    w.settle(p)
    assert dead_letter(w, p)[0] == "already_final"
    assert dead_letter(w, "9d1c4c7e-5d4a-4f0e-8a53-2f4b7d0c1e2a")[0] == "unknown_payout"
