"""Where everything is (relative to the project root) and the embedded stack's fixed names; read once at import."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = ROOT / ".stack"
PGDATA = STACK_DIR / "pgdata"
APP_VENV = ROOT / ".venv"
EMU_VENV = ROOT / ".venv-emu"
BUILD_DIR = ROOT / "build" / "package"
MERGE_TEMPLATE = ROOT / "infra" / "template.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"

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
EMULATOR_TMP = STACK_DIR / "tmp"  # MiniStack's TMPDIR: pid file, Lambda code dirs, caches
PG_MODE = STACK_DIR / "pg_mode"  # "pgserver" or "external"
PG_STARTED = STACK_DIR / "pgserver.pid"  # only when `up` started it (so `down` may stop it)
# What `up` tells the tests and the operator commands (chalicelib/stack_target.py reads some of them).
OUT_FILES = MappingProxyType(
    {
        "api_url": STACK_DIR / "api_url",
        "database_url": STACK_DIR / "database_url",
        "queue_url": STACK_DIR / "queue_url",
        "dlq_url": STACK_DIR / "dlq_url",
        "fanout_url": STACK_DIR / "fanout_url",
        "lock_table": STACK_DIR / "lock_table",
        "api_key": STACK_DIR / "api_key",
        "endpoint_url": STACK_DIR / "endpoint_url",
    }
)
