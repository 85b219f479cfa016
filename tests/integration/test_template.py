"""The CloudFormation template every target deploys: packaged by Chalice, linted by cfn-lint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run(
        [str(chalice), "package", "--merge-template", "infra/template.json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    return out / "sam.json"


@pytest.fixture(scope="module")
def template(packaged: Path) -> dict[str, Any]:
    return json.loads(packaged.read_text())


def test_cfn_lint_finds_no_errors_or_warnings(packaged):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(packaged)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_settle_mapping_reports_partial_failures_and_caps_concurrency(template):
    source = template["Resources"]["Settle"]["Properties"]["Events"]["SettleSqsEventSource"]["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BatchSize"] == 10
    assert 2 <= source["ScalingConfig"]["MaximumConcurrency"] <= 20
    assert "PayoutsQueue" in json.dumps(source["Queue"])


def test_the_queue_redrives_to_the_dlq_and_outlasts_the_settle_timeout(template):
    queue = template["Resources"]["PayoutsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["PayoutsDLQ", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    settle_timeout = template["Resources"]["Settle"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * settle_timeout  # AWS's advice for SQS-triggered functions


def test_the_fan_out_has_its_own_small_queue_one_wake_up_per_invocation_and_a_dlq(template):
    source = template["Resources"]["Fanout"]["Properties"]["Events"]["FanoutSqsEventSource"]["Properties"]
    assert "FanoutQueue" in json.dumps(source["Queue"])
    assert source["BatchSize"] == 1  # each outbox record gets an invocation of its own: ranges go out side by side
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= source["ScalingConfig"]["MaximumConcurrency"] <= 10
    queue = template["Resources"]["FanoutQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["FanoutDLQ", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * template["Resources"]["Fanout"]["Properties"]["Timeout"]


def test_only_the_fan_out_and_the_sweeper_may_send_payout_messages(template):
    def sends_to(role: str) -> set[str]:
        found: set[str] = set()
        for policy in template["Resources"][role]["Properties"]["Policies"]:
            for stmt in policy["PolicyDocument"]["Statement"]:
                if "sqs:SendMessage" in stmt["Action"]:
                    res = stmt["Resource"]
                    found |= {r.rsplit(":", 1)[1] for r in (res if isinstance(res, list) else [res])}
        return found

    assert sends_to("ApiHandlerRole") == {"payouts-fanout"}
    assert sends_to("FanoutRole") == sends_to("SweeperRole") == {"payouts", "payouts-fanout"}


def test_every_function_gets_the_database_queue_and_lock_table(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["DATABASE_URL"] == {"Ref": "DatabaseUrl"}
    assert env["PAYOUTS_QUEUE_URL"] == {"Ref": "PayoutsQueue"}
    assert env["FANOUT_QUEUE_URL"] == {"Ref": "FanoutQueue"}
    assert env["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    assert template["Parameters"]["DatabaseUrl"]["NoEcho"] is True


def test_dead_letters_have_their_own_consumer_reporting_partial_failures(template):
    source = template["Resources"]["DeadLetters"]["Properties"]["Events"]["DeadLettersSqsEventSource"]["Properties"]
    assert "PayoutsDLQ" in json.dumps(source["Queue"])
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert template["Resources"]["Sweeper"]["Properties"]["Events"]["SweeperEvent"]["Type"] == "Schedule"


def test_the_functions_know_the_queue_s_receive_limit(template):
    from chalicelib.settings import Settings

    limit = template["Resources"]["PayoutsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert Settings.from_env({}).max_receive_count == limit


def test_no_policy_grants_every_action(template):
    roles = ("ApiHandlerRole", "FanoutRole", "SettleRole", "DeadLettersRole", "SweeperRole", "ReconciliationRole")
    for name in (*roles, "PollConfirmationsRole"):
        for policy in template["Resources"][name]["Properties"]["Policies"]:
            for stmt in policy["PolicyDocument"]["Statement"]:
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)


def test_reconciliation_runs_daily_at_three_utc_with_the_database_the_others_have(template):
    resources = template["Resources"]
    events = resources["Reconciliation"]["Properties"]["Events"]
    (schedule,) = events.values()
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == "cron(0 3 * * ? *)"
    assert {"Ref": "ReconciliationRole"} in resources["ReadDatabaseSecret"]["Properties"]["Roles"]
    role, sweepers = resources["ReconciliationRole"]["Properties"], resources["SweeperRole"]["Properties"]
    assert role["ManagedPolicyArns"] == sweepers["ManagedPolicyArns"]  # in a VPC, like every function


def test_the_confirmation_poller_runs_every_minute_with_the_database_the_others_have(template):
    resources = template["Resources"]
    (schedule,) = resources["PollConfirmations"]["Properties"]["Events"].values()
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == "rate(1 minute)"
    assert {"Ref": "PollConfirmationsRole"} in resources["ReadDatabaseSecret"]["Properties"]["Roles"]
    role, sweepers = resources["PollConfirmationsRole"]["Properties"], resources["SweeperRole"]["Properties"]
    assert role["ManagedPolicyArns"] == sweepers["ManagedPolicyArns"]


def test_the_efi_webhook_route_needs_no_api_key_in_the_deployed_api(template):
    """API Gateway itself lets Efí's callback through; every client route still asks for the key."""
    swagger = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    webhook = swagger["paths"]["/providers/efi/webhook"]["post"]
    assert not webhook.get("security")
    assert swagger["paths"]["/batches"]["post"]["security"] == [{"api_key": []}]
