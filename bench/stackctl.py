"""Start the embedded stack when needed in the provider a figure is measured on, put it back as it was, and
pause/resume the settle mapping."""

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
# The bench's own choices for the stack: never the caller's, never the stack's default.
MODE_VARIABLES = ("PIX_STACK_PROVIDER", "PSP_LATENCY_MS", "PSP_CONFIRM_DELAY_MS", "POLL_AFTER_SECONDS")
# What the ingest, settle, end-to-end, read and webhooks figures are measured on, run after run: the
# in-database sandbox (settle_latency measures the Efí adapter and the local PSP, bench/settle_latency.py).
PROVIDER = "sandbox"


def mode_env(provider: str, **settings: str) -> dict[str, str]:
    """This environment for `infra/stack.py up`: the provider named, these settings, none of the caller's
    MODE_VARIABLES."""
    env = {k: v for k, v in os.environ.items() if k not in MODE_VARIABLES}
    env.update({"PIX_STACK_PROVIDER": provider, **settings})
    return env


def _stack(*args: str, quiet: bool = False, env: dict[str, str] | None = None) -> int:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(
        [sys.executable, str(STACK_SCRIPT), *args], cwd=ROOT, env=env, stdout=out, stderr=out, check=False, timeout=900
    ).returncode


def recorded_provider() -> str | None:
    """The provider the stack's functions were deployed with (.stack/pix_provider, written by every `up`)."""
    try:
        value = (STACK_DIR / "pix_provider").read_text().strip()
    except OSError:
        return None
    return value or None


def up_in(provider: str, **settings: str) -> None:
    """`infra/stack.py up` with PIX_STACK_PROVIDER=provider: starts what is not running, deploys the provider."""
    if _stack("up", env=mode_env(provider, **settings)) != 0:
        raise SystemExit("infra/stack.py up failed")


def restart_in(provider: str, **settings: str) -> None:
    """The emulator and the PSP stopped, then `up` in that provider: the PSP restarts with these settings."""
    stop = "from infra.stacklib import ministack, psp_process; ministack.ministack_down(); psp_process.down()"
    subprocess.run([sys.executable, "-c", stop], cwd=ROOT, env=mode_env(provider), check=True, timeout=120)
    up_in(provider, **settings)


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
    provider: str | None = None  # what the running stack's functions used; None when it was not running


def needs_up(wanted: str, healthy: bool, provider: str | None) -> bool:
    """Whether ensure_up runs `up`: the stack is not (fully) healthy, or its functions use another provider."""
    return not healthy or provider != wanted


def restore_step(before: Before, provider_now: str | None) -> str:
    """What restore does: "down" (the run started the emulator), "switch" (it found the stack on another
    provider than it left it on), or "nothing"."""
    if not before.ministack:
        return "down"
    if before.provider is not None and provider_now != before.provider:
        return "switch"
    return "nothing"


def found() -> Before:
    """The stack as it is now: what restore puts back (a running stack that recorded no provider runs the
    stack's default)."""
    running = ministack_running()
    if not running:
        return Before(False, postgres_running(), None)
    sys.path.insert(0, str(ROOT))
    from infra.stacklib.psp_process import DEFAULT_PROVIDER

    return Before(True, postgres_running(), recorded_provider() or DEFAULT_PROVIDER)


def back_to(before: Before | None) -> str | None:
    """The provider a figure that restarts the stack (settle_latency) leaves it on: the one found running,
    the bench's own when it was told to use the running stack (None: `--no-stack`), or none, when the run
    started the stack and restore stops it anyway."""
    if before is None:
        return PROVIDER
    return before.provider if before.ministack else None


def ensure_up(provider: str = PROVIDER) -> Before:
    """The stack healthy with its functions on `provider`: `infra/stack.py up` with PIX_STACK_PROVIDER=provider
    unless `status` says it is healthy and it already runs that provider."""
    before = found()
    healthy = _stack("status", quiet=True) == 0
    if needs_up(provider, healthy, before.provider):
        state = "not (fully) up" if not healthy else f"on {before.provider}"
        print(f"[bench] stack {state} on {endpoint()}: `up` with PIX_STACK_PROVIDER={provider}", flush=True)
        up_in(provider)
    return before


def restore(before: Before) -> None:
    """Put the stack back as ensure_up found it: everything stopped (`down`) if MiniStack was not running;
    else on the provider it ran, and Postgres stopped if it was not running."""
    step = restore_step(before, recorded_provider())
    if step == "down":
        print("[bench] stopping the stack this run started", flush=True)
        _stack("down")
        return
    if step == "switch" and before.provider is not None:
        print(f"[bench] putting the stack back on {before.provider}", flush=True)
        up_in(before.provider)
    if not before.postgres and postgres_running():
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
