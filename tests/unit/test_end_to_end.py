"""Unit tests for Pix end-to-end id generation and recognition."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.end_to_end import is_end_to_end_id, new_end_to_end_id

ISPB = "12345678"
UTC_NOON = datetime(2025, 10, 5, 12, 34, 56, tzinfo=UTC)


def _fixed(length: int) -> str:
    return "Ab3" * (length // 3) + "Z" * (length % 3)


def test_id_is_e_then_ispb_then_utc_minute_then_random_part() -> None:
    assert new_end_to_end_id(ISPB, UTC_NOON, rand=_fixed) == "E" + ISPB + "202510051234" + "Ab3Ab3Ab3ZZ"


def test_id_is_exactly_32_characters() -> None:
    assert len(new_end_to_end_id(ISPB, UTC_NOON)) == 32


def test_default_random_part_is_alphanumeric_and_varies() -> None:
    ids = {new_end_to_end_id(ISPB, UTC_NOON) for _ in range(50)}

    assert len(ids) == 50
    assert all(re.fullmatch(r"E12345678202510051234[A-Za-z0-9]{11}", value) for value in ids)


def test_random_part_is_asked_for_eleven_characters() -> None:
    requested: list[int] = []

    def rand(length: int) -> str:
        requested.append(length)
        return "x" * length

    new_end_to_end_id(ISPB, UTC_NOON, rand=rand)

    assert requested == [11]


def test_time_is_converted_to_utc() -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    local_evening = datetime(2025, 10, 5, 22, 15, tzinfo=sao_paulo)

    value = new_end_to_end_id(ISPB, local_evening, rand=_fixed)

    assert value[9:21] == "202510060115"


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_end_to_end_id(ISPB, datetime(2025, 10, 5, 12, 0))


@pytest.mark.parametrize("ispb", ["1234567", "123456789", "1234567a", "", " 12345678", "１２３４５６７８"])
def test_ispb_that_is_not_eight_digits_is_rejected(ispb: str) -> None:
    with pytest.raises(ValueError, match="ispb"):
        new_end_to_end_id(ispb, UTC_NOON)


@pytest.mark.parametrize("bad", ["short", "x" * 12, "abc-def_ghi", "ççççççççççç"])
def test_injected_random_part_with_wrong_shape_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="rand"):
        new_end_to_end_id(ISPB, UTC_NOON, rand=lambda _: bad)


def test_generated_id_is_recognised() -> None:
    assert is_end_to_end_id(new_end_to_end_id(ISPB, UTC_NOON))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "E12345678202510051234Ab3Ab3Ab3Z",  # 31 characters
        "E12345678202510051234Ab3Ab3Ab3ZZZ",  # 33 characters
        "D12345678202510051234Ab3Ab3Ab3ZZ",  # wrong prefix
        "e12345678202510051234Ab3Ab3Ab3ZZ",  # lower-case prefix
        "E1234567A202510051234Ab3Ab3Ab3ZZ",  # ISPB with a letter
        "E12345678202513051234Ab3Ab3Ab3ZZ",  # month 13
        "E12345678202502301234Ab3Ab3Ab3ZZ",  # 30 February
        "E12345678202510052434Ab3Ab3Ab3ZZ",  # hour 24
        "E12345678202510051260Ab3Ab3Ab3ZZ",  # minute 60
        "E12345678202510051234Ab3Ab3-b3ZZ",  # non-alphanumeric random part
        "E12345678202510051234Ab3Ab3Ab3ZZ\n",  # trailing newline
    ],
)
def test_malformed_id_is_not_recognised(value: str) -> None:
    assert not is_end_to_end_id(value)


def test_non_string_is_not_an_end_to_end_id() -> None:
    assert not is_end_to_end_id(None)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    ispb=st.from_regex(r"\A[0-9]{8}\Z"),
    now=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()),
)
def test_any_aware_time_and_ispb_give_a_recognised_32_character_id(ispb: str, now: datetime) -> None:
    value = new_end_to_end_id(ispb, now)

    assert len(value) == 32
    assert value[1:9] == ispb
    assert value[9:21] == now.astimezone(UTC).strftime("%Y%m%d%H%M")
    assert is_end_to_end_id(value)


def test_the_factory_makes_valid_distinct_ids_and_follows_the_clock():
    from datetime import UTC, datetime, timedelta

    from chalicelib.domain.end_to_end import end_to_end_id_factory, is_end_to_end_id

    now = [datetime(2026, 11, 29, 23, 59, 30, tzinfo=UTC)]
    make = end_to_end_id_factory("12345678", lambda: now[0])
    ids = {make() for _ in range(5000)}
    assert len(ids) == 5000 and all(is_end_to_end_id(i) and i.startswith("E12345678202611292359") for i in ids)
    now[0] += timedelta(minutes=1)
    assert make().startswith("E12345678202611300000")
    assert len({c for i in ids for c in i[21:]}) == 62  # every alphanumeric shows up in the random part


def test_the_factory_refuses_a_bad_ispb():
    from datetime import UTC, datetime

    import pytest

    from chalicelib.domain.end_to_end import end_to_end_id_factory

    with pytest.raises(ValueError, match="ispb"):
        end_to_end_id_factory("1234", lambda: datetime.now(UTC))
