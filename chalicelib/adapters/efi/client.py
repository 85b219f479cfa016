"""The Efí provider: sends by idEnvio, asks, lists; one pooled mutual-TLS client per container."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx

from ...domain.errors import ProviderOutcomeUnknown, ProviderTransientError
from ...domain.payout_status import PayoutEvent
from ...domain.pix_keys import mask_pix_key
from ...domain.provider import ExecutedTransfer, SendReport, Transfer
from ...domain.send_id import send_id_for
from ...observability import logger
from .credentials import EfiCredentials
from .mapping import DUPLICATE_SEND, NotEfiShape, error_for, report, rfc3339, send_body
from .tokens import TokenCache

# Raised before a byte of the request left: nothing can have been sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class EfiProvider:
    """PUT /v2/gn/pix/{idEnvio}, GET /v2/gn/pix/enviados/... over one pooled client with the account's certificate."""

    def __init__(
        self,
        base_url: str,
        credentials: EfiCredentials,
        payer_key: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        max_connections: int = 10,
        page_size: int = 100,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            verify=credentials.ssl_context(),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=read_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._tokens = TokenCache(self._http, credentials.client_id, credentials.client_secret, clock or time.monotonic)
        self._payer_key = payer_key
        self._page_size = page_size

    @property
    def tokens(self) -> TokenCache:
        return self._tokens

    def close(self) -> None:
        self._http.close()

    def send(self, transfer: Transfer) -> SendReport:
        """Ask Efí to pay. Accepted (usually awaiting confirmation) or already sent: a report.

        Raises ProviderRejected (4xx with a code), ProviderThrottled (429), ProviderTransientError
        (nothing sent) or ProviderOutcomeUnknown (5xx, timeout, reset: ask before sending again).
        """
        send_id = send_id_for(transfer.payout_id)
        body = send_body(transfer, self._payer_key)
        response = self._call("PUT", f"/v2/gn/pix/{send_id}", json=body)
        payload = _json(response)
        if response.status_code == 409 and isinstance(payload, dict) and payload.get("nome") == DUPLICATE_SEND:
            # Efí keeps the first send under this idEnvio and will not pay again: its word is the ask's.
            known = self.ask(send_id)
            if known is None:
                raise ProviderOutcomeUnknown("provider says the send exists but cannot find it", DUPLICATE_SEND)
            logger.info("send already known to the provider", extra=_log_fields(transfer, send_id, known))
            return replace(known, duplicate=True)
        if response.status_code in (200, 201):
            try:
                accepted = report(payload)
            except NotEfiShape as exc:
                raise ProviderOutcomeUnknown(f"provider accepted the send with an unreadable answer: {exc}") from exc
            logger.debug("send accepted by the provider", extra=_log_fields(transfer, send_id, accepted))
            return accepted
        error = error_for(response.status_code, payload, response.headers)
        logger.warning(
            "send not accepted by the provider",
            extra={
                "payout_id": transfer.payout_id,
                "send_id": send_id,
                "http_status": response.status_code,
                "provider_code": error.provider_code,
                "error": type(error).__name__,
            },
        )
        raise error

    def ask(self, send_id: str) -> SendReport | None:
        """What Efí knows of the send under idEnvio; None when nothing was sent under it."""
        return self._ask(f"/v2/gn/pix/enviados/id-envio/{send_id}")

    def entry(self, send_id: str) -> Any:
        """The send under idEnvio as Efí wrote it (reconciliation reads it itself); None when there is none."""
        return self._entry(f"/v2/gn/pix/enviados/id-envio/{send_id}")

    def ask_end_to_end(self, end_to_end_id: str) -> SendReport | None:
        """What Efí knows of the send with this end-to-end id (the one it assigned)."""
        return self._ask(f"/v2/gn/pix/enviados/{end_to_end_id}")

    def find(self, end_to_end_id: str) -> ExecutedTransfer | None:
        """The settled transfer with this (provider-assigned) end-to-end id, if the money moved."""
        known = self.ask_end_to_end(end_to_end_id)
        if known is None or known.event is not PayoutEvent.CONFIRMED or known.amount_cents is None:
            return None
        executed_at = known.settled_at or known.requested_at
        if executed_at is None:
            return None
        return ExecutedTransfer(end_to_end_id, known.amount_cents, executed_at)

    def sent_between(self, since: datetime, until: datetime) -> Iterator[SendReport]:
        """Every send Efí lists with its request time in [since, until], page by page."""
        for entry in self.entries_between(since, until):
            try:
                yield report(entry)
            except NotEfiShape as exc:
                raise ProviderOutcomeUnknown(f"provider listed an unreadable send: {exc}") from exc

    def entries_between(self, since: datetime, until: datetime) -> Iterator[Any]:
        """The same list's entries as Efí wrote them (reconciliation reads them itself), page by page."""
        page = 0
        while True:
            params: dict[str, str | int] = {
                "inicio": rfc3339(since),
                "fim": rfc3339(until),
                "paginacao.paginaAtual": page,
                "paginacao.itensPorPagina": self._page_size,
            }
            response = self._call("GET", "/v2/gn/pix/enviados", params=params)
            payload = _json(response)
            if response.status_code != 200 or not isinstance(payload, dict):
                raise error_for(response.status_code, payload, response.headers)
            yield from payload.get("pix") or []
            pages = payload.get("parametros", {}).get("paginacao", {}).get("quantidadeDePaginas", 1)
            page += 1
            if page >= int(pages):
                return

    def _ask(self, path: str) -> SendReport | None:
        payload = self._entry(path)
        if payload is None:
            return None
        try:
            return report(payload)
        except NotEfiShape as exc:
            raise ProviderOutcomeUnknown(f"provider answered an ask unreadably: {exc}") from exc

    def _entry(self, path: str) -> Any:
        response = self._call("GET", path)
        payload = _json(response)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_for(response.status_code, payload, response.headers)
        if payload is None:  # None stands for "nothing sent": an unreadable 200 must not look like it
            raise ProviderOutcomeUnknown("provider answered an ask with no JSON")
        return payload

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authorised call; a 401 gets one new token and one more try."""
        response = self._authorised(method, path, **kwargs)
        if response.status_code == 401:
            response = self._authorised(method, path, **kwargs)
        return response

    def _authorised(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self._tokens.get()
        try:
            response = self._http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except _NOT_SENT as exc:
            raise ProviderTransientError(f"provider unreachable: {type(exc).__name__}", "unreachable") from exc
        except httpx.HTTPError as exc:
            raise ProviderOutcomeUnknown(f"no answer from the provider: {type(exc).__name__}", "no_answer") from exc
        if response.status_code == 401:
            self._tokens.invalidate(token)
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _log_fields(transfer: Transfer, send_id: str, answer: SendReport) -> dict[str, object]:
    return {
        "payout_id": transfer.payout_id,
        "send_id": send_id,
        "provider_end_to_end_id": answer.end_to_end_id,
        "provider_status": answer.provider_status,
        "pix_key": mask_pix_key(transfer.pix_key),
        "amount_cents": transfer.amount_cents,
    }
