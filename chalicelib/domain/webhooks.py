"""Webhook rules: event types, endpoint requests, which URLs may be called (SSRF), secrets, the retry schedule."""

from __future__ import annotations

import base64
import ipaddress
import random
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .batch_request import Problem
from .errors import ServiceError

EVENT_TYPES = ("batch.accepted", "payout.completed", "payout.failed", "batch.completed")
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
EVENT_ID_PREFIX = "evt_"
_EVENT_ID_RE = re.compile(r"evt_[0-9a-f]{32}")
_ENDPOINT_FIELDS = {"url", "events", "description"}
_PATCH_FIELDS = {"url", "events", "description", "enabled"}

# Addresses no webhook may reach, whatever the settings: cloud metadata services, link-local ranges
# (169.254.169.254 is one), and the IPv6 forms of the same. Private and loopback ranges are refused too,
# except loopback when the embedded stack allows it (WEBHOOKS_ALLOW_HTTP_LOOPBACK).
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("169.254.170.2"),  # ECS task metadata
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
}

Resolver = Callable[[str, int], Sequence[str]]


class InvalidEndpoint(ServiceError):
    """A webhook endpoint request that cannot be registered (422)."""

    code = "invalid_endpoint"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems) or "invalid webhook endpoint")


class UnsafeUrl(ValueError):
    """The URL may not be called; the message names the rule, never a resolved address."""


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    url: str | None
    events: tuple[str, ...] | None
    description: str | None
    enabled: bool | None = None


def _storable(text: str) -> bool:
    """Text PostgreSQL can store: no NUL character, and valid UTF-8 (a JSON "\\ud800" escape is not)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_endpoint_request(body: object, *, partial: bool = False) -> EndpointRequest:
    """A POST body (url and events required) or a PATCH body (any of url, events, description, enabled)."""
    if not isinstance(body, dict):
        raise InvalidEndpoint([Problem(None, "body", "type", "the body must be a JSON object")])
    problems: list[Problem] = []
    allowed = _PATCH_FIELDS if partial else _ENDPOINT_FIELDS
    for key in body:
        if key not in allowed:
            problems.append(Problem(None, str(key)[:64], "unknown_field", f"unknown field; allowed: {sorted(allowed)}"))
    url = body.get("url")
    if "url" not in body and not partial:
        problems.append(Problem(None, "url", "required", "url is required"))
    elif "url" in body and not isinstance(url, str):
        problems.append(Problem(None, "url", "type", "url must be a string"))
    elif isinstance(url, str) and not 1 <= len(url) <= MAX_URL_LENGTH:
        problems.append(Problem(None, "url", "too_long", f"url must be 1 to {MAX_URL_LENGTH} characters"))
    elif isinstance(url, str) and not _storable(url):
        problems.append(Problem(None, "url", "format", "url must not contain NUL or unpaired surrogates"))
    events = body.get("events")
    if "events" not in body and not partial:
        problems.append(Problem(None, "events", "required", "events is required"))
    elif "events" in body:
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            problems.append(Problem(None, "events", "type", "events must be a non-empty list of event types"))
        elif any(e not in EVENT_TYPES for e in events):
            problems.append(Problem(None, "events", "format", "events must be among " + ", ".join(EVENT_TYPES)))
        elif len(set(events)) != len(events):
            problems.append(Problem(None, "events", "duplicate", "events lists a type twice"))
    description = body.get("description")
    if "description" in body and not isinstance(description, str):
        problems.append(Problem(None, "description", "type", "description must be a string"))
    elif isinstance(description, str) and len(description) > MAX_DESCRIPTION_LENGTH:
        problems.append(
            Problem(None, "description", "too_long", f"description must be at most {MAX_DESCRIPTION_LENGTH} chars")
        )
    elif isinstance(description, str) and not _storable(description):
        problems.append(
            Problem(None, "description", "format", "description must not contain NUL or unpaired surrogates")
        )
    enabled = body.get("enabled")
    if "enabled" in body and "enabled" in allowed and not isinstance(enabled, bool):
        problems.append(Problem(None, "enabled", "type", "enabled must be true or false"))
    if partial and not problems and not body:
        problems.append(Problem(None, "body", "required", "give at least one of " + ", ".join(sorted(allowed))))
    if problems:
        raise InvalidEndpoint(problems)
    return EndpointRequest(
        url=url if isinstance(url, str) else None,
        events=tuple(events) if isinstance(events, list) else None,
        description=description if isinstance(description, str) else None,
        enabled=enabled if isinstance(enabled, bool) else None,
    )


@dataclass(frozen=True, slots=True)
class Target:
    """Where a checked URL goes: the address to connect to, and the host name for Host and TLS."""

    scheme: str
    host: str
    port: int
    address: str
    url: str


def check_url(url: str, resolve: Resolver, *, allow_http_loopback: bool) -> Target:
    """The URL's scheme, host and every address it resolves to, against the SSRF rules; raise UnsafeUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("the url is not a valid absolute URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrl("the url must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the url must not carry credentials")
    if parts.fragment:
        raise UnsafeUrl("the url must not have a fragment")
    host = parts.hostname.lower()
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    except (OSError, ValueError) as exc:
        raise UnsafeUrl("the url's host does not resolve") from exc
    if not addresses:
        raise UnsafeUrl("the url's host does not resolve")
    loopback = all(_unmapped(a).is_loopback for a in addresses)
    if scheme == "http" and not (allow_http_loopback and loopback):
        raise UnsafeUrl("the url must use https")
    for address in addresses:
        _check_address(_unmapped(address), allow_http_loopback)
    return Target(scheme, host, port, str(addresses[0]), url)


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> None:
    if address in _METADATA:
        raise UnsafeUrl("the url resolves to a cloud metadata address")
    if address.is_link_local:
        raise UnsafeUrl("the url resolves to a link-local address")
    if address.is_loopback:
        if not allow_loopback:
            raise UnsafeUrl("the url resolves to a loopback address")
        return
    if address.is_private or address.is_multicast or address.is_unspecified or address.is_reserved:
        raise UnsafeUrl("the url resolves to a private or reserved address")
    if not address.is_global:
        raise UnsafeUrl("the url resolves to an address that is not public")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def public_event_id(event_id: str) -> str:
    return EVENT_ID_PREFIX + uuid.UUID(event_id).hex


def event_uuid(public_id: str) -> str | None:
    """The stored id behind evt_<32 hex>, or None when the text is not an event id."""
    if not _EVENT_ID_RE.fullmatch(public_id):
        return None
    return str(uuid.UUID(public_id[len(EVENT_ID_PREFIX) :]))


def parse_schedule(text: str) -> tuple[float, ...]:
    """WEBHOOK_RETRY_SCHEDULE: seconds before each retry, comma-separated."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if not delays or any(d < 0 for d in delays):
        raise ValueError("WEBHOOK_RETRY_SCHEDULE must list one or more non-negative numbers of seconds")
    return delays


def retry_delay(
    schedule: Sequence[float], attempts_made: int, jitter: float, rng: random.Random | None = None
) -> float:
    """Seconds until the next attempt after `attempts_made` failed ones (callers check the schedule's length).

    Each step is spread by +/- `jitter` (a fraction), so endpoints that failed together are not retried
    in one burst.
    """
    base = schedule[min(attempts_made, len(schedule)) - 1]
    spread = (rng or random).uniform(-jitter, jitter)
    return max(0.0, base * (1 + spread))
