"""Creates or updates the stack from the packaged template and reads its outputs; the emulator's TTL gap."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.stacklib.console import die, log
from infra.stacklib.layout import BUILD_DIR
from infra.stacklib.package import upload_artifacts
from infra.stacklib.target import Target

TERMINAL_OK = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE"})
UNUSABLE = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"})
# CloudFormation's limit for an inline template body; a larger one goes through S3.
INLINE_TEMPLATE_LIMIT = 51200


@dataclass(frozen=True)
class Deployed:
    """The stack's outputs; `changed` when a create or an update ran (the stage then needs a new deployment)."""

    outputs: dict[str, str]
    changed: bool


def stack_status(target: Target, cfn: Any) -> str | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=target.stack)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _print_events(target: Target, cfn: Any, since: float) -> None:
    try:
        events = cfn.describe_stack_events(StackName=target.stack)["StackEvents"]
    except Exception as exc:
        print(f"  (could not read stack events: {exc})", file=sys.stderr)
        return
    for ev in reversed(events):
        ts = ev.get("Timestamp")
        if ts is not None and ts.timestamp() < since - 5:
            continue
        print(
            f"  {ev.get('LogicalResourceId', ''):32} {ev.get('ResourceStatus', ''):24} "
            f"{ev.get('ResourceStatusReason', '') or ''}",
            file=sys.stderr,
        )


def _wait_stack(target: Target, cfn: Any, since: float, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = stack_status(target, cfn)
        if status is None:
            return "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(0.5)
    _print_events(target, cfn, since)
    die(f"stack {target.stack} still in progress after {timeout} s")


def _api_body(template: dict[str, Any]) -> Any:
    return template.get("Resources", {}).get("RestAPI", {}).get("Properties", {}).get("DefinitionBody")


def _deployed_template(target: Target, cfn: Any) -> dict[str, Any] | None:
    try:
        body = cfn.get_template(StackName=target.stack, TemplateStage="Original")["TemplateBody"]
    except Exception:
        return None
    if isinstance(body, str):
        try:
            parsed: dict[str, Any] = json.loads(body)
        except ValueError:
            return None
        return parsed
    copied: dict[str, Any] = json.loads(json.dumps(body))
    return copied


def stack_args(target: Target, template: dict[str, Any], database_url: str, api_id: str) -> dict[str, Any]:
    body = json.dumps(template, separators=(",", ":"))
    args: dict[str, Any] = {
        "StackName": target.stack,
        "Parameters": [
            {"ParameterKey": "DatabaseUrl", "ParameterValue": database_url},
            {"ParameterKey": "LocalApiId", "ParameterValue": api_id},
            *({"ParameterKey": k, "ParameterValue": v} for k, v in target.parameters.items()),
        ],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    }
    if len(body) <= INLINE_TEMPLATE_LIMIT:
        args["TemplateBody"] = body
    else:  # go through S3 like `aws cloudformation deploy`
        key = f"{target.stack}/template-{hashlib.sha256(body.encode()).hexdigest()[:16]}.json"
        target.client("s3").put_object(Bucket=target.bucket, Key=key, Body=body.encode())
        args["TemplateURL"] = target.object_url(key)
    return args


def _run_stack_op(target: Target, cfn: Any, op: str, args: dict[str, Any]) -> bool:
    """create_stack/update_stack and wait. False when there was nothing to update."""
    from botocore.exceptions import ClientError

    since = time.time()
    try:
        getattr(cfn, f"{op}_stack")(**args)
    except ClientError as err:
        if op == "update" and "No updates are to be performed" in str(err):
            return False
        raise
    want = "CREATE_COMPLETE" if op == "create" else "UPDATE_COMPLETE"
    final = _wait_stack(target, cfn, since)
    if final != want:
        print(f"[stack] stack {target.stack} ended {final}; events:", file=sys.stderr)
        _print_events(target, cfn, since)
        die(f"deploy failed ({final})")
    return True


def deploy(target: Target, database_url: str) -> Deployed:
    template = upload_artifacts(target, json.loads((BUILD_DIR / "sam.json").read_text()))
    cfn = target.client("cloudformation")
    status = stack_status(target, cfn)
    if status and status.endswith("_IN_PROGRESS"):
        log(f"cloudformation: {target.stack} is {status}; waiting")
        status = _wait_stack(target, cfn, time.time())
    if status in UNUSABLE:
        log(f"cloudformation: {target.stack} is {status}; deleting it first")
        cfn.delete_stack(StackName=target.stack)
        _wait_stack(target, cfn, time.time())
        status = None
    if status == "DELETE_COMPLETE":
        status = None

    if status is None:
        log(f"cloudformation: creating stack {target.stack}")
        _run_stack_op(target, cfn, "create", stack_args(target, template, database_url, target.api_id))
        log("cloudformation: CREATE_COMPLETE")
        return Deployed(_outputs(target, cfn), changed=True)

    log(f"cloudformation: updating stack {target.stack} (was {status})")
    previous = _deployed_template(target, cfn)
    if target.api_id and previous is not None and _api_body(previous) != _api_body(template):
        # MiniStack replaces a REST API whose OpenAPI Body changed by creating
        # the new one before deleting the old one; with a pinned id the create
        # collides with the old API and the update rolls back (KeyError 'id').
        # Step 1 moves the API to a throw-away id (the marker makes the Body
        # differ), step 2 re-creates it under the pinned id with the real Body.
        log("cloudformation: API routes changed; re-pinning the API id in two steps")
        interim = json.loads(json.dumps(template))
        _api_body(interim)["x-pix-stack-repin"] = str(time.time_ns())
        _run_stack_op(target, cfn, "update", stack_args(target, interim, database_url, ""))
    changed = _run_stack_op(target, cfn, "update", stack_args(target, template, database_url, target.api_id))
    log("cloudformation: UPDATE_COMPLETE" if changed else "cloudformation: no changes")
    return Deployed(_outputs(target, cfn), changed=changed)


def ensure_ttl(target: Target, template_path: Path) -> None:
    """MiniStack's CloudFormation provisioner for AWS::DynamoDB::Table ignores
    TimeToLiveSpecification; apply it through the DynamoDB API instead."""
    template = json.loads(template_path.read_text())
    ddb = None
    for res in template.get("Resources", {}).values():
        if res.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = res.get("Properties", {})
        spec, name = props.get("TimeToLiveSpecification"), props.get("TableName")
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):  # named after the stack
            name = name["Fn::Sub"].replace("${AWS::StackName}", target.stack)
        if not spec or not spec.get("Enabled") or not isinstance(name, str):
            continue
        ddb = ddb or target.client("dynamodb")
        desc = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        if desc.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["AttributeName"]}
            )
            log(f"dynamodb: TTL on {name}.{spec['AttributeName']} enabled")


def _outputs(target: Target, cfn: Any) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=target.stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
