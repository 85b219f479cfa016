"""Settling through Efí's API (the local PSP over mutual TLS): accepted is not paid, unknown is asked first."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain.send_id import send_id_for
from chalicelib.services.settlement import RetryLater, Settled, settle_payouts
from tests.integration.helpers import batch, item, post, sqs_event
from tests.integration.psp import efi_env


@pytest.fixture
def psp(start_psp, app_env, monkeypatch):
    """The service pointed at a local PSP that confirms nothing by itself within a test (no webhook URL)."""

    def start(**settings: Any) -> Any:
        settings.setdefault("confirm_delay_ms", 60_000)
        started = start_psp(**settings)
        for name, value in efi_env(started).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("EFI_READ_TIMEOUT_SECONDS", "1")
        wiring.reset()
        return started

    return start


def submit(client: Any, *amounts: int) -> list[str]:
    resp = post(client, batch(*[item(amount_cents=a, pix_key=f"{uuid.uuid4().hex[:8]}@x.com") for a in amounts]))
    assert resp.status_code == 201
    return resp.json_body["payout_ids"]


def settle(client: Any, *payout_ids: str, deadline: bool = True) -> set[str]:
    """Hand the payouts' messages to the settle function; the payouts whose message comes back.

    deadline=False calls the handler with no Lambda context, so with no deadline: the test client's
    context gives every invocation 3 s, less than one Efí call may take (connect + read timeout)."""
    event = sqs_event(*payout_ids)
    by_message = {r["messageId"]: pid for r, pid in zip(event["Records"], payout_ids, strict=True)}
    if deadline:
        result = client.lambda_.invoke("settle", event).payload
    else:
        from chalicelib.worker import handle_settle_event

        result = handle_settle_event(event, None)
    return {by_message[f["itemIdentifier"]] for f in result["batchItemFailures"]}


def payout(client: Any, pid: str) -> dict[str, Any]:
    return client.http.get(f"/payouts/{pid}").json_body


def sent(psp: Any, pid: str) -> Any:
    return psp.ledger.by_id_envio(send_id_for(pid))


def test_an_accepted_send_awaits_confirmation_and_is_not_completed(client, psp):
    provider = psp()
    [pid] = submit(client, 35000)
    assert settle(client, pid) == set()
    body = payout(client, pid)
    assert (body["status"], body["step"]) == ("Processing", "awaiting_confirmation")
    record = sent(provider, pid)
    assert body["provider"] == {
        "name": "efi",
        "send_id": send_id_for(pid),
        "end_to_end_id": record.e2e_id,
        "status": "EM_PROCESSAMENTO",
    }
    assert body["history"][-1]["event"] == "awaiting_confirmation"
    assert body["history"][-1]["source"] == "send"


def test_a_redelivered_message_for_an_accepted_payout_sends_nothing(client, psp):
    provider = psp()
    [pid] = submit(client, 35000)
    settle(client, pid)
    attempts = provider.ledger.count_attempt(send_id_for(pid))
    assert settle(client, pid) == set()
    assert provider.ledger.count_attempt(send_id_for(pid)) == attempts + 1  # only this test's own count
    assert payout(client, pid)["step"] == "awaiting_confirmation"


def test_a_5xx_leaves_the_payout_uncertain_and_the_next_attempt_asks_before_sending(client, psp):
    provider = psp()
    [pid] = submit(client, 66699)  # error:2
    assert settle(client, pid) == {pid}
    assert payout(client, pid)["step"] == "uncertain"
    assert sent(provider, pid) is None
    assert settle(client, pid) == {pid}
    assert settle(client, pid) == set()
    body = payout(client, pid)
    assert body["step"] == "awaiting_confirmation"
    events = [(h["event"], h.get("source")) for h in body["history"]]
    assert ("ask_nothing_sent", "ask") in events or ("not_sent", "ask") in events


def test_a_timeout_after_accepting_is_resolved_by_asking_and_pays_once(client, psp):
    provider = psp(hang_ms=3000)
    [pid] = submit(client, 66698)  # timeout:1 — executed, then the answer comes too late
    assert settle(client, pid) == {pid}
    assert payout(client, pid)["step"] == "uncertain"
    assert sent(provider, pid) is not None
    assert settle(client, pid) == set()
    body = payout(client, pid)
    assert body["step"] == "awaiting_confirmation"
    assert body["history"][-1]["source"] == "ask"
    assert provider.ledger.between(*window(), 0, 100)[0] >= 1
    assert [s.id_envio for s in provider.ledger.between(*window(), 0, 1000)[1]].count(send_id_for(pid)) == 1


def window() -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    return now - timedelta(minutes=5), now + timedelta(minutes=5)


@pytest.mark.parametrize(("amount", "code"), [(66602, "chave_invalida"), (66603, "pagamento_negado")])
def test_a_rejection_in_the_request_fails_the_payout_with_the_providers_code(client, psp, amount, code):
    psp()
    [pid] = submit(client, amount)
    assert settle(client, pid) == set()
    body = payout(client, pid)
    assert body["status"] == "Failed" and body["failure"]["code"] == code


def test_a_send_the_provider_already_has_is_asked_not_paid_again(client, psp, connect):
    provider = psp()
    [pid] = submit(client, 35000)
    wiring.provider().send(wiring.repository().get_payout(pid) and _transfer(pid))
    assert settle(client, pid) == set()
    body = payout(client, pid)
    assert body["step"] == "awaiting_confirmation"
    assert body["history"][-1]["detail"] == "already sent under this id"
    assert [s.id_envio for s in provider.ledger.between(*window(), 0, 1000)[1]].count(send_id_for(pid)) == 1


def _transfer(pid: str) -> Any:
    from chalicelib.domain.provider import Transfer

    p = wiring.repository().get_payout(pid)
    assert p is not None
    return Transfer(p.end_to_end_id, p.payout_id, p.amount_cents, p.pix_key_type, p.pix_key)


def test_throttling_honours_retry_after_and_spends_no_provider_attempt(client, psp):
    psp(retry_after_seconds=7)
    [pid] = submit(client, 66696)  # throttle:1
    s = wiring.settings()
    outcomes = settle_payouts(
        wiring.repository(),
        wiring.transitions(),
        wiring.provider(),
        [pid],
        s.max_provider_attempts,
        provider_name="efi",
    )
    outcome = outcomes[pid]
    assert isinstance(outcome, RetryLater) and outcome.retry_after == 7
    assert wiring.repository().get_payout(pid).provider_failures == 0
    again = settle_payouts(
        wiring.repository(),
        wiring.transitions(),
        wiring.provider(),
        [pid],
        s.max_provider_attempts,
        provider_name="efi",
    )
    assert again[pid] == Settled(pid, "accepted", 2)


def test_sends_of_one_invocation_overlap_under_the_concurrency_setting(client, psp, monkeypatch):
    provider = psp(latency_ms=300)
    monkeypatch.setenv("PROVIDER_CONCURRENCY", "10")
    wiring.reset()
    ids = submit(client, *[1000 + i for i in range(10)])
    import time

    started = time.perf_counter()
    assert settle(client, *ids) == set()
    overlapped = time.perf_counter() - started
    monkeypatch.setenv("PROVIDER_CONCURRENCY", "1")
    wiring.reset()
    more = submit(client, *[2000 + i for i in range(10)])
    started = time.perf_counter()
    assert settle(client, *more, deadline=False) == set()  # ten calls one after another outlast the test's 3 s
    serial = time.perf_counter() - started
    # Ten calls of 300 ms one after another against side by side, measured in the same run.
    assert serial > 3 * overlapped
    assert all(sent(provider, pid) is not None for pid in ids + more)


def test_a_dead_letter_whose_send_efi_holds_is_never_failed(client, psp, db):
    provider = psp(hang_ms=3000)
    [pid] = submit(client, 66698)  # timeout:1 — executed, the answer too late: uncertain
    assert settle(client, pid) == {pid}
    with db.cursor() as cur:  # as if every provider attempt had been spent on unknown outcomes
        cur.execute(
            "UPDATE payouts SET provider_failures = 5, updated_at = now() - interval '1 hour' WHERE payout_id = %s",
            (pid,),
        )
    assert client.lambda_.invoke("dead_letters", sqs_event(pid)).payload == {"batchItemFailures": []}
    body = payout(client, pid)
    assert (body["status"], body.get("step")) == ("Processing", "awaiting_confirmation")
    assert body["history"][-1]["source"] == "ask"
    assert sent(provider, pid) is not None


def test_a_dead_letter_efi_knows_nothing_of_fails_once_the_budget_is_spent(client, psp, db):
    psp()
    [pid] = submit(client, 66699)  # error:2 — nothing sent
    assert settle(client, pid) == {pid}
    with db.cursor() as cur:
        cur.execute(
            "UPDATE payouts SET provider_failures = 5, updated_at = now() - interval '1 hour' WHERE payout_id = %s",
            (pid,),
        )
    assert client.lambda_.invoke("dead_letters", sqs_event(pid)).payload == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Failed" and body["failure"]["code"] == "RETRIES_EXHAUSTED"
