"""Integer centavos to a provider's reais string and back, exactly (never through float)."""

from __future__ import annotations

import re

_REAIS_RE = re.compile(r"(0|[1-9][0-9]*)\.([0-9]{2})")


def reais(cents: int) -> str:
    """35000 -> "350.00"; centavos must be a positive int (a bool is not one)."""
    if not isinstance(cents, int) or isinstance(cents, bool) or cents <= 0:
        raise ValueError("amount must be a positive whole number of centavos")
    whole, frac = divmod(cents, 100)
    return f"{whole}.{frac:02d}"


def centavos(value: str) -> int:
    """ "350.00" -> 35000; anything but digits, a point and exactly two places is refused."""
    match = _REAIS_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a reais amount with two decimal places: {value!r}")
    return int(match.group(1)) * 100 + int(match.group(2))


_DECIMAL_RE = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def exact_centavos(value: object) -> int | None:
    """A decimal reais string in any number of places -> centavos ("350.0" -> 35000); None unless whole centavos.

    For reading what a provider reports (reconciliation): its value, exactly, whatever its spelling.
    """
    match = _DECIMAL_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    places = (match.group(2) or "").rstrip("0")
    if len(places) > 2:
        return None
    return int(match.group(1)) * 100 + int(places.ljust(2, "0"))
