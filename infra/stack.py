#!/usr/bin/env python3
"""Local emulator stack for pix-payouts: embedded Postgres + MiniStack + the
Chalice app deployed as a CloudFormation (SAM) stack.

Run with the app venv:  .venv/bin/python infra/stack.py {up|down|serve|status|env}

Everything is relative to the project root (the parent of this file's folder):
  .venv/bin/chalice        packages the app (chalice package --merge-template)
  .venv-emu/bin/ministack  the AWS emulator (its own venv: it pins botocore)
  .stack/                  runtime state: pgdata, logs, pid files, URLs

Only stdlib + boto3 + pgserver are used.  Everything started here listens on
127.0.0.1 (MiniStack) or on a unix socket in .stack/pgdata (pgserver) only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's modules (infra.*, chalicelib.*) import from the root
    sys.path.insert(0, str(ROOT))
from infra.parameters import from_environment  # noqa: E402

STACK_DIR = ROOT / ".stack"
PGDATA = STACK_DIR / "pgdata"
APP_VENV = ROOT / ".venv"
EMU_VENV = ROOT / ".venv-emu"
BUILD_DIR = ROOT / "build" / "package"
MERGE_TEMPLATE = ROOT / "infra" / "template.json"
# The app's schema migrator, run with the app venv after Postgres is up (skipped
# when the module does not exist, e.g. in a toy app). Must be idempotent.

HOST = "127.0.0.1"
PORT = int(os.environ.get("PIX_STACK_PORT", "4566"))
ENDPOINT = f"http://{HOST}:{PORT}"
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
STACK_NAME = "pix-payouts"
ARTIFACT_BUCKET = "pix-payouts-artifacts"
API_STAGE = "api"
# Pinned REST API id (MiniStack honours the `ms-custom-id` tag, which the merge
# template sets from the LocalApiId parameter). 8 lowercase hex chars, the shape
# MiniStack's own ids have (its execute-api host regex expects [a-f0-9]{8}).
LOCAL_API_ID = os.environ.get("PIX_STACK_API_ID", "5ca1ab1e")

MINISTACK_PID = STACK_DIR / "ministack.pid"
# MiniStack saves its state here on a clean stop (`down`) and loads it on start, so queued
# messages, locks and the deployed stack survive `make down`/`make up`. A `kill -9` saves nothing.
MINISTACK_STATE = STACK_DIR / "ministack-state"
MINISTACK_LOG = STACK_DIR / "ministack.log"
PG_MODE = STACK_DIR / "pg_mode"  # "pgserver" or "external"
PG_STARTED = STACK_DIR / "pgserver.pid"  # only when `up` started it (so `down` may stop it)
OUT_FILES = {
    "api_url": STACK_DIR / "api_url",
    "database_url": STACK_DIR / "database_url",
    "queue_url": STACK_DIR / "queue_url",
    "dlq_url": STACK_DIR / "dlq_url",
    "fanout_url": STACK_DIR / "fanout_url",
    "lock_table": STACK_DIR / "lock_table",
    "api_key": STACK_DIR / "api_key",
    "endpoint_url": STACK_DIR / "endpoint_url",
}

TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
UNUSABLE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}

_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[stack {time.monotonic() - _T0:6.1f}s] {msg}", flush=True)


def die(msg: str, code: int = 1) -> NoReturn:
    print(f"[stack] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------
# Postgres
# --------------------------------------------------------------------------


def _pgserver():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs RuntimeDirWarning
        import pgserver
    return pgserver


def _postmaster_pid() -> int | None:
    """PID of the postgres running on .stack/pgdata, if any."""
    try:
        pid = int((PGDATA / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _is_our_pgserver_url(url: str) -> bool:
    return f"host={PGDATA}" in url


def pg_up() -> str:
    external = os.environ.get("DATABASE_URL")
    if external and not _is_our_pgserver_url(external):
        write(PG_MODE, "external")
        log("postgres: using DATABASE_URL from the environment (not managed here)")
        return external
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    was_running = _postmaster_pid() is not None
    import logging

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    srv = _pgserver().get_server(PGDATA, cleanup_mode=None)
    url = srv.get_uri()
    write(PG_MODE, "pgserver")
    if not was_running:
        write(PG_STARTED, str(srv.get_pid()))
    log(f"postgres: pgserver {'reused' if was_running else 'started'} (pid {srv.get_pid()}) {url}")
    return url


def pg_down(everything: bool = False) -> None:
    pid = _postmaster_pid()
    started = read(PG_STARTED)
    if pid is None:
        log("postgres: embedded server not running")
    elif started != str(pid) and not everything:
        log(
            f"postgres: embedded server on .stack/pgdata (pid {pid}) was not started by `up`; "
            "left alone (`down --all` stops it)"
        )
    else:
        pg = _pgserver()
        user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        try:
            # pgserver's own pg_ctl; postgres runs as user `pgserver` when we are root.
            pg.pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=PGDATA, user=user, timeout=60)
            log(f"postgres: embedded server stopped (was pid {pid})")
        except Exception as exc:
            log(f"postgres: pg_ctl stop failed ({exc}); sending SIGTERM to {pid}")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if read(PG_MODE) == "external":
        log("postgres: DATABASE_URL server left alone")
    PG_MODE.unlink(missing_ok=True)
    PG_STARTED.unlink(missing_ok=True)


def migrate(url: str) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib.adapters.migrations import apply_migrations

    applied = apply_migrations(url)
    log(f"postgres: migrations applied: {', '.join(applied) or 'none new'}")


def pg_ready(url: str) -> bool:
    _pgserver()  # imports pgserver with its platformdirs warning silenced
    from pgserver._commands import POSTGRES_BIN_PATH

    pg_isready = POSTGRES_BIN_PATH / "pg_isready"
    exe = str(pg_isready) if pg_isready.exists() else shutil.which("pg_isready")
    if not exe:
        return False
    return subprocess.run([exe, "-q", "-d", url], timeout=10).returncode == 0


# --------------------------------------------------------------------------
# MiniStack
# --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # zombies count as dead
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, ""


def ministack_health() -> dict | None:
    status, body = http_get(f"{ENDPOINT}/_ministack/health", timeout=3)
    if status != 200:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "services" in data else None


def _ministack_env() -> dict[str, str]:
    """A clean environment: MiniStack hands os.environ to every Lambda process
    (ministack/core/lambda_runtime.py, `spawn_env = {**os.environ, **env_vars}`),
    so nothing of the caller's (DATABASE_URL, AWS_PROFILE, ...) may leak in."""
    keep = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SSL_CERT_FILE", "SSL_CERT_DIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    tmp = STACK_DIR / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            # the one-shot Lambda path runs `python3` from PATH (lambda_svc.py), the
            # warm pool uses sys.executable: both must be the emulator venv.
            "PATH": f"{EMU_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "GATEWAY_PORT": str(PORT),
            "BIND_HOST": HOST,  # default 0.0.0.0 (app.py main())
            # Host used in generated URLs (queue URLs, ...). An explicit value
            # also stops SQS from echoing the caller's Host header (sqs.py).
            "MINISTACK_HOST": HOST,
            "MINISTACK_REGION": REGION,
            "MINISTACK_ACCOUNT_ID": ACCOUNT_ID,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            # Lambdas call back here; the default for the one-shot path is
            # http://localhost:<port>, which may resolve to ::1 first.
            "AWS_ENDPOINT_URL": ENDPOINT,
            "LAMBDA_EXECUTOR": "local",  # no Docker here
            "PERSIST_STATE": "1",
            "STATE_DIR": str(MINISTACK_STATE),
            "S3_PERSIST": "0",
            "IOT_MTLS_ENABLED": "0",  # would bind 0.0.0.0:8883 at boot (services/iot.py)
            "SFTP_ENABLED": "0",
            "SFTP_HOST": HOST,  # default 0.0.0.0 (services/transfer.py)
            "LOG_LEVEL": os.environ.get("PIX_STACK_LOG_LEVEL", "INFO"),
            "TMPDIR": str(tmp),  # pid file, Lambda code dirs, caches
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def ministack_up() -> None:
    if ministack_health():
        pid = read(MINISTACK_PID)
        owner = f"pid {pid}" if pid and _alive(int(pid)) else "not started by this script"
        log(f"ministack: already answering on {ENDPOINT} ({owner})")
        return
    status, _ = http_get(f"{ENDPOINT}/", timeout=2)
    if status:
        die(f"something that is not MiniStack answers on {ENDPOINT}; stop it or set PIX_STACK_PORT")
    _forget_dead_emulator()
    exe = EMU_VENV / "bin" / "ministack"
    if not exe.exists():
        die(f"{exe} not found: create the emulator venv first")
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    _clean_emulator_tmp()
    logf = open(MINISTACK_LOG, "wb")
    proc = subprocess.Popen(
        [str(exe)],
        cwd=str(STACK_DIR),
        env=_ministack_env(),
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: `down` kills the group
    )
    logf.close()
    write(MINISTACK_PID, str(proc.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"ministack exited with {proc.returncode}; see {MINISTACK_LOG}")
        if ministack_health():
            st, _ = http_get(f"{ENDPOINT}/_ministack/ready", timeout=3)
            if st == 200:
                log(f"ministack: started (pid {proc.pid}) on {ENDPOINT}, log {MINISTACK_LOG.relative_to(ROOT)}")
                return
        time.sleep(0.2)
    die(f"ministack did not become healthy in 60 s; see {MINISTACK_LOG}")


def _clean_emulator_tmp() -> None:
    """Lambda code dirs that MiniStack extracted under TMPDIR; its workers do
    not remove them when they are killed."""
    shutil.rmtree(STACK_DIR / "tmp", ignore_errors=True)


def _forget_dead_emulator() -> None:
    """After a MiniStack that died without `down` (kill -9, OOM): kill the Lambda workers it left
    running, which would go on settling with no lock table behind them, and drop its saved state,
    which is older than its death (it saves only on a clean stop). The next start is a fresh
    emulator; the sweeper re-sends the payouts whose messages died with it."""
    pid_s = read(MINISTACK_PID)
    if not pid_s or (_alive(int(pid_s)) and "ministack" in _cmdline(int(pid_s))):
        return
    leftovers = _group_members(int(pid_s))
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(MINISTACK_STATE, ignore_errors=True)
    MINISTACK_PID.unlink(missing_ok=True)
    log(f"ministack: pid {pid_s} had died; killed {len(leftovers)} leftover worker(s), dropped its stale saved state")


def _group_members(pgid: int) -> list[int]:
    """Processes of the emulator's process group that run from its venv (a reused pid is left alone)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if int(fields[2]) == pgid and str(EMU_VENV) in _cmdline(pid):
            members.append(pid)
    return members


def _kill_group(pid: int, timeout: float = 15.0) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if pgid != pid:  # not a group leader we created; only signal the process
        os.kill(pid, signal.SIGTERM)
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if not _alive(pid):
            # leader gone; give stragglers (Lambda workers) a moment, then kill
            time.sleep(0.5)
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ministack_down() -> None:
    pid_s = read(MINISTACK_PID)
    if not pid_s:
        if ministack_health():
            log(f"ministack: running on {ENDPOINT} but not started by this script; left alone")
        else:
            log("ministack: not running")
        return
    pid = int(pid_s)
    if _alive(pid) and "ministack" in _cmdline(pid):
        _kill_group(pid)  # SIGTERM first: MiniStack saves its state on the way out
        _clean_emulator_tmp()
        log(f"ministack: stopped process group {pid}")
    else:
        log("ministack: not running (stale pid file)")
        _forget_dead_emulator()
    MINISTACK_PID.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Package + deploy
# --------------------------------------------------------------------------


# Where `aws()` points: the embedded MiniStack unless `deploy` retargets it (LocalStack, AWS).
TARGET: dict = {
    "endpoint": ENDPOINT,
    "region": REGION,
    "emulator": True,
    "bucket": ARTIFACT_BUCKET,
    "stack": STACK_NAME,
    "api_id": LOCAL_API_ID,
    "parameters": {},
}


def _object_url(key: str) -> str:
    if TARGET["emulator"]:
        return f"{TARGET['endpoint']}/{TARGET['bucket']}/{key}"
    return f"https://{TARGET['bucket']}.s3.{TARGET['region']}.amazonaws.com/{key}"


def aws(service: str):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=120)
    if not TARGET["emulator"]:  # real AWS: the default credential chain
        return boto3.client(service, region_name=TARGET["region"], config=config)
    return boto3.client(
        service,
        endpoint_url=TARGET["endpoint"],
        region_name=TARGET["region"],
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 (emulators take any credentials)
        config=config,
    )


def chalice_package(chalice_stage: str = "dev") -> None:
    chalice = APP_VENV / "bin" / "chalice"
    if not chalice.exists():
        die(f"{chalice} not found")
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)
    env = dict(os.environ, AWS_DEFAULT_REGION=TARGET["region"])
    res = subprocess.run(
        [
            str(chalice),
            "package",
            "--stage",
            chalice_stage,
            "--merge-template",
            str(MERGE_TEMPLATE.relative_to(ROOT)),
            str(BUILD_DIR.relative_to(ROOT)),
        ],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0 or not (BUILD_DIR / "sam.json").exists():
        sys.stderr.write(res.stdout + res.stderr)
        die("chalice package failed")
    log(
        f"chalice: packaged {BUILD_DIR.relative_to(ROOT)}/sam.json "
        f"({(BUILD_DIR / 'deployment.zip').stat().st_size // 1024} KiB zip)"
    )


def _upload_artifacts(template: dict) -> dict:
    """What `aws cloudformation package` does: upload local CodeUri/ContentUri
    files to S3 and point the template at them."""
    s3 = aws("s3")
    try:
        s3.head_bucket(Bucket=TARGET["bucket"])
    except Exception:
        extra = {}
        if TARGET["region"] != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": TARGET["region"]}
        s3.create_bucket(Bucket=TARGET["bucket"], **extra)
    uploaded: dict[str, dict] = {}
    for res in template.get("Resources", {}).values():
        props = res.get("Properties", {})
        key_name = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(
            res.get("Type")
        )
        if not key_name or not isinstance(props.get(key_name), str):
            continue
        local = (BUILD_DIR / props[key_name]).resolve()
        if str(local) not in uploaded:
            data = local.read_bytes()
            key = f"{TARGET['stack']}/{local.stem}-{hashlib.sha256(data).hexdigest()[:16]}{local.suffix}"
            try:
                s3.head_object(Bucket=TARGET["bucket"], Key=key)
            except Exception:
                s3.put_object(Bucket=TARGET["bucket"], Key=key, Body=data)
            uploaded[str(local)] = {"Bucket": TARGET["bucket"], "Key": key}
        props[key_name] = dict(uploaded[str(local)])
    return template


def _stack_status(cfn) -> str | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=TARGET["stack"])["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def _print_events(cfn, since: float) -> None:
    try:
        events = cfn.describe_stack_events(StackName=TARGET["stack"])["StackEvents"]
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


def _wait_stack(cfn, since: float, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _stack_status(cfn)
        if status is None:
            return "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(0.5)
    _print_events(cfn, since)
    die(f"stack {TARGET['stack']} still in progress after {timeout} s")


def _api_body(template: dict):
    return template.get("Resources", {}).get("RestAPI", {}).get("Properties", {}).get("DefinitionBody")


def _deployed_template(cfn) -> dict | None:
    try:
        body = cfn.get_template(StackName=TARGET["stack"], TemplateStage="Original")["TemplateBody"]
    except Exception:
        return None
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return json.loads(json.dumps(body))


def _stack_args(template: dict, database_url: str, api_id: str) -> dict:
    body = json.dumps(template, separators=(",", ":"))
    args: dict = {
        "StackName": TARGET["stack"],
        "Parameters": [
            {"ParameterKey": "DatabaseUrl", "ParameterValue": database_url},
            {"ParameterKey": "LocalApiId", "ParameterValue": api_id},
            *({"ParameterKey": k, "ParameterValue": v} for k, v in TARGET["parameters"].items()),
        ],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    }
    if len(body) <= 51200:
        args["TemplateBody"] = body
    else:  # CloudFormation's inline limit; go through S3 like `aws cloudformation deploy`
        key = f"{TARGET['stack']}/template-{hashlib.sha256(body.encode()).hexdigest()[:16]}.json"
        aws("s3").put_object(Bucket=TARGET["bucket"], Key=key, Body=body.encode())
        args["TemplateURL"] = _object_url(key)
    return args


def _run_stack_op(cfn, op: str, args: dict) -> bool:
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
    final = _wait_stack(cfn, since)
    if final != want:
        print(f"[stack] stack {TARGET['stack']} ended {final}; events:", file=sys.stderr)
        _print_events(cfn, since)
        die(f"deploy failed ({final})")
    return True


def deploy(database_url: str) -> dict[str, str]:
    template = _upload_artifacts(json.loads((BUILD_DIR / "sam.json").read_text()))
    cfn = aws("cloudformation")
    status = _stack_status(cfn)
    if status and status.endswith("_IN_PROGRESS"):
        log(f"cloudformation: {TARGET['stack']} is {status}; waiting")
        status = _wait_stack(cfn, time.time())
    if status in UNUSABLE:
        log(f"cloudformation: {TARGET['stack']} is {status}; deleting it first")
        cfn.delete_stack(StackName=TARGET["stack"])
        _wait_stack(cfn, time.time())
        status = None
    if status == "DELETE_COMPLETE":
        status = None

    if status is None:
        log(f"cloudformation: creating stack {TARGET['stack']}")
        _run_stack_op(cfn, "create", _stack_args(template, database_url, TARGET["api_id"]))
        log("cloudformation: CREATE_COMPLETE")
        TARGET["changed"] = True
        return _outputs(cfn)

    log(f"cloudformation: updating stack {TARGET['stack']} (was {status})")
    previous = _deployed_template(cfn)
    if TARGET["api_id"] and previous is not None and _api_body(previous) != _api_body(template):
        # MiniStack replaces a REST API whose OpenAPI Body changed by creating
        # the new one before deleting the old one; with a pinned id the create
        # collides with the old API and the update rolls back (KeyError 'id').
        # Step 1 moves the API to a throw-away id (the marker makes the Body
        # differ), step 2 re-creates it under the pinned id with the real Body.
        log("cloudformation: API routes changed; re-pinning the API id in two steps")
        interim = json.loads(json.dumps(template))
        _api_body(interim)["x-pix-stack-repin"] = str(time.time_ns())
        _run_stack_op(cfn, "update", _stack_args(interim, database_url, ""))
    TARGET["changed"] = _run_stack_op(cfn, "update", _stack_args(template, database_url, TARGET["api_id"]))
    log("cloudformation: UPDATE_COMPLETE" if TARGET["changed"] else "cloudformation: no changes")
    return _outputs(cfn)


def ensure_ttl(template_path: Path) -> None:
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
            name = name["Fn::Sub"].replace("${AWS::StackName}", TARGET["stack"])
        if not spec or not spec.get("Enabled") or not isinstance(name, str):
            continue
        ddb = ddb or aws("dynamodb")
        desc = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        if desc.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["AttributeName"]}
            )
            log(f"dynamodb: TTL on {name}.{spec['AttributeName']} enabled")


def _outputs(cfn) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=TARGET["stack"])["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def write_api_key(outputs: dict[str, str]) -> None:
    """The stack's API key value goes to .stack/api_key (mode 600), never to the log."""
    key_id = outputs.get("ApiKeyId")
    if not key_id:
        die(f"stack has no ApiKeyId output: {sorted(outputs)}")
    value = aws("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]
    OUT_FILES["api_key"].unlink(missing_ok=True)
    fd = os.open(OUT_FILES["api_key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log("api key: written to .stack/api_key")


def api_url_for(api_id: str) -> str:
    return f"{ENDPOINT}/_aws/execute-api/{api_id}/{API_STAGE}"


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


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def cmd_up(_args=None) -> int:
    t0 = time.monotonic()
    database_url = pg_up()
    write(OUT_FILES["database_url"], database_url)
    migrate(database_url)
    ministack_up()
    write(OUT_FILES["endpoint_url"], ENDPOINT)
    # A local webhook receiver listens on plain http at 127.0.0.1: on here unless the environment says
    # otherwise; `deploy` (AWS, LocalStack) keeps the template's default, off.
    TARGET["parameters"]["WebhooksAllowHttpLoopback"] = "true"
    # The settings of the README's table set in this environment; unchanged ones leave the stack as it is.
    TARGET["parameters"].update(from_environment(os.environ))
    chalice_package()
    outputs = deploy(database_url)
    ensure_ttl(BUILD_DIR / "sam.json")
    api_id = outputs.get("ApiId") or outputs.get("RestAPIId")
    if not api_id:
        die(f"stack has no ApiId output: {outputs}")
    if TARGET.get("changed"):  # gateway responses apply from the stage's next deployment
        aws("apigateway").create_deployment(restApiId=api_id, stageName=API_STAGE)
    api_url = api_url_for(api_id)
    write(OUT_FILES["api_url"], api_url)
    write(OUT_FILES["queue_url"], outputs.get("QueueUrl", ""))
    write(OUT_FILES["dlq_url"], outputs.get("DlqUrl", ""))
    write(OUT_FILES["fanout_url"], outputs.get("FanoutQueueUrl", ""))
    write(OUT_FILES["lock_table"], outputs.get("LockTable", ""))
    write_api_key(outputs)
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


def cmd_down(args=None) -> int:
    everything = bool(getattr(args, "all", False))
    ministack_down()
    pg_down(everything)
    return 0


def cmd_serve(_args=None) -> int:
    stop = {"sig": None}

    def _handler(signum, _frame):
        stop["sig"] = signum

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    try:
        cmd_up()
        log("serving; Ctrl-C or SIGTERM to stop")
        while stop["sig"] is None:
            pid = read(MINISTACK_PID)
            if pid and not _alive(int(pid)):
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
        "API_URL": read(OUT_FILES["api_url"]) or "",
        "API_KEY": read(OUT_FILES["api_key"]) or "",
        "DATABASE_URL": read(OUT_FILES["database_url"]) or "",
        "PAYOUTS_QUEUE_URL": read(OUT_FILES["queue_url"]) or "",
        "PAYOUTS_DLQ_URL": read(OUT_FILES["dlq_url"]) or "",
        "FANOUT_QUEUE_URL": read(OUT_FILES["fanout_url"]) or "",
        "IDEMPOTENCY_TABLE": read(OUT_FILES["lock_table"]) or "",
        "POWERTOOLS_SERVICE_NAME": "pix-payouts",
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }


def cmd_env(_args=None) -> int:
    if not read(OUT_FILES["api_url"]):
        print("# stack not deployed yet: run `infra/stack.py up`", file=sys.stderr)
        return 1
    for key, value in _env_values().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_status(_args=None) -> int:
    ok = True
    mode = read(PG_MODE)
    db_url = read(OUT_FILES["database_url"])
    pm = _postmaster_pid()
    if mode == "external":
        ready = bool(db_url) and pg_ready(db_url)
        print(f"postgres   : external (DATABASE_URL) {'ready' if ready else 'NOT READY'}")
    elif pm:
        print(f"postgres   : pgserver running (pid {pm}) {db_url or ''}")
    else:
        print("postgres   : not running")
        ok = False
    health = ministack_health()
    pid = read(MINISTACK_PID)
    if health:
        who = f"pid {pid}" if pid and _alive(int(pid)) else "not started by this script"
        print(f"ministack  : running on {ENDPOINT} ({who}, version {health.get('version', '?')})")
        try:
            status = _stack_status(aws("cloudformation"))
        except Exception as exc:
            status = f"error: {exc}"
        print(f"stack      : {TARGET['stack']} {status or 'not deployed'}")
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
    for name in ("queue_url", "dlq_url", "fanout_url", "lock_table"):
        print(f"{name:11}: {read(OUT_FILES[name]) or '-'}")
    return 0 if ok else 3


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["deploy"]:
        from infra import deploy

        return deploy.main(words[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, fn, help_ in (
        ("up", cmd_up, "start Postgres + MiniStack, package and deploy (idempotent)"),
        ("down", cmd_down, "stop what `up` started"),
        ("serve", cmd_serve, "up, block until Ctrl-C/SIGTERM, then down"),
        ("status", cmd_status, "show what is running (exit 0 only when everything is healthy)"),
        ("env", cmd_env, "print export lines for tests and scripts"),
    ):
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=fn)
        if name == "down":
            p.add_argument(
                "--all",
                action="store_true",
                help="also stop the pgserver on .stack/pgdata when something else started it",
            )
    # `deploy` has its own module and options (infra/deploy.py); listed here for --help.
    sub.add_parser("deploy", help="deploy the same template to LocalStack (--endpoint) or AWS (deploy --help)")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
