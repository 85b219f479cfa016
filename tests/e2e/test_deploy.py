"""`make deploy-localstack`'s deploy step, run as it is against the embedded MiniStack (standing in for LocalStack):
a second stack with its own name and database, next to the embedded one, answers /health and a keyed POST."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg2
import psycopg2.extensions
import pytest
import requests

from tests.e2e.conftest import PORT, ROOT, Stack

pytestmark = pytest.mark.e2e
ENDPOINT = f"http://127.0.0.1:{PORT}"


def emulator(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def own_database(stack: Stack) -> Iterator[str]:
    """A database of its own on the embedded PostgreSQL, empty: the deploy must migrate it."""
    name = f"pix_deploy_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(stack.database_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield psycopg2.extensions.make_dsn(stack.database_url, dbname=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def stack_name() -> Iterator[str]:
    name = f"pix-deploy-{uuid.uuid4().hex[:8]}"
    yield name
    cfn = emulator("cloudformation")
    cfn.delete_stack(StackName=name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except Exception:  # the stack is gone
            return
        if not status.endswith("_IN_PROGRESS"):
            return
        time.sleep(0.5)


def deploy_endpoint(name: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """The Makefile's recipe itself, with the endpoint, database URL and migrate URL it is given."""
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "deploy-endpoint",
            f"LOCALSTACK_ENDPOINT={ENDPOINT}",
            f"LOCALSTACK_DATABASE_URL={database_url}",
            f"LOCALSTACK_MIGRATE_URL={database_url}",
            f"STACK_NAME={name}",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_deploy_localstack_s_command_deploys_a_second_stack_that_serves_and_settles(
    stack: Stack, own_database: str, stack_name: str
) -> None:
    done = deploy_endpoint(stack_name, own_database)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    outputs = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Za-z]+=", line))
    first = [line for line in lines if re.match(r"^[A-Za-z]+=", line)][:2]
    assert [line.split("=", 1)[0] for line in first] == ["ApiUrl", "ApiKeyId"]
    api_url = outputs["ApiUrl"]
    assert api_url.startswith(ENDPOINT) and api_url.endswith("/api") and api_url != stack.api_url
    # queues and lock table of its own, next to the embedded stack's
    assert outputs["QueueUrl"].endswith(f"/{stack_name}") and outputs["LockTable"] == f"{stack_name}-locks"
    ttl = emulator("dynamodb").describe_time_to_live(TableName=outputs["LockTable"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"  # MiniStack ignores the template's; the deploy sets it

    health = requests.get(f"{api_url}/health", timeout=60)
    assert health.status_code == 200, health.text
    key = emulator("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    headers = {"x-api-key": key, "Content-Type": "application/json"}
    batch_id = f"deploy-{uuid.uuid4().hex[:8]}"
    body = {
        "batch_id": batch_id,
        "items": [{"external_id": f"{batch_id}-1", "user_id": "u1", "amount_cents": 1234, "pix_key": "a@b.com"}],
    }
    posted = requests.post(f"{api_url}/batches", data=json.dumps(body), headers=headers, timeout=60)
    assert posted.status_code == 201, posted.text
    # the payout is in this stack's own database, settled through its own queues
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        page = requests.get(f"{api_url}/batches/{batch_id}", headers=headers, timeout=30).json()
        if page["status"] == "Completed":
            break
        time.sleep(1)
    assert page["status"] == "Completed", page
    conn = psycopg2.connect(own_database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM payouts WHERE batch_id = %s", (batch_id,))
            assert cur.fetchone() == (1,)
    finally:
        conn.close()
    # the embedded stack does not know that batch
    assert stack.get(f"/batches/{batch_id}").status_code == 404

    # API Gateway's own answers, in the service's error shape (they apply after the stage's redeployment)
    keyless = requests.get(f"{api_url}/batches/{batch_id}", timeout=30)
    assert keyless.status_code == 403 and "x-api-key" in keyless.json()["error"]["message"]
    unknown = requests.get(f"{api_url}/no-such-route", headers=headers, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_the_deploy_command_refuses_a_call_without_a_database_in_one_sentence() -> None:
    done = subprocess.run(
        [sys.executable, "infra/stack.py", "deploy", "--endpoint", ENDPOINT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--database-url" in done.stderr and "Traceback" not in done.stderr
