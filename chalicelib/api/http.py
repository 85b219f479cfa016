"""HTTP glue: the error -> status table, JSON bodies, body parsing, and the OpenAPI document."""

from __future__ import annotations

import codecs
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chalice.app import Response

from ..domain.batch_request import BatchTooLarge, InvalidBatch
from ..domain.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from ..domain.webhooks import InvalidEndpoint
from ..observability import logger

_STATUS: list[tuple[type[BaseException], int]] = [
    (BadRequest, 400),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (BatchTooLarge, 413),
    (InvalidBatch, 422),
    (InvalidEndpoint, 422),
    (Unavailable, 503),
]


def json_response(body: Any, status: int, headers: Mapping[str, str | list[str]] | None = None) -> Response:
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
    if isinstance(exc, InvalidBatch | InvalidEndpoint):
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


# Chalice answers a few requests itself, in its own {"Code", "Message"} shape: 415 for a body that
# is not declared JSON, 405 for a method the path lacks, 500 if something escapes handles_errors.
_CHALICE_ERRORS: dict[str, tuple[str, str]] = {
    "UnsupportedMediaType": ("unsupported_media_type", "send the body as JSON, with Content-Type: application/json"),
    "MethodNotAllowedError": ("method_not_allowed", "this path does not answer that method"),
    "InternalServerError": ("internal_error", "internal error"),
}


def conform_chalice_error(response: Response) -> Response:
    """Give Chalice's own error answers the service's error shape, without echoing the request."""
    body = response.body
    if response.status_code < 400 or not isinstance(body, dict) or set(body) != {"Code", "Message"}:
        return response
    code, message = _CHALICE_ERRORS.get(str(body["Code"]), ("error", "the request was refused"))
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    if "Allow" in headers:
        message = f"{message}; allowed: {headers['Allow']}"
    return json_response({"error": {"code": code, "message": message}}, response.status_code, headers)


_REPLACEMENT_CHARACTER = "\ufffd"


class _DuplicateKey(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; for a payment that silently picks one amount.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def parse_json_body(raw: bytes | None, max_bytes: int) -> Any:
    """Decode a request body as strict UTF-8 JSON, or raise BadRequest / PayloadTooLarge.

    Refused: an empty body, invalid UTF-8 (so UTF-16 and Latin-1 too, and U+FFFD, which is what
    a gateway makes of bytes that were not UTF-8), NaN and Infinity,
    a key repeated in one object, nesting too deep to decode. One leading UTF-8 byte order
    mark is ignored, as RFC 8259 allows.
    """
    if raw is not None and len(raw) > max_bytes:
        raise PayloadTooLarge(f"the request body is {len(raw)} bytes; the limit is {max_bytes}")
    raw = (raw or b"").removeprefix(codecs.BOM_UTF8)
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("the request body is not valid UTF-8") from exc
    # API Gateway hands the function text, not bytes: what was not UTF-8 arrives as U+FFFD, whatever
    # charset the request declared. A body carrying it was not UTF-8 when it was sent.
    if _REPLACEMENT_CHARACTER in text:
        raise BadRequest("the request body is not valid UTF-8 (send UTF-8 whatever charset you declare)")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicate_keys)
    except _DuplicateKey as exc:
        raise BadRequest("the request body repeats a key inside one JSON object; send each key once") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON (line {exc.lineno}, column {exc.colno})") from exc
    except (ValueError, RecursionError) as exc:
        # NaN/Infinity, integers past Python's digit limit, nesting past the recursion limit
        raise BadRequest("the request body is not valid JSON") from exc


_OPENAPI_FILE = Path(__file__).with_name("openapi.json")


@functools.cache
def openapi_document() -> str:
    """The OpenAPI 3.0 description of this API, read once per container and served as stored."""
    return _OPENAPI_FILE.read_text(encoding="utf-8")
