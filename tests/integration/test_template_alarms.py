"""Operating it on AWS: the template's alarms and dashboard point at this stack's own queues, function and metrics."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.observability import metrics


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def dimension(props: dict[str, Any]) -> Any:
    [dim] = props["Dimensions"]
    return dim["Name"], dim["Value"]


def test_a_message_in_either_dead_letter_queue_alarms_at_once(template):
    found = alarms(template)
    for alarm, queue in (
        ("PayoutsDlqNotEmptyAlarm", "PayoutsDLQ"),
        ("FanoutDlqNotEmptyAlarm", "FanoutDLQ"),
        ("WebhookDlqNotEmptyAlarm", "WebhookDeliveriesDLQ"),
    ):
        props = found[alarm]
        assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert dimension(props) == ("QueueName", {"Fn::GetAtt": [queue, "QueueName"]})
        assert (props["ComparisonOperator"], props["Threshold"], props["EvaluationPeriods"]) == (
            "GreaterThanThreshold",
            0,
            1,
        )


def test_the_payouts_queue_alarms_on_its_oldest_message_s_age(template):
    props = alarms(template)["PayoutsQueueOldestMessageAlarm"]
    assert props["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert dimension(props) == ("QueueName", {"Fn::GetAtt": ["PayoutsQueue", "QueueName"]})
    assert props["Threshold"] == {"Ref": "OldestMessageAlarmSeconds"}
    assert template["Parameters"]["OldestMessageAlarmSeconds"]["Default"] == 900


def test_settle_errors_and_throttles_alarm_on_the_settle_function(template):
    found = alarms(template)
    assert template["Resources"]["Settle"]["Type"] == "AWS::Serverless::Function"
    for alarm, metric in (("SettleErrorsAlarm", "Errors"), ("SettleThrottlesAlarm", "Throttles")):
        props = found[alarm]
        assert (props["Namespace"], props["MetricName"], props["Statistic"]) == ("AWS/Lambda", metric, "Sum")
        assert dimension(props) == ("FunctionName", {"Ref": "Settle"})


def test_payouts_open_too_long_alarm_on_the_metric_the_sweeper_emits(template):
    props = alarms(template)["PayoutsOpenTooLongAlarm"]
    assert (props["Namespace"], props["MetricName"]) == (metrics.namespace, "PayoutsOpenTooLong")
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert dimension(props) == ("service", service)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["OPEN_PAYOUT_ALARM_SECONDS"] == {"Ref": "OpenPayoutAlarmSeconds"}


def test_every_alarm_is_named_after_the_stack_and_quiet_without_data(template):
    for props in alarms(template).values():
        assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")
        assert props["TreatMissingData"] == "notBreaching"


def test_the_dashboard_shows_payouts_queues_and_settle_duration_of_this_stack(template):
    dashboard = template["Resources"]["Dashboard"]["Properties"]
    body, names = dashboard["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    shown = {tuple(m[:2]) for w in widgets for m in w["properties"]["metrics"]}
    for metric in ("PayoutsAccepted", "PayoutsCompleted", "PayoutsFailed", "SettlementRetries"):
        assert (metrics.namespace, metric) in shown
    assert {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/Lambda", "Duration")} <= shown
    queues = {m[3] for w in widgets for m in w["properties"]["metrics"] if m[0] == "AWS/SQS"}
    assert queues == {"${PayoutsQueueName}", "${PayoutsDlqName}", "${FanoutQueueName}"}
    assert names["PayoutsQueueName"] == {"Fn::GetAtt": ["PayoutsQueue", "QueueName"]}
    assert names["PayoutsDlqName"] == {"Fn::GetAtt": ["PayoutsDLQ", "QueueName"]}
    settle = {m[3] for w in widgets for m in w["properties"]["metrics"] if m[0] == "AWS/Lambda"}
    assert settle == {"${Settle}"}
