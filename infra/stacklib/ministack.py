"""The MiniStack emulator process: its clean environment, start, stop, and recovery from one that died."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from infra.stacklib.console import die, log, read, write
from infra.stacklib.layout import (
    ACCOUNT_ID,
    EMU_VENV,
    EMULATOR_TMP,
    ENDPOINT,
    HOST,
    MINISTACK_LOG,
    MINISTACK_PID,
    MINISTACK_STATE,
    PORT,
    REGION,
    ROOT,
    STACK_DIR,
)
from infra.stacklib.processes import alive, cmdline, group_members, http_get, kill_group

# The caller's variables a MiniStack (and so every Lambda it runs) may see; nothing else leaks in.
KEPT_VARIABLES = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SSL_CERT_FILE", "SSL_CERT_DIR")


def ministack_health() -> dict[str, Any] | None:
    status, body = http_get(f"{ENDPOINT}/_ministack/health", timeout=3)
    if status != 200:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "services" in data else None


def _ministack_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """A clean environment: MiniStack hands os.environ to every Lambda process
    (ministack/core/lambda_runtime.py, `spawn_env = {**os.environ, **env_vars}`),
    so nothing of the caller's (DATABASE_URL, AWS_PROFILE, ...) may leak in."""
    env = {k: environ[k] for k in KEPT_VARIABLES if k in environ}
    env.update(
        {
            # the one-shot Lambda path runs `python3` from PATH (lambda_svc.py), the
            # warm pool uses sys.executable: both must be the emulator venv.
            "PATH": f"{EMU_VENV / 'bin'}:{environ.get('PATH', '/usr/bin:/bin')}",
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
            "LOG_LEVEL": environ.get("PIX_STACK_LOG_LEVEL", "INFO"),
            "TMPDIR": str(EMULATOR_TMP),  # pid file, Lambda code dirs, caches
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def ministack_up() -> None:
    if ministack_health():
        pid = read(MINISTACK_PID)
        owner = f"pid {pid}" if pid and alive(int(pid)) else "not started by this script"
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
    env = _ministack_env()
    EMULATOR_TMP.mkdir(parents=True, exist_ok=True)
    logf = open(MINISTACK_LOG, "wb")
    proc = subprocess.Popen(
        [str(exe)],
        cwd=str(STACK_DIR),
        env=env,
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
    shutil.rmtree(EMULATOR_TMP, ignore_errors=True)


def _forget_dead_emulator() -> None:
    """After a MiniStack that died without `down` (kill -9, OOM): kill the Lambda workers it left
    running, which would go on settling with no lock table behind them, and drop its saved state,
    which is older than its death (it saves only on a clean stop). The next start is a fresh
    emulator; the sweeper re-sends the payouts whose messages died with it."""
    pid_s = read(MINISTACK_PID)
    if not pid_s or (alive(int(pid_s)) and "ministack" in cmdline(int(pid_s))):
        return
    leftovers = group_members(int(pid_s), EMU_VENV)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(MINISTACK_STATE, ignore_errors=True)
    MINISTACK_PID.unlink(missing_ok=True)
    log(f"ministack: pid {pid_s} had died; killed {len(leftovers)} leftover worker(s), dropped its stale saved state")


def ministack_died() -> bool:
    """The emulator this script started is gone (what `serve` watches)."""
    pid = read(MINISTACK_PID)
    return pid is not None and not alive(int(pid))


def ministack_down() -> None:
    pid_s = read(MINISTACK_PID)
    if not pid_s:
        if ministack_health():
            log(f"ministack: running on {ENDPOINT} but not started by this script; left alone")
        else:
            log("ministack: not running")
        return
    pid = int(pid_s)
    if alive(pid) and "ministack" in cmdline(pid):
        kill_group(pid)  # SIGTERM first: MiniStack saves its state on the way out
        _clean_emulator_tmp()
        log(f"ministack: stopped process group {pid}")
    else:
        log("ministack: not running (stale pid file)")
        _forget_dead_emulator()
    MINISTACK_PID.unlink(missing_ok=True)
