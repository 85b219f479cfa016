"""UUID text, one pattern: 8-4-4-4-12 ASCII hex digits; the case rule depends on who wrote the text.

- `UUID` (lowercase only): ids the service wrote itself (queue messages, page cursors, stored
  Pix EVP keys after lowering). Python's uuid module and PostgreSQL both write lowercase, so an
  uppercase id there was not written by us and is refused.
- `ANY_CASE_UUID` (either case, ASCII only): ids a caller typed (URL paths, the CLI), which
  PostgreSQL's uuid type reads in either case. Not uuid.UUID(): it also takes braces, "urn:uuid:",
  missing hyphens and non-ASCII digits, which PostgreSQL then refuses.
"""

from __future__ import annotations

import re

PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID = re.compile(PATTERN)
# re.ASCII too: without it IGNORECASE would let non-ASCII letters that case-fold into the class match.
ANY_CASE_UUID = re.compile(PATTERN, re.ASCII | re.IGNORECASE)


def is_uuid(text: str) -> bool:
    """Lowercase only: an id the service wrote."""
    return UUID.fullmatch(text) is not None


def is_any_case_uuid(text: str) -> bool:
    """Either case: an id a caller typed."""
    return ANY_CASE_UUID.fullmatch(text) is not None
