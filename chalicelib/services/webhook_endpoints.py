"""Webhook endpoint use cases: register, list, read, change, delete, rotate a secret; its deliveries, redeliver."""

from __future__ import annotations

import uuid
from typing import Any

from ..domain.batch_request import Problem
from ..domain.errors import Conflict, NotFound
from ..domain.uuids import is_any_case_uuid
from ..domain.webhooks import (
    InvalidEndpoint,
    Resolver,
    UnsafeUrl,
    check_url,
    event_uuid,
    new_secret,
    parse_endpoint_request,
    public_event_id,
)
from ..observability import logger
from .paging import decode_attempt_cursor, encode_attempt_cursor
from .ports import WebhookEndpoints


def create_endpoint(
    store: WebhookEndpoints, body: object, resolve: Resolver, allow_http_loopback: bool
) -> dict[str, Any]:
    """Register an endpoint; the answer is the only place its signing secret is ever shown."""
    request = parse_endpoint_request(body)
    assert request.url is not None and request.events is not None
    _check(request.url, resolve, allow_http_loopback)
    endpoint = store.create_endpoint(
        str(uuid.uuid4()), request.url, request.events, request.description or "", new_secret()
    )
    logger.info("webhook endpoint created", extra={"endpoint_id": endpoint.endpoint_id, "events": request.events})
    return {**endpoint.to_json(), "secret": endpoint.secret}


def list_endpoints(store: WebhookEndpoints) -> dict[str, Any]:
    return {"webhook_endpoints": [e.to_json() for e in store.endpoints()]}


def get_endpoint(store: WebhookEndpoints, endpoint_id: str) -> dict[str, Any]:
    endpoint = store.endpoint(_endpoint_id(endpoint_id))
    if endpoint is None:
        raise _no_endpoint(endpoint_id)
    return endpoint.to_json()


def update_endpoint(
    store: WebhookEndpoints, endpoint_id: str, body: object, resolve: Resolver, allow_http_loopback: bool
) -> dict[str, Any]:
    key = _endpoint_id(endpoint_id)
    request = parse_endpoint_request(body, partial=True)
    if request.url is not None:
        _check(request.url, resolve, allow_http_loopback)
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("url", request.url),
            ("events", request.events),
            ("description", request.description),
            ("enabled", request.enabled),
        )
        if value is not None
    }
    endpoint = store.update_endpoint(key, changes)
    if endpoint is None:
        raise _no_endpoint(endpoint_id)
    logger.info("webhook endpoint updated", extra={"endpoint_id": key, "fields": sorted(changes)})
    return endpoint.to_json()


def delete_endpoint(store: WebhookEndpoints, endpoint_id: str) -> None:
    key = _endpoint_id(endpoint_id)
    if not store.delete_endpoint(key):
        raise _no_endpoint(endpoint_id)
    logger.info("webhook endpoint deleted", extra={"endpoint_id": key})


def rotate_secret(store: WebhookEndpoints, endpoint_id: str, overlap_seconds: int) -> dict[str, Any]:
    """A new secret; the old one keeps signing beside it for overlap_seconds (two v1 signatures)."""
    key = _endpoint_id(endpoint_id)
    endpoint = store.rotate_secret(key, new_secret(), overlap_seconds)
    if endpoint is None:
        raise _no_endpoint(endpoint_id)
    logger.info("webhook secret rotated", extra={"endpoint_id": key, "overlap_seconds": overlap_seconds})
    return {**endpoint.to_json(), "secret": endpoint.secret, "previous_secret_expires_in_seconds": overlap_seconds}


def list_deliveries(store: WebhookEndpoints, endpoint_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Every attempt to the endpoint, newest first."""
    key = _endpoint_id(endpoint_id)
    if store.endpoint(key) is None:
        raise _no_endpoint(endpoint_id)
    before = decode_attempt_cursor(cursor) if cursor else None
    rows = store.attempts(key, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "deliveries": [_attempt_json(r) for r in rows],
        "next_cursor": encode_attempt_cursor(rows[-1]["attempt_id"]) if more else None,
    }


def redeliver(store: WebhookEndpoints, event_id: str) -> dict[str, Any]:
    """Send the event again, with the same webhook-id, to every enabled endpoint it was sent to."""
    key = event_uuid(event_id)
    exists, relayed = store.event_exists(key) if key else (False, False)
    if key is None or not exists:
        raise NotFound("no such event; event ids look like evt_ followed by 32 hex digits")
    if not relayed:
        raise Conflict("the event has not been sent yet; it will be shortly")
    created = store.redeliver(key)
    logger.info("webhook event redelivered", extra={"event_id": event_id, "deliveries": created})
    return {"event_id": event_id, "deliveries": created}


def _check(url: str, resolve: Resolver, allow_http_loopback: bool) -> None:
    try:
        check_url(url, resolve, allow_http_loopback=allow_http_loopback)
    except UnsafeUrl as exc:
        raise InvalidEndpoint([Problem(None, "url", "unsafe_url", str(exc))]) from exc


def _endpoint_id(text: str) -> str:
    if not is_any_case_uuid(text):
        raise NotFound("no such webhook endpoint; endpoint ids are UUIDs")
    return text.lower()


def _no_endpoint(endpoint_id: str) -> NotFound:
    return NotFound(f"no webhook endpoint {endpoint_id}")


def _attempt_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": public_event_id(row["event_id"]),
        "event_type": row["event_type"],
        "attempted_at": row["attempted_at"].isoformat(),
        "status_code": row["status_code"],
        "error": row["error"],
        "duration_ms": row["duration_ms"],
        "next_retry_at": row["next_retry_at"].isoformat() if row["next_retry_at"] else None,
        "delivery_status": row["delivery_status"],
    }
