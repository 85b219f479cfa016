"""Pix end-to-end ids: E + ISPB + UTC yyyyMMddHHmm + 11 random alphanumerics."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from datetime import UTC, datetime

END_TO_END_ID_LENGTH = 32
RANDOM_PART_LENGTH = 11

_ALPHANUMERICS = string.ascii_letters + string.digits
_ISPB_RE = re.compile(r"[0-9]{8}")
_RANDOM_RE = re.compile(r"[A-Za-z0-9]{11}")
_END_TO_END_RE = re.compile(
    r"E[0-9]{8}(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})"
    r"(?P<hour>[0-9]{2})(?P<minute>[0-9]{2})[A-Za-z0-9]{11}"
)


def new_end_to_end_id(ispb: str, now: datetime, rand: Callable[[int], str] | None = None) -> str:
    """Build an end-to-end id; rand(n) must return n characters of [A-Za-z0-9]."""
    if not isinstance(ispb, str) or not _ISPB_RE.fullmatch(ispb):
        raise ValueError("ispb must be exactly 8 digits")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    utc = now.astimezone(UTC)
    # Formatted by hand: strftime("%Y") does not zero-pad years below 1000 on every platform.
    stamp = f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}"
    suffix = (rand or _random_alphanumerics)(RANDOM_PART_LENGTH)
    # An injected generator that breaks the format would yield ids the SPI rejects.
    if not isinstance(suffix, str) or not _RANDOM_RE.fullmatch(suffix):
        raise ValueError(f"rand must return {RANDOM_PART_LENGTH} characters of [A-Za-z0-9]")
    return f"E{ispb}{stamp}{suffix}"


def is_end_to_end_id(value: str) -> bool:
    """True when value has the end-to-end id shape and a real calendar minute."""
    if not isinstance(value, str):
        return False
    match = _END_TO_END_RE.fullmatch(value)
    if match is None:
        return False
    try:
        datetime(*(int(match.group(part)) for part in ("year", "month", "day", "hour", "minute")))
    except ValueError:
        return False
    return True


def _random_alphanumerics(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERICS) for _ in range(length))
