"""Efí's answers and callbacks mapped to the domain's reports and errors (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.adapters.efi.mapping import (
    DEFAULT_RETRY_AFTER_SECONDS,
    NotEfiShape,
    callback_reports,
    error_for,
    report,
    retry_after,
    send_body,
)
from chalicelib.domain.errors import (
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderThrottled,
    ProviderTransientError,
)
from chalicelib.domain.payout_status import PayoutEvent
from chalicelib.domain.provider import Transfer

SEND_ID = "0192f1c2a3b47c0d8e9fa0b1c2d3e4f5"


def test_the_send_body_carries_exact_reais_and_both_keys() -> None:
    transfer = Transfer("E" + "0" * 31, "0192f1c2-a3b4-7c0d-8e9f-a0b1c2d3e4f5", 35001, "EMAIL", "u1@email.com")

    assert send_body(transfer, "payer@pix.example", "lote 1") == {
        "valor": "350.01",
        "pagador": {"chave": "payer@pix.example", "infoPagador": "lote 1"},
        "favorecido": {"chave": "u1@email.com"},
    }


def test_a_201_is_accepted_awaiting_confirmation_with_the_providers_end_to_end_id() -> None:
    answer = report(
        {
            "idEnvio": SEND_ID,
            "e2eId": "E09089356202510051200abcdefghijk",
            "valor": "350.00",
            "horario": {"solicitacao": "2025-10-05T12:00:00.000Z"},
            "status": "EM_PROCESSAMENTO",
        }
    )

    assert answer.event is PayoutEvent.ACCEPTED
    assert (answer.send_id, answer.end_to_end_id, answer.amount_cents) == (
        SEND_ID,
        "E09089356202510051200abcdefghijk",
        35000,
    )
    assert answer.requested_at == datetime(2025, 10, 5, 12, tzinfo=UTC)


def test_an_ask_that_found_a_settled_send_is_a_confirmation() -> None:
    answer = report(
        {
            "endToEndId": "E1",
            "idEnvio": SEND_ID,
            "valor": "0.01",
            "chave": "u1@email.com",
            "status": "REALIZADO",
            "horario": {"solicitacao": "2025-10-05T12:00:00Z", "liquidacao": "2025-10-05T12:00:02Z"},
        }
    )

    assert (answer.event, answer.amount_cents, answer.pix_key) == (PayoutEvent.CONFIRMED, 1, "u1@email.com")
    assert answer.settled_at == datetime(2025, 10, 5, 12, 0, 2, tzinfo=UTC)
    assert answer.failure_code is None


def test_a_webhook_rejection_carries_the_spi_code() -> None:
    [entry] = callback_reports(
        {
            "pix": [
                {
                    "endToEndId": "E1",
                    "chave": "u1@email.com",
                    "tipo": "SOLICITACAO",
                    "status": "NAO_REALIZADO",
                    "valor": "666.01",
                    "horario": "2025-10-05T12:00:02.000Z",
                    "gnExtras": {"idEnvio": SEND_ID, "erro": {"codigo": "AC03", "origem": "SPI", "motivo": "conta"}},
                }
            ]
        }
    )

    assert (entry.event, entry.send_id, entry.failure_code, entry.failure_message) == (
        PayoutEvent.REJECTED,
        SEND_ID,
        "AC03",
        "conta",
    )
    assert entry.settled_at == datetime(2025, 10, 5, 12, 0, 2, tzinfo=UTC)


def test_one_callback_may_carry_several_sends() -> None:
    entries = callback_reports(
        {"pix": [{"status": "REALIZADO", "valor": "1.00", "gnExtras": {"idEnvio": f"id{n}"}} for n in range(3)]}
    )

    assert [entry.send_id for entry in entries] == ["id0", "id1", "id2"]


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"pix": {}},
        {"pix": [{"status": "REALIZADO"}]},
        {"pix": [{"status": "PAGO", "gnExtras": {"idEnvio": SEND_ID}}]},
        {"pix": [{"status": "REALIZADO", "valor": 350.0, "gnExtras": {"idEnvio": SEND_ID}}]},
        {"pix": [{"status": "REALIZADO", "valor": "350", "gnExtras": {"idEnvio": SEND_ID}}]},
    ],
)
def test_a_body_that_is_not_efis_shape_is_refused(body: object) -> None:
    with pytest.raises(NotEfiShape):
        callback_reports(body)


@pytest.mark.parametrize(
    ("status", "nome"),
    [(400, "chave_invalida"), (400, "valor_invalido"), (400, "documento_bloqueado"), (422, "pagamento_negado")],
)
def test_a_4xx_with_a_name_is_a_permanent_rejection_with_that_code(status: int, nome: str) -> None:
    error = error_for(status, {"nome": nome, "mensagem": "recusado"}, {})

    assert isinstance(error, ProviderRejected)
    assert (error.provider_code, str(error)) == (nome, "recusado")


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, {"nome": "erro_aplicacao", "mensagem": "x"}), (502, None), (503, "<html>"), (400, None), (408, {})],
)
def test_a_5xx_or_an_unexplained_4xx_leaves_the_outcome_unknown(status: int, body: object) -> None:
    assert isinstance(error_for(status, body, {}), ProviderOutcomeUnknown)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_no_payout(status: int) -> None:
    error = error_for(status, {"nome": "acesso_negado"}, {})

    assert isinstance(error, ProviderTransientError)
    assert not isinstance(error, ProviderRejected)


def test_429_is_throttling_with_the_providers_pause() -> None:
    error = error_for(429, {"nome": "limite_excedido"}, {"retry-after": "7"})

    assert isinstance(error, ProviderThrottled)
    assert error.retry_after_seconds == 7


def test_retry_after_may_be_an_http_date() -> None:
    now = datetime(2025, 10, 5, 12, 0, 0, tzinfo=UTC)

    assert retry_after("Sun, 05 Oct 2025 12:00:30 GMT", now) == 30
    assert retry_after("Sun, 05 Oct 2025 11:00:00 GMT", now) == 0


@pytest.mark.parametrize("value", [None, "", "soon"])
def test_a_missing_or_unreadable_retry_after_waits_the_default(value: str | None) -> None:
    assert retry_after(value) == DEFAULT_RETRY_AFTER_SECONDS
