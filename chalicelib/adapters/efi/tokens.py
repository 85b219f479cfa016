"""OAuth2 client-credentials tokens, cached per container until shortly before they expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ...domain.errors import ProviderTransientError

# Refresh this long before the provider's expiry, so a token never dies in flight; a short-lived
# token keeps at least nine tenths of its life.
REFRESH_MARGIN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    refresh_at: float  # on the cache's clock


class TokenCache:
    def __init__(
        self,
        http: httpx.Client,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.fetched = 0

    def get(self) -> str:
        """A valid access token; one fetch at a time, however many threads ask."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = self._token = self._fetch()
            return token.value

    def invalidate(self, value: str) -> None:
        """The provider refused this token (401): the next get() fetches a new one, unless one already did."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch(self) -> Token:
        started = self._clock()
        try:
            response = self._http.post("/oauth/token", json={"grant_type": "client_credentials"}, auth=self._auth)
        except httpx.HTTPError as exc:
            raise ProviderTransientError(f"token request failed: {type(exc).__name__}", "token_unavailable") from exc
        if response.status_code != 200:
            raise ProviderTransientError(f"token request answered {response.status_code}", "token_refused")
        try:
            body = response.json()
            value = str(body["access_token"])
            expires_in = float(body.get("expires_in", 0))
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderTransientError("token answer is not OAuth2", "token_refused") from exc
        margin = min(REFRESH_MARGIN_SECONDS, expires_in / 10)
        self.fetched += 1
        return Token(value, started + expires_in - margin)
