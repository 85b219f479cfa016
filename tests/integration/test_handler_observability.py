"""Event handlers under Powertools' log_metrics and inject_lambda_context: each metric once, lines to follow."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.helpers import batch, item, post, service_output, sqs_event


def lines(logged: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logged.splitlines() if line.startswith("{")]


def published(out: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for doc in (json.loads(line) for line in out.splitlines() if '"_aws"' in line):
        for name in (m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]):
            values = doc[name] if isinstance(doc[name], list) else [doc[name]]
            totals[name] = totals.get(name, 0) + sum(values)
    return totals


def test_a_settle_line_names_the_payouts_batch_and_the_message_it_handles(client, app_env, service_logs):
    body = batch(item(amount_cents=66601))
    [pid] = post(client, body).json_body["payout_ids"]
    event = sqs_event(pid)
    client.lambda_.invoke("settle", event)
    message_id = event["Records"][0]["messageId"]
    by_message = {line["message"]: line for line in lines(service_logs.getvalue())}
    rejected, settled = by_message["payout rejected"], by_message["batch settled"]
    assert rejected["batch_id"] == body["batch_id"] and rejected["payout_id"] == pid
    assert settled["batch_ids"] == [body["batch_id"]] and settled["failed"] == [pid]
    assert rejected["correlation_id"] == settled["correlation_id"] == message_id
    assert settled["function_name"] == "settle" and settled["function_request_id"]  # inject_lambda_context

    client.http.get("/health")  # the next invocation starts without the message's keys
    assert "correlation_id" not in lines(service_logs.getvalue())[-1]


def test_a_settle_batch_names_its_messages_and_each_batch_it_settled(client, app_env, service_logs):
    first, second = batch(item()), batch(item(), item())
    ids = post(client, first).json_body["payout_ids"] + post(client, second).json_body["payout_ids"]
    event = sqs_event(*ids)
    client.lambda_.invoke("settle", event)
    [settled] = [line for line in lines(service_logs.getvalue()) if line["message"] == "batch settled"]
    assert settled["batch_ids"] == sorted([first["batch_id"], second["batch_id"]])
    assert settled["message_ids"] == [r["messageId"] for r in event["Records"]]
    assert "correlation_id" not in settled


def test_each_dead_letter_logs_under_its_own_message_id(client, app_env, service_logs):
    event = sqs_event("not-a-uuid", "nor-this")
    assert client.lambda_.invoke("dead_letters", event).payload == {"batchItemFailures": []}
    dropped = [line for line in lines(service_logs.getvalue()) if line["message"].startswith("dead letter names no")]
    assert [(d["correlation_id"], d["message_id"]) for d in dropped] == [
        (r["messageId"], r["messageId"]) for r in event["Records"]
    ]


def test_every_metric_is_published_once_and_an_invocation_that_counted_nothing_publishes_nothing(
    client, app_env, capfd, service_logs
):
    ids = post(client, batch(item(amount_cents=1000), item(amount_cents=66601), item())).json_body["payout_ids"]
    client.lambda_.invoke("settle", sqs_event(*ids))
    out = service_output(capfd.readouterr().out, service_logs.getvalue())
    counted = published(out)
    assert counted["PayoutsAccepted"] == 3 and counted["PayoutsCompleted"] == 2 and counted["PayoutsFailed"] == 1

    logged_before = len(service_logs.getvalue())
    client.lambda_.invoke("settle", sqs_event(*ids))  # already final: nothing to count
    again = service_output(capfd.readouterr().out, service_logs.getvalue()[logged_before:])
    assert "batch settled" in again
    assert '"_aws"' not in again
    scheduled = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
    client.lambda_.invoke("poll_confirmations", scheduled)  # skipped for the sandbox: counts nothing
    assert '"_aws"' not in capfd.readouterr().out
