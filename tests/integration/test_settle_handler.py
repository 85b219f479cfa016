"""The SQS settle handler through Chalice's test client: lock, transitions, sandbox outcomes."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from chalicelib import wiring
from tests.integration.helpers import batch, fan_out, item, post, service_output, sqs_event


@pytest.fixture(autouse=True)
def one_payout_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hand the settle function one message per payout, as a split group's payouts come back
    (tests/integration/test_grouped_messages.py covers the fan-out's groups)."""
    monkeypatch.setenv("PAYOUTS_PER_MESSAGE", "1")
    wiring.reset()


def submit(client: Any, *amounts: int) -> list[str]:
    resp = post(client, batch(*[item(amount_cents=a) for a in amounts]))
    assert resp.status_code == 201
    return resp.json_body["payout_ids"]


def received(aws: dict[str, Any], wait: int = 0) -> dict[str, str]:
    """payout_id -> receipt handle of every message currently visible."""
    out: dict[str, str] = {}
    while True:
        msgs = (
            aws["sqs"]
            .receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            .get("Messages", [])
        )
        if not msgs:
            return out
        for m in msgs:
            out[json.loads(m["Body"])["payout_id"]] = m["ReceiptHandle"]


def deliver(client: Any, aws: dict[str, Any], payout_ids: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Let the fan-out enqueue, receive the payouts' messages for real and hand them to the settle function."""
    fan_out(client, aws)
    handles = received(aws)
    event = sqs_event(*payout_ids, receipt_handles=[handles[p] for p in payout_ids])
    result = client.lambda_.invoke("settle", event).payload
    by_message = {r["messageId"]: json.loads(r["body"])["payout_id"] for r in event["Records"]}
    return result, by_message


def failed_payouts(result: dict[str, Any], by_message: dict[str, str]) -> set[str]:
    return {by_message[f["itemIdentifier"]] for f in result["batchItemFailures"]}


def payout(client: Any, pid: str) -> dict[str, Any]:
    return client.http.get(f"/payouts/{pid}").json_body


def transfers(db: Any, pid: str) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM sandbox_pix_transfers WHERE payout_id = %s", (pid,))
        return int(cur.fetchone()[0])


def test_pending_payouts_settle_to_completed_with_one_transfer_each(client, app_env, db):
    ids = submit(client, 1000, 2000, 3000)
    result, _ = deliver(client, app_env, ids)
    assert result == {"batchItemFailures": []}
    for pid in ids:
        assert payout(client, pid)["status"] == "Completed"
        assert transfers(db, pid) == 1
    history = [h["event"] for h in payout(client, ids[0])["history"]]
    assert history == ["created", "attempt_started", "completed"]


def test_a_payout_shows_its_provider_and_the_send_in_its_history(client, app_env):
    [pid] = submit(client, 1000)
    deliver(client, app_env, [pid])
    body = payout(client, pid)
    assert "step" not in body
    assert body["provider"] == {
        "name": "sandbox",
        "send_id": body["end_to_end_id"],
        "end_to_end_id": body["end_to_end_id"],
        "status": "PAID",
    }
    assert body["history"][-1] | {"at": None} == {
        "at": None,
        "event": "completed",
        "from_status": "Processing",
        "to_status": "Completed",
        "attempt": 1,
        "source": "send",
        "provider_status": "PAID",
    }


def test_a_message_delivered_twice_pays_once(client, app_env, db):
    [pid] = submit(client, 1234)
    event = sqs_event(pid)
    client.lambda_.invoke("settle", event)
    again = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert again == {"batchItemFailures": []}
    assert transfers(db, pid) == 1


def test_a_completed_payout_is_left_alone_even_after_its_lock_record_is_gone(client, app_env, db):
    [pid] = submit(client, 4321)
    client.lambda_.invoke("settle", sqs_event(pid))
    scan = app_env["dynamodb"].scan(TableName=app_env["table"])["Items"]
    for rec in scan:
        app_env["dynamodb"].delete_item(TableName=app_env["table"], Key={"id": rec["id"]})
    result = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert result == {"batchItemFailures": []}
    assert transfers(db, pid) == 1
    assert payout(client, pid)["status"] == "Completed"


def test_a_permanent_rejection_fails_the_payout_with_its_reason(client, app_env, db):
    [pid] = submit(client, 66601)
    result, _ = deliver(client, app_env, [pid])
    assert result == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Failed"
    assert body["failure"]["code"] == "AC03"
    assert transfers(db, pid) == 0


def test_a_transient_error_is_retried_after_a_backoff_and_then_completes(client, app_env, db):
    ok, flaky = submit(client, 1000, 66699)
    result, by_message = deliver(client, app_env, [ok, flaky])
    assert failed_payouts(result, by_message) == {flaky}
    assert payout(client, flaky)["status"] == "Processing"
    # The handler shortened the message's visibility from the queue's 180 s to the backoff.
    time.sleep(1.2)
    assert set(received(app_env, wait=2)) == {flaky}
    client.lambda_.invoke("settle", sqs_event(flaky))
    result = client.lambda_.invoke("settle", sqs_event(flaky)).payload
    assert result == {"batchItemFailures": []}
    body = payout(client, flaky)
    assert body["status"] == "Completed" and body["attempts"] == 3
    assert [h["event"] for h in body["history"]].count("attempt_failed") == 2
    assert transfers(db, flaky) == 1


def test_an_unknown_outcome_is_resolved_by_asking_the_provider_not_by_paying_again(client, app_env, db):
    [pid] = submit(client, 66698)
    first = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert len(first["batchItemFailures"]) == 1
    assert transfers(db, pid) == 1
    assert payout(client, pid)["status"] == "Processing"
    second = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert second == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Completed"
    assert [h["event"] for h in body["history"]][-2:] == ["attempt_started", "recovered"]
    assert transfers(db, pid) == 1


def test_a_second_delivery_while_the_first_holds_the_lock_is_sent_back_not_paid(client, app_env, db):
    [pid] = submit(client, 66697)  # the sandbox takes 1.5 s to pay this amount
    results: list[Any] = []
    slow = threading.Thread(target=lambda: results.append(client.lambda_.invoke("settle", sqs_event(pid)).payload))
    slow.start()
    time.sleep(0.5)
    from chalicelib.worker import handle_settle_event

    concurrent = handle_settle_event(sqs_event(pid), None)
    slow.join()
    assert len(concurrent["batchItemFailures"]) == 1
    assert results == [{"batchItemFailures": []}]
    assert transfers(db, pid) == 1


def test_a_message_naming_no_payout_goes_straight_to_the_dead_letter_queue(client, app_env):
    event = sqs_event("x")
    event["Records"][0]["body"] = "not json"
    assert client.lambda_.invoke("settle", event).payload == {"batchItemFailures": []}
    msgs = app_env["sqs"].receive_message(QueueUrl=app_env["dlq_url"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in msgs] == ["not json"]


def test_a_message_naming_no_payout_fails_when_the_dead_letter_queue_cannot_take_it(client, app_env, monkeypatch):
    monkeypatch.setenv("PAYOUTS_DLQ_URL", app_env["dlq_url"] + "-gone")
    wiring.reset()
    event = sqs_event("x")
    event["Records"][0]["body"] = "not json"
    result = client.lambda_.invoke("settle", event).payload
    assert result["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]


def test_settling_publishes_metrics_and_logs_no_pix_key(client, app_env, capfd, service_logs):
    cpf, phone = "529.982.247-25", "+55 11 98888-7777"
    body = batch(item(amount_cents=1000, pix_key=cpf), item(amount_cents=66601, pix_key=phone), item(amount_cents=77))
    ids = post(client, body).json_body["payout_ids"]
    client.lambda_.invoke("settle", sqs_event(*ids))
    out = service_output(capfd.readouterr().out, service_logs.getvalue())
    assert "batch accepted" in out and "batch settled" in out and "payout rejected" in out  # the logs were seen
    emf = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    published: dict[str, float] = {}
    for doc in emf:
        for name in (m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]):
            values = doc[name] if isinstance(doc[name], list) else [doc[name]]
            published[name] = published.get(name, 0) + sum(values)
    assert published["PayoutsAccepted"] == 3 and published["PayoutsCompleted"] == 2
    assert published["PayoutsFailed"] == 1
    for secret in ("52998224725", "529.982.247-25", "5511988887777", "98888-7777", body["items"][2]["pix_key"]):
        assert secret not in out


def test_a_message_for_a_payout_that_does_not_exist_is_logged_and_acknowledged(client, app_env, db, service_logs):
    # The fan-out sends a payout's message only after its batch committed, so such a message can
    # only come from outside the service: there is nothing to wait for and nothing to pay.
    missing = "0b7f3c1e-5d2a-4c8b-9e6f-1a2b3c4d5e6f"
    assert client.lambda_.invoke("settle", sqs_event(missing)).payload == {"batchItemFailures": []}
    assert transfers(db, missing) == 0
    assert "message for a payout that does not exist" in service_logs.getvalue()


def test_a_mixed_batch_pays_each_payout_once_and_reports_each_outcome(client, app_env, db):
    # plain ones go through the sandbox's batch endpoint, the others one by one
    ids = submit(client, 1001, 66601, 1002, 66699, 66698, 1003)
    result, by_message = deliver(client, app_env, ids)
    assert failed_payouts(result, by_message) == {ids[3], ids[4]}  # transient, unknown outcome
    statuses = [payout(client, pid)["status"] for pid in ids]
    assert statuses == ["Completed", "Failed", "Completed", "Processing", "Processing", "Completed"]
    assert [transfers(db, pid) for pid in ids] == [1, 0, 1, 0, 1, 1]


def test_a_message_with_a_bad_payout_id_fails_alone_and_not_its_batch(client, app_env, db):
    [pid] = submit(client, 1500)
    event = sqs_event(pid, "not-a-uuid", "6A1D4A8E-8F54-4B8E-9D8E-1F2D3C4B5A69")
    result = client.lambda_.invoke("settle", event).payload
    assert result == {"batchItemFailures": []}  # the two bad ones went to the dead-letter queue
    msgs = app_env["sqs"].receive_message(QueueUrl=app_env["dlq_url"], MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["payout_id"] for m in msgs) == sorted(
        json.loads(r["body"])["payout_id"] for r in event["Records"][1:]
    )
    assert payout(client, pid)["status"] == "Completed"


def test_the_dead_letter_consumer_drops_a_message_that_names_no_payout(client, app_env, monkeypatch):
    monkeypatch.setenv("PAYOUTS_DLQ_URL", app_env["dlq_url"])
    event = sqs_event("not-a-uuid")
    assert client.lambda_.invoke("dead_letters", event).payload == {"batchItemFailures": []}
