"""Test plumbing shared by the suites: a PostgreSQL server and throwaway databases on it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from chalicelib.adapters.migrations import apply_migrations
from infra.stacklib.postgres import SANDBOX_PREFIX, SANDBOX_SCHEMA

# Requests the hostile-input suites sent, by family; tests/conftest.py prints it at the end of a run.
hostile_requests: Counter[str] = Counter()


def server_url() -> str:
    """DATABASE_URL when given, else the embedded pgserver the stack uses (started if needed)."""
    from infra.stacklib.postgres import pg_up

    return pg_up()


@contextmanager
def scratch_database(prefix: str = "pix_test", migrate: bool = True) -> Iterator[str]:
    """A new database on the test server (migrated unless asked not to), dropped afterwards."""
    admin_url = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        url = psycopg2.extensions.make_dsn(admin_url, dbname=name)
        if migrate:
            apply_migrations(url)
            apply_migrations(url, SANDBOX_SCHEMA, SANDBOX_PREFIX)  # the tests' provider is the sandbox
        yield url
    finally:
        admin.close()
        # A fresh session: the end-to-end fault tests restart the server under a long-lived one.
        admin = psycopg2.connect(server_url())
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()
