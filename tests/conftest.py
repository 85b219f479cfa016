"""Fixtures: a migrated scratch database per session, moto-backed AWS, and a configured app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import hostile_requests, scratch_database


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hostile_requests:
        families = ", ".join(f"{name} {n}" for name, n in sorted(hostile_requests.items()))
        terminalreporter.write_line(f"hostile requests tried: {hostile_requests.total()} ({families})")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url
