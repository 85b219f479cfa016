"""The CloudFormation template every target deploys: packaged by Chalice, linted by cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


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
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert template["Parameters"]["MaxReceiveCount"]["Default"] >= 3
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


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every policy statement the role has: its own (Chalice's policy file) and the template's policies on it."""
    resources = template["Resources"]
    found = [s for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    for res in resources.values():
        if res["Type"] == "AWS::IAM::Policy" and {"Ref": role} in res["Properties"]["Roles"]:
            found += res["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_only_the_fan_out_and_the_sweeper_may_send_payout_messages(template):
    def sends_to(role: str) -> set[str]:
        found: set[str] = set()
        for stmt in statements(template, role):
            if "sqs:SendMessage" in stmt["Action"]:
                res = stmt["Resource"]
                found |= {r["Fn::GetAtt"][0] for r in (res if isinstance(res, list) else [res])}
        return found

    assert sends_to("ApiHandlerRole") == {"FanoutQueue"}
    assert sends_to("FanoutRole") == sends_to("SweeperRole") == {"PayoutsQueue", "FanoutQueue"}


def test_queue_and_table_names_are_the_stack_s_own_so_stacks_can_share_an_account(template):
    resources = template["Resources"]
    names = {
        logical: res["Properties"].get("QueueName", res["Properties"].get("TableName"))
        for logical, res in resources.items()
        if res["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table")
    }
    assert names == {
        "PayoutsQueue": {"Fn::Sub": "${AWS::StackName}"},
        "PayoutsDLQ": {"Fn::Sub": "${AWS::StackName}-dlq"},
        "FanoutQueue": {"Fn::Sub": "${AWS::StackName}-fanout"},
        "FanoutDLQ": {"Fn::Sub": "${AWS::StackName}-fanout-dlq"},
        "IdempotencyTable": {"Fn::Sub": "${AWS::StackName}-locks"},
        "WebhookDeliveriesQueue": {"Fn::Sub": "${AWS::StackName}-webhook-deliveries"},
        "WebhookDeliveriesDLQ": {"Fn::Sub": "${AWS::StackName}-webhook-deliveries-dlq"},
    }


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
    assert limit == {"Ref": "MaxReceiveCount"}
    assert template["Globals"]["Function"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"] == limit
    assert Settings.from_env({}).max_receive_count == template["Parameters"]["MaxReceiveCount"]["Default"]


def test_no_policy_grants_every_action(template):
    roles = ("ApiHandlerRole", "FanoutRole", "SettleRole", "DeadLettersRole", "SweeperRole", "ReconciliationRole")
    for name in (*roles, "WebhookRelayRole", "WebhookDeliveriesRole", "PollConfirmationsRole"):
        for stmt in statements(template, name):
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)
            if any(a.startswith(("sqs:", "dynamodb:")) for a in actions):  # on this stack's own queues and table
                res = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
                assert all(set(r) == {"Fn::GetAtt"} for r in res), (name, res)


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


def test_the_gateway_s_own_errors_use_the_service_s_error_shape(template):
    responses = {
        res["Properties"]["ResponseType"]: res["Properties"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::ApiGateway::GatewayResponse"
    }
    key, route = responses["INVALID_API_KEY"], responses["MISSING_AUTHENTICATION_TOKEN"]
    assert key["StatusCode"] == "403" and route["StatusCode"] == "404"
    key_error = json.loads(key["ResponseTemplates"]["application/json"])["error"]
    assert key_error["code"] == "forbidden" and "x-api-key" in key_error["message"]
    assert json.loads(route["ResponseTemplates"]["application/json"])["error"]["code"] == "not_found"
    assert all(r["RestApiId"] == {"Ref": "RestAPI"} for r in responses.values())


def readme_settings() -> list[str]:
    """The variables named in the first column of the README's configuration table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])]


def test_every_setting_of_the_readme_reaches_the_functions_and_is_a_parameter_on_aws(template):
    from chalicelib.settings import Settings
    from infra.stacklib.parameters import setting_parameters

    names = readme_settings()
    assert len(names) >= 25 and "SANDBOX_PIX_RULES" in names and "SANDBOX_PIX_LATENCY_MS" in names
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    from_stack = {"PAYOUTS_QUEUE_URL", "PAYOUTS_DLQ_URL", "FANOUT_QUEUE_URL", "IDEMPOTENCY_TABLE", "WEBHOOK_QUEUE_URL"}
    by_option = {"DATABASE_URL": "DatabaseUrl", "DATABASE_SECRET_ARN": "DatabaseSecretArn"}
    params = {**setting_parameters(), **by_option}
    for name in names:
        assert name in variables, name
        if name not in from_stack:
            assert variables[name] == {"Ref": params[name]} and params[name] in template["Parameters"], name
    # each parameter's default is the service's own default, so an unset setting means the same everywhere
    defaults = {name: str(template["Parameters"][param]["Default"]) for name, param in setting_parameters().items()}
    assert Settings.from_env(defaults) == Settings.from_env({})


def test_efi_s_webhook_can_have_its_own_domain_with_mutual_tls_and_none_by_default(template):
    resources, conditions = template["Resources"], template["Conditions"]
    domain, mapping = resources["WebhookDomain"], resources["WebhookDomainMapping"]
    assert domain["Condition"] == mapping["Condition"] == "WebhookMutualTls"
    assert conditions["WebhookMutualTls"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookDomainName"}, ""]}]}
    assert template["Parameters"]["WebhookDomainName"]["Default"] == ""  # the emulator and a plain deploy: none
    props = domain["Properties"]
    assert props["MutualTlsAuthentication"] == {"TruststoreUri": {"Ref": "WebhookTruststoreUri"}}
    assert props["SecurityPolicy"] == "TLS_1_2" and props["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert mapping["Properties"]["RestApiId"] == {"Ref": "RestAPI"}
    # SAM's reference to the stage it makes for the API: the mapping waits for that stage.
    assert mapping["Properties"]["Stage"] == {"Ref": "RestAPI.Stage"}
    assert resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
