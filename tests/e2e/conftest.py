"""End-to-end fixtures: the embedded stack (MiniStack + PostgreSQL + the local PSP), deployed from this tree.

The session brings the stack up as `make up` does by default: the functions pay through the Efí adapter and
the local PSP. A test that needs another mode (the in-database sandbox, whose crash rules, transient counts
and ledger table some tests are written for; or the PSP with other settings) says so with
`pytest.mark.stack_mode(MODE)`; the stack is switched as the README switches it (`make down && ... make up`)
only when the next test needs another mode than the one running, and tests are ordered so that it happens
as seldom as it can (pytest_collection_modifyitems).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / ".stack"
PORT = int(os.environ.get("PIX_STACK_PORT", "4566"))


@dataclass(frozen=True)
class StackMode:
    """How the shared stack runs: the settings `make up` is given for it (none: the default)."""

    name: str
    env: tuple[tuple[str, str], ...] = ()

    @property
    def command(self) -> str:
        """The README's switch to this mode."""
        return " ".join(["make down &&", *(f"{k}={shlex.quote(v)}" for k, v in self.env), "make up"])


DEFAULT = StackMode("efi")  # `make up` as it is: the Efí adapter and the local PSP
SANDBOX = StackMode("sandbox", (("PIX_STACK_PROVIDER", "sandbox"),))


@dataclass(frozen=True)
class Stack:
    api_url: str
    database_url: str
    started_at: float

    @property
    def api_key(self) -> str:
        # Read each time: an emulator that died and came back fresh made a new key.
        return (STACK / "api_key").read_text().strip()

    def url(self, path: str) -> str:
        return self.api_url.rstrip("/") + path

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url(path), headers={"x-api-key": self.api_key}, timeout=30, **kw)

    def post(self, path: str, data: str, **kw: Any) -> requests.Response:
        headers = {"x-api-key": self.api_key, "Content-Type": "application/json"}
        return requests.post(self.url(path), data=data, headers=headers, timeout=60, **kw)


def mode_of(item: pytest.Item) -> StackMode:
    marker = item.get_closest_marker("stack_mode")
    return marker.args[0] if marker else DEFAULT


def _order(item: pytest.Item) -> tuple[bool, int]:
    """Tests that inject faults into the shared stack (stop, kill, restart parts of it) run last. Within each
    part, tests of one mode run together: the default's first and the sandbox's next, then the faults of the
    sandbox, of other modes and of the default, so the stack switches once into each mode and once back.
    Tests that do not use the stack run between the two parts."""
    faults = item.get_closest_marker("stack_faults") is not None
    mode = mode_of(item)
    if faults:
        return True, 0 if mode == SANDBOX else 2 if mode == DEFAULT else 1
    if item.get_closest_marker("e2e") is None:
        return False, 3
    return False, 0 if mode == DEFAULT else 1 if mode == SANDBOX else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_order)


def _ministack_running() -> bool:
    try:
        requests.get(f"http://127.0.0.1:{PORT}/_ministack/health", timeout=2)
    except requests.RequestException:
        return False
    return True


def _user_env() -> dict[str, str]:
    """The environment for `make`: this one, without make's own variables (a `make test` run sets them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}


@dataclass
class StackModes:
    """The mode the shared stack runs in, and the switch to another one.

    While a mode runs, os.environ carries its settings, so a `make up` or `infra/stack.py up` that a test
    runs (to bring back a part it stopped, or to change a setting) keeps the mode."""

    stack: Stack
    base: dict[str, str]  # the session's environment, PIX_STACK_PROVIDER left out
    current: StackMode = DEFAULT
    switches: list[str] = field(default_factory=list)
    _patch: pytest.MonkeyPatch = field(default_factory=pytest.MonkeyPatch)
    _touched: set[str] = field(default_factory=lambda: {"PIX_STACK_PROVIDER"})

    def ensure(self, mode: StackMode) -> None:
        if mode == self.current:
            return
        self._quiesce()
        self._set_environment(mode)
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", mode.command],
            cwd=ROOT,
            env=_user_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode:
            pytest.fail(f"{mode.command!r} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        self.switches.append(f"{self.current.name} -> {mode.name} in {time.monotonic() - started:.1f} s")
        self.current = mode

    def _set_environment(self, mode: StackMode) -> None:
        wanted = dict(mode.env)
        self._touched |= set(wanted)
        for key in sorted(self._touched):
            value = wanted.get(key, self.base.get(key))
            if value is None:
                self._patch.delenv(key, raising=False)
            else:
                self._patch.setenv(key, value)

    def _quiesce(self, deadline: float = 180.0) -> None:
        """Wait until the payouts this session made are final: one accepted under one provider and asked
        about under the other would be a test of something no deployment does."""
        sql = (
            "SELECT count(*) FROM payouts WHERE status IN ('Pending', 'Processing') AND created_at >= to_timestamp(%s)"
        )
        end = time.monotonic() + deadline
        while True:
            conn = psycopg2.connect(self.stack.database_url)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, (self.stack.started_at,))
                    open_payouts = cur.fetchone()[0]
            finally:
                conn.close()
            if open_payouts == 0:
                return
            if time.monotonic() > end:
                print(f"\nstack mode: {open_payouts} payouts of this session still open; switching anyway")
                return
            time.sleep(1)

    def close(self) -> None:
        self._patch.undo()


@pytest.fixture(scope="session")
def _session_stack() -> Iterator[tuple[Stack, StackModes]]:
    """Deploy the working tree in the default mode (`stack.py up` is idempotent, and without
    PIX_STACK_PROVIDER deploys efi, whatever the stack ran before); afterwards stop the stack if we started it,
    else leave it in the default mode, as `make up` leaves it."""
    was_running = _ministack_running()
    base = {k: v for k, v in os.environ.items() if k != "PIX_STACK_PROVIDER"}
    modes_patch = pytest.MonkeyPatch()
    modes_patch.delenv("PIX_STACK_PROVIDER", raising=False)  # the default, whatever the caller's shell says
    subprocess.run([sys.executable, str(ROOT / "infra" / "stack.py"), "up"], cwd=ROOT, check=True, timeout=900)
    stack = Stack(
        api_url=(STACK / "api_url").read_text().strip(),
        database_url=(STACK / "database_url").read_text().strip(),
        started_at=time.time(),
    )
    modes = StackModes(stack, base, _patch=modes_patch)
    try:
        yield stack, modes
    finally:
        if not was_running:
            subprocess.run(
                [sys.executable, str(ROOT / "infra" / "stack.py"), "down"], cwd=ROOT, check=False, timeout=120
            )
        else:
            modes.ensure(DEFAULT)
        modes.close()
        _SWITCHES.extend(modes.switches)


_SWITCHES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SWITCHES:
        terminalreporter.write_line(f"stack mode switches: {'; '.join(_SWITCHES)}")


@pytest.fixture(scope="session")
def stack(_session_stack: tuple[Stack, StackModes]) -> Stack:
    return _session_stack[0]


@pytest.fixture(scope="session")
def stack_modes(_session_stack: tuple[Stack, StackModes]) -> StackModes:
    return _session_stack[1]


@pytest.fixture(autouse=True)
def _in_its_mode(request: pytest.FixtureRequest) -> None:
    """A test on the stack runs in the mode it names (pytest.mark.stack_mode), else in the default."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack_modes").ensure(mode_of(request.node))


@pytest.fixture
def db(stack: Stack) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(stack.database_url)
    conn.autocommit = True
    yield conn
    conn.close()


def local_psp_client() -> Any:
    """An Efí client of the stack's local PSP, as its functions reach it (.stack/psp_url, .stack/psp/); close it."""
    from chalicelib.adapters.efi import EfiCredentials, EfiProvider
    from infra.stacklib import psp_process

    folder = STACK / "psp"
    credentials = EfiCredentials.from_files(
        str(folder / "client-cert.pem"),
        str(folder / "client-key.pem"),
        str(folder / "credentials.json"),
        str(folder / "ca.pem"),
    )
    return EfiProvider((STACK / "psp_url").read_text().strip(), credentials, psp_process.PAYER_KEY)
