"""The embedded stack paying through the Efí adapter and the local PSP: confirmations by webhook
through API Gateway, by polling when webhooks are lost; every webhook duplicated and reordered.

The stack's default provider is already efi; the module switches it to a PSP whose every webhook comes twice
and late (`make down && PSP_WEBHOOK_MODE=duplicate ... make up`, tests/e2e/conftest.py), so it runs with the
other tests that restart parts of the stack, and the next test that needs the default switches back.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.efi import EfiProvider
from chalicelib.domain.payout_status import PayoutEvent
from chalicelib.domain.send_id import send_id_for
from infra.stacklib import psp_process
from tests.e2e.conftest import ROOT, STACK, StackMode, local_psp_client
from tests.integration.helpers import batch, item, seed_batch, unique

# On top of the default provider (efi): every webhook comes twice, each up to 300 ms late, so they arrive out
# of order; the scheduled poller stays out of the way (the lost-webhook test polls by hand).
DUPLICATED_WEBHOOKS = StackMode(
    "efi, every webhook twice and late",
    (
        ("PSP_WEBHOOK_MODE", "duplicate"),
        ("PSP_WEBHOOK_JITTER_MS", "300"),
        ("PSP_CONFIRM_DELAY_MS", "200"),
        ("POLL_AFTER_SECONDS", "3600"),
    ),
)
pytestmark = [pytest.mark.e2e, pytest.mark.stack_faults, pytest.mark.stack_mode(DUPLICATED_WEBHOOKS)]
DEADLINE = 90.0


@pytest.fixture(scope="module")
def efi_stack(stack: Any, stack_modes: Any) -> Any:
    stack_modes.ensure(DUPLICATED_WEBHOOKS)  # before psp_api reads the PSP's files, new at its every start
    assert psp_process.recorded() == "efi"
    return stack


@pytest.fixture(scope="module")
def psp_api(efi_stack: Any) -> Iterator[EfiProvider]:
    """The PSP's own API, as the stack's functions reach it (.stack/psp_url, .stack/psp/)."""
    client: EfiProvider = local_psp_client()
    yield client
    client.close()


def submit(stack: Any, body: dict[str, Any]) -> list[str]:
    resp = stack.post("/batches", json.dumps(body))
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["payout_ids"]


def payouts_when(stack: Any, payout_ids: list[str], done: Any, deadline: float = DEADLINE) -> list[dict[str, Any]]:
    end = time.monotonic() + deadline
    while True:
        bodies = [stack.get(f"/payouts/{pid}").json() for pid in payout_ids]
        if all(done(b) for b in bodies):
            return bodies
        if time.monotonic() > end:
            raise AssertionError(f"not there in {deadline}s: {[(b['status'], b.get('step')) for b in bodies]}")
        time.sleep(0.5)


def final(body: dict[str, Any]) -> bool:
    return body["status"] in ("Completed", "Failed")


def moves_to_the_end(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in body["history"] if h.get("to_status") in ("Completed", "Failed")]


def listed(psp_api: EfiProvider) -> dict[str, list[str]]:
    """send id -> the statuses the PSP's list endpoint shows for it."""
    now = datetime.now(UTC)
    out: dict[str, list[str]] = {}
    for sent in psp_api.sent_between(now - timedelta(hours=1), now + timedelta(minutes=5)):
        out.setdefault(sent.send_id, []).append(sent.provider_status)
    return out


def test_the_seed_batch_completes_by_webhook_through_api_gateway(efi_stack):
    body = seed_batch()
    body["batch_id"] = unique("efi-seed")
    for entry in body["items"]:
        entry["external_id"] = unique(entry["external_id"])
    ids = submit(efi_stack, body)
    for payout in payouts_when(efi_stack, ids, final):
        assert payout["status"] == "Completed"
        assert payout["provider"]["name"] == "efi" and payout["provider"]["status"] == "REALIZADO"
        assert payout["provider"]["send_id"] == send_id_for(payout["payout_id"])
        [end] = moves_to_the_end(payout)
        assert end["source"] == "callback"
        assert any(h["event"] == "awaiting_confirmation" for h in payout["history"])


def test_duplicated_and_reordered_webhooks_make_one_transition(efi_stack):
    ids = submit(efi_stack, batch(*[item(amount_cents=1000 + i) for i in range(10)], batch_id=unique("efi-dup")))
    bodies = payouts_when(efi_stack, ids, lambda b: final(b) and "callback_confirmed" in str(b["history"]))
    for payout in bodies:
        assert payout["status"] == "Completed"
        assert len(moves_to_the_end(payout)) == 1
        assert [h["event"] for h in payout["history"]].count("callback_confirmed") >= 1  # the second one, heard


def test_a_rejection_by_webhook_ends_failed_with_its_spi_code(efi_stack, psp_api):
    [pid] = submit(efi_stack, batch(item(amount_cents=66601), batch_id=unique("efi-ac03")))
    [payout] = payouts_when(efi_stack, [pid], final)
    assert payout["status"] == "Failed" and payout["failure"]["code"] == "AC03"
    assert payout["provider"]["status"] == "NAO_REALIZADO"
    assert listed(psp_api)[send_id_for(pid)] == ["NAO_REALIZADO"]


def test_with_its_webhook_lost_a_payout_completes_by_polling(efi_stack):
    [pid] = submit(efi_stack, batch(item(amount_cents=66691), batch_id=unique("efi-lost")))  # lost
    payouts_when(efi_stack, [pid], lambda b: b.get("step") == "awaiting_confirmation")
    time.sleep(1.0)  # the PSP settles it 200 ms after accepting; its webhook never comes
    # As an operator runs it: no settings, the embedded stack found through .stack/ (its provider too).
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PIX_PROVIDER") and not k.startswith("EFI_")
    }
    cli = ROOT / ".venv" / "bin" / "pix-payouts"
    done = subprocess.run(
        [str(cli), "poll", "--older-than-seconds", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["moved"] >= 1
    [payout] = payouts_when(efi_stack, [pid], final, deadline=10)
    assert payout["status"] == "Completed"
    assert moves_to_the_end(payout)[0]["source"] == "poll"


def test_a_timeout_after_accepting_leaves_one_transfer_in_the_psps_list(efi_stack, psp_api):
    [pid] = submit(efi_stack, batch(item(amount_cents=66698), batch_id=unique("efi-timeout")))  # timeout:1
    [payout] = payouts_when(efi_stack, [pid], final)
    # Its webhook may complete it before the timed-out send is asked about: either way, one transfer.
    assert payout["status"] == "Completed"
    assert listed(psp_api)[send_id_for(pid)] == ["REALIZADO"]


def test_eight_identical_posts_racing_leave_one_transfer_per_completed_payout(efi_stack, psp_api):
    amounts = [1500, 2500, 3500, 66601, 66602, 66698, 4500, 5500]
    body = json.dumps(batch(*[item(amount_cents=a) for a in amounts], batch_id=unique("efi-race")))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: efi_stack.post("/batches", body), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    ids = answers[0].json()["payout_ids"]
    assert all(a.json()["payout_ids"] == ids for a in answers)
    bodies = payouts_when(efi_stack, ids, final)
    sends = listed(psp_api)
    for payout in bodies:
        statuses = sends.get(send_id_for(payout["payout_id"]), [])
        if payout["status"] == "Completed":
            assert statuses == ["REALIZADO"], payout["payout_id"]
        else:
            assert "REALIZADO" not in statuses, payout["payout_id"]
    assert sorted(b["status"] for b in bodies) == ["Completed"] * 6 + ["Failed"] * 2


def test_the_psp_runs_with_the_stack_and_says_where_it_is(efi_stack, psp_api):
    assert (STACK / "psp_url").read_text().strip() == psp_process.base_url()
    for name in ("client-cert.pem", "client-key.pem", "ca.pem", "credentials.json"):
        assert (STACK / "psp" / name).stat().st_mode & 0o077 == 0
    assert set(json.loads((STACK / "psp" / "credentials.json").read_text())) == {"client_id", "client_secret"}
    assert psp_api.ask(send_id_for("00000000-0000-0000-0000-000000000000")) is None
    assert PayoutEvent.CONFIRMED  # the adapter's words are the domain's


def test_the_webhook_route_refuses_a_call_without_the_secret(efi_stack):
    import requests

    url = efi_stack.url("/providers/efi/webhook")
    body = json.dumps({"pix": []})
    assert requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30).status_code == 401
    wrong = requests.post(
        url + "?hmac=nope&ignorar=", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert wrong.status_code == 401
    secret = psp_process.webhook_secret()
    right = requests.post(
        url + f"?hmac={secret}&ignorar=", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert right.status_code == 200 and right.json() == {"received": 0, "moved": 0, "refused": 0, "ignored": 0}
