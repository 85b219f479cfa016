"""Centavos to reais strings at the provider's edge and back, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.money import centavos, reais


@pytest.mark.parametrize(
    ("cents", "text"),
    [(1, "0.01"), (10, "0.10"), (35000, "350.00"), (120001, "1200.01"), (10**17 + 7, "1000000000000000.07")],
)
def test_centavos_become_reais_with_two_places(cents: int, text: str) -> None:
    assert reais(cents) == text
    assert centavos(text) == cents


@given(st.integers(min_value=1, max_value=10**20))
def test_every_amount_survives_the_round_trip_exactly(cents: int) -> None:
    assert centavos(reais(cents)) == cents


@pytest.mark.parametrize("cents", [0, -1, 1.5, 100.0, True, "100", None])
def test_only_a_positive_whole_number_of_centavos_is_an_amount(cents: object) -> None:
    with pytest.raises(ValueError):
        reais(cents)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["1", "1.5", "1.500", "1,50", "01.00", "-1.00", " 1.00", "1e2", "", None, 1.5])
def test_a_reais_string_must_have_exactly_two_places_and_nothing_else(text: object) -> None:
    with pytest.raises(ValueError):
        centavos(text)  # type: ignore[arg-type]
