"""The deployed service over HTTP: API Gateway -> Lambda -> PostgreSQL -> SQS -> settle Lambda.

On the in-database sandbox provider (`PIX_STACK_PROVIDER=sandbox`): the module counts transfers in its ledger
table and uses its faults by amount (transient counts, crashes of the worker's process before and after paying).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ROOT, SANDBOX
from tests.integration.helpers import batch, item, seed_batch, unique
from tests.support import hostile_requests

pytestmark = [pytest.mark.e2e, pytest.mark.stack_mode(SANDBOX)]
SETTLE_DEADLINE = 60.0
JSON = {"Content-Type": "application/json"}


def post(stack: Any, body: Any) -> requests.Response:
    return stack.post("/batches", json.dumps(body))


def wait_until_settled(stack: Any, batch_id: str, deadline: float = SETTLE_DEADLINE) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        page = stack.get(f"/batches/{batch_id}").json()
        s = page["summary"]
        if s["pending"] == 0 and s["processing"] == 0:
            return page
        if time.monotonic() > end:
            raise AssertionError(f"batch {batch_id} not settled in {deadline}s: {s}")
        time.sleep(0.5)


def ledger_rows(db: Any, payout_ids: list[str]) -> dict[str, int]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT payout_id::text, count(*) FROM sandbox_pix_transfers WHERE payout_id = ANY(%s::uuid[]) GROUP BY 1",
            (payout_ids,),
        )
        return dict(cur.fetchall())


def test_health_answers_through_api_gateway_without_a_key(stack):
    resp = requests.get(stack.url("/health"), timeout=10)
    assert resp.status_code == 200 and resp.json()["database"] == "ok"


def test_every_other_route_needs_the_api_key(stack):
    body = json.dumps(batch(item()))
    no_key = {"Content-Type": "application/json"}
    assert requests.post(stack.url("/batches"), data=body, headers=no_key, timeout=10).status_code == 403
    wrong = {"x-api-key": "not-the-key", "Content-Type": "application/json"}
    assert requests.post(stack.url("/batches"), data=body, headers=wrong, timeout=10).status_code == 403
    for path in ("/batches/x", "/batches/x/report", "/payouts/6a1d4a8e-8f54-4b8e-9d8e-1f2d3c4b5a69"):
        assert requests.get(stack.url(path), timeout=10).status_code == 403
    assert stack.get("/batches/x").status_code == 404  # with the key the request reaches the service


def test_the_seed_batch_is_accepted_and_settles_to_completed(stack, db):
    body = seed_batch()
    resp = post(stack, body)
    assert resp.status_code == 201, resp.text
    ids = resp.json()["payout_ids"]
    page = wait_until_settled(stack, body["batch_id"])
    assert page["summary"]["completed"] == 2 and page["status"] == "Completed"
    assert ledger_rows(db, ids) == {pid: 1 for pid in ids}
    report = stack.get(f"/batches/{body['batch_id']}/report").json()
    assert (report["processed"], report["successful"], report["failed"], report["duplicates"]) == (2, 2, 0, 0)
    assert [d["status"] for d in report["details"]] == ["paid", "paid"]


def test_replay_conflict_duplicate_and_invalid_requests_answer_as_documented(stack):
    body = batch(item(), item())
    first = post(stack, body)
    assert first.status_code == 201
    replay = post(stack, body)
    assert replay.status_code == 200 and replay.json()["payout_ids"] == first.json()["payout_ids"]

    changed = json.loads(json.dumps(body))
    changed["items"][0]["amount_cents"] += 100
    conflict = post(stack, changed)
    assert conflict.status_code == 409 and conflict.json()["error"]["details"][0]["fields"] == ["amount_cents"]

    dup = post(stack, batch(dict(body["items"][1]), item()))
    assert dup.status_code == 201
    assert dup.json()["duplicates"][0]["payout_id"] == first.json()["payout_ids"][1]

    invalid = post(stack, batch(item(pix_key="not a key"), item(amount_cents=-5)))
    assert invalid.status_code == 422
    assert {p["index"] for p in invalid.json()["error"]["problems"]} == {0, 1}

    malformed = stack.post("/batches", "{nope")
    assert malformed.status_code == 400


def test_a_permanent_rejection_ends_failed_with_its_reason(stack, db):
    body = batch(item(amount_cents=66606))
    pid = post(stack, body).json()["payout_ids"][0]
    wait_until_settled(stack, body["batch_id"])
    payout = stack.get(f"/payouts/{pid}").json()
    assert payout["status"] == "Failed"
    assert payout["failure"]["code"] == "AC06"
    assert ledger_rows(db, [pid]) == {}


def test_a_transient_failure_is_retried_and_completes(stack, db):
    body = batch(item(amount_cents=66699))
    pid = post(stack, body).json()["payout_ids"][0]
    wait_until_settled(stack, body["batch_id"])
    payout = stack.get(f"/payouts/{pid}").json()
    assert payout["status"] == "Completed"
    assert payout["attempts"] == 3
    assert ledger_rows(db, [pid]) == {pid: 1}


def test_an_unknown_outcome_is_settled_without_paying_twice(stack, db):
    body = batch(item(amount_cents=66698))
    pid = post(stack, body).json()["payout_ids"][0]
    wait_until_settled(stack, body["batch_id"])
    payout = stack.get(f"/payouts/{pid}").json()
    assert payout["status"] == "Completed"
    assert "recovered" in [h["event"] for h in payout["history"]]
    assert ledger_rows(db, [pid]) == {pid: 1}


def test_eight_identical_posts_racing_create_one_set_of_payouts_paid_once(stack, db):
    body = batch(*[item(amount_cents=1000 + n) for n in range(20)])
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: post(stack, body), range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 7 + [201], [r.text for r in responses]
    id_sets = {tuple(r.json()["payout_ids"]) for r in responses}
    assert len(id_sets) == 1
    ids = list(id_sets.pop())
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM payouts WHERE batch_id = %s", (body["batch_id"],))
        assert cur.fetchone()[0] == 20
    page = wait_until_settled(stack, body["batch_id"])
    assert page["summary"]["completed"] == 20
    assert ledger_rows(db, ids) == {pid: 1 for pid in ids}
    with db.cursor() as cur:  # one fan-out task, written by the one request that created the batch
        cur.execute("SELECT count(*), count(done_at) FROM outbox WHERE aggregate_id = %s", (body["batch_id"],))
        assert cur.fetchone() == (1, 1)


def wait_for_status(stack: Any, pid: str, status: str, deadline: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        payout = stack.get(f"/payouts/{pid}").json()
        if payout["status"] == status:
            return payout
        if time.monotonic() > end:
            raise AssertionError(f"payout {pid} is {payout['status']}, not {status}, after {deadline}s")
        time.sleep(1)


def test_exhausted_provider_attempts_fail_the_payout_and_a_redrive_pays_it_once(stack, db):
    # The sandbox fails this amount transiently 5 times: exactly the provider budget (MAX_PROVIDER_ATTEMPTS).
    body = batch(item(amount_cents=66695))
    pid = post(stack, body).json()["payout_ids"][0]
    failed = wait_for_status(stack, pid, "Failed")
    assert failed["failure"]["code"] == "RETRIES_EXHAUSTED" and failed["attempts"] == 5
    assert ledger_rows(db, [pid]) == {}

    env = subprocess.run(
        [sys.executable, "infra/stack.py", "env"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    exported = (line.removeprefix("export ").split("=", 1) for line in env.splitlines())
    cli_env = {**os.environ, **{k: (shlex.split(v) or [""])[0] for k, v in exported}}
    out = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "dlq-redrive", "--batch-id", body["batch_id"]],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1])["reopened"] == 1

    done = wait_for_status(stack, pid, "Completed")
    assert done["attempts"] == 6
    assert [h["event"] for h in done["history"]].count("redriven") == 1
    assert ledger_rows(db, [pid]) == {pid: 1}


def test_across_every_scenario_above_no_payout_was_paid_twice_or_lost(stack, db):
    """Runs after the scenarios in this module: a whole-ledger check, printed for the record."""
    with db.cursor() as cur:
        # One pass over each table (hash joins): the dev database can hold many runs' payouts.
        cur.execute(
            "WITH t AS (SELECT payout_id, count(*) AS n FROM sandbox_pix_transfers GROUP BY payout_id)"
            " SELECT count(*) FILTER (WHERE t.n > 1),"
            " count(*) FILTER (WHERE p.status = 'Completed' AND coalesce(t.n, 0) <> 1),"
            " count(*) FILTER (WHERE p.status = 'Failed' AND t.n IS NOT NULL),"
            " count(*) FILTER (WHERE p.status IN ('Pending', 'Processing') AND p.created_at >= to_timestamp(%s)),"
            " count(*), count(*) FILTER (WHERE p.status = 'Completed')"
            # The sandbox's own ledger: payouts settled through Efí (the stack's default provider, and
            # test_efi_end_to_end.py, the settle_latency bench) are checked against the PSP's list there.
            " FROM payouts p LEFT JOIN t USING (payout_id) WHERE coalesce(p.provider, 'sandbox') = 'sandbox'",
            (stack.started_at,),
        )
        paid_twice, completed_not_paid_once, failed_but_paid, stuck, total, completed = cur.fetchone()
    print(
        f"\nledger check: {total} payouts, {completed} completed, paid twice {paid_twice}, "
        f"completed without exactly one transfer {completed_not_paid_once}, failed but paid {failed_but_paid}, "
        f"left open by this run {stuck}"
    )
    assert (paid_twice, completed_not_paid_once, failed_but_paid, stuck) == (0, 0, 0, 0)


def test_a_batch_of_the_maximum_size_is_accepted_and_every_payout_paid_exactly_once(stack, db):
    body = batch(*[item(amount_cents=100 + n % 900) for n in range(10_000)])
    resp = post(stack, body)
    assert resp.status_code == 201, resp.text[:500]
    assert resp.json()["received_items"] == 10_000
    with db.cursor() as cur:  # committed with its fan-out tasks, four ranges sent side by side
        cur.execute(
            "SELECT b.item_count, count(o.*), sum((o.payload->>'end')::int - (o.payload->>'start')::int)"
            " FROM batches b JOIN outbox o ON o.aggregate_id = b.batch_id WHERE b.batch_id = %s GROUP BY 1",
            (body["batch_id"],),
        )
        assert cur.fetchone() == (10_000, 4, 10_000)
    page = stack.get(f"/batches/{body['batch_id']}?limit=1000").json()
    assert page["summary"]["total"] == 10_000 and len(page["payouts"]) == 1000 and page["next_cursor"]
    too_big = post(stack, batch(*[item() for _ in range(10_001)]))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "batch_too_large"
    settled = wait_until_settled(stack, body["batch_id"], deadline=240)
    assert settled["summary"]["completed"] == 10_000
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT t.payout_id) FROM sandbox_pix_transfers t"
            " JOIN payouts p USING (payout_id) WHERE p.batch_id = %s",
            (body["batch_id"],),
        )
        assert cur.fetchone() == (10_000, 10_000)
        cur.execute("SELECT count(*) FROM outbox WHERE aggregate_id = %s AND done_at IS NULL", (body["batch_id"],))
        assert cur.fetchone() == (0,)


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [
        # API Gateway hands Lambda the body as text: bytes that are not UTF-8 arrive as U+FFFD.
        (
            "POST",
            "/batches",
            JSON,
            b'{"batch_id":"gw-B","items":[{"external_id":"gw-E","user_id":"Jos\xe9",'
            b'"amount_cents":100,"pix_key":"a@example.com"}]}',
            400,
            "bad_request",
        ),
        (
            "POST",
            "/batches",
            {"Content-Type": "application/json; charset=windows-1252"},
            '{"batch_id":"gw-B","items":[{"external_id":"gw-E","user_id":"Jo\u00e3o \u2013 caf\u00e9",'
            '"amount_cents":100,"pix_key":"a@example.com"}]}'.encode("cp1252"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/batches",
            JSON,
            b'{"batch_id":"gw-B","items":[{"external_id":"gw-E","user_id":"u",'
            b'"amount_cents":100,"pix_key":"+1 415 555 2671"}]}',
            422,
            "invalid_batch",
        ),
        (
            "POST",
            "/batches",
            JSON,
            b'{"batch_id":"gw-B","items":[{"external_id":"gw-E","user_id":"u",'
            b'"amount_cents":100,"pix_key":"529/982/247/25"}]}',
            422,
            "invalid_batch",
        ),
        ("POST", "/batches", JSON, b'{"batch_id":"gw-B","batch_id":"gw-B2","items":[]}', 400, "bad_request"),
        (
            "POST",
            "/batches",
            {"Content-Type": "text/plain"},
            b'{"batch_id":"gw-B","items":[]}',
            415,
            "unsupported_media_type",
        ),
        ("GET", "/batches/%00", {}, b"", 404, "not_found"),
        ("GET", "/batches/gw-B?limit=%C2%B2", {}, b"", 400, "bad_request"),
        ("GET", "/payouts/%2B1111111-1111-1111-1111-111111111111", {}, b"", 404, "not_found"),
    ],
    ids=[
        "latin-1 byte in user_id",
        "cp1252 declared as windows-1252",
        "phone outside Brazil",
        "CPF with slashes",
        "duplicate key",
        "text/plain",
        "NUL batch id",
        "superscript limit",
        "signed uuid",
    ],
)
def test_hostile_requests_through_api_gateway_get_their_4xx_and_store_nothing(
    stack, db, method, path, headers, body, status, code
):
    batch_id, external_id = unique("gw"), unique("gw")
    body = body.replace(b"gw-B", batch_id.encode()).replace(b"gw-E", external_id.encode())
    hostile_requests["gateway"] += 1
    headers = {**headers, "x-api-key": stack.api_key}
    resp = requests.request(method, stack.url(path.replace("gw-B", batch_id)), data=body, headers=headers, timeout=30)
    assert resp.status_code == status, resp.text[:300]
    assert resp.json()["error"]["code"] == code
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM batches WHERE batch_id LIKE %s", (batch_id + "%",))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM payouts WHERE external_id = %s", (external_id,))
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize(("amount", "paid_before_crash"), [(66692, True), (66693, False)])
def test_a_settle_worker_whose_process_ends_mid_payout_is_finished_by_the_next_delivery_paying_once(
    stack, db, amount, paid_before_crash
):
    from infra.stacklib.layout import MINISTACK_LOG

    body = batch(item(amount_cents=amount))
    [pid] = post(stack, body).json()["payout_ids"]
    # The crashed invocation's message comes back after the queue's visibility timeout (README: When things fail).
    page = wait_until_settled(stack, body["batch_id"], deadline=240.0)
    assert [p["status"] for p in page["payouts"]] == ["Completed"]
    assert ledger_rows(db, [pid]) == {pid: 1}
    history = [h["event"] for h in stack.get(f"/payouts/{pid}").json()["history"]]
    assert ("recovered" in history) == paid_before_crash
    assert "simulated crash: the sandbox ends this worker process" in MINISTACK_LOG.read_text(errors="replace")
