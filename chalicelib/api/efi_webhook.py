"""POST /providers/efi/webhook: Efí's callbacks, authenticated by the secret in the URL registered with it."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from chalice.app import Response

from ..adapters.efi.mapping import callback_reports
from ..adapters.transitions import Transitions
from ..observability import count, logger
from ..services.confirmations import receive_callback
from .http import json_response, parse_json_body

# Efí's skip-mTLS mode: the URL registered at Efí carries ?hmac=<secret>&ignorar= and Efí calls it as is.
URL_PARAMETER = "hmac"
MAX_BODY_BYTES = 1024 * 1024


def authenticated(query: Mapping[str, str] | None, secret: str) -> bool:
    """True when the call carries the configured secret; compared in constant time, never with an empty one."""
    given = (query or {}).get(URL_PARAMETER) or ""
    # compare_digest on bytes: its time does not depend on where two values first differ.
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def handle(query: Mapping[str, str] | None, raw_body: bytes | None, secret: str, transitions: Transitions) -> Response:
    if not authenticated(query, secret):
        count("CallbacksUnauthenticated")
        logger.warning("webhook call without the right secret")
        return json_response({"error": {"code": "unauthorized", "message": "unauthenticated"}}, 401)
    body = parse_json_body(raw_body, MAX_BODY_BYTES)
    return json_response(receive_callback(transitions, body, callback_reports), 200)
