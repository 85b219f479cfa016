"""Paging of every list the API answers: the limit parameter and opaque cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from ..domain.batch_request import is_identifier
from ..domain.errors import BadRequest
from ..domain.uuids import is_uuid

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# item_index is a PostgreSQL integer; a cursor names one, so it never needs more digits than this.
_MAX_CURSOR_DIGITS = 10
_BAD_CURSOR = "cursor is not one this API returned"


def parse_limit(raw: str | None, default: int = DEFAULT_PAGE) -> int:
    if raw is None:
        return default
    if not _is_ascii_number(raw, len(str(MAX_PAGE))) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def encode_cursor(index: int) -> str:
    """A batch item's position (its item_index)."""
    return _encode("i", str(index))


def decode_cursor(cursor: str) -> int:
    digits = _decode("i", cursor)
    if not _is_ascii_number(digits, _MAX_CURSOR_DIGITS):
        raise BadRequest(_BAD_CURSOR)
    return int(digits)


def encode_batch_cursor(created_at: datetime, batch_id: str) -> str:
    return _encode("b", f"{created_at.isoformat()}|{batch_id}")


def decode_batch_cursor(cursor: str) -> tuple[datetime, str]:
    at, _, batch_id = _decode("b", cursor).partition("|")
    if not is_identifier(batch_id):
        raise BadRequest(_BAD_CURSOR)
    try:
        return parse_utc(at), batch_id
    except (ValueError, OverflowError) as exc:
        raise BadRequest(_BAD_CURSOR) from exc


def parse_utc(text: str) -> datetime:
    """An ISO time with its offset, in UTC. PostgreSQL refuses offsets past 15:59 (RFC 3339 allows 23:59),
    and a time near year 1 or 9999 can leave datetime's range on the way: ValueError or OverflowError.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time without its offset")
    return moment.astimezone(UTC)


def encode_payout_cursor(payout_id: str) -> str:
    return _encode("p", payout_id)


def decode_payout_cursor(cursor: str) -> str:
    payout_id = _decode("p", cursor)
    if not is_uuid(payout_id):
        raise BadRequest(_BAD_CURSOR)
    return payout_id


def encode_attempt_cursor(attempt_id: int) -> str:
    """A webhook delivery attempt (its attempt_id; the list runs newest first)."""
    return _encode("a", str(attempt_id))


def decode_attempt_cursor(cursor: str) -> int:
    digits = _decode("a", cursor)
    if not _is_ascii_number(digits, 19):
        raise BadRequest(_BAD_CURSOR)
    return int(digits)


def _encode(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode(kind: str, cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(_BAD_CURSOR) from exc
    if not text.startswith(f"{kind}:"):
        raise BadRequest(_BAD_CURSOR)
    return text[len(kind) + 1 :]


def _is_ascii_number(text: str, max_digits: int) -> bool:
    # str.isdigit() alone admits "²" and "١٢", which int() refuses or reads as another number.
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
