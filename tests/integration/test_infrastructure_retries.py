"""Faults of our own infrastructure: retried for as long as they last, never charged to the provider budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import wiring
from tests.integration.conftest import configured_app
from tests.integration.helpers import batch, fan_out, item, message_payouts, post, service_output, sqs_event, sweep_now
from tests.support import scratch_database

DOWN = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"


def payout(client: Any, pid: str) -> dict[str, Any]:
    return client.http.get(f"/payouts/{pid}").json_body


def provider_failures(db: Any, pid: str) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT provider_failures FROM payouts WHERE payout_id = %s", (pid,))
        return int(cur.fetchone()[0])


def transfers(db: Any, pid: str) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM sandbox_pix_transfers WHERE payout_id = %s", (pid,))
        return int(cur.fetchone()[0])


def queued(aws: dict[str, Any], url_key: str = "queue_url") -> list[str]:
    """The payouts of every message visible in the queue (received and deleted)."""
    bodies: list[str] = []
    while msgs := aws["sqs"].receive_message(QueueUrl=aws[url_key], MaxNumberOfMessages=10).get("Messages", []):
        bodies += [pid for m in msgs for pid in message_payouts(m["Body"])]
        for m in msgs:
            aws["sqs"].delete_message(QueueUrl=aws[url_key], ReceiptHandle=m["ReceiptHandle"])
    return bodies


def published(out: str) -> dict[str, float]:
    """Metric name -> total of every EMF document in the output."""
    totals: dict[str, float] = {}
    for doc in (json.loads(line) for line in out.splitlines() if '"_aws"' in line):
        for name in (m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]):
            values = doc[name] if isinstance(doc[name], list) else [doc[name]]
            totals[name] = totals.get(name, 0) + sum(values)
    return totals


def database_down(monkeypatch: pytest.MonkeyPatch, url: str = DOWN) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    wiring.reset()


def test_a_database_outage_longer_than_the_old_receive_budget_fails_nothing_and_spends_no_attempt(
    client, app_env, db, database_url, monkeypatch, capfd, service_logs
):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    database_down(monkeypatch)
    for receive in range(1, 9):  # the queue used to dead-letter, and the payout fail, after 5
        event = sqs_event(pid, receive_count=receive)
        result = client.lambda_.invoke("settle", event).payload
        assert result["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    dead = client.lambda_.invoke("dead_letters", sqs_event(pid)).payload
    assert len(dead["batchItemFailures"]) == 1  # the dead letter waits for the database too
    assert published(service_output(capfd.readouterr().out, service_logs.getvalue()))["InfrastructureRetries"] == 9

    database_down(monkeypatch, database_url)  # the database is back
    queued(app_env)
    assert client.lambda_.invoke("dead_letters", sqs_event(pid)).payload == {"batchItemFailures": []}
    assert queued(app_env) == [pid]  # sent back, not failed
    assert client.lambda_.invoke("settle", sqs_event(pid)).payload == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Completed" and body["attempts"] == 1
    assert [h["event"] for h in body["history"]] == ["created", "returned", "attempt_started", "completed"]
    assert provider_failures(db, pid) == 0 and transfers(db, pid) == 1


def test_losing_the_connection_between_claim_and_send_spends_no_provider_attempt(client, app_env, db):
    [warm, pid] = post(client, batch(item(), item())).json_body["payout_ids"]
    client.lambda_.invoke("settle", sqs_event(warm))  # opens the sandbox provider's own connection
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'pix-sandbox' AND datname = current_database()"
        )
        assert cur.fetchone()[0] >= 1
    first = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert len(first["batchItemFailures"]) == 1  # claimed, then nothing could be sent
    assert payout(client, pid)["status"] == "Processing" and transfers(db, pid) == 0
    assert client.lambda_.invoke("settle", sqs_event(pid)).payload == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Completed" and body["attempts"] == 2
    assert "attempt_failed" not in [h["event"] for h in body["history"]]
    assert provider_failures(db, pid) == 0 and transfers(db, pid) == 1


@pytest.mark.parametrize(("receives", "renewed"), [(49, False), (50, True)])
def test_a_message_past_half_its_receives_is_renewed_carrying_its_count(
    client, app_env, monkeypatch, receives, renewed
):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    queued(app_env)
    monkeypatch.setenv("INFRA_RETRY_MAX_SECONDS", "1")  # the renewed message is delayed by the backoff
    database_down(monkeypatch)
    event = sqs_event(pid, receive_count=receives)
    result = client.lambda_.invoke("settle", event).payload
    assert (result == {"batchItemFailures": []}) is renewed
    msgs = app_env["sqs"].receive_message(QueueUrl=app_env["queue_url"], WaitTimeSeconds=2).get("Messages", [])
    assert [json.loads(m["Body"]) for m in msgs] == ([{"payout_id": pid, "retries": receives}] if renewed else [])


def test_a_renewed_message_settles_like_any_other(client, app_env, db):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    event = sqs_event(pid)
    event["Records"][0]["body"] = json.dumps({"payout_id": pid, "retries": 73})
    assert client.lambda_.invoke("settle", event).payload == {"batchItemFailures": []}
    assert payout(client, pid)["status"] == "Completed" and transfers(db, pid) == 1


def test_an_unreachable_lock_table_is_an_infrastructure_retry(client, app_env, monkeypatch, capfd, service_logs):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
    wiring.reset()
    assert len(client.lambda_.invoke("settle", sqs_event(pid)).payload["batchItemFailures"]) == 1
    assert published(service_output(capfd.readouterr().out, service_logs.getvalue()))["InfrastructureRetries"] == 1
    assert payout(client, pid)["status"] == "Pending"


@pytest.fixture
def own_database(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, Any], str]]:
    """A database of its own: the sweeper counts every open payout in it against the queues."""
    from chalice.test import Client

    import app as chalice_app

    with scratch_database("pix_sweep") as url, configured_app(aws, url, monkeypatch), Client(chalice_app.app) as c:
        yield c, aws, url


def age(url: str, seconds: int) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE payouts SET updated_at = now() - make_interval(secs => %s)", (seconds,))
    finally:
        conn.close()


def test_payouts_whose_messages_were_lost_are_resent_by_the_next_sweep_once(own_database):
    client, aws, url = own_database
    ids = post(client, batch(item(), item(), item())).json_body["payout_ids"]
    fan_out(client, aws)
    assert sorted(queued(aws)) == sorted(ids)  # the emulator died: the queue is empty
    age(url, 90)
    report = sweep_now(lost_seconds=60)
    assert (report["missing"], report["lost_payouts"], report["stale_payouts"]) == (3, 3, 0)
    assert sorted(queued(aws)) == sorted(ids)
    again = sweep_now(lost_seconds=60)  # re-sent once per window, not on every sweep
    assert again["lost_payouts"] == 0 and queued(aws) == []


def test_a_message_of_ten_payouts_counts_for_ten_and_once_lost_all_ten_are_resent(own_database):
    client, aws, url = own_database
    ids = post(client, batch(*[item() for _ in range(10)])).json_body["payout_ids"]
    fan_out(client, aws)
    age(url, 90)
    assert sweep_now(lost_seconds=60)["missing"] == 0  # the one message still holds all ten
    assert sorted(queued(aws)) == sorted(ids)  # now the emulator died: the queue is empty
    report = sweep_now(lost_seconds=60)
    assert (report["missing"], report["lost_payouts"]) == (10, 10)
    assert sorted(queued(aws)) == sorted(ids)


def test_payouts_whose_messages_are_still_queued_or_dead_lettered_are_not_resent(own_database):
    client, aws, url = own_database
    ids = post(client, batch(item(), item())).json_body["payout_ids"]
    fan_out(client, aws)
    queued(aws)  # one message was dead-lettered, the other still waits
    aws["sqs"].send_message(QueueUrl=aws["dlq_url"], MessageBody=json.dumps({"payout_id": ids[0]}))
    aws["sqs"].send_message(QueueUrl=aws["queue_url"], MessageBody=json.dumps({"payout_id": ids[1]}))
    age(url, 90)
    report = sweep_now(lost_seconds=60)
    assert (report["missing"], report["lost_payouts"]) == (0, 0)


def test_recently_touched_payouts_are_left_to_the_next_sweep(own_database):
    client, aws, _ = own_database
    post(client, batch(item(), item()))
    fan_out(client, aws)
    queued(aws)
    report = sweep_now(lost_seconds=60)
    assert report["missing"] == 2 and report["lost_payouts"] == 0  # being settled or just created


def test_payouts_whose_fan_out_has_not_run_are_not_counted_as_lost(own_database):
    client, _aws, url = own_database
    post(client, batch(item(), item()))  # committed with its outbox record; the fan-out has not run yet
    age(url, 90)
    report = sweep_now(lost_seconds=60)
    assert (report["missing"], report["lost_payouts"]) == (0, 0)
