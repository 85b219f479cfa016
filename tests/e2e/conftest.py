"""End-to-end fixtures: the embedded stack (MiniStack + PostgreSQL), deployed from this tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / ".stack"
PORT = int(os.environ.get("PIX_STACK_PORT", "4566"))


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that inject faults into the shared stack (stop, kill, restart parts of it) run last."""
    items.sort(key=lambda item: item.get_closest_marker("stack_faults") is not None)


def _ministack_running() -> bool:
    try:
        requests.get(f"http://127.0.0.1:{PORT}/_ministack/health", timeout=2)
    except requests.RequestException:
        return False
    return True


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Deploy the working tree (`stack.py up` is idempotent); stop it afterwards only if we started it."""
    was_running = _ministack_running()
    subprocess.run([sys.executable, str(ROOT / "infra" / "stack.py"), "up"], cwd=ROOT, check=True, timeout=900)
    yield Stack(
        api_url=(STACK / "api_url").read_text().strip(),
        database_url=(STACK / "database_url").read_text().strip(),
        started_at=time.time(),
    )
    if not was_running:
        subprocess.run([sys.executable, str(ROOT / "infra" / "stack.py"), "down"], cwd=ROOT, check=False, timeout=120)


@pytest.fixture
def db(stack: Stack) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(stack.database_url)
    conn.autocommit = True
    yield conn
    conn.close()
