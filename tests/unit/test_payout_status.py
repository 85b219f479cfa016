"""Unit tests for the payout life cycle."""

from __future__ import annotations

from itertools import product

import pytest

from chalicelib.domain.payout_status import (
    TERMINAL,
    IllegalTransition,
    PayoutStatus,
    can_transition,
    check_transition,
)

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
