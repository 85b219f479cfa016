"""A payout's idEnvio at the provider: Efí's pattern, derived from the payout alone, the same on every retry."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.payout_ids import new_payout_ids
from chalicelib.domain.send_id import is_send_id, payout_id_for, send_id_for

EFI_PATTERN = re.compile(r"^[a-zA-Z0-9]{1,35}$")


def test_a_payouts_send_id_fits_efis_pattern() -> None:
    [payout_id] = new_payout_ids(1)

    assert EFI_PATTERN.match(send_id_for(payout_id))


def test_every_retry_of_a_payout_derives_the_same_send_id() -> None:
    [payout_id] = new_payout_ids(1)

    assert {send_id_for(payout_id) for _ in range(3)} == {send_id_for(payout_id)}
    assert send_id_for(payout_id.upper()) == send_id_for(payout_id)


def test_payouts_of_one_millisecond_get_distinct_send_ids() -> None:
    ids = new_payout_ids(1000, now_ms=1_700_000_000_000)

    assert len({send_id_for(payout_id) for payout_id in ids}) == 1000


@given(st.uuids())
def test_a_callbacks_send_id_leads_back_to_its_payout(value: uuid.UUID) -> None:
    send_id = send_id_for(str(value))

    assert is_send_id(send_id)
    assert payout_id_for(send_id) == str(value)


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", "g" * 32])
def test_something_that_is_not_a_payout_id_has_no_send_id(value: str) -> None:
    with pytest.raises(ValueError):
        send_id_for(value)


@pytest.mark.parametrize("value", ["", "ABCDEF0123456789ABCDEF0123456789", "abc", "x" * 32, None, 42, "a" * 36])
def test_a_send_id_that_is_not_one_of_ours_names_no_payout(value: object) -> None:
    assert payout_id_for(value) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "valid"), [("a" * 35, True), ("a" * 36, False), ("", False), ("ab-c", False)])
def test_efis_send_id_pattern_is_checked(value: str, valid: bool) -> None:
    assert is_send_id(value) is valid
