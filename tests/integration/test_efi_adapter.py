"""The Efí adapter against the local Efí-compatible PSP, over real mutual TLS on a loopback port."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from chalicelib import wiring
from chalicelib.adapters.efi import EfiCredentials, EfiProvider
from chalicelib.adapters.efi.mapping import callback_reports
from chalicelib.domain.errors import (
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderThrottled,
    ProviderTransientError,
)
from chalicelib.domain.payout_status import PayoutEvent
from chalicelib.domain.provider import SendReport, Transfer
from chalicelib.domain.send_id import send_id_for
from infra.localpsp import ClientFiles
from tests.integration.psp import PAYER_KEY, efi_env, eventually


class Clock:
    """The token cache's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def transfer(amount_cents: int = 35000, pix_key: str = "u1@email.com") -> Transfer:
    payout_id = str(uuid.uuid4())
    return Transfer("E99999999202510051200" + uuid.uuid4().hex[:11], payout_id, amount_cents, "EMAIL", pix_key)


def listed(provider: EfiProvider, minutes: int = 5) -> list[SendReport]:
    now = datetime.now(UTC)
    return list(provider.sent_between(now - timedelta(minutes=minutes), now + timedelta(minutes=minutes)))


def test_a_send_is_accepted_and_awaits_the_providers_confirmation(start_psp, connect) -> None:
    provider = connect(start_psp())
    payment = transfer(120001)

    answer = provider.send(payment)

    assert answer.event is PayoutEvent.ACCEPTED
    assert (answer.send_id, answer.amount_cents, answer.duplicate) == (send_id_for(payment.payout_id), 120001, False)
    assert answer.end_to_end_id and answer.end_to_end_id != payment.end_to_end_id
    confirmed = eventually(lambda: (known := provider.ask(answer.send_id)) and known.event is PayoutEvent.CONFIRMED)
    assert confirmed


def test_one_token_serves_every_call_until_shortly_before_it_expires(start_psp, connect) -> None:
    psp = start_psp(token_expires_in=3600)
    clock = Clock()
    provider = connect(psp, clock=clock)

    for _ in range(3):
        provider.send(transfer())
    clock.now += 3600 - 61
    provider.ask(send_id_for(str(uuid.uuid4())))
    assert (psp.tokens_issued, provider.tokens.fetched) == (1, 1)

    clock.now += 2  # inside the last minute: refreshed before the provider would refuse it
    provider.send(transfer())
    assert (psp.tokens_issued, provider.tokens.fetched) == (2, 2)


def test_a_token_the_provider_expired_is_refreshed_on_its_401(start_psp, connect) -> None:
    psp = start_psp(token_expires_in=1)
    frozen = Clock()  # the client never sees time pass, so only the provider's 401 can make it refresh
    provider = connect(psp, clock=frozen)
    provider.send(transfer())

    time.sleep(1.1)
    answer = provider.send(transfer())

    assert answer.event is PayoutEvent.ACCEPTED
    assert psp.tokens_issued == 2


def test_a_revoked_token_is_replaced_and_the_call_goes_through(start_psp, connect) -> None:
    psp = start_psp()
    provider = connect(psp)
    provider.send(transfer())

    psp.revoke_tokens()
    payment = transfer()
    provider.send(payment)

    assert psp.tokens_issued == 2
    assert [r.send_id for r in listed(provider)].count(send_id_for(payment.payout_id)) == 1


def test_a_resend_answers_409_and_the_adapter_asks_instead_of_paying_again(start_psp, connect) -> None:
    provider = connect(start_psp())
    payment = transfer()
    first = provider.send(payment)

    again = provider.send(payment)

    assert again.duplicate is True
    assert (again.send_id, again.end_to_end_id) == (first.send_id, first.end_to_end_id)
    assert [r.send_id for r in listed(provider)] == [first.send_id]


def test_429_is_throttled_with_the_providers_retry_after_and_nothing_is_sent(start_psp, connect) -> None:
    provider = connect(start_psp(faults="4242:throttle:1", retry_after_seconds=7))
    payment = transfer(4242)

    with pytest.raises(ProviderThrottled) as caught:
        provider.send(payment)

    assert caught.value.retry_after_seconds == 7
    assert provider.ask(send_id_for(payment.payout_id)) is None
    assert provider.send(payment).event is PayoutEvent.ACCEPTED


def test_a_5xx_leaves_the_outcome_unknown_and_asking_tells_whether_anything_was_sent(start_psp, connect) -> None:
    provider = connect(start_psp(faults="5005:error:2"))
    payment = transfer(5005)

    for _ in range(2):
        with pytest.raises(ProviderOutcomeUnknown) as caught:
            provider.send(payment)
        assert caught.value.provider_code == "erro_aplicacao"
        assert provider.ask(send_id_for(payment.payout_id)) is None

    assert provider.send(payment).event is PayoutEvent.ACCEPTED


@pytest.mark.parametrize(("amount", "code"), [(66602, "chave_invalida"), (66603, "pagamento_negado")])
def test_a_rejection_in_the_request_is_permanent_with_the_providers_code(start_psp, connect, amount, code) -> None:
    provider = connect(start_psp())
    payment = transfer(amount)

    with pytest.raises(ProviderRejected) as caught:
        provider.send(payment)

    assert caught.value.provider_code == code
    assert provider.ask(send_id_for(payment.payout_id)) is None


def test_a_timeout_after_accepting_leaves_exactly_one_transfer(start_psp, connect) -> None:
    provider = connect(start_psp(faults="7007:timeout:1", hang_ms=3000), read_timeout=0.3)
    payment = transfer(7007)
    send_id = send_id_for(payment.payout_id)

    with pytest.raises(ProviderOutcomeUnknown):
        provider.send(payment)
    known = provider.ask(send_id)
    assert known is not None and known.event in (PayoutEvent.ACCEPTED, PayoutEvent.CONFIRMED)
    assert provider.send(payment).duplicate is True

    assert [r.send_id for r in listed(provider)] == [send_id]


def test_eight_identical_sends_racing_pay_once(start_psp, connect) -> None:
    provider = connect(start_psp(latency_ms=20), max_connections=8)
    payment = transfer()
    answers: list[SendReport] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        answers.append(provider.send(payment))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 8
    assert sum(not answer.duplicate for answer in answers) == 1
    assert len({answer.end_to_end_id for answer in answers}) == 1
    assert [r.send_id for r in listed(provider)] == [send_id_for(payment.payout_id)]


def test_concurrent_sends_share_one_token(start_psp, connect) -> None:
    psp = start_psp(latency_ms=20)
    provider = connect(psp, max_connections=4)
    payments = [transfer() for _ in range(12)]
    threads = [threading.Thread(target=provider.send, args=(p,)) for p in payments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert psp.tokens_issued == 1
    assert {r.send_id for r in listed(provider)} == {send_id_for(p.payout_id) for p in payments}


def test_a_client_without_the_certificate_is_refused_at_tls(start_psp) -> None:
    psp = start_psp()
    files = psp.client_files
    assert files is not None
    credentials = json.loads(files.credentials.read_text())

    trusting = ssl.create_default_context(cafile=str(files.ca))
    with httpx.Client(verify=trusting) as anonymous, pytest.raises(httpx.TransportError) as caught:
        anonymous.post(
            f"{psp.base_url}/oauth/token",
            json={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        )

    assert "certificate" in str(caught.value).lower()
    assert psp.tokens_issued == 0


def test_wrong_client_credentials_get_no_token_and_send_nothing(start_psp) -> None:
    psp = start_psp()
    files = psp.client_files
    assert files is not None
    wrong = EfiCredentials("someone", "else", files.cert.read_text(), files.key.read_text(), files.ca.read_text())
    provider = EfiProvider(psp.base_url, wrong, PAYER_KEY)
    try:
        with pytest.raises(ProviderTransientError) as caught:
            provider.send(transfer())
    finally:
        provider.close()

    assert caught.value.provider_code == "token_refused"
    assert psp.tokens_issued == 0


def test_the_list_endpoint_pages_through_the_sends_of_a_time_window(start_psp, connect) -> None:
    provider = connect(start_psp(), page_size=2)
    payments = [transfer(100 + n) for n in range(5)]
    for payment in payments:
        provider.send(payment)

    inside = listed(provider)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    before = list(provider.sent_between(long_ago, long_ago + timedelta(hours=1)))

    assert [r.send_id for r in inside] == [send_id_for(p.payout_id) for p in payments]
    assert [r.amount_cents for r in inside] == [100, 101, 102, 103, 104]
    assert before == []


class Receiver:
    """A local HTTP server that records each webhook POST it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.calls.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def entries(self) -> list[dict[str, Any]]:
        return [entry for _, body in self.calls for entry in body["pix"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_webhook_calls_back_with_efis_body_for_a_payment_and_a_rejection(start_psp, connect, receiver) -> None:
    provider = connect(start_psp(webhook_url=receiver.url + "/efi"))
    paid, refused = transfer(35000), transfer(66601)
    provider.send(paid)
    provider.send(refused)

    assert eventually(lambda: len(receiver.calls) >= 2)
    assert {path for path, _ in receiver.calls} == {"/efi/pix"}
    by_send_id = {entry["gnExtras"]["idEnvio"]: entry for entry in receiver.entries()}
    ok, ac03 = by_send_id[send_id_for(paid.payout_id)], by_send_id[send_id_for(refused.payout_id)]
    assert (ok["tipo"], ok["status"], ok["valor"], ok["chave"]) == (
        "SOLICITACAO",
        "REALIZADO",
        "350.00",
        "u1@email.com",
    )
    assert "erro" not in ok["gnExtras"]
    assert (ac03["status"], ac03["gnExtras"]["erro"]["codigo"]) == ("NAO_REALIZADO", "AC03")
    reports = {r.send_id: r for _, body in receiver.calls for r in callback_reports(body)}
    assert reports[send_id_for(paid.payout_id)].event is PayoutEvent.CONFIRMED
    assert reports[send_id_for(refused.payout_id)].failure_code == "AC03"


def test_a_skip_mtls_webhook_url_is_called_as_registered(start_psp, connect, receiver) -> None:
    provider = connect(start_psp(webhook_url=receiver.url + "/hook?hmac=s3cret&ignorar="))
    provider.send(transfer())

    assert eventually(lambda: receiver.calls)
    assert receiver.calls[0][0] == "/hook?hmac=s3cret&ignorar="


def test_webhooks_by_amount_are_lost_or_duplicated_while_the_ask_still_knows(start_psp, connect, receiver) -> None:
    provider = connect(start_psp(webhook_url=receiver.url))
    lost, twice, plain = transfer(66691), transfer(66690), transfer(35000)
    for payment in (lost, twice, plain):
        provider.send(payment)

    assert eventually(lambda: send_id_for(plain.payout_id) in {e["gnExtras"]["idEnvio"] for e in receiver.entries()})
    assert eventually(lambda: len(receiver.calls) >= 3)
    seen = [entry["gnExtras"]["idEnvio"] for entry in receiver.entries()]
    assert seen.count(send_id_for(twice.payout_id)) == 2
    assert send_id_for(lost.payout_id) not in seen
    known = provider.ask(send_id_for(lost.payout_id))
    assert known is not None and known.event is PayoutEvent.CONFIRMED


def test_with_a_batch_window_callbacks_due_together_come_in_one_post(start_psp, connect, receiver) -> None:
    provider = connect(start_psp(webhook_url=receiver.url, webhook_batch_ms=300))
    payments = [transfer(1000 + i) for i in range(12)]
    for payment in payments:
        provider.send(payment)

    assert eventually(lambda: len(receiver.entries()) >= 12)
    assert sorted(e["gnExtras"]["idEnvio"] for e in receiver.entries()) == sorted(
        send_id_for(p.payout_id) for p in payments
    )
    assert len(receiver.calls) < 12  # several entries a POST, as Efí may send them


def test_by_setting_every_webhook_comes_twice_and_jitter_reorders_them(start_psp, connect, receiver) -> None:
    # Seed 7 draws jitters of 194, 91, 391, 43, 322 and 219 ms: far apart against sends milliseconds apart.
    psp = start_psp(webhook_url=receiver.url, webhook_mode="duplicate", webhook_jitter_ms=600, seed=7)
    provider = connect(psp)
    payments = [transfer() for _ in range(6)]
    for payment in payments:
        provider.send(payment)
    sent = [send_id_for(payment.payout_id) for payment in payments]

    assert eventually(lambda: len(receiver.calls) >= 12)
    arrived = [entry["gnExtras"]["idEnvio"] for entry in receiver.entries()]
    assert sorted(arrived) == sorted(sent * 2)
    first_arrivals = list(dict.fromkeys(arrived))
    assert first_arrivals != sent


def test_credentials_come_from_one_secrets_manager_secret(start_psp, aws) -> None:
    psp = start_psp()
    files = psp.client_files
    assert files is not None
    credentials = json.loads(files.credentials.read_text())
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(
        Name=f"efi-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps(
            {
                **credentials,
                "certificate": files.cert.read_text(),
                "private_key": files.key.read_text(),
                "ca": files.ca.read_text(),
            }
        ),
    )["ARN"]

    loaded = EfiCredentials.from_secret(secrets, arn)
    provider = EfiProvider(psp.base_url, loaded, PAYER_KEY)
    try:
        assert provider.send(transfer()).event is PayoutEvent.ACCEPTED
    finally:
        provider.close()
    assert "client_secret" not in repr(loaded) and credentials["client_secret"] not in repr(loaded)


def test_a_secret_without_the_certificate_is_refused(aws) -> None:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="efi-partial", SecretString=json.dumps({"client_id": "a", "client_secret": "b"}))[
        "ARN"
    ]

    with pytest.raises(ValueError, match="certificate_pem, private_key_pem"):
        EfiCredentials.from_secret(secrets, arn)


def test_pix_provider_efi_wires_the_adapter_from_files_named_by_settings(start_psp, monkeypatch) -> None:
    for name, value in efi_env(start_psp()).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EFI_SECRET_ARN", raising=False)
    wiring.reset()
    try:
        provider = wiring.provider()
        assert isinstance(provider, EfiProvider)
        assert provider is wiring.provider()
        assert provider.send(transfer()).event is PayoutEvent.ACCEPTED
    finally:
        wiring.reset()


def run_psp(state_dir: Path, url_file: Path) -> subprocess.Popen[bytes]:
    """python -m infra.localpsp as the stack will run it: its own process, its URL in a file."""
    url_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.localpsp", "--state-dir", str(state_dir), "--url-file", str(url_file)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
    )
    assert eventually(url_file.exists, seconds=30), "the local PSP did not write its URL"
    return process


def test_the_psp_runs_as_a_module_and_its_ledger_survives_a_restart(tmp_path: Path) -> None:
    state, url_file = tmp_path / "psp", tmp_path / "psp_url"
    payment = transfer()

    for round_ in (1, 2):
        process = run_psp(state, url_file)
        try:
            files = ClientFiles.in_dir(state)
            credentials = EfiCredentials.from_files(
                str(files.cert), str(files.key), str(files.credentials), str(files.ca)
            )
            provider = EfiProvider(url_file.read_text().strip(), credentials, PAYER_KEY)
            try:
                answer = provider.send(payment)
                assert answer.duplicate is (round_ == 2)
                assert [r.send_id for r in listed(provider)] == [send_id_for(payment.payout_id)]
            finally:
                provider.close()
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
