"""Efí's request and answer shapes to and from the domain's transfers, reports and errors."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...domain.errors import (
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderThrottled,
    ProviderTransientError,
)
from ...domain.money import centavos, reais
from ...domain.payout_status import PayoutEvent
from ...domain.provider import SendReport, Transfer

DUPLICATE_SEND = "id_envio_duplicado"
_EVENTS = {
    "EM_PROCESSAMENTO": PayoutEvent.ACCEPTED,
    "REALIZADO": PayoutEvent.CONFIRMED,
    "NAO_REALIZADO": PayoutEvent.REJECTED,
}
# Without a Retry-After the provider gave no hint; one second keeps a throttled worker from hammering.
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class NotEfiShape(ValueError):
    """A body that is not what Efí's contract says it sends."""


def send_body(transfer: Transfer, payer_key: str, payer_info: str = "") -> dict[str, Any]:
    """PUT /v2/gn/pix/{idEnvio}: valor in reais from integer centavos, exactly."""
    pagador: dict[str, str] = {"chave": payer_key}
    if payer_info:
        pagador["infoPagador"] = payer_info
    return {"valor": reais(transfer.amount_cents), "pagador": pagador, "favorecido": {"chave": transfer.pix_key}}


def report(body: Any, *, duplicate: bool = False) -> SendReport:
    """One send as Efí describes it: a 201 answer, an ask's answer, a list entry or a callback entry."""
    if not isinstance(body, Mapping):
        raise NotEfiShape("a send is described by an object")
    extras: Mapping[str, Any] = body["gnExtras"] if isinstance(body.get("gnExtras"), Mapping) else {}
    send_id = body.get("idEnvio") or extras.get("idEnvio")
    status = body.get("status")
    if not isinstance(send_id, str) or status not in _EVENTS:
        raise NotEfiShape("a send needs idEnvio and a status of EM_PROCESSAMENTO, REALIZADO or NAO_REALIZADO")
    error = extras.get("erro") or body.get("erro") or {}
    if not isinstance(error, Mapping):
        error = {}
    event = _EVENTS[status]
    horario = body.get("horario")
    solicitacao, liquidacao = _times(horario)
    favorecido: Mapping[str, Any] = body["favorecido"] if isinstance(body.get("favorecido"), Mapping) else {}
    valor = body.get("valor")
    try:
        amount = centavos(valor) if valor is not None else None
    except ValueError as exc:
        raise NotEfiShape(str(exc)) from exc
    return SendReport(
        send_id=send_id,
        event=event,
        provider_status=status,
        amount_cents=amount,
        end_to_end_id=_text(body.get("e2eId") or body.get("endToEndId")),
        pix_key=_text(body.get("chave") or favorecido.get("chave")),
        requested_at=solicitacao,
        settled_at=liquidacao,
        failure_code=(_text(error.get("codigo")) or "NAO_REALIZADO") if event is PayoutEvent.REJECTED else None,
        failure_message=_text(error.get("motivo")) if event is PayoutEvent.REJECTED else None,
        duplicate=duplicate,
    )


def callback_reports(body: Any) -> list[SendReport]:
    """A webhook POST: {"pix": [...]}, one entry per send; entries that are not sends are refused."""
    if not isinstance(body, Mapping) or not isinstance(body.get("pix"), list):
        raise NotEfiShape('a callback is {"pix": [...]}')
    return [report(entry) for entry in body["pix"]]


def error_for(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
    """The domain error an unsuccessful answer means (401 and 409 are the client's to handle first)."""
    name, message = _error_fields(body)
    if status == 429:
        return ProviderThrottled("provider is throttling", retry_after(headers.get("retry-after")), name)
    if status in (401, 403):
        # The account's credentials or scopes, not the payout: fail no payout for it.
        return ProviderTransientError(message or f"provider refused our credentials ({status})", name or "unauthorized")
    if 400 <= status < 500 and name:
        return ProviderRejected(message or name, name)
    # 5xx, or a 4xx without Efí's error body (a proxy's, a 408): the send may have arrived. Ask first.
    return ProviderOutcomeUnknown(message or f"provider answered {status}", name or f"http_{status}")


def retry_after(value: str | None, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, Mapping):
        return None, None
    return _text(body.get("nome")), _text(body.get("mensagem") or body.get("detail"))


def _times(horario: Any) -> tuple[datetime | None, datetime | None]:
    if isinstance(horario, str):  # a callback's horario is one timestamp
        return None, _parse_time(horario)
    if not isinstance(horario, Mapping):
        return None, None
    return _parse_time(horario.get("solicitacao")), _parse_time(horario.get("liquidacao"))


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
