"""`infra/stack.py deploy`: package the app and deploy its template to an emulator (--endpoint) or to AWS.

Ends by printing the stack's outputs, `ApiUrl=<base url with the stage>` first and `ApiKeyId=<id>` second,
each on its own line, so a script can read them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from infra.stacklib.cloudformation import deploy, ensure_ttl
from infra.stacklib.console import die, log
from infra.stacklib.layout import ARTIFACT_BUCKET, BUILD_DIR, CHALICE_CONFIG, REGION, STACK_NAME
from infra.stacklib.package import chalice_package
from infra.stacklib.parameters import from_environment
from infra.stacklib.postgres import migrate
from infra.stacklib.target import Target, aws_client

# Printed after ApiUrl and ApiKeyId, when the stack has them.
OTHER_OUTPUTS = ("QueueUrl", "DlqUrl", "FanoutQueueUrl", "LockTable")


def parser() -> argparse.ArgumentParser:
    dep = argparse.ArgumentParser(prog="infra/stack.py deploy", description=__doc__)
    dep.add_argument("--database-url", default="", help="PostgreSQL URL the functions connect to")
    dep.add_argument(
        "--database-secret-arn",
        default="",
        help="AWS: Secrets Manager secret with the database credentials (instead of --database-url)",
    )
    dep.add_argument(
        "--migrate-url",
        default="",
        help="PostgreSQL URL to apply the migrations through, when this machine reaches the database by another "
        "address than the functions do (default: --database-url, else the secret's)",
    )
    dep.add_argument("--endpoint", help="emulator endpoint, e.g. http://127.0.0.1:4566 for LocalStack; omit for AWS")
    dep.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", REGION))
    dep.add_argument("--stack-name", default=STACK_NAME)
    dep.add_argument("--chalice-stage", default="dev", help="stage in .chalice/config.json")
    dep.add_argument("--bucket", help="artifact bucket (created if missing); AWS default: per account and region")
    dep.add_argument("--subnet-ids", default="", help="comma-separated subnets: run the functions in a VPC")
    dep.add_argument("--security-group-ids", default="", help="comma-separated security groups for --subnet-ids")
    dep.add_argument(
        "--skip-migrations",
        action="store_true",
        help="the database is not reachable from here; apply migrations from inside its network",
    )
    return dep


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not (args.database_url or args.database_secret_arn):
        die("give --database-url or --database-secret-arn", code=2)
    if bool(args.subnet_ids) != bool(args.security_group_ids):
        die("give --subnet-ids and --security-group-ids together (or neither)", code=2)
    t0 = time.monotonic()
    target = deploy_target(args, os.environ)
    if not args.skip_migrations:
        migrate(migration_url(args))
    chalice_package(target.region, args.chalice_stage)
    outputs = deploy(target, args.database_url).outputs
    ensure_ttl(target, BUILD_DIR / "sam.json")
    api_id = outputs.get("ApiId") or outputs.get("RestAPIId")
    if not api_id:
        die(f"stack has no ApiId output: {sorted(outputs)}")
    stage = api_stage(args.chalice_stage)
    redeploy_stage(target, api_id, stage)
    log(f"deployed {args.stack_name} in {time.monotonic() - t0:.1f} s")
    print(f"ApiUrl={api_url(target, outputs, api_id, stage)}", flush=True)
    print(f"ApiKeyId={outputs.get('ApiKeyId', '')}", flush=True)
    for key in OTHER_OUTPUTS:
        if key in outputs:
            print(f"{key}={outputs[key]}", flush=True)
    return 0


def deploy_target(args: argparse.Namespace, environ: Mapping[str, str]) -> Target:
    """Where this deploy goes: the emulator at --endpoint, else AWS; the API id is the emulator's or AWS's pick."""
    return Target(
        endpoint=args.endpoint or None,
        region=args.region,
        emulator=bool(args.endpoint),
        stack=args.stack_name,
        api_id="",
        bucket=artifact_bucket(args),
        parameters=stack_parameters(args, environ),
    )


# AWS: the custom domain with mutual TLS for Efí's webhook (README: The Efí provider); all three or none.
WEBHOOK_DOMAIN = {
    "WEBHOOK_DOMAIN_NAME": "WebhookDomainName",
    "WEBHOOK_DOMAIN_CERTIFICATE_ARN": "WebhookDomainCertificateArn",
    "WEBHOOK_TRUSTSTORE_URI": "WebhookTruststoreUri",
}


def webhook_domain(environ: Mapping[str, str]) -> dict[str, str]:
    given = {param: environ[name] for name, param in WEBHOOK_DOMAIN.items() if environ.get(name)}
    if given and len(given) < len(WEBHOOK_DOMAIN):
        die(f"set {', '.join(WEBHOOK_DOMAIN)} together (or none)", code=2)
    return given


def stack_parameters(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Template parameters besides DatabaseUrl/LocalApiId: the settings set in the environment, the database
    secret, the VPC (AWS: functions that reach a private database) and Efí's webhook domain."""
    params = from_environment(environ)
    params.update(webhook_domain(environ))
    if args.database_secret_arn:
        params["DatabaseSecretArn"] = args.database_secret_arn
    if args.subnet_ids:
        params.update(SubnetIds=args.subnet_ids, SecurityGroupIds=args.security_group_ids)
    return params


def artifact_bucket(args: argparse.Namespace) -> str:
    """The bucket the code goes to (created on the first upload if missing): per account and region on AWS."""
    if args.bucket:
        return str(args.bucket)
    if args.endpoint:
        return ARTIFACT_BUCKET
    account = aws_client("sts", None, args.region).get_caller_identity()["Account"]
    return f"pix-payouts-artifacts-{account}-{args.region}"


def migration_url(args: argparse.Namespace) -> str:
    """Where migrations run: --migrate-url, else --database-url, else the URL in the database secret."""
    if args.migrate_url or args.database_url:
        return str(args.migrate_url or args.database_url)
    from chalicelib.adapters.secrets import database_url_from_secret

    secrets = aws_client("secretsmanager", args.endpoint or None, args.region)
    return database_url_from_secret(secrets, args.database_secret_arn)


def api_stage(chalice_stage: str) -> str:
    config = json.loads(CHALICE_CONFIG.read_text())
    stage_config = config.get("stages", {}).get(chalice_stage, {})
    return str(stage_config.get("api_gateway_stage") or config.get("api_gateway_stage") or "api")


def redeploy_stage(target: Target, api_id: str, stage: str) -> None:
    """A new deployment of the stage: gateway responses created with the stack apply only from the next one."""
    target.client("apigateway").create_deployment(restApiId=api_id, stageName=stage, description="gateway responses")
    log(f"apigateway: stage {stage} redeployed")


def api_url(target: Target, outputs: Mapping[str, Any], api_id: str, stage: str) -> str:
    if target.emulator:
        return f"{str(target.endpoint).rstrip('/')}/_aws/execute-api/{api_id}/{stage}"
    return str(outputs.get("ApiUrl") or f"https://{api_id}.execute-api.{target.region}.amazonaws.com/{stage}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
