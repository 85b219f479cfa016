"""Unit tests for the payout life cycle: the status view and the full machine with the provider step."""

from __future__ import annotations

from itertools import product

import pytest

from chalicelib.domain.payout_status import (
    AWAITING,
    NOT_SENT,
    RETRIES_EXHAUSTED,
    TERMINAL,
    UNCERTAIN,
    IllegalTransition,
    NextAction,
    PayoutEvent,
    PayoutState,
    PayoutStatus,
    ProviderStep,
    Verdict,
    apply,
    can_transition,
    check_transition,
    decide,
    every_state,
    failed,
    next_action,
    sources,
)
from chalicelib.domain.payout_status import COMPLETED as COMPLETED_STATE
from chalicelib.domain.payout_status import PENDING as PENDING_STATE

PENDING = PayoutStatus.PENDING
PROCESSING = PayoutStatus.PROCESSING
COMPLETED = PayoutStatus.COMPLETED
FAILED = PayoutStatus.FAILED

ALLOWED = {
    (PENDING, PROCESSING),
    (PENDING, FAILED),
    (PROCESSING, PROCESSING),
    (PROCESSING, COMPLETED),
    (PROCESSING, FAILED),
}


def test_json_spellings_match_the_seed() -> None:
    assert [status.value for status in PayoutStatus] == ["Pending", "Processing", "Completed", "Failed"]


def test_status_can_be_read_back_from_its_stored_string() -> None:
    assert PayoutStatus("Completed") is COMPLETED


def test_completed_and_failed_are_the_terminal_statuses() -> None:
    assert TERMINAL == frozenset({COMPLETED, FAILED})


@pytest.mark.parametrize(("src", "dst"), sorted(ALLOWED))
def test_forward_transition_is_allowed(src: PayoutStatus, dst: PayoutStatus) -> None:
    assert can_transition(src, dst)
    check_transition(src, dst)


@pytest.mark.parametrize(("src", "dst"), sorted(set(product(PayoutStatus, PayoutStatus)) - ALLOWED))
def test_every_other_transition_is_illegal(src: PayoutStatus, dst: PayoutStatus) -> None:
    assert not can_transition(src, dst)
    with pytest.raises(IllegalTransition):
        check_transition(src, dst)


@pytest.mark.parametrize("src", sorted(TERMINAL))
def test_nothing_leaves_a_terminal_status(src: PayoutStatus) -> None:
    assert not any(can_transition(src, dst) for dst in PayoutStatus)


def test_pending_cannot_jump_straight_to_completed() -> None:
    assert not can_transition(PENDING, COMPLETED)


def test_retry_attempt_keeps_a_payout_processing() -> None:
    assert can_transition(PROCESSING, PROCESSING)


def test_pending_may_fail_without_ever_processing() -> None:
    assert can_transition(PENDING, FAILED)


def test_plain_status_strings_are_understood() -> None:
    assert can_transition("Pending", "Processing")  # type: ignore[arg-type]
    assert not can_transition("Completed", "Pending")  # type: ignore[arg-type]


@pytest.mark.parametrize(("src", "dst"), [("Paid", "Failed"), ("Pending", "Done"), (None, "Failed")])
def test_unknown_status_is_never_a_legal_transition(src: object, dst: object) -> None:
    assert not can_transition(src, dst)  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition):
        check_transition(src, dst)  # type: ignore[arg-type]


def test_illegal_transition_names_both_statuses() -> None:
    with pytest.raises(IllegalTransition, match="Completed to Processing") as caught:
        check_transition(COMPLETED, PROCESSING)

    assert (caught.value.src, caught.value.dst) == (COMPLETED, PROCESSING)


# -- the full machine: status and provider step, event by event ---------------------------------------

E = PayoutEvent
EXHAUSTED = failed(RETRIES_EXHAUSTED)
REJECTED_AC03 = failed("AC03")
M, S, R = Verdict.MOVE, Verdict.STAY, Verdict.REFUSE
# Every state against every event: the verdict, and where a move lands. Written out in full, so a
# change to the machine has to change this table too.
TABLE: dict[PayoutState, dict[PayoutEvent, tuple[Verdict, PayoutState | None]]] = {
    PENDING_STATE: {
        E.ATTEMPT: (M, NOT_SENT),
        E.ACCEPTED: (R, None),
        E.CONFIRMED: (R, None),
        E.REJECTED: (R, None),
        E.OUTCOME_UNKNOWN: (R, None),
        E.NOTHING_SENT: (R, None),
        E.GIVE_UP: (M, EXHAUSTED),
        E.REOPEN: (R, None),
    },
    NOT_SENT: {
        E.ATTEMPT: (M, NOT_SENT),
        E.ACCEPTED: (M, AWAITING),
        E.CONFIRMED: (M, COMPLETED_STATE),
        E.REJECTED: (M, REJECTED_AC03),
        E.OUTCOME_UNKNOWN: (M, UNCERTAIN),
        E.NOTHING_SENT: (S, None),
        E.GIVE_UP: (M, EXHAUSTED),
        E.REOPEN: (R, None),
    },
    UNCERTAIN: {
        E.ATTEMPT: (M, UNCERTAIN),
        E.ACCEPTED: (M, AWAITING),
        E.CONFIRMED: (M, COMPLETED_STATE),
        E.REJECTED: (M, REJECTED_AC03),
        E.OUTCOME_UNKNOWN: (S, None),
        E.NOTHING_SENT: (M, NOT_SENT),
        E.GIVE_UP: (R, None),
        E.REOPEN: (R, None),
    },
    AWAITING: {
        E.ATTEMPT: (S, None),
        E.ACCEPTED: (S, None),
        E.CONFIRMED: (M, COMPLETED_STATE),
        E.REJECTED: (M, REJECTED_AC03),
        E.OUTCOME_UNKNOWN: (S, None),
        E.NOTHING_SENT: (R, None),
        E.GIVE_UP: (R, None),
        E.REOPEN: (R, None),
    },
    COMPLETED_STATE: {
        E.ATTEMPT: (S, None),
        E.ACCEPTED: (S, None),
        E.CONFIRMED: (S, None),
        E.REJECTED: (R, None),
        E.OUTCOME_UNKNOWN: (S, None),
        E.NOTHING_SENT: (R, None),
        E.GIVE_UP: (S, None),
        E.REOPEN: (R, None),
    },
    EXHAUSTED: {
        E.ATTEMPT: (S, None),
        E.ACCEPTED: (S, None),
        E.CONFIRMED: (R, None),
        E.REJECTED: (S, None),
        E.OUTCOME_UNKNOWN: (S, None),
        E.NOTHING_SENT: (S, None),
        E.GIVE_UP: (S, None),
        E.REOPEN: (M, PENDING_STATE),
    },
    REJECTED_AC03: {
        E.ATTEMPT: (S, None),
        E.ACCEPTED: (S, None),
        E.CONFIRMED: (R, None),
        E.REJECTED: (S, None),
        E.OUTCOME_UNKNOWN: (S, None),
        E.NOTHING_SENT: (S, None),
        E.GIVE_UP: (S, None),
        E.REOPEN: (R, None),
    },
}
CASES = [(state, event, *TABLE[state][event]) for state in TABLE for event in PayoutEvent]
REFUSED = [(state, event) for state, event, verdict, _ in CASES if verdict is R]
STAYED = [(state, event) for state, event, verdict, _ in CASES if verdict is S]


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == set(every_state())
    assert len(CASES) == len(TABLE) * len(PayoutEvent)


@pytest.mark.parametrize(("state", "event", "verdict", "target"), CASES, ids=_name)
def test_each_event_in_each_state_gets_its_verdict(
    state: PayoutState, event: PayoutEvent, verdict: Verdict, target: PayoutState | None
) -> None:
    decision = decide(state, event, failure_code="AC03")

    assert decision.verdict is verdict, decision.reason
    assert decision.target == (target if verdict is M else state)


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s, e, verdict, _ in CASES if verdict is R],
    ids=lambda v: str(getattr(v, "value", v)),
)
def test_a_refused_event_raises_and_names_why(state: PayoutState, event: PayoutEvent) -> None:
    with pytest.raises(IllegalTransition, match=event.value):
        apply(state, event, "AC03")


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s, e, verdict, _ in CASES if verdict is S],
    ids=lambda v: str(getattr(v, "value", v)),
)
def test_a_repeated_or_late_event_leaves_the_state_as_it_is(state: PayoutState, event: PayoutEvent) -> None:
    assert apply(state, event, "AC03") is state


def test_the_status_level_view_is_the_machine_without_the_operators_reopen() -> None:
    moves = {
        (d.source.status, d.target.status)
        for state in every_state()
        for event in PayoutEvent
        if event is not E.REOPEN and (d := decide(state, event)).moves
    }
    assert moves == ALLOWED


def test_a_late_accepted_never_undoes_a_confirmation() -> None:
    state = apply(apply(apply(PENDING_STATE, E.ATTEMPT), E.ACCEPTED), E.CONFIRMED)

    assert apply(state, E.ACCEPTED) == COMPLETED_STATE


def test_confirmations_out_of_order_and_twice_move_the_payout_once() -> None:
    state = apply(PENDING_STATE, E.ATTEMPT)
    moves = 0
    for event in (E.CONFIRMED, E.ACCEPTED, E.CONFIRMED, E.OUTCOME_UNKNOWN, E.CONFIRMED):
        decision = decide(state, event)
        moves += decision.moves
        state = decision.target

    assert (state, moves) == (COMPLETED_STATE, 1)


def test_a_rejection_after_completion_is_refused_not_applied() -> None:
    assert decide(COMPLETED_STATE, E.REJECTED, "AC03").verdict is R


def test_a_confirmation_of_a_failed_payout_is_a_contradiction_to_report() -> None:
    assert decide(REJECTED_AC03, E.CONFIRMED).verdict is R


def test_a_rejection_carries_the_providers_code_and_defaults_when_it_has_none() -> None:
    assert apply(AWAITING, E.REJECTED, "AC06") == failed("AC06")
    assert apply(AWAITING, E.REJECTED) == failed("REJECTED")


def test_a_payout_whose_send_may_have_arrived_is_asked_about_before_giving_up() -> None:
    assert decide(UNCERTAIN, E.GIVE_UP).verdict is R
    assert apply(apply(UNCERTAIN, E.NOTHING_SENT), E.GIVE_UP) == EXHAUSTED


def test_only_our_own_give_up_can_be_reopened_by_the_operator() -> None:
    assert apply(EXHAUSTED, E.REOPEN) == PENDING_STATE
    assert decide(REJECTED_AC03, E.REOPEN).verdict is R


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (PENDING_STATE, NextAction.SEND),
        (NOT_SENT, NextAction.SEND),
        (UNCERTAIN, NextAction.ASK),
        (AWAITING, NextAction.WAIT),
        (COMPLETED_STATE, NextAction.NONE),
        (EXHAUSTED, NextAction.NONE),
    ],
)
def test_the_next_step_with_the_provider_follows_the_state(state: PayoutState, action: NextAction) -> None:
    assert next_action(state) is action


def test_sources_are_the_states_a_storage_guard_must_require() -> None:
    assert sources(E.CONFIRMED) == {(PayoutStatus.PROCESSING, step) for step in ProviderStep}
    assert sources(E.ATTEMPT) == {
        (PayoutStatus.PENDING, None),
        (PayoutStatus.PROCESSING, ProviderStep.NOT_SENT),
        (PayoutStatus.PROCESSING, ProviderStep.UNCERTAIN),
    }
    assert sources(E.REOPEN) == {(PayoutStatus.FAILED, None)}


@pytest.mark.parametrize(
    ("status", "step", "failure_code"),
    [
        (PayoutStatus.PROCESSING, None, None),
        (PayoutStatus.PENDING, ProviderStep.NOT_SENT, None),
        (PayoutStatus.COMPLETED, ProviderStep.AWAITING_CONFIRMATION, None),
        (PayoutStatus.FAILED, None, None),
        (PayoutStatus.COMPLETED, None, "AC03"),
    ],
)
def test_a_step_outside_processing_or_a_failure_code_outside_failed_is_not_a_state(
    status: PayoutStatus, step: ProviderStep | None, failure_code: str | None
) -> None:
    with pytest.raises(ValueError):
        PayoutState(status, step, failure_code)


def test_an_unknown_event_is_refused_loudly() -> None:
    with pytest.raises(ValueError):
        decide(NOT_SENT, "paid")  # type: ignore[arg-type]


def test_each_sql_guard_names_exactly_the_states_its_event_moves_out_of() -> None:
    import re

    from chalicelib.adapters.transitions import guard
    from chalicelib.domain.payout_status import PayoutEvent, sources

    for event in PayoutEvent:
        sql = guard(event)
        bare = set(re.findall(r"\(status = '(\w+)'(?:\)| AND failure_code)", sql))
        stepped = {
            (status, step)
            for status, listed in re.findall(r"\(status = '(\w+)' AND CASE .*? END IN \(([^)]*)\)\)", sql)
            for step in re.findall(r"'(\w+)'", listed)
        }
        expected = sources(event)
        assert bare == {s.value for s, step in expected if step is None}, event
        assert stepped == {(s.value, step.value) for s, step in expected if step is not None}, event
