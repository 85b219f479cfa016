"""The HTTP API as the CLI sees it: where it is, its key, and every failure turned into one exception type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from ..stack_target import stack_dirs

TIMEOUT_SECONDS = 60


class ClientError(Exception):
    """Something the user should read as a sentence; exit_code says what kind of failure it was."""

    exit_code = 2

    def __init__(self, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.body = body


class Unreachable(ClientError):
    exit_code = 3


class WrongKey(ClientError):
    exit_code = 3


class ApiRefused(ClientError):
    """The API answered 4xx or 5xx; body is its JSON error, when it sent one."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message, body)
        self.status = status


@dataclass(frozen=True)
class ApiConfig:
    url: str
    key: str

    @classmethod
    def from_environment(cls) -> ApiConfig:
        url, key = os.environ.get("PIX_API_URL"), os.environ.get("PIX_API_KEY")
        # The embedded stack (`make up`) writes these in the repository it was started from.
        for folder in stack_dirs():
            if url and key:
                break
            if (folder / "api_url").is_file() and (folder / "api_key").is_file():
                url = url or (folder / "api_url").read_text().strip()
                key = key or (folder / "api_key").read_text().strip()
        if not url or not key:
            raise ClientError(
                "No API to talk to: set PIX_API_URL and PIX_API_KEY, or start the embedded stack with `make up`."
            )
        return cls(url.rstrip("/"), key)


class PayoutsApi:
    def __init__(self, config: ApiConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.session.headers["x-api-key"] = config.key

    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = self._call("POST", "/batches", json=body)
        return resp.status_code, resp.json()

    def batch(self, batch_id: str, **params: Any) -> dict[str, Any]:
        return self._call("GET", f"/batches/{_segment(batch_id)}", params=params).json()  # type: ignore[no-any-return]

    def report(self, batch_id: str, **params: Any) -> dict[str, Any]:
        path = f"/batches/{_segment(batch_id)}/report"
        return self._call("GET", path, params=params).json()  # type: ignore[no-any-return]

    def report_csv(self, batch_id: str) -> str:
        path = f"/batches/{_segment(batch_id)}/report"
        resp = self._call("GET", path, headers={"Accept": "text/csv"})
        resp.encoding = "utf-8"
        return resp.text

    def payout(self, payout_id: str) -> dict[str, Any]:
        return self._call("GET", f"/payouts/{_segment(payout_id)}").json()  # type: ignore[no-any-return]

    def find_payouts(self, **params: Any) -> dict[str, Any]:
        return self._call("GET", "/payouts", params=params).json()  # type: ignore[no-any-return]

    def webhook_endpoints(self) -> list[dict[str, Any]]:
        return self._call("GET", "/webhook-endpoints").json()["webhook_endpoints"]  # type: ignore[no-any-return]

    def add_webhook_endpoint(self, url: str, events: list[str], description: str) -> dict[str, Any]:
        body = {"url": url, "events": events, "description": description}
        return self._call("POST", "/webhook-endpoints", json=body).json()  # type: ignore[no-any-return]

    def remove_webhook_endpoint(self, endpoint_id: str) -> None:
        self._call("DELETE", f"/webhook-endpoints/{_segment(endpoint_id)}")

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.config.url + path
        try:
            resp = self.session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
        except requests.Timeout as exc:
            raise Unreachable(f"The API at {self.config.url} did not answer within {TIMEOUT_SECONDS} s.") from exc
        except requests.RequestException as exc:
            raise Unreachable(
                f"Cannot reach the API at {self.config.url}. Is it running (`make up`) and is PIX_API_URL right?"
            ) from exc
        if resp.status_code == 403:
            raise WrongKey(
                "The API refused the key (403). Check PIX_API_KEY, or .stack/api_key for the embedded stack."
            )
        if resp.status_code >= 400:
            body = _json_or_none(resp)
            error = body.get("error", {}) if isinstance(body, dict) else {}
            message = error.get("message") or f"the API answered {resp.status_code}"
            raise ApiRefused(resp.status_code, f"{message} ({resp.status_code}).", body)
        return resp


def _segment(value: str) -> str:
    return quote(value, safe="")


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
