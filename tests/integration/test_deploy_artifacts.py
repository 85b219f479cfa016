"""What only `make deploy` (AWS) does, against moto: the artifact bucket per account and region, the code upload,
migrations through the database secret, and the secret and VPC parameters the stack gets."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import psycopg2
import pytest
from moto import mock_aws

from infra.stacklib import deploy
from infra.stacklib.layout import ARTIFACT_BUCKET, MERGE_TEMPLATE, ROOT
from infra.stacklib.package import upload_artifacts
from infra.stacklib.postgres import migrate
from infra.stacklib.target import Target
from tests.support import scratch_database

ACCOUNT = "123456789012"  # moto's


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """moto's AWS, and a deploy target on it (the bucket is set by the test that needs one)."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    target = Target(endpoint=None, region="eu-west-1", emulator=False, stack="pix-aws", api_id="", bucket="")
    with mock_aws():
        yield target


def args(*argv: str) -> argparse.Namespace:
    return deploy.parser().parse_args(list(argv))


def test_on_aws_the_artifact_bucket_is_per_account_and_region_and_is_created_with_the_first_upload(
    aws: Target, tmp_path: Path
) -> None:
    bucket = deploy.artifact_bucket(args("--database-url", "postgresql://db/x"))
    assert bucket == f"pix-payouts-artifacts-{ACCOUNT}-eu-west-1"
    target = replace(aws, bucket=bucket)
    code = tmp_path / "deployment.zip"
    code.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    template = {
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": str(code)}},
            "Other": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": str(code)}},
        }
    }
    out = upload_artifacts(target, template)
    s3 = boto3.client("s3", region_name="eu-west-1")
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    where = out["Resources"]["Fn"]["Properties"]["CodeUri"]
    assert where["Bucket"] == bucket and where["Key"].startswith("pix-aws/deployment-")
    assert out["Resources"]["Other"]["Properties"]["CodeUri"] == where  # one upload for both
    assert s3.get_object(Bucket=bucket, Key=where["Key"])["Body"].read() == code.read_bytes()
    # a second deploy finds the bucket and the object and uploads nothing new
    upload_artifacts(
        target, {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": str(code)}}}}
    )
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [where["Key"]]


def test_an_emulator_deploy_uses_the_fixed_bucket_and_a_given_one_wins(aws: Target) -> None:
    assert deploy.artifact_bucket(args("--database-url", "x", "--endpoint", "http://127.0.0.1:1")) == ARTIFACT_BUCKET
    assert deploy.artifact_bucket(args("--database-url", "x", "--bucket", "mine")) == "mine"


def test_migrations_run_through_the_database_secret_when_no_url_is_given(aws: Target) -> None:
    with scratch_database("pix_deploy_secret", migrate=False) as url:
        arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="pix/db", SecretString=json.dumps({"url": url})
        )["ARN"]
        given = args("--database-secret-arn", arn)
        assert deploy.migration_url(given) == url
        migrate(deploy.migration_url(given))
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM schema_migrations")
                (applied,) = cur.fetchone()
        finally:
            conn.close()
        assert applied == len(list((ROOT / "chalicelib" / "migrations").glob("*.sql")))


def test_a_migrate_url_wins_over_the_database_url_which_wins_over_the_secret() -> None:
    assert deploy.migration_url(args("--database-url", "a", "--migrate-url", "b", "--database-secret-arn", "s")) == "b"
    assert deploy.migration_url(args("--database-url", "a", "--database-secret-arn", "s")) == "a"


def test_the_secret_and_the_vpc_become_the_stack_s_parameters_with_the_settings_of_the_environment() -> None:
    given = args(
        "--database-secret-arn",
        "arn:aws:secretsmanager:eu-west-1:1:secret:db",
        "--subnet-ids",
        "subnet-1,subnet-2",
        "--security-group-ids",
        "sg-1",
    )
    params = deploy.stack_parameters(given, {"SANDBOX_PIX_RULES": "none", "PIX_PROVIDER": "", "HOME": "/x"})
    assert params == {
        "DatabaseSecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:db",
        "SubnetIds": "subnet-1,subnet-2",
        "SecurityGroupIds": "sg-1",
        "SandboxPixRules": "none",  # set; an empty PIX_PROVIDER keeps the template's default
    }
    template = json.loads(MERGE_TEMPLATE.read_text())
    assert set(params) <= set(template["Parameters"])
    assert deploy.stack_parameters(args("--database-url", "x"), {}) == {}


def test_the_efi_webhook_domain_is_passed_from_the_environment_all_three_or_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    environ = {
        "WEBHOOK_DOMAIN_NAME": "efi-hooks.example.com",
        "WEBHOOK_DOMAIN_CERTIFICATE_ARN": "arn:aws:acm:sa-east-1:1:certificate/x",
        "WEBHOOK_TRUSTSTORE_URI": "s3://bucket/efi-ca.pem",
    }
    params = deploy.stack_parameters(args("--database-url", "x"), environ)
    assert params == {
        "WebhookDomainName": "efi-hooks.example.com",
        "WebhookDomainCertificateArn": "arn:aws:acm:sa-east-1:1:certificate/x",
        "WebhookTruststoreUri": "s3://bucket/efi-ca.pem",
    }
    assert set(params) <= set(json.loads(MERGE_TEMPLATE.read_text())["Parameters"])
    with pytest.raises(SystemExit) as stopped:
        deploy.stack_parameters(args("--database-url", "x"), {"WEBHOOK_DOMAIN_NAME": "efi-hooks.example.com"})
    assert stopped.value.code == 2 and "WEBHOOK_TRUSTSTORE_URI" in capsys.readouterr().err


def test_subnets_without_security_groups_are_refused_before_anything_is_deployed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy.main(["--database-url", "x", "--subnet-ids", "subnet-1"])
    assert stopped.value.code == 2 and "--security-group-ids" in capsys.readouterr().err
