"""Start the embedded stack when needed, put it back as it was, and pause/resume the settle mapping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .env import ROOT, STACK_DIR, client, endpoint

STACK_SCRIPT = ROOT / "infra" / "stack.py"
TEMPLATE = ROOT / "infra" / "template.json"
CFN_STACK = "pix-payouts"


def _stack(*args: str, quiet: bool = False) -> int:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(
        [sys.executable, str(STACK_SCRIPT), *args], cwd=ROOT, stdout=out, stderr=out, check=False, timeout=900
    ).returncode


def ministack_running() -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint()}/_ministack/health", timeout=3) as resp:  # noqa: S310 (loopback)
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def postgres_running() -> bool:
    try:
        pid = int((STACK_DIR / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return False
    return os.path.exists(f"/proc/{pid}")


@dataclass(frozen=True)
class Before:
    ministack: bool
    postgres: bool


def ensure_up() -> Before:
    """`infra/stack.py up` unless `status` says everything is healthy already."""
    before = Before(ministack_running(), postgres_running())
    if _stack("status", quiet=True) != 0:
        print(f"[bench] stack not (fully) up on {endpoint()}: running infra/stack.py up", flush=True)
        if _stack("up") != 0:
            raise SystemExit("infra/stack.py up failed")
    return before


def restore(before: Before) -> None:
    """Stop what ensure_up started: everything (`down`) if MiniStack was not running, else only Postgres."""
    if not before.ministack:
        print("[bench] stopping the stack this run started", flush=True)
        _stack("down")
    elif not before.postgres and postgres_running():
        sys.path.insert(0, str(ROOT))
        from infra.stacklib.postgres import pg_down

        pg_down()  # only stops a pgserver that `up` started


def settle_mapping_settings() -> dict[str, int]:
    """BatchSize and MaximumConcurrency of the settle mapping, as infra/template.json declares them."""
    template = json.loads(TEMPLATE.read_text())
    props = template["Resources"]["Settle"]["Properties"]["Events"]["SettleSqsEventSource"]["Properties"]
    return {"batch_size": int(props["BatchSize"]), "max_concurrency": int(props["ScalingConfig"]["MaximumConcurrency"])}


def fanout_range_items() -> int:
    """New payouts per fan-out task as deployed (the template sets no FANOUT_RANGE_ITEMS: the default)."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.settings import Settings

    return Settings.from_env({}).fanout_range_items


def physical_id(logical_id: str) -> str:
    res = client("cloudformation").describe_stack_resource(StackName=CFN_STACK, LogicalResourceId=logical_id)
    return str(res["StackResourceDetail"]["PhysicalResourceId"])


def settle_mapping(lam: Any | None = None) -> dict[str, Any]:
    lam = lam or client("lambda")
    function = physical_id("Settle")
    mappings = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    if len(mappings) != 1:
        raise RuntimeError(f"expected one event source mapping on {function}, found {len(mappings)}")
    return dict(mappings[0])


def set_enabled(lam: Any, uuid: str, enabled: bool) -> None:
    lam.update_event_source_mapping(UUID=uuid, Enabled=enabled)


@contextmanager
def settle_paused() -> Iterator[Any]:
    """Disable the settle mapping inside the block; always re-enable it (if it was enabled) on the way out.

    Yields a `resume()` callable so the caller can resume at an exact moment (the 201) and start timing.
    """
    lam = client("lambda")
    mapping = settle_mapping(lam)
    was_enabled = mapping.get("State", "Enabled") != "Disabled"
    resumed = {"done": False}

    def resume() -> None:
        if was_enabled and not resumed["done"]:
            set_enabled(lam, mapping["UUID"], True)
            resumed["done"] = True

    set_enabled(lam, mapping["UUID"], False)
    try:
        yield resume
    finally:
        resume()
