"""HTTP glue: the error -> status table, JSON bodies, and body parsing for the routes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from chalice import Response

from ..domain.batch_request import BatchTooLarge, InvalidBatch
from ..domain.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from ..observability import logger

_STATUS: list[tuple[type[BaseException], int]] = [
    (BadRequest, 400),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (BatchTooLarge, 413),
    (InvalidBatch, 422),
    (Unavailable, 503),
]


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def status_for(exc: BaseException) -> int | None:
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), None)


def error_response(exc: BaseException) -> Response:
    status = status_for(exc)
    if status is None:
        logger.exception("unhandled error")
        return json_response({"error": {"code": "internal_error", "message": "internal error"}}, 500)
    error: dict[str, Any] = {"code": getattr(exc, "code", "error"), "message": str(exc)}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidBatch):
        error["problems"] = [p.as_dict() for p in exc.problems]
    elif isinstance(exc, Conflict):
        error["details"] = exc.details
    elif isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if status >= 500:
        logger.warning("dependency unavailable", extra={"error": str(exc)})
    return json_response({"error": error}, status, headers)


def handles_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turns every exception into a JSON error; unmapped ones become a 500 that leaks nothing."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the table above decides; the rest is logged and hidden
            return error_response(exc)

    return wrapper


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(raw: bytes | None, max_bytes: int) -> Any:
    if raw is None or not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the request body is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest("the request body is not valid JSON") from exc
