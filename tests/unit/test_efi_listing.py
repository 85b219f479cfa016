"""Efí's list and ask entries read leniently for reconciliation: odd entries are kept, as written."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.efi.listing import provider_send
from chalicelib.domain.reconciliation import ProviderSend

SEND_ID = "01a236cf41eb73f1bb7641a2c9c24d4b"


def test_a_list_entry_keeps_the_providers_own_words() -> None:
    entry = {
        "endToEndId": "E09089356202612021251kRmyRhTmGUl",
        "idEnvio": SEND_ID,
        "valor": "350.0",
        "chave": "maria@example.com",
        "status": "REALIZADO",
        "horario": {"solicitacao": "2026-12-02T12:51:21.198Z"},
        "favorecido": {"chave": "other@example.com"},
    }
    assert provider_send(entry) == ProviderSend(
        SEND_ID, "REALIZADO", "350.0", "maria@example.com", "E09089356202612021251kRmyRhTmGUl"
    )


def test_the_id_and_key_may_come_from_gn_extras_and_favorecido() -> None:
    entry = {"e2eId": "E1", "gnExtras": {"idEnvio": SEND_ID}, "favorecido": {"chave": "maria@example.com"}}
    assert provider_send(entry) == ProviderSend(SEND_ID, None, None, "maria@example.com", "E1")


@pytest.mark.parametrize(
    "entry",
    [
        {"idEnvio": SEND_ID, "valor": 350.0, "status": "REALIZADO"},  # a number went through a float: not exact
        {"idEnvio": 42, "valor": "", "status": ["REALIZADO"], "chave": None, "gnExtras": "x", "favorecido": 7},
        "not an object",
        None,
    ],
)
def test_what_is_not_a_string_is_left_out_rather_than_guessed(entry: Any) -> None:
    send = provider_send(entry)
    assert send.valor is None
    assert send.status in (None, "REALIZADO")
