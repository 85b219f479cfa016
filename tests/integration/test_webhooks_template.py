"""The template's webhook resources: the delivery queue, its DLQ and mapping, the relay, the loopback switch."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.test_template import statements


def sends_to(doc: dict[str, Any], role: str) -> set[str]:
    found: set[str] = set()
    for stmt in statements(doc, role):
        if "sqs:SendMessage" in stmt["Action"]:
            res = stmt["Resource"]
            found |= {r["Fn::GetAtt"][0] for r in (res if isinstance(res, list) else [res])}
    return found


def test_deliveries_have_their_queue_a_dlq_and_a_capped_mapping_reporting_partial_failures(template):
    resources = template["Resources"]
    queue = resources["WebhookDeliveriesQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "${AWS::StackName}-webhook-deliveries"}
    assert "WebhookDeliveriesDLQ" in json.dumps(queue["RedrivePolicy"])
    timeout = resources["WebhookDeliveries"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    source = resources["WebhookDeliveries"]["Properties"]["Events"]["WebhookDeliveriesSqsEventSource"]["Properties"]
    assert "WebhookDeliveriesQueue" in json.dumps(source["Queue"])
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"]["MaximumConcurrency"] <= 10


def test_the_relay_runs_every_minute_and_outlives_its_polling(template):
    from chalicelib.settings import Settings

    relay = template["Resources"]["WebhookRelay"]["Properties"]
    (schedule,) = relay["Events"].values()
    assert schedule["Properties"]["Schedule"] == "rate(1 minute)"
    assert relay["Timeout"] - 15 >= Settings.from_env({}).webhook_relay_run_seconds >= 60


def test_only_the_relay_queues_deliveries_and_loopback_http_is_off_unless_asked(template):
    roles = [name for name, r in template["Resources"].items() if r.get("Type") == "AWS::IAM::Role"]
    senders = {role for role in roles if "WebhookDeliveriesQueue" in sends_to(template, role)}
    assert senders == {"WebhookRelayRole"}
    assert template["Parameters"]["WebhooksAllowHttpLoopback"]["Default"] == "false"
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["WEBHOOKS_ALLOW_HTTP_LOOPBACK"] == {"Ref": "WebhooksAllowHttpLoopback"}
    assert env["WEBHOOK_QUEUE_URL"] == {"Ref": "WebhookDeliveriesQueue"}
    secret_roles = template["Resources"]["ReadDatabaseSecret"]["Properties"]["Roles"]
    assert {"Ref": "WebhookRelayRole"} in secret_roles and {"Ref": "WebhookDeliveriesRole"} in secret_roles
