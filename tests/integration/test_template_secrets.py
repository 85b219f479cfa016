"""On AWS each function may read the secrets it uses, and only those: the database's and Efí's."""

from __future__ import annotations

from typing import Any

import pytest


def policy(template: dict[str, Any], name: str) -> dict[str, Any]:
    resource = template["Resources"][name]
    assert resource["Type"] == "AWS::IAM::Policy"
    return resource


def roles(resource: dict[str, Any]) -> set[str]:
    return {r["Ref"] for r in resource["Properties"]["Roles"]}


@pytest.mark.parametrize(
    ("name", "parameter", "condition"),
    [
        ("ReadDatabaseSecret", "DatabaseSecretArn", "UseDatabaseSecret"),
        ("ReadEfiSecret", "EfiSecretArn", "UseEfiSecret"),
    ],
)
def test_a_secret_is_readable_only_when_given_and_only_that_secret(template, name, parameter, condition):
    resource = policy(template, name)
    assert resource["Condition"] == condition
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    [statement] = resource["Properties"]["PolicyDocument"]["Statement"]
    assert statement == {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": {"Ref": parameter}}


def test_every_function_that_talks_to_efi_may_read_its_secret(template):
    # settle sends and asks, dead letters ask, the poller asks, reconciliation lists, the API checks Efí's webhook
    functions = {"Settle", "DeadLetters", "PollConfirmations", "Reconciliation", "APIHandler"}
    granted = roles(policy(template, "ReadEfiSecret"))
    assert granted == {template["Resources"][f]["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions}
    assert "FanoutRole" not in granted and "WebhookDeliveriesRole" not in granted
