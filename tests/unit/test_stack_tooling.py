"""The stack tooling's pure parts: the deploy target value, the command line, the emulator's environment, `env`."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from infra.stacklib import cli, deploy
from infra.stacklib.cloudformation import stack_args
from infra.stacklib.embedded import cmd_down, export_lines
from infra.stacklib.layout import ARTIFACT_BUCKET, EMU_VENV, ENDPOINT, LOCAL_API_ID, PORT, STACK_NAME
from infra.stacklib.ministack import _ministack_env
from infra.stacklib.target import Target


def aws_target(**changes: Any) -> Target:
    target = Target(endpoint=None, region="eu-west-1", emulator=False, stack="pix-aws", api_id="", bucket="b")
    return dataclasses.replace(target, **changes)


def test_the_embedded_target_is_the_local_emulator_with_the_pinned_api_id() -> None:
    target = Target.embedded({"SandboxPixRules": "none"})
    assert (target.endpoint, target.emulator, target.stack, target.api_id, target.bucket) == (
        ENDPOINT,
        True,
        STACK_NAME,
        LOCAL_API_ID,
        ARTIFACT_BUCKET,
    )
    assert dict(target.parameters) == {"SandboxPixRules": "none"}


def test_a_target_cannot_be_changed_once_made_not_even_its_parameters() -> None:
    given = {"SandboxPixRules": "none"}
    target = Target.embedded(given)
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.stack = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        target.parameters["SandboxPixRules"] = "all"  # type: ignore[index]
    given["SandboxPixRules"] = "all"
    assert target.parameters["SandboxPixRules"] == "none"  # a copy, not the caller's dict


def test_an_emulator_target_needs_an_endpoint_and_an_aws_target_has_none() -> None:
    with pytest.raises(ValueError):
        aws_target(emulator=True)
    with pytest.raises(ValueError):
        aws_target(endpoint="http://127.0.0.1:4566")


def test_objects_are_addressed_on_the_emulator_by_path_and_on_aws_by_the_bucket_s_host() -> None:
    assert Target.embedded().object_url("k/t.json") == f"{ENDPOINT}/{ARTIFACT_BUCKET}/k/t.json"
    assert aws_target().object_url("k/t.json") == "https://b.s3.eu-west-1.amazonaws.com/k/t.json"


def test_a_deploy_with_an_endpoint_targets_that_emulator_with_the_fixed_bucket_and_no_pinned_api_id() -> None:
    args = deploy.parser().parse_args(["--database-url", "x", "--endpoint", "http://127.0.0.1:1", "--stack-name", "s"])
    target = deploy.deploy_target(args, {"SANDBOX_PIX_RULES": "none"})
    assert target == Target(
        endpoint="http://127.0.0.1:1",
        region=args.region,
        emulator=True,
        stack="s",
        api_id="",
        bucket=ARTIFACT_BUCKET,
        parameters={"SandboxPixRules": "none"},
    )


def test_the_deployed_api_s_url_is_the_emulator_s_path_form_or_aws_s_own() -> None:
    emulator = dataclasses.replace(aws_target(), endpoint="http://127.0.0.1:1/", emulator=True)
    assert deploy.api_url(emulator, {}, "abc", "api") == "http://127.0.0.1:1/_aws/execute-api/abc/api"
    assert deploy.api_url(aws_target(), {"ApiUrl": "https://x/api"}, "abc", "api") == "https://x/api"
    assert deploy.api_url(aws_target(), {}, "abc", "v1") == "https://abc.execute-api.eu-west-1.amazonaws.com/v1"


def test_the_stack_gets_the_database_the_api_id_and_the_target_s_parameters_inline() -> None:
    template: dict[str, Any] = {"Resources": {}}
    args = stack_args(aws_target(parameters={"SandboxPixRules": "none"}), template, "postgresql://db", "5ca1ab1e")
    assert args["StackName"] == "pix-aws"
    assert args["Parameters"] == [
        {"ParameterKey": "DatabaseUrl", "ParameterValue": "postgresql://db"},
        {"ParameterKey": "LocalApiId", "ParameterValue": "5ca1ab1e"},
        {"ParameterKey": "SandboxPixRules", "ParameterValue": "none"},
    ]
    assert json.loads(args["TemplateBody"]) == template and "TemplateURL" not in args


def test_the_command_line_knows_every_command_and_down_all() -> None:
    parser = cli.parser()
    down = parser.parse_args(["down", "--all"])
    assert down.func is cmd_down and down.all is True
    assert parser.parse_args(["down"]).all is False
    for name in ("up", "serve", "status", "env", "deploy"):
        assert parser.parse_args([name]).cmd == name
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["bogus"])
    assert refused.value.code == 2


def test_the_emulator_sees_none_of_the_caller_s_settings_and_runs_lambdas_from_its_own_venv() -> None:
    caller = {
        "HOME": "/home/x",
        "PATH": "/usr/bin",
        "DATABASE_URL": "postgresql://secret",
        "AWS_PROFILE": "prod",
        "AWS_ACCESS_KEY_ID": "AKIA-real",
        "PIX_STACK_LOG_LEVEL": "DEBUG",
    }
    env = _ministack_env(caller)
    assert "DATABASE_URL" not in env and "AWS_PROFILE" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "test" and env["HOME"] == "/home/x"
    assert env["PATH"] == f"{EMU_VENV / 'bin'}:/usr/bin"
    assert env["GATEWAY_PORT"] == str(PORT) and env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert env["LOG_LEVEL"] == "DEBUG" and env["PERSIST_STATE"] == "1"
    assert Path(env["STATE_DIR"]).name == "ministack-state"


def test_env_lines_give_every_value_back_as_it_is_when_the_shell_reads_them() -> None:
    values = {"API_KEY": "a b'c\"$d", "DATABASE_URL": "postgresql:///p?host=/x y", "EMPTY": ""}
    lines = export_lines(values)
    assert [line.split("=", 1)[0] for line in lines] == ["export API_KEY", "export DATABASE_URL", "export EMPTY"]
    back = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines)
    assert back == values
