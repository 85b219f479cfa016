"""Strict, all-or-nothing parsing of a batch payout request body."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ServiceError
from .pix_keys import InvalidPixKey, PixKey, parse_pix_key

MAX_ITEMS_PER_BATCH = 10_000

# R$ 1.000.000,00 per payout. The cap catches unit mistakes (reais sent as
# centavos multiply an amount by 100) and bounds what one bad or malicious
# item can move; bigger transfers belong in a separately approved channel.
MAX_AMOUNT_CENTS = 100_000_000

MAX_ID_LENGTH = 64

# A 422 lists this many problems and counts the rest: a 5 MB body of unknown keys would
# otherwise answer with tens of megabytes, past what Lambda may return.
MAX_LISTED_PROBLEMS = 1000

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_REPLACEMENT_CHARACTER = "\ufffd"
_TOP_LEVEL_FIELDS = frozenset({"batch_id", "items"})
_ITEM_FIELDS = frozenset({"external_id", "user_id", "amount_cents", "pix_key"})


@dataclass(frozen=True, slots=True)
class PayoutItem:
    index: int
    external_id: str
    user_id: str
    amount_cents: int
    pix_key: PixKey

    def fingerprint(self) -> tuple[str, str, int, str, str]:
        """What "same content" means when an external_id is seen again."""
        return (
            self.external_id,
            self.user_id,
            self.amount_cents,
            self.pix_key.type.value,
            self.pix_key.value,
        )


@dataclass(frozen=True, slots=True)
class BatchRequest:
    batch_id: str
    items: tuple[PayoutItem, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    index: int | None
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {}
        if self.index is not None:
            result["index"] = self.index
        result["field"] = self.field
        result["code"] = self.code
        result["message"] = self.message
        return result


class InvalidBatch(ServiceError):
    code = "invalid_batch"

    def __init__(self, problems: list[Problem]) -> None:
        self.total: int = len(problems)
        self.problems: list[Problem] = list(problems[:MAX_LISTED_PROBLEMS])
        message = f"batch request has {self.total} problem{'' if self.total == 1 else 's'}"
        if self.total > MAX_LISTED_PROBLEMS:
            message += f"; the first {MAX_LISTED_PROBLEMS} are listed"
        super().__init__(message)


class BatchTooLarge(ServiceError):
    code = "batch_too_large"

    def __init__(self, count: int, limit: int) -> None:
        self.count: int = count
        self.limit: int = limit
        super().__init__(f"batch has {count} items; the limit is {limit} items per batch")


def is_identifier(value: str) -> bool:
    """True if value could be a batch_id or external_id; anything else cannot name a stored one."""
    return len(value) <= MAX_ID_LENGTH and _ID_RE.fullmatch(value) is not None


def parse_batch_request(body: object, max_items: int = MAX_ITEMS_PER_BATCH) -> BatchRequest:
    """Validate a decoded JSON body and return the request, or raise with every problem.

    Raises BatchTooLarge (checked first, before any per-item work) when items
    has more than max_items entries, otherwise InvalidBatch listing all
    problems found. A JSON null counts as a missing field ("required").
    Messages never echo submitted values, so they are safe to log and return.
    """
    if not isinstance(body, dict):
        raise InvalidBatch([Problem(None, "body", "type", "request body must be a JSON object")])

    raw_items = body.get("items")
    if isinstance(raw_items, list) and len(raw_items) > max_items:
        raise BatchTooLarge(len(raw_items), max_items)

    problems: list[Problem] = []
    for key in body:
        if key not in _TOP_LEVEL_FIELDS:
            problems.append(_unknown_field(None, key))

    batch_id = _check_identifier(problems, None, "batch_id", body.get("batch_id"))

    items: list[PayoutItem] = []
    if raw_items is None:
        problems.append(Problem(None, "items", "required", "items is required"))
    elif not isinstance(raw_items, list):
        problems.append(Problem(None, "items", "type", "items must be a JSON array"))
    elif not raw_items:
        problems.append(Problem(None, "items", "empty", "items must contain at least one payout"))
    else:
        first_seen: dict[str, int] = {}
        for index, raw_item in enumerate(raw_items):
            item = _parse_item(problems, index, raw_item, first_seen)
            if item is not None:
                items.append(item)

    if problems or batch_id is None:
        raise InvalidBatch(problems)
    return BatchRequest(batch_id=batch_id, items=tuple(items))


def _parse_item(problems: list[Problem], index: int, raw: object, first_seen: dict[str, int]) -> PayoutItem | None:
    if not isinstance(raw, dict):
        problems.append(Problem(index, "item", "type", "each item must be a JSON object"))
        return None
    before = len(problems)
    for key in raw:
        if key not in _ITEM_FIELDS:
            problems.append(_unknown_field(index, key))

    external_id = _check_identifier(problems, index, "external_id", raw.get("external_id"))
    if external_id is not None:
        first = first_seen.setdefault(external_id, index)
        if first != index:
            message = f"external_id repeats the one at item {first}"
            problems.append(Problem(index, "external_id", "duplicate", message))
    user_id = _check_user_id(problems, index, raw.get("user_id"))
    amount_cents = _check_amount(problems, index, raw.get("amount_cents"))
    pix_key = _check_pix_key(problems, index, raw.get("pix_key"))

    if external_id is None or user_id is None or amount_cents is None or pix_key is None:
        return None
    if len(problems) != before:
        return None
    return PayoutItem(index, external_id, user_id, amount_cents, pix_key)


def _check_identifier(problems: list[Problem], index: int | None, field: str, value: object) -> str | None:
    if value is None:
        problems.append(Problem(index, field, "required", f"{field} is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(index, field, "type", f"{field} must be a string"))
        return None
    if not value:
        problems.append(Problem(index, field, "empty", f"{field} must not be empty"))
        return None
    if len(value) > MAX_ID_LENGTH:
        message = f"{field} must be at most {MAX_ID_LENGTH} characters"
        problems.append(Problem(index, field, "too_long", message))
        return None
    if not _ID_RE.fullmatch(value):
        message = f"{field} must start with a letter or digit and use only letters, digits, . _ : -"
        problems.append(Problem(index, field, "format", message))
        return None
    return value


def _check_user_id(problems: list[Problem], index: int, value: object) -> str | None:
    if value is None:
        problems.append(Problem(index, "user_id", "required", "user_id is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(index, "user_id", "type", "user_id must be a string"))
        return None
    if not value.strip():
        message = "user_id must not be empty or only spaces"
        problems.append(Problem(index, "user_id", "empty", message))
        return None
    if len(value) > MAX_ID_LENGTH:
        message = f"user_id must be at most {MAX_ID_LENGTH} characters"
        problems.append(Problem(index, "user_id", "too_long", message))
        return None
    if not value.isprintable():
        message = "user_id must not contain control or invisible characters"
        problems.append(Problem(index, "user_id", "format", message))
        return None
    # API Gateway hands Lambda a body whose bytes were not UTF-8 with U+FFFD in their place;
    # storing that would keep a garbled id nobody sent.
    if _REPLACEMENT_CHARACTER in value:
        message = "user_id contains U+FFFD, the mark of bytes that were not UTF-8; send the body as UTF-8"
        problems.append(Problem(index, "user_id", "format", message))
        return None
    return value


def user_id_problem(value: str) -> str | None:
    """Why value could never be a user_id, or None if it could be one."""
    problems: list[Problem] = []
    _check_user_id(problems, 0, value)
    return problems[0].message if problems else None


def _check_amount(problems: list[Problem], index: int, value: object) -> int | None:
    if value is None:
        problems.append(Problem(index, "amount_cents", "required", "amount_cents is required"))
        return None
    # bool is a subclass of int, and a float such as 100.0 hides a unit mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        message = "amount_cents must be an integer number of centavos"
        problems.append(Problem(index, "amount_cents", "type", message))
        return None
    if not 1 <= value <= MAX_AMOUNT_CENTS:
        message = f"amount_cents must be between 1 and {MAX_AMOUNT_CENTS}"
        problems.append(Problem(index, "amount_cents", "range", message))
        return None
    return value


def _check_pix_key(problems: list[Problem], index: int, value: object) -> PixKey | None:
    if value is None:
        problems.append(Problem(index, "pix_key", "required", "pix_key is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(index, "pix_key", "type", "pix_key must be a string"))
        return None
    try:
        return parse_pix_key(value)
    except InvalidPixKey as error:
        problems.append(Problem(index, "pix_key", "format", str(error)))
        return None


_UNKNOWN_TOP_LEVEL = "unknown field; allowed fields are " + ", ".join(sorted(_TOP_LEVEL_FIELDS))
_UNKNOWN_ITEM_FIELD = "unknown field; allowed fields are " + ", ".join(sorted(_ITEM_FIELDS))


def _unknown_field(index: int | None, key: object) -> Problem:
    message = _UNKNOWN_TOP_LEVEL if index is None else _UNKNOWN_ITEM_FIELD
    return Problem(index, _field_label(key), "unknown_field", message)


def _field_label(key: object) -> str:
    """Name an unknown key without letting a hostile key flood logs or responses."""
    if not isinstance(key, str):
        return f"<{type(key).__name__} key>"
    label = key if key.isprintable() else key.encode("unicode_escape").decode("ascii")
    return label[:MAX_ID_LENGTH]
