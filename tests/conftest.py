"""Fixtures: a migrated scratch database per session, moto-backed AWS, and a configured app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.adapters import sandbox_pix
from tests.crash import raise_simulated_crash
from tests.support import hostile_requests, scratch_database


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hostile_requests:
        families = ", ".join(f"{name} {n}" for name, n in sorted(hostile_requests.items()))
        terminalreporter.write_line(f"hostile requests tried: {hostile_requests.total()} ({families})")


@pytest.fixture(scope="session", autouse=True)
def crashes_raise() -> Iterator[None]:
    """A crash rule ends the worker's process on the stack; here it would end the test run instead."""
    sandbox_pix.crash = raise_simulated_crash
    yield
    sandbox_pix.crash = sandbox_pix.end_the_process


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url
