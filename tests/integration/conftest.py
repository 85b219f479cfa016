"""Integration fixtures: the app wired to a real PostgreSQL and to moto's SQS and DynamoDB."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
from moto import mock_aws

from chalicelib import wiring
from tests.integration.psp import connect, start_psp  # noqa: F401 - fixtures for every integration module

ROOT = Path(__file__).resolve().parents[2]

REGION = "us-east-1"


def queue_with_dlq(sqs: Any, name: str, visibility: int) -> tuple[str, str]:
    """A queue redriving to `<name>-dlq` after 5 receives, as in infra/template.json: (url, dlq url)."""
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            "VisibilityTimeout": str(visibility),
        },
    )["QueueUrl"]
    return url, dlq


@contextmanager
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto's SQS queues (payouts and fan-out, each with its DLQ) and the idempotency table."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue, dlq = queue_with_dlq(sqs, "payouts", visibility=180)
        fanout, _ = queue_with_dlq(sqs, "payouts-fanout", visibility=360)
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="payouts-idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {
            "sqs": sqs,
            "queue_url": queue,
            "dlq_url": dlq,
            "fanout_url": fanout,
            "dynamodb": ddb,
            "table": "payouts-idempotency",
        }


@contextmanager
def configured_app(aws: dict[str, Any], database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Environment the deployed functions get, pointed at moto and the scratch database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PAYOUTS_QUEUE_URL", aws["queue_url"])
    monkeypatch.setenv("PAYOUTS_DLQ_URL", aws["dlq_url"])
    monkeypatch.setenv("IDEMPOTENCY_TABLE", aws["table"])
    monkeypatch.setenv("FANOUT_QUEUE_URL", aws["fanout_url"])
    monkeypatch.setenv("RETRY_BASE_SECONDS", "1")
    wiring.reset()
    try:
        yield aws
    finally:
        wiring.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with moto_aws(monkeypatch) as resources:
        yield resources


@pytest.fixture
def app_env(aws: dict[str, Any], database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with configured_app(aws, database_url, monkeypatch) as env:
        yield env


@pytest.fixture
def client(app_env: dict[str, Any]) -> Iterator[Any]:
    from chalice.test import Client

    import app as chalice_app

    with Client(chalice_app.app) as c:
        yield c


@pytest.fixture(scope="module")
def module_client(database_url: str) -> Iterator[Any]:
    """One configured app for a whole module: for long tables of requests, each with its own ids.

    A module that uses it must not use `client` too (two moto contexts would share one backend).
    """
    from chalice.test import Client

    import app as chalice_app

    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        moto_aws(monkeypatch) as resources,
        configured_app(resources, database_url, monkeypatch),
        Client(chalice_app.app) as c,
    ):
        yield c


@pytest.fixture
def db(database_url: str) -> Iterator[Any]:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def service_logs() -> Iterator[io.StringIO]:
    """Every line the service logs during the test, formatted as in Lambda (JSON)."""
    from chalicelib.observability import logger

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)  # Powertools exposes no public hook for extra handlers
    yield buf
    logger._logger.removeHandler(handler)


# The CloudFormation template every target deploys, as Chalice packages it (read by the template tests).
@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    return json.loads(packaged.read_text())
