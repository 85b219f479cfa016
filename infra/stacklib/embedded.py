"""The embedded stack's commands: up, down, serve, status, env (PostgreSQL + MiniStack + the deployed app)."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from collections.abc import Mapping
from types import FrameType

from infra.stacklib import psp_process
from infra.stacklib.cloudformation import TERMINAL_OK, deploy, ensure_ttl, stack_status
from infra.stacklib.console import die, log, read, write
from infra.stacklib.layout import (
    API_STAGE,
    BUILD_DIR,
    ENDPOINT,
    LOCAL_API_ID,
    MINISTACK_PID,
    OUT_FILES,
    PG_MODE,
    REGION,
)
from infra.stacklib.ministack import ministack_died, ministack_down, ministack_health, ministack_up
from infra.stacklib.package import chalice_package
from infra.stacklib.parameters import from_environment
from infra.stacklib.postgres import migrate, pg_down, pg_ready, pg_up, postmaster_pid
from infra.stacklib.processes import alive, http_get
from infra.stacklib.target import Target

# .stack/ file -> the variable `env` exports it as (besides the fixed ones in _env_values)
ENV_FILES = (
    ("API_URL", "api_url"),
    ("API_KEY", "api_key"),
    ("DATABASE_URL", "database_url"),
    ("PAYOUTS_QUEUE_URL", "queue_url"),
    ("PAYOUTS_DLQ_URL", "dlq_url"),
    ("FANOUT_QUEUE_URL", "fanout_url"),
    ("IDEMPOTENCY_TABLE", "lock_table"),
)
# `status` prints these .stack/ files last, one a line
STATUS_FILES = ("queue_url", "dlq_url", "fanout_url", "lock_table")


def api_url_for(api_id: str) -> str:
    return f"{ENDPOINT}/_aws/execute-api/{api_id}/{API_STAGE}"


def write_api_key(target: Target, outputs: Mapping[str, str]) -> None:
    """The stack's API key value goes to .stack/api_key (mode 600), never to the log."""
    key_id = outputs.get("ApiKeyId")
    if not key_id:
        die(f"stack has no ApiKeyId output: {sorted(outputs)}")
    value = target.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]
    OUT_FILES["api_key"].unlink(missing_ok=True)
    fd = os.open(OUT_FILES["api_key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log("api key: written to .stack/api_key")


def wait_health(api_url: str, timeout: float = 60, settle: float = 10) -> tuple[int, str]:
    """Poll GET /health until 200; give up `timeout` s after the start, or
    `settle` s after the first non-200 answer (routing works, the app does not)."""
    deadline = time.monotonic() + timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        status, body = http_get(f"{api_url}/health", timeout=35)
        if status == 200:
            break
        if status:
            deadline = min(deadline, time.monotonic() + settle)
        time.sleep(0.5)
    return status, body


def cmd_up(_args: argparse.Namespace | None = None) -> int:
    t0 = time.monotonic()
    # The local PSP first: its URL, files and webhook secret are settings of the functions (psp_process.py).
    psp_process.up(api_url_for(LOCAL_API_ID), log)
    # The settings of the README's table set in this environment; unchanged ones leave the stack as it is.
    # A local webhook receiver listens on plain http at 127.0.0.1: allowed here unless the environment says
    # otherwise (`deploy`, for LocalStack and AWS, keeps the template's default, off).
    parameters = {"WebhooksAllowHttpLoopback": "true", **from_environment({**os.environ, **psp_process.lambda_env()})}
    target = Target.embedded(parameters=parameters)
    database_url = pg_up()
    write(OUT_FILES["database_url"], database_url)
    # The sandbox's tables too: `PIX_STACK_PROVIDER=sandbox make up` may switch the functions to it at any `up`.
    migrate(database_url, sandbox=True)
    ministack_up()
    write(OUT_FILES["endpoint_url"], ENDPOINT)
    chalice_package(target.region)
    deployed = deploy(target, database_url)
    outputs = deployed.outputs
    ensure_ttl(target, BUILD_DIR / "sam.json")
    api_id = outputs.get("ApiId") or outputs.get("RestAPIId")
    if not api_id:
        die(f"stack has no ApiId output: {outputs}")
    if deployed.changed:  # gateway responses apply from the stage's next deployment
        target.client("apigateway").create_deployment(restApiId=api_id, stageName=API_STAGE)
    api_url = api_url_for(api_id)
    write(OUT_FILES["api_url"], api_url)
    write(OUT_FILES["queue_url"], outputs.get("QueueUrl", ""))
    write(OUT_FILES["dlq_url"], outputs.get("DlqUrl", ""))
    write(OUT_FILES["fanout_url"], outputs.get("FanoutQueueUrl", ""))
    write(OUT_FILES["lock_table"], outputs.get("LockTable", ""))
    write_api_key(target, outputs)
    status, body = wait_health(api_url)
    if status == 200:
        log(f"health: 200 {body.strip()[:200]}")
    elif status:
        log(f"health: WARNING GET /health answered {status} (routing works; app not healthy): {body.strip()[:300]}")
    else:
        die(f"GET {api_url}/health got no answer")
    log(f"up in {time.monotonic() - t0:.1f} s")
    print(api_url, flush=True)
    return 0


def cmd_down(args: argparse.Namespace | None = None) -> int:
    everything = bool(getattr(args, "all", False))
    ministack_down()
    psp_process.down(log)
    pg_down(everything)
    return 0


def cmd_serve(_args: argparse.Namespace | None = None) -> int:
    stop: list[int] = []

    def _handler(signum: int, _frame: FrameType | None) -> None:
        stop.append(signum)

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    try:
        cmd_up()
        log("serving; Ctrl-C or SIGTERM to stop")
        while not stop:
            if ministack_died():
                log("ministack exited unexpectedly; see .stack/ministack.log")
                break
            time.sleep(0.5)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cmd_down()
    return 0


def _env_values() -> dict[str, str]:
    return {
        **{name: read(OUT_FILES[file]) or "" for name, file in ENV_FILES},
        "POWERTOOLS_SERVICE_NAME": "pix-payouts",
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        **psp_process.lambda_env(),
    }


def export_lines(values: Mapping[str, str]) -> list[str]:
    """Shell `export` lines, each value quoted so that `eval` gives it back as it is."""
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def cmd_env(_args: argparse.Namespace | None = None) -> int:
    if not read(OUT_FILES["api_url"]):
        print("# stack not deployed yet: run `infra/stack.py up`", file=sys.stderr)
        return 1
    for line in export_lines(_env_values()):
        print(line)
    return 0


def cmd_status(_args: argparse.Namespace | None = None) -> int:
    target = Target.embedded()
    ok = True
    mode = read(PG_MODE)
    db_url = read(OUT_FILES["database_url"])
    pm = postmaster_pid()
    if mode == "external":
        ready = db_url is not None and pg_ready(db_url)
        print(f"postgres   : external (DATABASE_URL) {'ready' if ready else 'NOT READY'}")
    elif pm:
        print(f"postgres   : pgserver running (pid {pm}) {db_url or ''}")
    else:
        print("postgres   : not running")
        ok = False
    health = ministack_health()
    pid = read(MINISTACK_PID)
    if health:
        who = f"pid {pid}" if pid and alive(int(pid)) else "not started by this script"
        print(f"ministack  : running on {ENDPOINT} ({who}, version {health.get('version', '?')})")
        try:
            status = stack_status(target, target.client("cloudformation"))
        except Exception as exc:
            status = f"error: {exc}"
        print(f"stack      : {target.stack} {status or 'not deployed'}")
        ok = ok and status in TERMINAL_OK
    else:
        print(f"ministack  : not running{' (stale pid file)' if pid else ''}")
        ok = False
    api_url = read(OUT_FILES["api_url"])
    if api_url and health:
        code, _ = http_get(f"{api_url}/health", timeout=35)
        print(f"api        : {api_url}  (GET /health -> {code or 'no answer'})")
        ok = ok and code == 200
    else:
        print(f"api        : {api_url or '-'}")
    for line in psp_process.status_lines():
        print(line)
    for name in STATUS_FILES:
        print(f"{name:11}: {read(OUT_FILES[name]) or '-'}")
    return 0 if ok else 3
