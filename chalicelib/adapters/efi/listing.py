"""Efí's sent-Pix list read leniently for reconciliation: every entry becomes a ProviderSend, odd ones too."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from ...domain.reconciliation import ProviderSend
from .client import EfiProvider


class EfiSends:
    """The sends of one Efí account, as reconciliation asks for them."""

    def __init__(self, provider: EfiProvider) -> None:
        self._provider = provider

    def sends_between(self, since: datetime, until: datetime) -> Iterator[ProviderSend]:
        return (provider_send(entry) for entry in self._provider.entries_between(since, until))

    def send(self, send_id: str) -> ProviderSend | None:
        entry = self._provider.entry(send_id)
        return None if entry is None else provider_send(entry)


def provider_send(entry: Any) -> ProviderSend:
    """One list or ask entry, as written: an odd amount or a missing id is a finding to report, not an error."""
    body: Mapping[str, Any] = entry if isinstance(entry, Mapping) else {}
    extras = _mapping(body.get("gnExtras"))
    return ProviderSend(
        send_id=_text(body.get("idEnvio")) or _text(extras.get("idEnvio")),
        status=_text(body.get("status")),
        # A JSON number has already been through a float: only Efí's string is exact.
        valor=_text(body.get("valor")),
        pix_key=_text(body.get("chave")) or _text(_mapping(body.get("favorecido")).get("chave")),
        end_to_end_id=_text(body.get("endToEndId")) or _text(body.get("e2eId")),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
