"""Fixtures: a migrated scratch database per session, moto-backed AWS, and a configured app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import scratch_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url
