"""The one guarded transition path on a real PostgreSQL: the SQL guards follow the domain's state machine."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from chalicelib.adapters.postgres import Database, PayoutRepository
from chalicelib.adapters.transitions import Transitions, Word, guard
from chalicelib.domain.payout_status import (
    AWAITING,
    COMPLETED,
    PayoutEvent,
    PayoutState,
    PayoutStatus,
    Verdict,
    decide,
    every_state,
)


@pytest.fixture
def batch_row(db: Any) -> str:
    batch_id = f"tr-{uuid.uuid4().hex[:10]}"
    with db.cursor() as cur:
        cur.execute("INSERT INTO batches (batch_id, request_hash, item_count) VALUES (%s, 'h', 1)", (batch_id,))
    return batch_id


@pytest.fixture
def transitions(database_url: str) -> Any:
    db = Database(database_url)
    yield Transitions(db)
    db.close()


def payout_in(db: Any, batch_id: str, state: PayoutState) -> str:
    payout_id = str(uuid.uuid4())
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO payouts (payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key,"
            " end_to_end_id, status, failure_code, provider_step)"
            " VALUES (%s, %s, %s, 'u', 100, 'EMAIL', 'a@b.com', %s, %s, %s, %s)",
            (
                payout_id,
                f"ext-{payout_id}",
                batch_id,
                ("E" + uuid.uuid4().hex + "x")[:32],
                state.status.value,
                state.failure_code,
                state.step.value if state.step else None,
            ),
        )
    return payout_id


def stored(db: Any, payout_id: str) -> tuple[str, str | None, str | None, str | None]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT status, CASE WHEN status = 'Processing' THEN provider_step END, failure_code, provider_status"
            " FROM payouts WHERE payout_id = %s",
            (payout_id,),
        )
        return cur.fetchone()


def history(db: Any, payout_id: str) -> list[tuple[str, str | None, str | None]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT event, to_status, source FROM payout_events WHERE payout_id = %s ORDER BY event_id", (payout_id,)
        )
        return cur.fetchall()


CASES = [(state, event) for state in every_state() for event in PayoutEvent]


@pytest.mark.parametrize(("state", "event"), CASES, ids=[f"{s}-{e.value}" for s, e in CASES])
def test_the_sql_guard_matches_a_row_exactly_when_the_state_machine_moves_it(db, batch_row, state, event):
    payout_id = payout_in(db, batch_row, state)
    with db.cursor() as cur:
        cur.execute(f"UPDATE payouts SET updated_at = now() WHERE payout_id = %s AND {guard(event)}", (payout_id,))
        assert (cur.rowcount == 1) is decide(state, event).moves


def test_a_processing_row_written_before_steps_existed_reads_as_not_sent(db, batch_row, transitions):
    payout_id = payout_in(db, batch_row, AWAITING)
    with db.cursor() as cur:
        cur.execute("UPDATE payouts SET provider_step = NULL WHERE payout_id = %s", (payout_id,))
    [decision] = transitions.apply([Word(payout_id, PayoutEvent.OUTCOME_UNKNOWN, "send")])
    assert decision.moves and stored(db, payout_id)[1] == "uncertain"


@pytest.mark.parametrize(("state", "event"), CASES, ids=[f"{s}-{e.value}" for s, e in CASES])
def test_every_word_moves_stays_or_is_refused_as_the_state_machine_says(db, batch_row, transitions, state, event):
    payout_id = payout_in(db, batch_row, state)
    [decision] = transitions.apply([Word(payout_id, event, "callback", failure_code="AC03")])
    expected = decide(state, event, "AC03")
    assert decision == expected
    status, step, code, _ = stored(db, payout_id)
    assert (status, step, code) == (
        expected.target.status.value,
        expected.target.step.value if expected.target.step else None,
        expected.target.failure_code,
    )
    assert len(history(db, payout_id)) == 1  # heard, whatever the verdict


def test_a_late_accepted_never_undoes_a_confirmation_nor_overwrites_the_providers_status(db, batch_row, transitions):
    payout_id = payout_in(db, batch_row, AWAITING)
    confirmed = Word(payout_id, PayoutEvent.CONFIRMED, "callback", provider_status="REALIZADO")
    late = Word(payout_id, PayoutEvent.ACCEPTED, "poll", provider_status="EM_PROCESSAMENTO")
    first, second = transitions.apply([confirmed, late])
    assert first.moves and second.verdict is Verdict.STAY
    assert stored(db, payout_id) == ("Completed", None, None, "REALIZADO")
    assert transitions.apply([late])[0].verdict is Verdict.STAY
    assert stored(db, payout_id)[3] == "REALIZADO"


def test_a_rejection_after_completion_is_refused_and_changes_nothing(db, batch_row, transitions):
    payout_id = payout_in(db, batch_row, COMPLETED)
    [decision] = transitions.apply([Word(payout_id, PayoutEvent.REJECTED, "callback", failure_code="AC03")])
    assert decision.verdict is Verdict.REFUSE
    assert stored(db, payout_id)[:3] == ("Completed", None, None)
    assert history(db, payout_id) == [("callback_rejected", None, "callback")]


def test_a_word_about_an_unknown_payout_is_none_and_writes_nothing(transitions):
    assert transitions.apply([Word(str(uuid.uuid4()), PayoutEvent.CONFIRMED, "callback")]) == [None]


def test_eight_confirmations_racing_make_exactly_one_transition(db, batch_row, database_url):
    payout_id = payout_in(db, batch_row, AWAITING)
    barrier = threading.Barrier(8)
    verdicts: list[Verdict] = []

    def confirm() -> None:
        db_ = Database(database_url)
        try:
            barrier.wait()
            [decision] = Transitions(db_).apply([Word(payout_id, PayoutEvent.CONFIRMED, "callback")])
            verdicts.append(decision.verdict)
        finally:
            db_.close()

    threads = [threading.Thread(target=confirm) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(verdicts) == sorted([Verdict.MOVE] + [Verdict.STAY] * 7)
    assert [h for h in history(db, payout_id) if h[1] is not None] == [("completed", "Completed", "callback")]


def test_start_attempts_takes_no_payout_awaiting_confirmation(db, batch_row, database_url):
    waiting = payout_in(db, batch_row, AWAITING)
    pending = payout_in(db, batch_row, PayoutState(PayoutStatus.PENDING))
    repo = PayoutRepository(Database(database_url))
    try:
        started = repo.start_attempts([waiting, pending])
        assert set(started) == {pending}
        assert started[pending][0].provider_step is not None and stored(db, pending)[1] == "not_sent"
        assert repo.settled_ids([waiting, pending]) == {waiting}
    finally:
        repo.db.close()
