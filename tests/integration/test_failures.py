"""Failure injection: lost enqueues, dead workers, dead letters, and unreachable dependencies."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib import cli, wiring
from tests.crash import SimulatedCrash
from tests.integration.helpers import batch, fan_out, item, message_payouts, post, sqs_event, sweep_now, wakeups

# The chalice test client's Lambda context gives each invocation 3 s; a payout's lock lease is the
# invocation's remaining time plus 1 s.
LEASE = 4.2


def queued(aws: dict[str, Any], url_key: str = "queue_url") -> list[str]:
    ids: list[str] = []
    while msgs := aws["sqs"].receive_message(QueueUrl=aws[url_key], MaxNumberOfMessages=10).get("Messages", []):
        ids += [pid for m in msgs for pid in message_payouts(m["Body"])]
        for m in msgs:
            aws["sqs"].delete_message(QueueUrl=aws[url_key], ReceiptHandle=m["ReceiptHandle"])
    return ids


def one(db: Any, sql: str, *args: Any) -> Any:
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def all_rows(db: Any, sql: str, *args: Any) -> list[Any]:
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def payout(client: Any, pid: str) -> dict[str, Any]:
    return client.http.get(f"/payouts/{pid}").json_body


def transfers(db: Any, pid: str) -> int:
    return int(one(db, "SELECT count(*) FROM sandbox_pix_transfers WHERE payout_id = %s", pid)[0])


def undone_records(db: Any, batch_id: str) -> int:
    return int(one(db, "SELECT count(*) FROM outbox WHERE aggregate_id = %s AND done_at IS NULL", batch_id)[0])


@pytest.fixture
def dlq_env(app_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("PAYOUTS_DLQ_URL", app_env["dlq_url"])
    wiring.reset()
    return app_env


def test_with_sqs_down_during_and_after_the_post_the_sweeper_wakes_the_fan_out_and_every_payout_settles(
    client, app_env, db, monkeypatch
):
    for var, key in (("PAYOUTS_QUEUE_URL", "queue_url"), ("FANOUT_QUEUE_URL", "fanout_url")):
        monkeypatch.setenv(var, app_env[key] + "-gone")
    monkeypatch.setenv("FANOUT_RANGE_ITEMS", "2")
    monkeypatch.setenv("SWEEP_GRACE_SECONDS", "0")  # records are due at once, not after the usual 2 minutes
    wiring.reset()
    body = batch(item(), item(), item())
    resp = post(client, body)
    assert resp.status_code == 201  # accepted durably: the batch and its outbox records are committed
    ids = resp.json_body["payout_ids"]
    assert undone_records(db, body["batch_id"]) == 2
    assert wakeups(app_env) == [] and queued(app_env) == []

    still_down = sweep_now()
    assert still_down["outbox_records"] >= 2 and still_down["unwoken"] == still_down["outbox_records"]
    assert undone_records(db, body["batch_id"]) == 2

    for var, key in (("PAYOUTS_QUEUE_URL", "queue_url"), ("FANOUT_QUEUE_URL", "fanout_url")):
        monkeypatch.setenv(var, app_env[key])
    wiring.reset()
    report = sweep_now()
    assert report["outbox_records"] >= 2 and report["unwoken"] == 0
    fan_out(client, app_env)
    assert undone_records(db, body["batch_id"]) == 0
    sent = queued(app_env)
    assert sorted(p for p in sent if p in ids) == sorted(ids)  # each payout enqueued once
    sweep_now()
    names = {i for m in wakeups(app_env) for i in json.loads(m["Body"])["outbox_ids"]}
    ours = {r[0] for r in all_rows(db, "SELECT outbox_id FROM outbox WHERE aggregate_id = %s", body["batch_id"])}
    assert not names & ours  # done records are never woken again
    result = client.lambda_.invoke("settle", sqs_event(*ids)).payload
    assert result == {"batchItemFailures": []}
    assert [payout(client, pid)["status"] for pid in ids] == ["Completed"] * 3
    assert [transfers(db, pid) for pid in ids] == [1, 1, 1]


def test_the_sweeper_resends_a_payout_stuck_open_once_per_window(client, app_env, db):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    queued(app_env)
    with db.cursor() as cur:
        cur.execute("UPDATE payouts SET updated_at = now() - interval '1 hour' WHERE payout_id = %s", (pid,))
    sweep_now()
    assert pid in queued(app_env)
    sweep_now()
    assert pid not in queued(app_env)


def test_the_database_down_during_post_is_a_503_with_retry_after_and_health_says_so(client, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    wiring.reset()
    resp = post(client, batch(item()))
    assert resp.status_code == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.json_body["error"]["code"] == "unavailable"
    assert client.http.get("/health").status_code == 503


def test_a_failure_inside_the_batch_transaction_leaves_nothing_half_written(client, app_env, db):
    body = batch(item(), item(), batch_id="boom-" + str(time.time_ns()))
    with db.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.batch_id LIKE 'boom-%' THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER boom BEFORE INSERT ON batch_items FOR EACH ROW EXECUTE FUNCTION boom();"
        )
    try:
        resp = post(client, body)
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TRIGGER boom ON batch_items; DROP FUNCTION boom();")
    assert resp.status_code == 500
    assert resp.json_body == {"error": {"code": "internal_error", "message": "internal error"}}
    assert one(db, "SELECT count(*) FROM batches WHERE batch_id = %s", body["batch_id"]) == (0,)
    external_ids = [it["external_id"] for it in body["items"]]
    assert one(db, "SELECT count(*) FROM payouts WHERE external_id = ANY(%s)", external_ids) == (0,)
    # Nothing left for SQS: messages are sent only after a commit, and the outbox rolled back too.
    assert queued(app_env) == [] and wakeups(app_env) == []
    assert undone_records(db, body["batch_id"]) == 0


def test_a_broken_connection_is_reopened_on_the_next_request(client, db):
    assert client.http.get("/health").status_code == 200
    with db.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pix-payouts' AND datname = current_database()"
        )
    assert client.http.get("/health").status_code == 503
    assert client.http.get("/health").status_code == 200


def test_the_database_down_during_settlement_sends_the_message_back(client, app_env, db, monkeypatch):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    wiring.reset()
    event = sqs_event(pid)
    result = client.lambda_.invoke("settle", event).payload
    assert result["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]


def test_an_unreachable_lock_table_fails_closed_without_calling_the_provider(client, app_env, db, monkeypatch):
    [pid] = post(client, batch(item())).json_body["payout_ids"]
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
    wiring.reset()
    result = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert len(result["batchItemFailures"]) == 1
    assert transfers(db, pid) == 0
    assert payout(client, pid)["status"] == "Pending"


@pytest.mark.parametrize(("amount", "paid_before_crash"), [(66692, 1), (66693, 0)])
def test_a_worker_dying_mid_payout_is_finished_by_the_next_delivery_with_one_transfer(
    client, app_env, db, amount, paid_before_crash
):
    [pid] = post(client, batch(item(amount_cents=amount))).json_body["payout_ids"]
    with pytest.raises(SimulatedCrash):
        client.lambda_.invoke("settle", sqs_event(pid))
    assert transfers(db, pid) == paid_before_crash
    assert payout(client, pid)["status"] == "Processing"
    # Redelivered while the dead worker's lease runs: the lock holds, nothing is paid.
    early = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert len(early["batchItemFailures"]) == 1
    time.sleep(LEASE)
    late = client.lambda_.invoke("settle", sqs_event(pid)).payload
    assert late == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Completed" and body["attempts"] == 2
    assert transfers(db, pid) == 1
    assert ("recovered" in [h["event"] for h in body["history"]]) == bool(paid_before_crash)


def test_a_dead_letter_with_provider_attempts_left_goes_back_to_the_queue_instead_of_failing(client, dlq_env, db):
    [pid] = post(client, batch(item(amount_cents=66694))).json_body["payout_ids"]
    queued(dlq_env)
    client.lambda_.invoke("settle", sqs_event(pid))  # one transient error: 1 of 5 provider attempts spent
    result = client.lambda_.invoke("dead_letters", sqs_event(pid)).payload
    assert result == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Processing" and body["history"][-1]["event"] == "returned"
    assert queued(dlq_env) == [pid]
    assert transfers(db, pid) == 0


def test_a_dead_letter_whose_provider_budget_is_spent_fails_with_the_last_error(client, dlq_env, db):
    [pid] = post(client, batch(item(amount_cents=66694))).json_body["payout_ids"]
    client.lambda_.invoke("settle", sqs_event(pid))
    with db.cursor() as cur:  # as if the other four unpaid sends had been recorded too
        cur.execute("UPDATE payouts SET provider_failures = 5 WHERE payout_id = %s", (pid,))
    assert client.lambda_.invoke("dead_letters", sqs_event(pid)).payload == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Failed"
    assert body["failure"]["code"] == "RETRIES_EXHAUSTED"
    assert "5 failed provider attempt(s)" in body["failure"]["message"] and "AB03" in body["failure"]["message"]
    assert transfers(db, pid) == 0


def test_spending_the_provider_budget_fails_the_payout_at_once_with_the_last_error(client, app_env, db, monkeypatch):
    monkeypatch.setenv("MAX_PROVIDER_ATTEMPTS", "2")
    wiring.reset()
    [pid] = post(client, batch(item(amount_cents=66694))).json_body["payout_ids"]
    assert len(client.lambda_.invoke("settle", sqs_event(pid)).payload["batchItemFailures"]) == 1
    assert client.lambda_.invoke("settle", sqs_event(pid)).payload == {"batchItemFailures": []}
    body = payout(client, pid)
    assert body["status"] == "Failed" and body["failure"]["code"] == "RETRIES_EXHAUSTED"
    assert body["failure"]["message"].startswith("gave up after 2 failed provider attempt(s); last error: AB03")
    assert [h["event"] for h in body["history"]].count("attempt_failed") == 2
    assert transfers(db, pid) == 0


def test_a_dead_letter_whose_transfer_went_through_completes_instead_of_failing(client, dlq_env, db):
    [pid] = post(client, batch(item(amount_cents=66692))).json_body["payout_ids"]
    with pytest.raises(SimulatedCrash):
        client.lambda_.invoke("settle", sqs_event(pid))
    with db.cursor() as cur:  # the dead attempt is older than any settle function can run
        cur.execute("UPDATE payouts SET updated_at = now() - interval '1 hour' WHERE payout_id = %s", (pid,))
    assert client.lambda_.invoke("dead_letters", sqs_event(pid)).payload == {"batchItemFailures": []}
    assert payout(client, pid)["status"] == "Completed"
    assert transfers(db, pid) == 1


def test_a_dead_letter_for_an_attempt_that_may_still_run_waits(client, dlq_env, db):
    [pid] = post(client, batch(item(amount_cents=66692))).json_body["payout_ids"]
    with pytest.raises(SimulatedCrash):
        client.lambda_.invoke("settle", sqs_event(pid))
    result = client.lambda_.invoke("dead_letters", sqs_event(pid)).payload
    assert len(result["batchItemFailures"]) == 1
    assert payout(client, pid)["status"] == "Processing"


def test_the_redrive_reopens_exhausted_payouts_and_moves_dead_letters_back(client, dlq_env, db, capsys):
    [pid] = post(client, batch(item(amount_cents=66694))).json_body["payout_ids"]
    queued(dlq_env)
    client.lambda_.invoke("settle", sqs_event(pid))
    with db.cursor() as cur:
        cur.execute("UPDATE payouts SET provider_failures = 5 WHERE payout_id = %s", (pid,))
    client.lambda_.invoke("dead_letters", sqs_event(pid))
    assert payout(client, pid)["status"] == "Failed"
    rejected = post(client, batch(item(amount_cents=66601))).json_body["payout_ids"][0]
    client.lambda_.invoke("settle", sqs_event(rejected))
    stray = json.dumps({"payout_id": "00000000-0000-4000-8000-000000000000"})
    dlq_env["sqs"].send_message(QueueUrl=dlq_env["dlq_url"], MessageBody=stray)

    assert cli.main(["dlq-redrive"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["reopened"] >= 1 and report["dead_letters"] == "copied" and report["moved"] == 1
    body = payout(client, pid)
    assert body["status"] == "Pending" and body["history"][-1]["event"] == "redriven"
    assert one(db, "SELECT provider_failures FROM payouts WHERE payout_id = %s", pid) == (0,)  # a fresh budget
    assert payout(client, rejected)["status"] == "Failed"  # provider rejections are final
    assert set(queued(dlq_env)) >= {pid, "00000000-0000-4000-8000-000000000000"}
    assert queued(dlq_env, "dlq_url") == []


def test_database_credentials_can_come_from_secrets_manager(client, app_env, database_url, monkeypatch):
    import boto3
    import psycopg2.extensions

    dsn = psycopg2.extensions.parse_dsn(database_url)
    secret = {
        "username": dsn.get("user", "postgres"),
        "password": dsn.get("password", ""),
        "host": dsn.get("host"),
        "port": int(dsn.get("port", 5432)),
        "dbname": dsn["dbname"],
        "sslmode": "disable",
    }
    if "/" in (secret["host"] or ""):  # a unix socket directory: hand over the full URL instead
        secret = {"url": database_url}
    arn = boto3.client("secretsmanager").create_secret(Name="pix/db", SecretString=json.dumps(secret))["ARN"]
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    wiring.reset()
    assert wiring.settings().database_url == ""
    assert client.http.get("/health").status_code == 200  # so it connected with the secret's credentials
