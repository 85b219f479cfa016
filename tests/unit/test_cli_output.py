"""How the CLI writes money and times."""

from __future__ import annotations

import pytest

from chalicelib.client.output import brl, when


@pytest.mark.parametrize(
    ("cents", "text"),
    [(1, "R$ 0,01"), (35000, "R$ 350,00"), (100_000, "R$ 1.000,00"), (123_456_789, "R$ 1.234.567,89"), (0, "R$ 0,00")],
)
def test_centavos_read_as_reais_with_a_decimal_comma_and_thousands_points(cents, text):
    assert brl(cents) == text


def test_an_api_time_shows_to_the_second_in_utc():
    assert when("2026-01-31T09:00:05.123456-03:00") == "2026-01-31 12:00:05Z"
