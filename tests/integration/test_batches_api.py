"""POST/GET routes through Chalice's test client, against PostgreSQL and moto's SQS."""

from __future__ import annotations

from typing import Any

from tests.integration.helpers import batch, fan_out, item, message_payouts, post, seed_batch, unique


def queued_payout_ids(aws: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    while True:
        msgs = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return ids
        ids += [pid for m in msgs for pid in message_payouts(m["Body"])]


def test_the_seed_batch_is_accepted_with_one_payout_per_item_and_one_message_each(client, app_env):
    body = seed_batch()
    resp = post(client, body)
    assert resp.status_code == 201
    out = resp.json_body
    assert out["batch_id"] == body["batch_id"]
    assert out["received_items"] == 2
    assert len(set(out["payout_ids"])) == 2
    assert queued_payout_ids(app_env) == []  # nothing for SQS inside the request but the fan-out's wake-up
    fan_out(client, app_env)
    assert sorted(queued_payout_ids(app_env)) == sorted(out["payout_ids"])


def test_replaying_a_batch_returns_the_same_payout_ids_and_enqueues_nothing(client, app_env):
    body = batch(item(), item(), item())
    first = post(client, body)
    fan_out(client, app_env)
    queued_payout_ids(app_env)
    again = post(client, body)
    assert again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json_body["payout_ids"] == first.json_body["payout_ids"]
    fan_out(client, app_env)
    assert queued_payout_ids(app_env) == []


def test_a_replay_with_an_equivalent_spelling_of_the_key_is_still_a_replay(client):
    body = batch(item(pix_key="+55 11 91234-5678"))
    first = post(client, body)
    body["items"][0]["pix_key"] = "+5511912345678"
    again = post(client, body)
    assert again.status_code == 200
    assert again.json_body["payout_ids"] == first.json_body["payout_ids"]


def test_the_same_batch_id_with_other_items_is_a_conflict_naming_the_difference(client, db):
    body = batch(item(), item())
    assert post(client, body).status_code == 201
    body["items"][1]["amount_cents"] += 1
    resp = post(client, body)
    assert resp.status_code == 409
    details = resp.json_body["error"]["details"]
    assert details[0]["index"] == 1 and details[0]["fields"] == ["amount_cents"]
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM payouts WHERE batch_id = %s", (body["batch_id"],))
        assert cur.fetchone()[0] == 2


def test_an_external_id_already_paid_in_another_batch_is_reported_as_a_duplicate_and_not_enqueued(client, app_env):
    shared = item()
    first = post(client, batch(shared))
    fan_out(client, app_env)
    queued_payout_ids(app_env)
    fresh = item()
    resp = post(client, batch(dict(shared), fresh))
    assert resp.status_code == 201
    out = resp.json_body
    assert out["payout_ids"][0] == first.json_body["payout_ids"][0]
    assert out["duplicates"] == [
        {
            "index": 0,
            "external_id": shared["external_id"],
            "payout_id": first.json_body["payout_ids"][0],
            "batch_id": first.json_body["batch_id"],
        }
    ]
    fan_out(client, app_env)
    assert queued_payout_ids(app_env) == [out["payout_ids"][1]]
    page = client.http.get(f"/batches/{out['batch_id']}").json_body
    assert page["summary"]["duplicates"] == 1 and page["summary"]["pending"] == 1
    report = client.http.get(f"/batches/{out['batch_id']}/report").json_body
    assert [d["status"] for d in report["details"]] == ["duplicate", "pending"]


def test_an_external_id_already_accepted_with_other_content_is_a_conflict_and_nothing_is_written(client, db):
    shared = item()
    post(client, batch(shared))
    changed = dict(shared, pix_key="someone.else@example.com")
    body = batch(item(), changed)
    resp = post(client, body)
    assert resp.status_code == 409
    assert resp.json_body["error"]["details"][0]["external_id"] == shared["external_id"]
    assert resp.json_body["error"]["details"][0]["fields"] == ["pix_key"]
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM batches WHERE batch_id = %s", (body["batch_id"],))
        assert cur.fetchone()[0] == 0


def test_an_invalid_batch_lists_every_problem_and_stores_nothing(client, db):
    body = batch(item(), item(amount_cents=0), item(pix_key="123.456.789-00"), item(amount_cents=1.5))
    resp = post(client, body)
    assert resp.status_code == 422
    problems = resp.json_body["error"]["problems"]
    assert {(p["index"], p["field"]) for p in problems} >= {(1, "amount_cents"), (2, "pix_key"), (3, "amount_cents")}
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM batches WHERE batch_id = %s", (body["batch_id"],))
        assert cur.fetchone()[0] == 0


def test_malformed_json_is_a_400(client):
    resp = post(client, None, raw='{"batch_id": "x", "items": [')
    assert resp.status_code == 400
    assert resp.json_body["error"]["code"] == "bad_request"


def test_too_many_items_is_a_413(client):
    body = batch(*[item() for _ in range(10_001)])
    resp = post(client, body)
    assert resp.status_code == 413
    assert "10000" in resp.json_body["error"]["message"].replace(",", "").replace(".", "")


def test_a_batch_pages_with_a_cursor_and_the_summary_covers_the_whole_batch(client):
    body = batch(*[item() for _ in range(7)])
    ids = post(client, body).json_body["payout_ids"]
    seen: list[str] = []
    cursor = None
    while True:
        url = f"/batches/{body['batch_id']}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(url).json_body
        assert page["summary"]["total"] == 7 and page["summary"]["pending"] == 7
        seen += [p["payout_id"] for p in page["payouts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_bad_paging_parameters_are_a_400(client):
    body = batch()
    post(client, body)
    assert client.http.get(f"/batches/{body['batch_id']}?limit=0").status_code == 400
    assert client.http.get(f"/batches/{body['batch_id']}?cursor=nonsense!").status_code == 400


def test_unknown_batches_and_payouts_are_404(client):
    assert client.http.get(f"/batches/{unique('nope')}").status_code == 404
    assert client.http.get(f"/batches/{unique('nope')}/report").status_code == 404
    assert client.http.get("/payouts/6a1d4a8e-8f54-4b8e-9d8e-1f2d3c4b5a69").status_code == 404
    assert client.http.get("/payouts/not-a-uuid").status_code == 404


def test_a_payout_shows_its_history(client):
    body = batch(item())
    pid = post(client, body).json_body["payout_ids"][0]
    payout = client.http.get(f"/payouts/{pid}").json_body
    assert payout["status"] == "Pending"
    assert len(payout["end_to_end_id"]) == 32 and payout["end_to_end_id"].startswith("E")
    assert [h["event"] for h in payout["history"]] == ["created"]


def test_health_checks_the_database(client):
    resp = client.http.get("/health")
    assert resp.status_code == 200 and resp.json_body["database"] == "ok"
