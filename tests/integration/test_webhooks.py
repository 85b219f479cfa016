"""Webhooks against real PostgreSQL, moto's SQS and a real HTTP receiver that verifies every signature."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from chalicelib import wiring
from tests.integration.conftest import queue_with_dlq
from tests.integration.helpers import batch, fan_out, item, post, seed_batch, service_output, sqs_records
from tests.integration.test_fanout import messages, settle_each_message
from tests.webhook_receiver import Receiver

JSON = {"Content-Type": "application/json"}
ALL_TYPES = ["batch.accepted", "payout.completed", "payout.failed", "batch.completed"]


@pytest.fixture
def hooks(
    client: Any, app_env: dict[str, Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The webhook queue in moto, a short retry schedule, local http allowed; endpoints removed afterwards."""
    url, _dlq = queue_with_dlq(app_env["sqs"], "webhook-deliveries", visibility=180)
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", url)
    monkeypatch.setenv("WEBHOOKS_ALLOW_HTTP_LOOPBACK", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0,0,0")
    monkeypatch.setenv("WEBHOOK_RETRY_JITTER", "0")
    monkeypatch.setenv("WEBHOOK_RELAY_RUN_SECONDS", "0")
    # Chalice's test context gives every invocation 3 s: POSTs start only while one timeout still fits.
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "1")
    wiring.reset()
    receivers: list[Receiver] = []
    yield {**app_env, "webhook_queue_url": url, "receivers": receivers}
    for r in receivers:
        r.close()
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DELETE FROM webhook_endpoints")
    conn.close()


def app_env_database_url() -> str:
    return wiring.settings().database_url


def receiver(hooks: dict[str, Any], **kw: Any) -> Receiver:
    r = Receiver(**kw)
    hooks["receivers"].append(r)
    return r


def register(client: Any, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body = {"url": url, "events": events or ["batch.accepted", "payout.completed", "payout.failed", "batch.completed"]}
    resp = client.http.post("/webhook-endpoints", headers=JSON, body=json.dumps(body))
    assert resp.status_code == 201, resp.body
    return json.loads(resp.body)


def pump(client: Any, hooks: dict[str, Any], rounds: int = 30) -> None:
    """Run the relay and the delivery function, as the schedule and the queue mapping would, until quiet."""
    sqs = hooks["sqs"]
    for _ in range(rounds):
        client.lambda_.invoke("webhook_relay", client.events.generate_cw_event("aws.events", "Scheduled Event", {}, []))
        msgs = sqs.receive_message(QueueUrl=hooks["webhook_queue_url"], MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            if not _owed():
                return
            continue
        event = sqs_records([m["Body"] for m in msgs], [m["ReceiptHandle"] for m in msgs])
        assert client.lambda_.invoke("webhook_deliveries", event).payload == {"batchItemFailures": []}
        for m in msgs:
            sqs.delete_message(QueueUrl=hooks["webhook_queue_url"], ReceiptHandle=m["ReceiptHandle"])


def _owed() -> bool:
    with wiring.database().statement() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM webhook_events WHERE relayed_at IS NULL)"
            " OR EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = 'pending')"
        )
        return bool(cur.fetchone()[0])


def settle(client: Any, hooks: dict[str, Any]) -> None:
    fan_out(client, hooks)
    settle_each_message(client, messages(hooks))


def get(client: Any, path: str) -> tuple[int, Any]:
    resp = client.http.get(path)
    return resp.status_code, json.loads(resp.body) if resp.body else None


# --- the API -----------------------------------------------------------------------------------


def test_registering_shows_the_secret_once_and_the_endpoint_can_be_read_changed_and_removed(client, hooks):
    r = receiver(hooks)
    created = register(client, r.url, ["payout.failed"])
    assert created["secret"].startswith("whsec_") and created["enabled"] is True and created["failing"] is False
    status, listed = get(client, "/webhook-endpoints")
    assert status == 200 and [e["id"] for e in listed["webhook_endpoints"]] == [created["id"]]
    assert "secret" not in json.dumps(listed) and created["secret"] not in json.dumps(listed)
    change = json.dumps({"enabled": False, "events": ["batch.completed"]})
    patched = client.http.patch(f"/webhook-endpoints/{created['id']}", headers=JSON, body=change)
    assert patched.status_code == 200
    assert (json.loads(patched.body)["enabled"], json.loads(patched.body)["events"]) == (False, ["batch.completed"])
    assert get(client, f"/webhook-endpoints/{created['id']}")[1]["enabled"] is False
    assert client.http.delete(f"/webhook-endpoints/{created['id']}").status_code == 204
    assert get(client, f"/webhook-endpoints/{created['id']}")[0] == 404
    assert client.http.delete(f"/webhook-endpoints/{created['id']}").status_code == 404
    assert get(client, "/webhook-endpoints/not-a-uuid")[0] == 404


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/",
        "https://[::ffff:169.254.169.254]/",
        "https://10.0.0.1/hook",
        "https://192.168.0.10/hook",
        "https://[fe80::1]/hook",
        "ftp://127.0.0.1/hook",
        "https://no-such-host.invalid/hook",
    ],
)
def test_urls_that_could_reach_inside_are_refused_with_422(client, hooks, url):
    body = json.dumps({"url": url, "events": ["payout.failed"]})
    resp = client.http.post("/webhook-endpoints", headers=JSON, body=body)
    assert resp.status_code == 422, resp.body
    error = json.loads(resp.body)["error"]
    assert error["code"] == "invalid_endpoint" and error["problems"][0]["field"] == "url"
    assert get(client, "/webhook-endpoints")[1]["webhook_endpoints"] == []


def test_plain_http_to_loopback_is_refused_when_the_setting_is_off(client, hooks, monkeypatch):
    monkeypatch.setenv("WEBHOOKS_ALLOW_HTTP_LOOPBACK", "false")
    wiring.reset()
    for url in ("http://127.0.0.1:9/hook", "https://127.0.0.1:9/hook", "https://localhost:9/hook"):
        body = json.dumps({"url": url, "events": ["payout.failed"]})
        assert client.http.post("/webhook-endpoints", headers=JSON, body=body).status_code == 422


def test_a_bad_body_is_a_422_listing_its_problems_and_a_patch_is_checked_too(client, hooks):
    resp = client.http.post("/webhook-endpoints", headers=JSON, body=json.dumps({"url": 5, "events": ["nope"]}))
    assert resp.status_code == 422
    assert {p["field"] for p in json.loads(resp.body)["error"]["problems"]} == {"url", "events"}
    created = register(client, receiver(hooks).url)
    body = json.dumps({"url": "https://169.254.169.254/"})
    assert client.http.patch(f"/webhook-endpoints/{created['id']}", headers=JSON, body=body).status_code == 422


# --- events, recorded with the change ---------------------------------------------------------------


def test_a_status_change_records_its_event_in_its_own_transaction_and_a_rollback_records_none(client, hooks, db):
    register(client, receiver(hooks).url)
    body = batch(item(), item())
    assert post(client, body).status_code == 201
    conn = psycopg2.connect(app_env_database_url())
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE payouts SET status = 'Completed' WHERE batch_id = %s", (body["batch_id"],))
            cur.execute("SELECT type FROM webhook_events WHERE batch_id = %s ORDER BY type", (body["batch_id"],))
            assert [r[0] for r in cur.fetchall()] == ["batch.accepted", "payout.completed", "payout.completed"]
        conn.rollback()
    finally:
        conn.close()
    with db.cursor() as cur:
        cur.execute("SELECT type FROM webhook_events WHERE batch_id = %s", (body["batch_id"],))
        assert [r[0] for r in cur.fetchall()] == ["batch.accepted"]


def test_a_rolled_back_submission_records_no_batch_accepted(client, hooks, db):
    register(client, receiver(hooks).url)
    taken = item()
    assert post(client, batch(taken)).status_code == 201
    clash = batch(item(), {**taken, "amount_cents": taken["amount_cents"] + 1})
    assert post(client, clash).status_code == 409
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM webhook_events WHERE batch_id = %s", (clash["batch_id"],))
        assert cur.fetchone()[0] == 0


def test_the_last_two_payouts_committing_at_once_yield_exactly_one_batch_completed(client, hooks, db):
    register(client, receiver(hooks).url, ["batch.completed"])
    for _ in range(5):
        body = batch(item(), item(), item())
        ids = json.loads(post(client, body).body)["payout_ids"]
        with db.cursor() as cur:
            cur.execute("UPDATE payouts SET status = 'Completed' WHERE payout_id = %s", (ids[0],))
        conns = [psycopg2.connect(app_env_database_url()) for _ in range(2)]
        barrier = threading.Barrier(2)

        def finish(conn: Any, payout_id: str, barrier: threading.Barrier = barrier) -> None:
            with conn.cursor() as cur:
                cur.execute("UPDATE payouts SET status = 'Completed' WHERE payout_id = %s", (payout_id,))
            barrier.wait()
            conn.commit()

        threads = [threading.Thread(target=finish, args=(c, pid)) for c, pid in zip(conns, ids[1:], strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in conns:
            c.close()
        with db.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM webhook_events WHERE type = 'batch.completed' AND batch_id = %s",
                (body["batch_id"],),
            )
            assert cur.fetchone()[0] == 1


def test_no_event_is_recorded_while_no_endpoint_listens(client, hooks, db):
    body = batch(item())
    assert post(client, body).status_code == 201
    with db.cursor() as cur:
        cur.execute("UPDATE payouts SET status = 'Completed' WHERE batch_id = %s", (body["batch_id"],))
        cur.execute("SELECT count(*) FROM webhook_events WHERE batch_id = %s", (body["batch_id"],))
        assert cur.fetchone()[0] == 0


# --- delivery -----------------------------------------------------------------------------------


def test_a_settled_batch_yields_accepted_each_payout_and_completed_all_signed_with_keys_masked(client, hooks):
    r = receiver(hooks)
    secret = register(client, r.url)["secret"]
    body = seed_batch()
    assert post(client, body).status_code == 201
    settle(client, hooks)
    pump(client, hooks)
    events = r.events(secret, body["batch_id"])
    types = sorted(e["type"] for e in events)
    assert types == ["batch.accepted", "batch.completed"] + ["payout.completed"] * len(body["items"])
    keys = {it["pix_key"] for it in body["items"]}
    for event in events:
        assert event["id"].startswith("evt_") and event["created_at"]
        if event["type"] == "payout.completed":
            assert event["data"]["status"] == "Completed" and event["data"]["pix_key"] not in keys
            assert "***" in event["data"]["pix_key"]
    completed = next(e for e in events if e["type"] == "batch.completed")["data"]
    assert completed["status"] == "Completed" and completed["report"]["successful"] == len(body["items"])
    accepted = next(e for e in events if e["type"] == "batch.accepted")["data"]
    assert accepted["summary"]["pending"] == len(body["items"]) and accepted["status"] == "Pending"
    assert all(e["headers"]["webhook-id"] == json.loads(e["body"])["id"] for e in r.requests)


def test_a_receiver_failing_its_first_three_attempts_gets_the_event_later_with_the_same_webhook_id(client, hooks):
    r = receiver(hooks, fail_first=3)
    created = register(client, r.url, ["batch.accepted"])
    body = batch(item())
    assert post(client, body).status_code == 201
    pump(client, hooks)
    ids = [req["headers"]["webhook-id"] for req in r.requests]
    assert len(ids) == 4 and len(set(ids)) == 1
    assert len(r.events(created["secret"])) == 4  # every attempt is signed
    status, page = get(client, f"/webhook-endpoints/{created['id']}/deliveries")
    attempts = page["deliveries"]
    assert status == 200 and [a["status_code"] for a in attempts] == [200, 500, 500, 500]
    assert attempts[0]["next_retry_at"] is None and all(a["next_retry_at"] for a in attempts[1:])
    assert {a["delivery_status"] for a in attempts} == {"delivered"}
    assert get(client, f"/webhook-endpoints/{created['id']}")[1]["failing"] is False
    first, second = get(client, f"/webhook-endpoints/{created['id']}/deliveries?limit=3")[1], None
    assert len(first["deliveries"]) == 3 and first["next_cursor"]
    second = get(client, f"/webhook-endpoints/{created['id']}/deliveries?limit=3&cursor={first['next_cursor']}")[1]
    assert [a["status_code"] for a in second["deliveries"]] == [500] and second["next_cursor"] is None


def test_a_receiver_down_for_good_is_dead_lettered_after_the_last_attempt_and_shows_failing(client, hooks):
    r = receiver(hooks, status=503)
    created = register(client, r.url, ["batch.accepted"])
    assert post(client, batch(item())).status_code == 201
    pump(client, hooks)
    assert len(r.requests) == 4  # the first attempt and the schedule's three retries
    endpoint = get(client, f"/webhook-endpoints/{created['id']}")[1]
    assert endpoint["failing"] is True and endpoint["failing_since"]
    attempts = get(client, f"/webhook-endpoints/{created['id']}/deliveries")[1]["deliveries"]
    assert [a["status_code"] for a in attempts] == [503] * 4
    assert {a["delivery_status"] for a in attempts} == {"dead_lettered"} and attempts[0]["next_retry_at"] is None
    # Redelivery, once the receiver is back: same webhook-id, and the endpoint is healthy again.
    r.status = 200
    event_id = attempts[0]["event_id"]
    resp = client.http.post(f"/events/{event_id}/redeliver", headers=JSON, body="")
    assert resp.status_code == 202 and json.loads(resp.body) == {"event_id": event_id, "deliveries": 1}
    pump(client, hooks)
    assert r.requests[-1]["headers"]["webhook-id"] == event_id and len(r.requests) == 5
    assert get(client, f"/webhook-endpoints/{created['id']}")[1]["failing"] is False


def test_a_connection_refused_or_a_timeout_is_an_attempt_with_its_error(client, hooks):
    slow = receiver(hooks, delay=3)
    created = register(client, slow.url, ["batch.accepted"])
    dead = register(client, "http://127.0.0.1:9/refused", ["batch.accepted"])
    assert post(client, batch(item())).status_code == 201
    pump(client, hooks, rounds=2)
    (slow_attempt, *_) = get(client, f"/webhook-endpoints/{created['id']}/deliveries")[1]["deliveries"]
    (dead_attempt, *_) = get(client, f"/webhook-endpoints/{dead['id']}/deliveries")[1]["deliveries"]
    assert slow_attempt["error"] == "timeout" and slow_attempt["status_code"] is None
    assert dead_attempt["error"].startswith("ConnectError") and dead_attempt["status_code"] is None


def test_a_slow_endpoint_does_not_hold_back_the_others(client, hooks):
    slow, fast = receiver(hooks, delay=1.5), receiver(hooks)
    register(client, slow.url, ["batch.accepted"])
    register(client, fast.url, ["batch.accepted"])
    assert post(client, batch(item())).status_code == 201
    pump(client, hooks, rounds=1)
    assert len(fast.requests) == 1 and len(slow.requests) == 1
    # Both POSTs went out side by side: the fast one arrived before the slow one had answered.
    assert fast.requests[0]["at"] < slow.requests[0]["at"] + slow.delay


def test_after_a_rotation_both_the_old_and_the_new_secret_verify(client, hooks):
    r = receiver(hooks)
    created = register(client, r.url, ["batch.accepted"])
    resp = client.http.post(f"/webhook-endpoints/{created['id']}/rotate-secret", headers=JSON, body="")
    assert resp.status_code == 200
    rotated = json.loads(resp.body)
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_expires_in_seconds"] == 86400
    assert post(client, batch(item())).status_code == 201
    pump(client, hooks)
    (request,) = r.requests
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert r.events(created["secret"]) == r.events(rotated["secret"])


def test_an_unknown_or_unsent_event_cannot_be_redelivered(client, hooks):
    assert client.http.post("/events/evt_nope/redeliver", headers=JSON, body="").status_code == 404
    missing = "evt_" + "0" * 32
    assert client.http.post(f"/events/{missing}/redeliver", headers=JSON, body="").status_code == 404


def relay_once(client: Any) -> None:
    client.lambda_.invoke("webhook_relay", client.events.generate_cw_event("aws.events", "Scheduled Event", {}, []))


def queued(hooks: dict[str, Any]) -> list[dict[str, Any]]:
    """Receive (and delete) every message on the delivery queue."""
    sqs, url, out = hooks["sqs"], hooks["webhook_queue_url"], []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += msgs
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_each_message_carries_a_few_deliveries_of_one_endpoint(client, hooks, db, monkeypatch):
    monkeypatch.setenv("WEBHOOK_MESSAGE_DELIVERIES", "2")
    wiring.reset()
    a, b = register(client, receiver(hooks).url), register(client, receiver(hooks).url)
    body = batch(item(), item(), item())
    assert post(client, body).status_code == 201
    with db.cursor() as cur:
        cur.execute("UPDATE payouts SET status = 'Completed' WHERE batch_id = %s", (body["batch_id"],))
    relay_once(client)
    groups = [json.loads(m["Body"])["delivery_ids"] for m in queued(hooks)]
    with db.cursor() as cur:
        cur.execute("SELECT delivery_id, endpoint_id::text FROM webhook_deliveries")
        owner = dict(cur.fetchall())
    assert sorted(d for g in groups for d in g) == sorted(owner) and len(owner) == 10  # 5 events x 2 endpoints
    assert all(len(g) <= 2 and len({owner[d] for d in g}) == 1 for g in groups)
    assert {owner[g[0]] for g in groups} == {a["id"], b["id"]}


def test_an_endpoint_that_gives_no_answer_is_not_tried_again_in_the_same_invocation(client, hooks, db, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ENDPOINT_CONCURRENCY", "1")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "60,60")
    wiring.reset()
    created = register(client, "http://127.0.0.1:9/refused", ["batch.accepted"])
    for _ in range(3):
        assert post(client, batch(item())).status_code == 201
    relay_once(client)
    msgs = queued(hooks)
    event = sqs_records([m["Body"] for m in msgs])
    assert client.lambda_.invoke("webhook_deliveries", event).payload == {"batchItemFailures": []}
    attempts = get(client, f"/webhook-endpoints/{created['id']}/deliveries")[1]["deliveries"]
    assert len(attempts) == 1 and attempts[0]["error"].startswith("ConnectError")
    with db.cursor() as cur:
        cur.execute(
            "SELECT attempts, status, next_attempt_at > now(), enqueued_at IS NULL FROM webhook_deliveries"
            " WHERE endpoint_id = %s ORDER BY attempts",
            (created["id"],),
        )
        assert cur.fetchall() == [(0, "pending", True, True), (0, "pending", True, True), (1, "pending", True, True)]


def test_no_secret_and_no_pix_key_reaches_the_logs_or_a_receiver(client, hooks, capfd, service_logs):
    r = receiver(hooks, fail_first=1)
    created = register(client, r.url)
    rotated = json.loads(client.http.post(f"/webhook-endpoints/{created['id']}/rotate-secret", body="").body)
    cpf = "529.982.247-25"
    body = batch(item(pix_key=cpf), item(amount_cents=66601))
    assert post(client, body).status_code == 201
    settle(client, hooks)
    pump(client, hooks)
    out = service_output(capfd.readouterr().out, service_logs.getvalue())
    assert "webhook attempt failed" in out and "webhook deliveries" in out  # the logs were seen
    sent = " ".join(req["body"] for req in r.requests)
    assert {e["type"] for e in r.events(rotated["secret"], body["batch_id"])} == set(ALL_TYPES)
    for secret in (created["secret"], rotated["secret"], created["secret"][6:], rotated["secret"][6:]):
        assert secret not in out
    for key in ("52998224725", cpf, body["items"][1]["pix_key"]):
        assert key not in out and key not in sent
