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
        year, month, day, hour, minute = (int(match.group(p)) for p in ("year", "month", "day", "hour", "minute"))
        datetime(year, month, day, hour, minute)
    except ValueError:
        return False
    return True


# Random bytes below 248 (= 4 x 62) map uniformly onto the 62 alphanumerics; the rest are dropped.
# bytes.translate does the mapping and the rejection in C: unbiased and cheap for 10,000 ids.
_ACCEPT = 4 * len(_ALPHANUMERICS)
_TO_ALPHANUMERIC = bytes(_ALPHANUMERICS.encode()[b % len(_ALPHANUMERICS)] if b < _ACCEPT else 0 for b in range(256))
_REJECTED = bytes(range(_ACCEPT, 256))


def _random_alphanumerics(length: int) -> str:
    out = b""
    while len(out) < length:
        out += secrets.token_bytes(length + 5).translate(_TO_ALPHANUMERIC, _REJECTED)
    return out[:length].decode()


def end_to_end_id_factory(ispb: str, clock: Callable[[], datetime]) -> Callable[[], str]:
    """new_end_to_end_id for many ids at once: the ISPB is checked and each minute's stamp built once."""
    stamp_cache: dict[tuple[int, int, int, int, int], str] = {}
    prefix = new_end_to_end_id(ispb, clock())[:9]  # validates the ISPB

    def make() -> str:
        utc = clock().astimezone(UTC)
        key = (utc.year, utc.month, utc.day, utc.hour, utc.minute)
        stamp = stamp_cache.get(key)
        if stamp is None:
            stamp = stamp_cache[key] = f"{key[0]:04d}{key[1]:02d}{key[2]:02d}{key[3]:02d}{key[4]:02d}"
        return f"{prefix}{stamp}{_random_alphanumerics(RANDOM_PART_LENGTH)}"

    return make
