"""The per-container connection on a real PostgreSQL: a connection the server closed is replaced, not failed on."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.database import Database
from chalicelib.domain.errors import Unavailable


def backend_pid(database: Database) -> int:
    with database.statement() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return int(cur.fetchone()[0])


def terminate(db: Any, pid: int) -> None:
    """What a database restart or failover does to every open connection."""
    with db.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert cur.fetchone()[0] is True


def test_a_connection_closed_by_the_server_while_idle_is_replaced_before_use(database_url, db):
    database = Database(database_url, idle_check_seconds=0)
    first = backend_pid(database)
    terminate(db, first)
    with database.transaction() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    assert backend_pid(database) != first
    database.close()


def test_a_connection_in_steady_use_is_not_pinged_so_a_closed_one_fails_once_then_reconnects(database_url, db):
    database = Database(database_url, idle_check_seconds=3600)
    first = backend_pid(database)
    terminate(db, first)
    with pytest.raises(Unavailable), database.statement() as cur:
        cur.execute("SELECT 1")
    second = backend_pid(database)  # the broken connection was dropped: the next use opens a new one
    assert second != first
    database.close()


def test_a_live_idle_connection_is_kept_and_its_transactions_still_roll_back(database_url):
    database = Database(database_url, idle_check_seconds=0)
    first = backend_pid(database)
    with pytest.raises(RuntimeError), database.transaction() as cur:  # pinged first, then a transaction
        cur.execute("CREATE TEMP TABLE rolled_back (x int)")
        raise RuntimeError("the caller failed")
    with database.statement() as cur:
        cur.execute("SELECT to_regclass('pg_temp.rolled_back') IS NULL, pg_backend_pid()")
        assert cur.fetchone() == (True, first)
    database.close()
