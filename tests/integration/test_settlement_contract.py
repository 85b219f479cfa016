"""One contract for settlement's ports (SettlementStatements, the Transitions it records through, and
the dead-letter rule's RecoveryStatements), run against the in-memory fakes (tests/fakes.py,
tests/fakes_settlement.py) and against PostgreSQL.

The unit tests of settle_payouts run on the fakes; this is what makes their answers worth trusting.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.adapters.database import Database
from chalicelib.adapters.postgres import PayoutRepository
from chalicelib.adapters.transitions import Transitions
from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.dead_letter import DeadLetterOutcome
from chalicelib.domain.payout import Payout
from chalicelib.domain.payout_ids import new_payout_ids
from chalicelib.domain.payout_status import (
    AWAITING,
    COMPLETED,
    NOT_SENT,
    PENDING,
    RETRIES_EXHAUSTED,
    UNCERTAIN,
    PayoutEvent,
    PayoutStatus,
    Verdict,
    Word,
    failed,
)
from tests.fakes import FakeRepository
from tests.fakes_settlement import FakeSettlementStatements, FakeTransitions, payout_of


def new_e2e_id() -> str:
    # Random, not counted: other modules count from 0 into the same session database.
    return f"E{uuid.uuid4().int % 10**31:031d}"


@dataclass
class Store:
    writes: Any  # BatchWrites, to put payouts there
    statements: Any  # SettlementStatements
    transitions: Any  # Transitions
    read: Callable[[str], Payout]
    recovery: Any  # RecoveryStatements: the dead-letter rule's statements

    def payouts(self, n: int = 1) -> list[str]:
        batch_id = f"sc-{uuid.uuid4().hex[:12]}"
        body = {
            "batch_id": batch_id,
            "items": [
                {
                    "external_id": f"{batch_id}-{i}",
                    "user_id": f"u{i}",
                    "amount_cents": 500 + i,
                    "pix_key": f"k{i}@x.com",
                }
                for i in range(n)
            ],
        }
        new = parse_batch_request(body).items
        ids = dict(zip((i.index for i in new), new_payout_ids(len(new)), strict=True))
        with self.writes.batch_writer() as tx:
            tx.insert_batch(batch_id, f"hash-{batch_id}", n)
            tx.insert_payouts(batch_id, new, ids, new_e2e_id)
            tx.insert_batch_items(batch_id, [(i.index, ids[i.index], False) for i in new])
        return [ids[i.index] for i in new]

    def say(self, payout_id: str, event: PayoutEvent, **fields: Any) -> None:
        [decision] = self.transitions.apply([Word(payout_id, event, "send", 1, **fields)])
        assert decision is not None and decision.moves

    def state(self, payout_id: str) -> object:
        return self.transitions.states([payout_id])[payout_id]


@pytest.fixture(params=["fake", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "fake":
        repo = FakeRepository()
        return Store(
            repo,
            FakeSettlementStatements(repo),
            FakeTransitions(repo),
            lambda p: payout_of(p, repo.tables.payouts[p]),
            repo,
        )
    db = Database(request.getfixturevalue("database_url"))
    pg = PayoutRepository(db)

    def read(payout_id: str) -> Payout:
        found = pg.get_payout(payout_id)
        assert found is not None
        return found

    return Store(pg, pg, Transitions(db), read, pg)


class TestStartAttempts:
    def test_open_payouts_move_to_processing_with_their_attempt_counted(self, store: Store) -> None:
        a, b = store.payouts(2)
        nobody = str(uuid.uuid4())
        started = store.statements.start_attempts([a, b, nobody])
        assert set(started) == {a, b}
        payout, previous = started[a]
        assert previous is PayoutStatus.PENDING
        assert (payout.status, payout.attempts, payout.provider_failures) == (PayoutStatus.PROCESSING, 1, 0)
        assert payout.state == NOT_SENT and payout.amount_cents == 500 and payout.batch_id == store.read(a).batch_id
        assert store.state(a) == NOT_SENT

    def test_a_second_claim_counts_again_and_keeps_the_providers_step(self, store: Store) -> None:
        [p] = store.payouts()
        store.statements.start_attempts([p])
        store.say(p, PayoutEvent.OUTCOME_UNKNOWN)
        payout, previous = store.statements.start_attempts([p])[p]
        assert (previous, payout.attempts, payout.state) == (PayoutStatus.PROCESSING, 2, UNCERTAIN)

    def test_final_and_awaiting_payouts_are_not_claimed(self, store: Store) -> None:
        done, rejected, awaiting = store.payouts(3)
        store.statements.start_attempts([done, rejected, awaiting])
        store.say(done, PayoutEvent.CONFIRMED)
        store.say(rejected, PayoutEvent.REJECTED, failure_code="AC03")
        store.say(awaiting, PayoutEvent.ACCEPTED)
        assert store.statements.start_attempts([done, rejected, awaiting]) == {}
        assert [store.state(p) for p in (done, rejected, awaiting)] == [COMPLETED, failed("AC03"), AWAITING]
        assert store.read(done).attempts == 1


class TestProviderFailures:
    def test_transient_failures_count_up_and_the_last_of_the_budget_fails_the_payout(self, store: Store) -> None:
        [p] = store.payouts()
        store.statements.start_attempts([p])
        answers = [
            store.statements.record_provider_failure(p, "attempt_failed", 1, "HTTP503", "down", 3) for _ in "abc"
        ]
        assert answers == [(1, False), (2, False), (3, True)]
        assert store.state(p) == failed(RETRIES_EXHAUSTED)
        assert store.read(p).failure_message == "gave up after 3 failed provider attempt(s); last error: HTTP503 down"
        assert store.statements.record_provider_failure(p, "attempt_failed", 1, None, "late", 3) == (0, False)

    def test_an_unknown_outcome_counts_but_never_fails_the_payout(self, store: Store) -> None:
        [p] = store.payouts()
        store.statements.start_attempts([p])
        store.say(p, PayoutEvent.OUTCOME_UNKNOWN)
        assert store.statements.record_provider_failure(p, "outcome_unknown", 1, None, "reset", 1) == (1, False)
        assert store.state(p) == UNCERTAIN
        payout, _ = store.statements.start_attempts([p])[p]
        assert payout.provider_failures == 1  # what the next claim reads to decide whether to ask

    def test_a_payout_not_processing_counts_nothing(self, store: Store) -> None:
        pending, done = store.payouts(2)
        store.statements.start_attempts([done])
        store.say(done, PayoutEvent.CONFIRMED)
        for p in (pending, done):
            assert store.statements.record_provider_failure(p, "attempt_failed", 1, None, "x", 1) == (0, False)
        assert store.state(pending) == PENDING and store.read(pending).provider_failures == 0


class TestTransitions:
    def test_words_are_decided_in_order_and_an_unknown_payout_has_no_decision(self, store: Store) -> None:
        [p] = store.payouts()
        store.statements.start_attempts([p])
        nobody = str(uuid.uuid4())
        words = [
            Word(p, PayoutEvent.CONFIRMED, "send", 1, provider="sandbox", send_id="s1", provider_status="PAID"),
            Word(p, PayoutEvent.REJECTED, "callback", failure_code="AC03"),  # contradicts Completed
            Word(nobody, PayoutEvent.CONFIRMED, "send", 1),
        ]
        first, late, unknown = store.transitions.apply(words)
        assert first.verdict is Verdict.MOVE and late.verdict is Verdict.REFUSE and unknown is None
        payout = store.read(p)
        assert (payout.state, payout.provider_send_id, payout.provider_status) == (COMPLETED, "s1", "PAID")

    def test_a_late_word_after_the_end_keeps_the_final_provider_status(self, store: Store) -> None:
        [p] = store.payouts()
        store.statements.start_attempts([p])
        store.say(p, PayoutEvent.CONFIRMED, provider_status="REALIZADO", end_to_end_id="E-provider")
        [late] = store.transitions.apply([Word(p, PayoutEvent.ACCEPTED, "poll", provider_status="EM_PROCESSAMENTO")])
        assert late.verdict is Verdict.STAY
        payout = store.read(p)
        assert (payout.provider_status, payout.provider_end_to_end_id) == ("REALIZADO", "E-provider")


class TestDeadLetterStatements:
    """What the dead-letter rule reads and writes (RecoveryStatements), on both stores."""

    def failed_once(self, store: Store) -> str:
        [p] = store.payouts()
        store.statements.start_attempts([p])
        store.say(p, PayoutEvent.OUTCOME_UNKNOWN)
        store.statements.record_provider_failure(p, "outcome_unknown", 1, "TIMEOUT", "read timeout", 3)
        return p

    def test_the_view_names_the_attempt_and_its_last_error(self, store: Store) -> None:
        p = self.failed_once(store)
        view = store.recovery.dead_letter_view(p, 0)
        assert (view.status, view.attempts, view.provider_failures) == (PayoutStatus.PROCESSING, 1, 1)
        assert view.end_to_end_id == store.read(p).end_to_end_id
        assert view.last_error() == ("TIMEOUT", "read timeout") and not view.in_flight and not view.final
        assert store.recovery.dead_letter_view(str(uuid.uuid4()), 0) is None

    def test_an_outcome_is_written_when_nothing_moved_since_the_view(self, store: Store) -> None:
        p = self.failed_once(store)
        view = store.recovery.dead_letter_view(p, 0)
        assert store.recovery.close_dead_letter(p, view, DeadLetterOutcome.FAILED, 0)
        payout = store.read(p)
        assert payout.state == failed(RETRIES_EXHAUSTED)
        assert payout.failure_message == "gave up after 1 failed provider attempt(s); last error: TIMEOUT read timeout"
        done = self.failed_once(store)
        assert store.recovery.close_dead_letter(
            done, store.recovery.dead_letter_view(done, 0), DeadLetterOutcome.RECOVERED, 0
        )
        assert store.state(done) == COMPLETED

    def test_a_returned_payout_stays_as_it_is(self, store: Store) -> None:
        p = self.failed_once(store)
        assert store.recovery.close_dead_letter(p, store.recovery.dead_letter_view(p, 0), DeadLetterOutcome.RETURNED, 0)
        assert store.state(p) == UNCERTAIN and store.read(p).provider_failures == 1

    @pytest.mark.parametrize("move", ["new attempt", "provider word"])
    def test_nothing_is_written_when_the_payout_moved_after_the_view(self, store: Store, move: str) -> None:
        p = self.failed_once(store)
        view = store.recovery.dead_letter_view(p, 0)
        if move == "new attempt":
            store.statements.start_attempts([p])
        else:
            store.say(p, PayoutEvent.CONFIRMED)
        assert not store.recovery.close_dead_letter(p, view, DeadLetterOutcome.FAILED, 0)
        assert store.read(p).status is not PayoutStatus.FAILED
