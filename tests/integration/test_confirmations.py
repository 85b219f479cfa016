"""The provider's later word by its two doors, the webhook and the poller, through the one guarded transition."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chalicelib import cli, wiring
from chalicelib.domain.send_id import send_id_for
from infra.localpsp.shapes import callback_entry
from tests.integration.psp import eventually
from tests.integration.test_settle_efi import payout, psp, settle, submit  # noqa: F401 - psp is a fixture

SECRET = "s3cret-" + uuid.uuid4().hex
URL = "/providers/efi/webhook"


@pytest.fixture
def accepted(client, psp, monkeypatch):  # noqa: F811 - the imported fixture
    """(payout id, the PSP) for one payout the PSP accepted and settled, whose webhook goes nowhere."""
    monkeypatch.setenv("EFI_WEBHOOK_SECRET", SECRET)
    provider = psp(confirm_delay_ms=0)
    wiring.reset()

    def make(amount: int = 35000) -> tuple[str, Any]:
        [pid] = submit(client, amount)
        assert settle(client, pid) == set()
        assert eventually(lambda: provider.ledger.by_id_envio(send_id_for(pid)).status != "EM_PROCESSAMENTO")
        return pid, provider

    return make


def callback(client: Any, *entries: Any, secret: str | None = SECRET, raw: str | None = None) -> Any:
    query = f"?hmac={secret}&ignorar=" if secret is not None else ""
    body = raw if raw is not None else json.dumps({"pix": list(entries)})
    return client.http.post(URL + query, body=body, headers={"Content-Type": "application/json"})


def entry(provider: Any, pid: str, **changes: Any) -> dict[str, Any]:
    return callback_entry(provider.ledger.by_id_envio(send_id_for(pid))) | changes


def last_line(capsys: Any) -> dict[str, Any]:
    """The command's own output: its last line (the service's log lines go to stdout too)."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def completed_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in body["history"] if h.get("to_status") in ("Completed", "Failed")]


def test_a_callback_completes_the_payout_with_the_providers_word(client, accepted):
    pid, provider = accepted()
    resp = callback(client, entry(provider, pid))
    assert resp.status_code == 200
    assert resp.json_body == {"received": 1, "moved": 1, "refused": 0, "ignored": 0}
    body = payout(client, pid)
    assert body["status"] == "Completed" and "step" not in body
    assert body["provider"]["status"] == "REALIZADO"
    assert completed_events(body)[0]["source"] == "callback"


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
def test_a_call_without_the_secret_is_401_and_changes_nothing(client, accepted, secret):
    pid, provider = accepted()
    resp = callback(client, entry(provider, pid), secret=secret)
    assert resp.status_code == 401
    assert payout(client, pid)["step"] == "awaiting_confirmation"


def test_with_no_secret_configured_every_call_is_refused(client, accepted, monkeypatch):
    pid, provider = accepted()
    monkeypatch.setenv("EFI_WEBHOOK_SECRET", "")
    wiring.reset()
    assert callback(client, entry(provider, pid), secret="").status_code == 401
    assert payout(client, pid)["step"] == "awaiting_confirmation"


def test_duplicated_and_reordered_callbacks_make_one_transition(client, accepted):
    pid, provider = accepted()
    paid = entry(provider, pid)
    late_rejection = entry(provider, pid, status="NAO_REALIZADO", gnExtras={"idEnvio": send_id_for(pid)})
    assert callback(client, paid, paid).json_body["moved"] == 1
    assert callback(client, paid).json_body == {"received": 1, "moved": 0, "refused": 0, "ignored": 0}
    assert callback(client, late_rejection).json_body == {"received": 1, "moved": 0, "refused": 1, "ignored": 0}
    body = payout(client, pid)
    assert body["status"] == "Completed"
    assert len(completed_events(body)) == 1
    assert [h["event"] for h in body["history"]].count("callback_confirmed") == 2


def test_a_rejection_by_callback_fails_the_payout_with_its_spi_code(client, accepted):
    pid, provider = accepted(66601)  # fail:AC03
    sent = entry(provider, pid)
    assert sent["status"] == "NAO_REALIZADO"
    assert callback(client, sent).json_body["moved"] == 1
    body = payout(client, pid)
    assert body["status"] == "Failed" and body["failure"]["code"] == "AC03"
    assert body["provider"]["status"] == "NAO_REALIZADO"


def test_an_unknown_send_id_or_another_amount_is_acknowledged_logged_and_changes_nothing(
    client, accepted, service_logs
):
    pid, provider = accepted()
    stranger = entry(provider, pid, gnExtras={"idEnvio": uuid.uuid4().hex})
    not_ours = entry(provider, pid, gnExtras={"idEnvio": "notapayout"})
    more = entry(provider, pid, valor="350.01")
    resp = callback(client, stranger, not_ours, more)
    assert resp.status_code == 200
    assert resp.json_body == {"received": 3, "moved": 0, "refused": 0, "ignored": 3}
    assert payout(client, pid)["step"] == "awaiting_confirmation"
    errors = [json.loads(line) for line in service_logs.getvalue().splitlines() if '"ERROR"' in line]
    assert sorted(e["problem"] for e in errors) == sorted(
        ["unknown send id", "unknown send id", "amount differs from the payout's"]
    )


@pytest.mark.parametrize(
    "raw", ["{}", '{"pix": {}}', '{"pix": [{"status": "REALIZADO"}]}', "not json", '{"pix": [1]}', ""]
)
def test_a_body_not_in_efis_shape_is_400_and_changes_nothing(client, accepted, raw):
    pid, _ = accepted()
    resp = callback(client, raw=raw)
    assert resp.status_code == 400
    assert payout(client, pid)["step"] == "awaiting_confirmation"


def test_the_webhook_needs_no_api_key_and_other_routes_still_do():
    from app import app

    assert not app.routes[URL]["POST"].api_key_required
    assert app.routes["/payouts/{payout_id}"]["GET"].api_key_required


def test_the_poller_completes_payouts_whose_webhook_was_lost(client, accepted, monkeypatch, capsys):
    paid, _ = accepted()
    rejected, _ = accepted(66601)
    monkeypatch.setenv("POLL_AFTER_SECONDS", "3600")
    wiring.reset()
    assert cli.main(["poll"]) == 0
    assert last_line(capsys)["asked"] == 0  # not awaiting long enough
    assert cli.main(["poll", "--older-than-seconds", "0"]) == 0
    summary = last_line(capsys)
    assert summary["moved"] == 2 and summary["asked"] >= 2
    assert payout(client, paid)["status"] == "Completed"
    body = payout(client, rejected)
    assert body["status"] == "Failed" and body["failure"]["code"] == "AC03"
    assert completed_events(body)[0]["source"] == "poll"
    # A webhook that comes after the poll changes nothing.
    assert callback(client, entry(_, paid)).json_body["moved"] == 0


def test_the_scheduled_poller_runs_only_for_efi(client, accepted, monkeypatch):
    pid, _ = accepted()
    monkeypatch.setenv("POLL_AFTER_SECONDS", "0")
    wiring.reset()
    result = client.lambda_.invoke("poll_confirmations", client.events.generate_cw_event("s", "d", {}, [])).payload
    assert result["moved"] >= 1
    assert payout(client, pid)["status"] == "Completed"
    monkeypatch.setenv("PIX_PROVIDER", "sandbox")
    wiring.reset()
    result = client.lambda_.invoke("poll_confirmations", client.events.generate_cw_event("s", "d", {}, [])).payload
    assert result == {"skipped": "sandbox"}


def test_the_webhook_secret_never_reaches_the_logs(client, accepted, service_logs, capfd):
    pid, provider = accepted()
    callback(client, entry(provider, pid), secret=SECRET + "x")
    callback(client, entry(provider, pid))
    printed = capfd.readouterr()
    assert payout(client, pid)["status"] == "Completed"
    for text in (service_logs.getvalue(), printed.out, printed.err):
        assert SECRET not in text
