"""The alarms and the dashboard deploy with the stack and watch its own queues and settle function."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import PORT

pytestmark = pytest.mark.e2e
STACK_NAME = "pix-payouts"


def client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{PORT}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def physical(logical_id: str) -> str:
    found = client("cloudformation").describe_stack_resource(StackName=STACK_NAME, LogicalResourceId=logical_id)
    return str(found["StackResourceDetail"]["PhysicalResourceId"])


def queue_name(logical_id: str) -> str:
    return physical(logical_id).rstrip("/").rsplit("/", 1)[-1]


def test_each_alarm_watches_this_stack_s_queue_or_function(stack):
    alarms = {
        a["AlarmName"].removeprefix(f"{STACK_NAME}-"): a
        for a in client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{STACK_NAME}-")["MetricAlarms"]
    }
    settle = physical("Settle")
    expected = {
        "dlq-not-empty": ("QueueName", queue_name("PayoutsDLQ")),
        "fanout-dlq-not-empty": ("QueueName", queue_name("FanoutDLQ")),
        "webhook-deliveries-dlq-not-empty": ("QueueName", queue_name("WebhookDeliveriesDLQ")),
        "payouts-queue-oldest-message": ("QueueName", queue_name("PayoutsQueue")),
        "settle-errors": ("FunctionName", settle),
        "settle-throttles": ("FunctionName", settle),
        "payouts-open-too-long": ("service", "pix-payouts"),
    }
    assert {name: [(d["Name"], d["Value"]) for d in a["Dimensions"]] for name, a in alarms.items()} == {
        name: [dim] for name, dim in expected.items()
    }
    client("lambda").get_function(FunctionName=settle)  # the function the alarms name exists


def test_the_dashboard_names_the_deployed_queues_and_settle_function(stack):
    body = json.loads(client("cloudwatch").get_dashboard(DashboardName=STACK_NAME)["DashboardBody"])
    named = {m[3] for w in body["widgets"] for m in w["properties"]["metrics"] if m[0] in ("AWS/SQS", "AWS/Lambda")}
    assert named == {
        queue_name("PayoutsQueue"),
        queue_name("PayoutsDLQ"),
        queue_name("FanoutQueue"),
        physical("Settle"),
    }
