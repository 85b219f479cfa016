"""settle_payouts on in-memory fakes of its ports (tests/fakes_settlement.py): no database, no provider, no socket.

The fakes decide with the domain's state machine and their providers never deduplicate, so every
test also checks the one thing that must never happen: the money moving twice for one payout.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.domain.errors import (
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderThrottled,
    ProviderTransientError,
    Unavailable,
)
from chalicelib.domain.payout_status import (
    AWAITING,
    COMPLETED,
    NOT_SENT,
    RETRIES_EXHAUSTED,
    UNCERTAIN,
    PayoutState,
    failed,
)
from chalicelib.domain.provider import Transfer
from chalicelib.domain.send_id import send_id_for
from chalicelib.services.settlement import RetryLater, Settled, UnknownPayout, settle_payouts
from tests.fakes import FakeRepository
from tests.fakes_settlement import (
    LOSE_ANSWER,
    FakeAsyncProvider,
    FakeInlineProvider,
    FakeSettlementStatements,
    FakeTransitions,
    submit_on_fakes,
)

_E2E = itertools.count()
BUDGET = 3


@dataclass
class World:
    provider: FakeInlineProvider | FakeAsyncProvider = field(default_factory=FakeInlineProvider)
    repo: FakeRepository = field(default_factory=FakeRepository)

    def __post_init__(self) -> None:
        self.statements = FakeSettlementStatements(self.repo)
        self.transitions = FakeTransitions(self.repo)

    def submit(self, n: int = 1) -> list[str]:
        return submit_on_fakes(self.repo, n)

    def settle(self, *payout_ids: str, budget: int = BUDGET) -> dict[str, object]:
        name = "efi" if isinstance(self.provider, FakeAsyncProvider) else "sandbox"
        return dict(
            settle_payouts(self.statements, self.transitions, self.provider, payout_ids, budget, provider_name=name)
        )

    def state(self, payout_id: str) -> PayoutState:
        return self.transitions.states([payout_id])[payout_id]

    def row(self, payout_id: str) -> dict[str, Any]:
        return self.repo.tables.payouts[payout_id]

    def e2e(self, payout_id: str) -> str:
        return str(self.row(payout_id)["end_to_end_id"])

    def transfer(self, payout_id: str) -> Transfer:
        row = self.row(payout_id)
        return Transfer(self.e2e(payout_id), payout_id, row["amount_cents"], row["pix_key_type"], row["pix_key"])


def retry(outcome: object) -> RetryLater:
    assert isinstance(outcome, RetryLater), outcome
    return outcome


# --- send ---------------------------------------------------------------------------------------------


def test_a_pending_payout_is_sent_once_and_completed() -> None:
    w = World()
    [p] = w.submit()
    assert w.settle(p) == {p: Settled(p, "completed", 1)}
    assert w.state(p) == COMPLETED
    assert w.provider.payments == {p: 1} and w.provider.asks == []
    assert w.row(p)["provider_status"] == "PAID" and w.row(p)["provider_end_to_end_id"] == w.e2e(p)


def test_a_batch_settles_each_payout_once() -> None:
    w = World()
    ids = w.submit(5)
    assert {getattr(o, "outcome", o) for o in w.settle(*ids).values()} == {"completed"}
    assert w.provider.payments == dict.fromkeys(ids, 1)


def test_a_completed_payout_is_never_sent_again() -> None:
    w = World()
    [p] = w.submit()
    w.settle(p)
    assert w.settle(p) == {p: Settled(p, "already_final")}
    assert w.provider.payments == {p: 1} and len(w.provider.sends) == 1


# --- ask before re-sending ---------------------------------------------------------------------------


def test_a_send_whose_answer_was_lost_is_asked_about_and_found_paid_not_sent_again() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, LOSE_ANSWER)
    assert retry(w.settle(p)[p]).failures == 1
    assert w.state(p) == UNCERTAIN and w.row(p)["provider_failures"] == 1
    assert w.settle(p) == {p: Settled(p, "recovered", 2)}
    assert w.state(p) == COMPLETED
    assert w.provider.payments == {p: 1} and len(w.provider.sends) == 1 and w.provider.asks == [w.e2e(p)]


def test_an_unknown_outcome_the_provider_never_received_is_sent_again_after_asking() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderOutcomeUnknown("read timeout"))
    retry(w.settle(p)[p])
    assert w.settle(p) == {p: Settled(p, "completed", 2)}
    assert w.provider.asks == [w.e2e(p)] and len(w.provider.sends) == 2 and w.provider.payments == {p: 1}


def test_a_claim_whose_worker_died_after_paying_is_found_paid_by_the_next() -> None:
    w = World()
    [p] = w.submit()
    w.statements.start_attempts([p])  # a worker claims it ...
    w.provider.send(w.transfer(p))  # ... the money moves, and the worker dies before recording it
    assert w.settle(p) == {p: Settled(p, "recovered", 2)}
    assert w.provider.payments == {p: 1}


def test_a_claim_whose_worker_died_before_sending_is_asked_about_then_sent() -> None:
    w = World()
    [p] = w.submit()
    w.statements.start_attempts([p])
    assert w.settle(p) == {p: Settled(p, "completed", 2)}
    assert w.provider.asks == [w.e2e(p)] and w.provider.payments == {p: 1}


def test_an_ask_that_fails_sends_nothing_and_keeps_the_providers_retry_after() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderOutcomeUnknown("reset"))
    retry(w.settle(p)[p])
    w.provider.ask_errors[w.e2e(p)] = [ProviderTransientError("503"), ProviderThrottled("slow down", 40)]
    first = retry(w.settle(p)[p])
    assert (first.failures, first.retry_after) == (1, None)
    assert retry(w.settle(p)[p]).retry_after == 40
    assert len(w.provider.sends) == 1 and w.state(p) == UNCERTAIN
    assert w.settle(p) == {p: Settled(p, "completed", 4)}
    assert w.provider.payments == {p: 1}


# --- the provider's answers -----------------------------------------------------------------------------


def test_a_rejected_payout_fails_with_the_providers_code_and_spends_no_budget() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderRejected("closed account", provider_code="AC04"))
    assert w.settle(p) == {p: Settled(p, "failed", 1)}
    assert w.state(p) == failed("AC04")
    assert w.row(p)["failure_message"] == "closed account" and w.row(p)["provider_failures"] == 0
    assert w.settle(p) == {p: Settled(p, "already_final")} and w.provider.payments == {}


def test_a_transient_error_comes_back_later_with_one_failure_counted() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderTransientError("bad gateway", provider_code="HTTP502"))
    later = retry(w.settle(p)[p])
    assert (later.failures, later.retry_after) == (1, None)
    assert w.state(p) == NOT_SENT and w.row(p)["provider_failures"] == 1 and w.provider.payments == {}
    assert w.settle(p) == {p: Settled(p, "completed", 2)}
    assert w.provider.payments == {p: 1}


def test_transient_errors_that_spend_the_budget_fail_the_payout_for_good() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, *[ProviderTransientError("503") for _ in range(2)])
    assert retry(w.settle(p, budget=2)[p]).failures == 1
    assert w.settle(p, budget=2) == {p: Settled(p, "exhausted", 2)}
    assert w.state(p) == failed(RETRIES_EXHAUSTED)
    assert str(w.row(p)["failure_message"]).startswith("gave up after 2 failed provider attempt(s)")
    assert w.settle(p, budget=2) == {p: Settled(p, "already_final")}
    assert len(w.provider.sends) == 2 and w.provider.payments == {}


def test_unknown_outcomes_that_spend_the_budget_fail_only_once_the_provider_says_it_has_nothing() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderOutcomeUnknown("timeout"))
    assert retry(w.settle(p, budget=1)[p]).failures == 1  # an unknown outcome never fails by itself
    assert w.settle(p, budget=1) == {p: Settled(p, "exhausted", 2)}
    assert w.state(p) == failed(RETRIES_EXHAUSTED) and len(w.provider.sends) == 1


def test_a_payout_paid_behind_an_unknown_outcome_is_never_failed_for_its_budget() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, LOSE_ANSWER)
    retry(w.settle(p, budget=1)[p])
    assert w.settle(p, budget=1) == {p: Settled(p, "recovered", 2)}
    assert w.state(p) == COMPLETED and w.provider.payments == {p: 1}


def test_a_throttled_send_waits_as_the_provider_asks_and_spends_no_budget() -> None:
    w = World()
    [p] = w.submit()
    w.provider.answer(p, ProviderThrottled("too many requests", retry_after_seconds=30))
    later = retry(w.settle(p)[p])
    assert (later.failures, later.retry_after) == (1, 30)
    assert w.state(p) == NOT_SENT and w.row(p)["provider_failures"] == 0 and w.provider.payments == {}


# --- a provider that confirms later ---------------------------------------------------------------------


def test_an_accepted_send_awaits_confirmation_and_a_redelivered_message_sends_nothing() -> None:
    w = World(provider=FakeAsyncProvider())
    [p] = w.submit()
    assert w.settle(p) == {p: Settled(p, "accepted", 1)}
    assert w.state(p) == AWAITING
    assert w.row(p)["provider_send_id"] == send_id_for(p) and w.row(p)["provider_status"] == "EM_PROCESSAMENTO"
    assert w.settle(p) == {p: Settled(p, "awaiting")}
    assert len(w.provider.sends) == 1 and w.provider.payments == {p: 1}


def test_an_async_send_whose_answer_was_lost_is_asked_by_send_id_and_awaits_without_a_resend() -> None:
    w = World(provider=FakeAsyncProvider())
    [p] = w.submit()
    w.provider.answer(p, LOSE_ANSWER)
    retry(w.settle(p)[p])
    w.provider.confirm(p, "E00000000202601011200abcdefghijk")
    assert w.settle(p) == {p: Settled(p, "recovered", 2)}
    assert w.provider.asks == [send_id_for(p)] and len(w.provider.sends) == 1
    assert w.row(p)["provider_end_to_end_id"] == "E00000000202601011200abcdefghijk"


# --- what is not the provider's answer ------------------------------------------------------------------


def test_an_unknown_payout_is_reported_and_nothing_is_sent() -> None:
    w = World()
    nobody = str(uuid.uuid4())
    assert isinstance(w.settle(nobody)[nobody], UnknownPayout)
    assert w.provider.sends == []


def test_a_database_that_is_down_settles_nothing_and_spends_nothing() -> None:
    w = World()
    [p] = w.submit()
    w.statements.down = True
    with pytest.raises(Unavailable):
        w.settle(p)
    w.statements.down = False
    assert w.provider.sends == [] and w.row(p)["attempts"] == 0


def test_a_send_the_database_could_not_record_is_found_paid_next_time_not_sent_again() -> None:
    w = World()
    [p] = w.submit()
    w.transitions.down = True  # the money moves, then recording the answer fails
    with pytest.raises(Unavailable):
        w.settle(p)
    w.transitions.down = False
    assert w.state(p) == NOT_SENT and w.provider.payments == {p: 1}
    assert w.settle(p) == {p: Settled(p, "recovered", 2)}
    assert w.provider.payments == {p: 1} and len(w.provider.sends) == 1
