"""One log line per API request: what an operator greps for first (method, route, status, duration)."""

from __future__ import annotations

from chalice.app import Request, Response

from ..observability import logger


def log_request(request: Request, response: Response, seconds: float) -> None:
    """The route is the template (`/batches/{batch_id}`); path parameters are named, never a query string."""
    context = request.context or {}
    fields: dict[str, object] = {
        "method": request.method,
        "route": context.get("resourcePath"),
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 1),
        "request_id": context.get("requestId"),
    }
    for name in ("batch_id", "payout_id"):
        if request.uri_params and name in request.uri_params:
            fields[name] = request.uri_params[name]
    log = logger.error if response.status_code >= 500 else logger.info
    log("request", extra=fields)
