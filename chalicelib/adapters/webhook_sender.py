"""Webhook HTTP delivery: Standard Webhooks signatures, a pinned address, a hard timeout, no redirects."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from ..domain.webhooks import Target, UnsafeUrl, check_url
from .dns import resolve
from .webhook_store import Outcome

USER_AGENT = "pix-payouts-webhooks/1"


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<base64>` per secret, space-separated (the new secret first, then one still in its overlap)."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


class WebhookSender:
    """One pooled client per container; each POST goes to the address the SSRF check approved."""

    def __init__(self, timeout_seconds: float, allow_http_loopback: bool) -> None:
        self._allow_http_loopback = allow_http_loopback
        # trust_env=False: no proxy or .netrc from the environment may redirect a delivery.
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_seconds), follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def send(self, url: str, msg_id: str, body: str, secrets: Sequence[str]) -> Outcome:
        started = time.perf_counter()
        try:
            # Again at delivery: the name may resolve elsewhere now than at registration (DNS rebinding).
            target = check_url(url, resolve, allow_http_loopback=self._allow_http_loopback)
        except UnsafeUrl as exc:
            return Outcome(None, f"refused: {exc}", _ms(started))
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(secrets, msg_id, now, body),
        }
        try:
            response = self._client.send(self._pinned(target, headers, body.encode()))
            response.close()
        except httpx.TimeoutException:
            return Outcome(None, "timeout", _ms(started))
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {str(exc)[:200]}", _ms(started))
        return Outcome(response.status_code, None, _ms(started))

    def _pinned(self, target: Target, headers: dict[str, str], body: bytes) -> httpx.Request:
        """A request to the checked address: Host header and TLS name (SNI, certificate) stay the URL's host."""
        url = httpx.URL(target.url)
        request = self._client.build_request(
            "POST",
            url.copy_with(host=target.address),
            headers={**headers, "host": url.netloc.decode("ascii")},
            content=body,
        )
        if target.scheme == "https":
            request.extensions["sni_hostname"] = target.host
        return request


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
