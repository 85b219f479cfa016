"""The deployed service over HTTP: API Gateway -> Lambda -> PostgreSQL -> SQS -> settle Lambda."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.helpers import batch, item, seed_batch, unique
from tests.support import hostile_requests

pytestmark = pytest.mark.e2e
SETTLE_DEADLINE = 60.0
JSON = {"Content-Type": "application/json"}


def post(stack: Any, body: Any) -> requests.Response:
    return requests.post(
        stack.url("/batches"), data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30
    )


def wait_until_settled(stack: Any, batch_id: str, deadline: float = SETTLE_DEADLINE) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        page = requests.get(stack.url(f"/batches/{batch_id}"), timeout=10).json()
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


def test_health_answers_through_api_gateway(stack):
    resp = requests.get(stack.url("/health"), timeout=10)
    assert resp.status_code == 200 and resp.json()["database"] == "ok"


def test_the_seed_batch_is_accepted_and_settles_to_completed(stack, db):
    body = seed_batch()
    resp = post(stack, body)
    assert resp.status_code == 201, resp.text
    ids = resp.json()["payout_ids"]
    page = wait_until_settled(stack, body["batch_id"])
    assert page["summary"]["completed"] == 2 and page["status"] == "Completed"
    assert ledger_rows(db, ids) == {pid: 1 for pid in ids}
    report = requests.get(stack.url(f"/batches/{body['batch_id']}/report"), timeout=10).json()
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

    malformed = requests.post(
        stack.url("/batches"), data="{nope", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert malformed.status_code == 400


def test_a_permanent_rejection_ends_failed_with_its_reason(stack, db):
    body = batch(item(amount_cents=66606))
    pid = post(stack, body).json()["payout_ids"][0]
    wait_until_settled(stack, body["batch_id"])
    payout = requests.get(stack.url(f"/payouts/{pid}"), timeout=10).json()
    assert payout["status"] == "Failed"
    assert payout["failure"]["code"] == "AC06"
    assert ledger_rows(db, [pid]) == {}


def test_a_transient_failure_is_retried_and_completes(stack, db):
    body = batch(item(amount_cents=66699))
    pid = post(stack, body).json()["payout_ids"][0]
    wait_until_settled(stack, body["batch_id"])
    payout = requests.get(stack.url(f"/payouts/{pid}"), timeout=10).json()
    assert payout["status"] == "Completed"
    assert payout["attempts"] == 3
    assert ledger_rows(db, [pid]) == {pid: 1}


def test_an_unknown_outcome_is_settled_without_paying_twice(stack, db):
    body = batch(item(amount_cents=66698))
    pid = post(stack, body).json()["payout_ids"][0]
    wait_until_settled(stack, body["batch_id"])
    payout = requests.get(stack.url(f"/payouts/{pid}"), timeout=10).json()
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


def test_a_batch_of_the_maximum_size_is_accepted_and_every_payout_enqueued(stack, db):
    # Last in the module on purpose: its 10,000 settlements run on in the background.
    body = batch(*[item(amount_cents=100 + n % 900) for n in range(10_000)])
    resp = post(stack, body)
    assert resp.status_code == 201, resp.text[:500]
    assert resp.json()["received_items"] == 10_000
    with db.cursor() as cur:
        cur.execute("SELECT item_count, enqueued_at IS NOT NULL FROM batches WHERE batch_id = %s", (body["batch_id"],))
        assert cur.fetchone() == (10_000, True)
    page = requests.get(stack.url(f"/batches/{body['batch_id']}?limit=1000"), timeout=30).json()
    assert page["summary"]["total"] == 10_000 and len(page["payouts"]) == 1000 and page["next_cursor"]
    too_big = post(stack, batch(*[item() for _ in range(10_001)]))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "batch_too_large"


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
    ids=["latin-1 byte in user_id", "duplicate key", "text/plain", "NUL batch id", "superscript limit", "signed uuid"],
)
def test_hostile_requests_through_api_gateway_get_their_4xx_and_store_nothing(
    stack, db, method, path, headers, body, status, code
):
    batch_id, external_id = unique("gw"), unique("gw")
    body = body.replace(b"gw-B", batch_id.encode()).replace(b"gw-E", external_id.encode())
    hostile_requests["gateway"] += 1
    resp = requests.request(method, stack.url(path.replace("gw-B", batch_id)), data=body, headers=headers, timeout=30)
    assert resp.status_code == status, resp.text[:300]
    assert resp.json()["error"]["code"] == code
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM batches WHERE batch_id LIKE %s", (batch_id + "%",))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM payouts WHERE external_id = %s", (external_id,))
        assert cur.fetchone()[0] == 0
