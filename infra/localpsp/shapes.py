"""Efí's wire shapes for the local PSP: its error bodies, a send as the API and a callback describe it, money
and times as Efí writes them (decimal reais as strings, RFC 3339)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .ledger import Sent

ID_ENVIO_RE = re.compile(r"[a-zA-Z0-9]{1,35}")
VALOR_RE = re.compile(r"(0|[1-9][0-9]{0,11})\.[0-9]{2}")
REJECTION_STATUS = {"pagamento_negado": 422}
SPI_REASONS = {
    "AC03": "Conta transacional do recebedor inexistente ou inválida",
    "AC06": "Conta transacional do recebedor bloqueada",
    "AC07": "Conta transacional do recebedor encerrada",
}


def describe(sent: Sent) -> dict[str, Any]:
    """A send as GET /v2/gn/pix/enviados/... describes it."""
    horario = {"solicitacao": rfc3339(sent.requested_at)}
    if sent.settled_at is not None:
        horario["liquidacao"] = rfc3339(sent.settled_at)
    body: dict[str, Any] = {
        "endToEndId": sent.e2e_id,
        "idEnvio": sent.id_envio,
        "valor": reais(sent.valor_cents),
        "chave": sent.chave,
        "status": sent.status,
        "horario": horario,
        "favorecido": {"chave": sent.chave},
    }
    if sent.error_code:
        body["gnExtras"] = {"erro": {"codigo": sent.error_code, "origem": "SPI", "motivo": sent.error_reason}}
    return body


def callback_entry(sent: Sent) -> dict[str, Any]:
    """One entry of a webhook POST for a sent Pix."""
    extras: dict[str, Any] = {"idEnvio": sent.id_envio}
    if sent.error_code:
        extras["erro"] = {"codigo": sent.error_code, "origem": "SPI", "motivo": sent.error_reason}
    return {
        "endToEndId": sent.e2e_id,
        "chave": sent.chave,
        "tipo": "SOLICITACAO",
        "status": sent.status,
        "valor": reais(sent.valor_cents),
        "horario": rfc3339(sent.settled_at or sent.requested_at),
        "gnExtras": extras,
    }


def invalid_send(body: Any) -> tuple[str, str] | None:
    if not isinstance(body, dict):
        return "json_invalido", "Corpo da requisição não é um objeto JSON"
    valor = body.get("valor")
    if not isinstance(valor, str) or not VALOR_RE.fullmatch(valor) or cents(valor) == 0:
        return "valor_invalido", "valor deve ser uma string decimal positiva com duas casas"
    for party in ("pagador", "favorecido"):
        value = body.get(party)
        if not isinstance(value, dict) or not isinstance(value.get("chave"), str) or not value["chave"]:
            return "chave_invalida", f"{party}.chave é obrigatória"
    return None


def error(status: int, nome: str, mensagem: str) -> tuple[int, dict[str, Any], dict[str, str], float]:
    return status, {"nome": nome, "mensagem": mensagem}, {}, 0.0


def unauthorised() -> tuple[int, dict[str, Any]]:
    return 401, {"nome": "nao_autorizado", "mensagem": "Token de acesso inválido ou expirado"}


def cents(valor: Any) -> int | None:
    if not isinstance(valor, str) or not VALOR_RE.fullmatch(valor):
        return None
    whole, frac = valor.split(".")
    return int(whole) * 100 + int(frac)


def reais(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time zone is required")
    return moment
