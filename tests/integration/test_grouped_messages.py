"""Ten payouts a message: the fan-out's groups, their settlement, splits, dead letters and the sweeper.

Against PostgreSQL and moto's SQS and DynamoDB, with messages received from the queue for real.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from chalicelib import wiring
from chalicelib.adapters.locks import PayoutLocks
from chalicelib.domain.payout_messages import decode
from tests.integration.helpers import batch, fan_out, item, post, sqs_records


def receive_all(aws: dict[str, Any], url_key: str = "queue_url") -> list[dict[str, Any]]:
    """Every visible message, received (so hidden for the queue's visibility timeout), not deleted."""
    out: list[dict[str, Any]] = []
    while (
        msgs := aws["sqs"]
        .receive_message(QueueUrl=aws[url_key], MaxNumberOfMessages=10, AttributeNames=["All"])
        .get("Messages", [])
    ):
        out += msgs
    return out


def visible(aws: dict[str, Any], within: float = 10) -> list[dict[str, Any]]:
    """The messages that become visible within `within` seconds (received, not deleted)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        msgs = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages", [])
        if msgs:
            return list(msgs)
        time.sleep(0.2)
    return []


def as_event(msgs: list[dict[str, Any]], receive_count: int = 1) -> dict[str, Any]:
    return sqs_records([m["Body"] for m in msgs], [m["ReceiptHandle"] for m in msgs], receive_count=receive_count)


def submit(client: Any, aws: dict[str, Any], *amounts: int) -> list[str]:
    resp = post(client, batch(*[item(amount_cents=a) for a in amounts]))
    assert resp.status_code == 201, resp.json_body
    fan_out(client, aws)
    return list(resp.json_body["payout_ids"])


def status(client: Any, pid: str) -> str:
    return str(client.http.get(f"/payouts/{pid}").json_body["status"])


def transfers(db: Any, pid: str) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM sandbox_pix_transfers WHERE payout_id = %s", (pid,))
        return int(cur.fetchone()[0])


def test_the_fan_out_sends_ten_payouts_a_message_each_payout_once(client, app_env):
    ids = submit(client, app_env, *[1000 + i for i in range(25)])
    msgs = receive_all(app_env)
    groups = [decode(m["Body"]).payout_ids for m in msgs]
    assert sorted(len(g) for g in groups) == [5, 10, 10]
    assert sorted(p for g in groups for p in g) == sorted(ids)


def test_a_group_settles_in_one_invocation_and_a_retried_payout_leaves_it_with_its_own_message(client, app_env, db):
    # 66699: the sandbox's transient error on the first two attempts, then it pays.
    ids = submit(client, app_env, 1001, 1002, 66699, 1003)
    [msg] = receive_all(app_env)
    result = client.lambda_.invoke("settle", as_event([msg], receive_count=3)).payload
    assert result == {"batchItemFailures": []}  # the group is done with: deleted by the mapping
    assert [status(client, p) for p in ids] == ["Completed", "Completed", "Processing", "Completed"]
    assert [transfers(db, p) for p in ids] == [1, 1, 0, 1]
    # The retried payout now has a message of its own, delayed by its own backoff, carrying the group's receives.
    app_env["sqs"].delete_message(QueueUrl=app_env["queue_url"], ReceiptHandle=msg["ReceiptHandle"])
    attrs = app_env["sqs"].get_queue_attributes(QueueUrl=app_env["queue_url"], AttributeNames=["All"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessagesDelayed"]) == 1
    assert int(attrs["ApproximateNumberOfMessages"]) == 0


def test_the_split_payout_settles_from_its_own_message_and_is_paid_once(client, app_env, db, monkeypatch):
    monkeypatch.setenv("RETRY_MAX_SECONDS", "0")  # backoffs of 1 s: its message is visible almost at once
    wiring.reset()
    ids = submit(client, app_env, 1001, 66699, 1002)
    [msg] = receive_all(app_env)
    assert client.lambda_.invoke("settle", as_event([msg])).payload == {"batchItemFailures": []}
    app_env["sqs"].delete_message(QueueUrl=app_env["queue_url"], ReceiptHandle=msg["ReceiptHandle"])
    for expected in ({"batchItemFailures": [{"itemIdentifier": "*"}]}, {"batchItemFailures": []}):
        # Its second transient error (its own message comes back), then the payment.
        [single] = visible(app_env)
        body = decode(single["Body"])
        assert body.payout_ids == (ids[1],) and body.retries >= 1
        result = client.lambda_.invoke("settle", as_event([single])).payload
        assert len(result["batchItemFailures"]) == len(expected["batchItemFailures"])
        if not result["batchItemFailures"]:  # as the mapping does: only a message done with is deleted
            app_env["sqs"].delete_message(QueueUrl=app_env["queue_url"], ReceiptHandle=single["ReceiptHandle"])
    assert [status(client, p) for p in ids] == ["Completed"] * 3
    assert [transfers(db, p) for p in ids] == [1, 1, 1]


def test_ten_groups_lock_and_settle_a_hundred_payouts_in_one_invocation(client, app_env, db):
    ids = submit(client, app_env, *[2000 + i for i in range(100)])
    msgs = receive_all(app_env)
    assert len(msgs) == 10
    result = client.lambda_.invoke("settle", as_event(msgs)).payload
    assert result == {"batchItemFailures": []}
    with db.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM payouts WHERE payout_id = ANY(%s::uuid[]) GROUP BY 1", (ids,))
        assert dict(cur.fetchall()) == {"Completed": 100}
        cur.execute("SELECT count(*) FROM sandbox_pix_transfers WHERE payout_id = ANY(%s::uuid[])", (ids,))
        assert cur.fetchone()[0] == 100


def test_more_locks_than_one_transaction_takes_are_taken_in_several(app_env):
    import uuid

    locks = PayoutLocks(boto3.client("dynamodb", region_name="us-east-1"), app_env["table"])
    ids = [str(uuid.uuid4()) for _ in range(150)]
    acquired, held = locks.acquire(ids[:10], "other", 60)
    assert acquired == ids[:10] and held == []
    acquired, held = locks.acquire(ids, "me", 60)
    assert held == ids[:10] and acquired == ids[10:]


def test_a_group_in_the_dead_letter_queue_becomes_one_dead_letter_per_payout(client, app_env, monkeypatch):
    monkeypatch.setenv("PAYOUTS_DLQ_URL", app_env["dlq_url"])
    wiring.reset()
    ids = submit(client, app_env, 1001, 1002, 1003)
    [msg] = receive_all(app_env)
    body = json.loads(msg["Body"])
    assert body["payout_ids"] == ids
    event = sqs_records([msg["Body"]], receive_count=100)
    assert client.lambda_.invoke("dead_letters", event).payload == {"batchItemFailures": []}
    letters = [decode(m["Body"]) for m in receive_all(app_env, "dlq_url")]
    assert sorted(p for m in letters for p in m.payout_ids) == sorted(ids)
    assert all(len(m.payout_ids) == 1 and m.retries == 100 for m in letters)
